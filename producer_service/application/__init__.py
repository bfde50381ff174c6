"""Use cases of the producer service: send a message, query messages and failures."""
