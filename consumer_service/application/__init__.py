"""Use cases of the consumer service; they talk to ports, never to Kafka or MongoDB directly."""
