"""Local infrastructure helpers: install, run and stop a real Kafka broker and FerretDB."""
