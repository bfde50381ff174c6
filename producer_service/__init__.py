"""Producer service: the HTTP API that publishes messages and queries the stores."""
