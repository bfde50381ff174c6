"""The baseline of the send figures: a bare Flask endpoint that parses the body and answers the same 202."""

import uuid
from datetime import datetime, timezone

from flask import Flask, request


def create_app() -> Flask:
    """A Flask app with POST /send-message doing no work beyond what any JSON endpoint does."""
    app = Flask("bare")

    @app.post("/send-message")
    def send():
        body = request.get_json()
        return {"status": "accepted", "messageId": str(uuid.uuid4()), "to": body.get("to"),
                "sentAt": datetime.now(timezone.utc).isoformat(), "partition": 0, "offset": 0}, 202

    @app.get("/health")
    def health():
        return {"status": "ok"}

    return app
