"""Each service's OpenAPI document is valid OpenAPI 3.1 and covers every endpoint and method the app serves."""

import json
from datetime import UTC, datetime

import pytest
from openapi_spec_validator import validate

from producer_service.application.live import StreamItem
from producer_service.entrypoints.stream_api import sse_text
from shared_adapters.openapi import WORKER_ERRORS
from shared_domain.failures import SourcePosition
from shared_domain.stored_events import stored_event
from tests.support.contract import Document

# The pages' own scripts and styles are files, not API.
UNDOCUMENTED = ("/assets/",)


@pytest.fixture(params=["producer", "operator"])
def served(request, app, operator_app):
    """An app and the document it serves at /openapi.json."""
    application = app if request.param == "producer" else operator_app
    answer = application.test_client().get("/openapi.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    return application, answer.get_json()


def test_the_document_is_valid_openapi_3_1(served):
    _app, document = served
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_and_method_of_the_app_is_in_the_document(served):
    app, document = served
    routes = {(rule.rule.replace("<path:", "{").replace("<", "{").replace(">", "}"), method.lower())
              for rule in app.url_map.iter_rules() if not rule.rule.startswith(UNDOCUMENTED)
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert routes == documented


def test_every_operation_documents_its_errors_with_the_error_shape(served):
    _app, document = served
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and path != "/ready":
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            if operation.get("security"):
                assert "401" in operation["responses"], (method, path)


def test_every_operation_documents_what_the_http_worker_answers_before_the_app(served):
    _app, document = served
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {str(status) for status in WORKER_ERRORS} <= set(operation["responses"]), (method, path)


def parsed_events(text: str) -> list[tuple[str, str | None, object]]:
    """(event, id, JSON data) of each event of Server-Sent Events text that carries data."""
    events = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "data" in lines:
            events.append((lines.get("event", "message"), lines.get("id"), json.loads(lines["data"])))
    return events


def test_every_kind_of_stream_event_matches_the_document(app):
    document = Document(app.test_client().get("/openapi.json").get_json())
    stored = stored_event("m-1", "clientA", "clientB", "hello\nB", datetime(2026, 12, 4, tzinfo=UTC),
                          SourcePosition("client-messages", 2, 17))
    text = "".join(sse_text(item) for item in (StreamItem("position", "e30"), StreamItem("heartbeat"),
                                               StreamItem("message", "eyJjbGllbnRCIjoxN30", stored),
                                               StreamItem("overflow", "eyJjbGllbnRCIjoxN30")))
    events = parsed_events(text)
    assert [kind for kind, _id, _data in events] == ["position", "chat-message", "overflow"]
    for kind, event_id, data in events:
        document.check_event(kind, event_id, data)
    with pytest.raises(AssertionError, match="does not match the document"):
        document.check_event("chat-message", "e30", {"messageId": "m-1"})
    with pytest.raises(AssertionError, match="does not describe"):
        document.check_event("typing", "e30", {})


def test_a_chat_message_event_is_written_byte_for_byte_as_clients_already_read_it():
    # Clients (and the fan-out bench) read this text as it is: its spacing and escaping are part of the API.
    stored = stored_event("m-1", "clientA", "clientB", "h\u00e9llo\n\"B\"", datetime(2026, 12, 4, tzinfo=UTC),
                          SourcePosition("client-messages", 2, 17))
    assert sse_text(StreamItem("message", "eyJjbGllbnRCIjoxN30", stored)) == (
        'id: eyJjbGllbnRCIjoxN30\nevent: chat-message\n'
        'data: {"messageId": "m-1", "from": "clientA", "to": "clientB", "message": "h\u00e9llo\\n\\"B\\"", '
        '"sentAt": "2026-12-04T00:00:00.000Z"}\n\n')


def test_the_docs_page_lists_every_operation(served):
    app, document = served
    page = app.test_client().get("/docs").get_data(as_text=True)
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"{method.upper()} {path}" in page


def test_answers_are_checked_against_the_document(served, tokens):
    app, spec = served
    document, client = Document(spec), app.test_client()
    answer = client.get("/health")
    document.check("GET", "/health", answer.status_code, answer.content_type, answer.get_json())
    with pytest.raises(AssertionError, match="does not match the document"):
        document.check("GET", "/health", 200, "application/json", {"status": "ok", "extra": 1})
    with pytest.raises(AssertionError, match="the document lists"):
        document.check("GET", "/health", 418, "application/json", {"error": "x", "message": "y", "details": {}})
    with pytest.raises(AssertionError, match="no such path"):
        document.check("GET", "/nowhere", 200, "application/json", {})
