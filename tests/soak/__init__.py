"""`make soak`: the `make run` stack under a steady load for a long while, judged by its trend."""
