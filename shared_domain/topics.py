"""Kafka topic names used by every service."""

MESSAGES_TOPIC = "client-messages"
DEAD_LETTER_TOPIC = "client-messages-dlq"
# One event per stored message, keyed by recipient: what live delivery pushes to connected clients.
STORED_EVENTS_TOPIC = "client-messages-stored"
