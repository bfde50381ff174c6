"""Domain shared by the producer and consumer services: the message, its rules and wire format."""
