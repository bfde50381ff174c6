"""Adapters for confluent-kafka and pymongo."""
