"""Every answer the tests get from a running service is checked against the OpenAPI document that service serves.

The document cannot drift from the code: a status it does not list for an endpoint, a body
that breaks its schema, or an endpoint it does not have fails the test that got the answer.
Every event a test reads from GET /stream (tests/support/sse.py) is checked the same way.
"""

import collections
import json
import re
import urllib.request

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CHECKED: collections.Counter = collections.Counter()  # answers checked, by "METHOD /template STATUS"
ENABLED = True  # make bench turns it off: it measures the services, not the document
_DOCUMENTS: dict[str, "Document"] = {}


class Document:
    """One service's OpenAPI document, with its paths as patterns."""

    def __init__(self, spec: dict):
        self.spec = spec
        self._registry = Registry().with_resource("urn:api", Resource.from_contents(spec, DRAFT202012))
        # Paths with fewer parameters and more fixed text first: /failed-messages/replay before /failed-messages/{id}.
        # A parameter may hold slashes (a failure id is a Flask `path`), as the server's routing allows.
        templates = sorted(spec["paths"], key=lambda path: (path.count("{"), -len(path)))
        self._routes = [(re.compile("^" + "".join(".+" if part.startswith("{") else re.escape(part)
                                                  for part in re.split(r"(\{[^}]+\})", path)) + "$"), path)
                        for path in templates]

    def route_of(self, path: str, method: str) -> str | None:
        """The template a concrete path matches: the first that has the method, else the first that matches."""
        matching = [template for pattern, template in self._routes if pattern.match(path)]
        return next((t for t in matching if method.lower() in self.spec["paths"][t]), next(iter(matching), None))

    def check(self, method: str, path: str, status: int, content_type: str | None, body) -> None:
        """Raise AssertionError when the answer is not one the document describes."""
        if method in ("HEAD", "OPTIONS"):  # answered by Flask itself for every route
            return
        template = self.route_of(path, method)
        if template is None:
            assert status == 404, f"{method} {path} answered {status}, but the document has no such path"
            return
        operation = self.spec["paths"][template].get(method.lower())
        if operation is None:
            assert status == 405, f"{method} {template} answered {status}, but the document has no such operation"
            return
        answers = operation["responses"]
        assert str(status) in answers, f"{method} {template} answered {status}; the document lists {sorted(answers)}"
        content = answers[str(status)].get("content")
        if content is None:
            assert body is None, f"{method} {template} {status} has a body the document does not describe"
            return
        media = (content_type or "").split(";")[0].strip()
        assert media in content, f"{method} {template} {status} answered {media}; the document says {sorted(content)}"
        if media != "application/json":
            return
        where = ("paths", template, method.lower(), "responses", str(status), "content", "application/json", "schema")
        problems = self._problems(where, body)
        assert not problems, f"{method} {template} {status} does not match the document: {problems[:5]}"

    def check_event(self, kind: str, event_id: str | None, data) -> None:
        """Raise AssertionError when an event of GET /stream is not one the document describes."""
        where = ("paths", "/stream", "get", "responses", "200", "content", "text/event-stream", "schema")
        event = {"event": kind, "data": json.dumps(data), **({"id": event_id} if event_id is not None else {})}
        problems = self._problems(where, event)
        assert not problems, f"GET /stream sent a `{kind}` event the document does not describe: {problems[:5]}"
        # contentSchema is an annotation to JSON Schema validators: the data is checked against it here.
        variants = self.spec["paths"]["/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
        index = next(n for n, one in enumerate(variants["oneOf"]) if one["properties"]["event"]["const"] == kind)
        problems = self._problems((*where, "oneOf", str(index), "properties", "data", "contentSchema"), data)
        assert not problems, f"GET /stream's `{kind}` event's data does not match the document: {problems[:5]}"

    def _problems(self, where: tuple[str, ...], instance) -> list[str]:
        """What is wrong with `instance` by the schema at `where` in the document, one line each."""
        pointer = "/".join(part.replace("~", "~0").replace("/", "~1") for part in where)
        validator = Draft202012Validator({"$ref": f"urn:api#/{pointer}"}, registry=self._registry)
        return [f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
                for error in validator.iter_errors(instance)]


def document_of(base_url: str) -> Document:
    """The document the service at base_url serves (fetched once)."""
    if base_url not in _DOCUMENTS:
        with urllib.request.urlopen(base_url + "/openapi.json", timeout=10) as response:
            _DOCUMENTS[base_url] = Document(json.loads(response.read()))
    return _DOCUMENTS[base_url]


def conform_event(base_url: str, kind: str, event_id: str | None, data) -> None:
    """Check one event of a stream against the document of the producer that sent it."""
    if ENABLED:
        document_of(base_url).check_event(kind, event_id, data)
        CHECKED[f"EVENT /stream {kind}"] += 1


def conform(base_url: str, method: str, path: str, status: int, content_type: str | None, body) -> None:
    """Check one answer against the document of the service that gave it."""
    if ENABLED and path != "/openapi.json":
        document = document_of(base_url)
        document.check(method, path, status, content_type, body)
        CHECKED[f"{method} {document.route_of(path, method)} {status}"] += 1
