"""The Flask app both services start from: protective headers on every answer, hooks asked about once."""

from flask import Response

from shared_adapters.access import Access
from shared_adapters.flask_app import PROTECTIVE_HEADERS, REMEMBERED_FUNCTIONS, api_app


def open_app():
    """An app with authentication off, one view that chooses its own caching and one that does not."""
    app = api_app(__name__, Access(identities=None, sessions=None, limiter=None, cookie_name="s", enabled=False), 1024)

    @app.get("/plain")
    def plain():
        return {"ok": True}

    @app.get("/cached")
    def cached():
        return Response("{}", content_type="application/json", headers={"cache-control": "max-age=60"})

    return app


def test_every_answer_has_each_protective_header_once_and_a_views_own_choice_is_kept():
    client = open_app().test_client()
    for path in ("/plain", "/cached", "/missing"):
        headers = client.get(path).headers
        for name, value in PROTECTIVE_HEADERS.items():
            assert len(headers.getlist(name)) == 1, (path, name)
            if not (path == "/cached" and name == "Cache-Control"):
                assert headers[name] == value, (path, name)
    assert client.get("/cached").headers["Cache-Control"] == "max-age=60"
    assert client.get("/plain").headers["X-Request-Id"]


def test_the_app_remembers_which_of_its_functions_are_synchronous_but_never_more_than_its_bound():
    app = open_app()
    made_per_request = [lambda: None for _ in range(REMEMBERED_FUNCTIONS + 500)]
    assert all(app.ensure_sync(func) is func for func in made_per_request)
    assert len(app._synchronous) == REMEMBERED_FUNCTIONS
    assert app.test_client().get("/plain").status_code == 200
