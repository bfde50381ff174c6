"""Kafka topic names used by every service."""

MESSAGES_TOPIC = "client-messages"
DEAD_LETTER_TOPIC = "client-messages-dlq"
