"""Process entrypoints: the consumer loops and the command line."""
