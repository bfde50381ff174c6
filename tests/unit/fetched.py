"""A record as the consume loop fetches it: as much of confluent-kafka's Message as the loop reads."""


class Fetched:
    """A fetched record of `topic`'s `partition` at `offset`, for clientB, with an empty JSON object."""

    def __init__(self, topic: str, partition: int, offset: int):
        self._topic, self._partition, self._offset = topic, partition, offset

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def key(self):
        return b"clientB"

    def value(self):
        return b"{}"

    def headers(self):
        return None

    def error(self):
        return None
