"""`make bench`: the speed figures of the system, each beside a baseline measured in the same run."""
