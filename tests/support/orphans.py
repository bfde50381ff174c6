"""A real Kafka client made to report itself orphaned, as one librdkafka left with no broker to reach does."""


class ReportsOrphaned:
    """Stands for a real client, and reports it orphaned once `when()` holds."""

    def __init__(self, client, when):
        self._client, self._when = client, when

    def orphaned(self) -> bool:
        return self._when()

    def __getattr__(self, name):
        return getattr(self._client, name)
