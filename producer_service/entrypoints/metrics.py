"""The producer's own metrics, beside the request counts every app has (shared_adapters.metrics)."""

from shared_adapters.metrics import Counter, Gauge

PUBLISHED = Counter("kafka_publish_total", "Messages handed to Kafka, by outcome: acked, or timeout (a 503).",
                    ["outcome"])
OPEN_STREAMS = Gauge("live_streams_open", "Open GET /stream connections.", multiprocess_mode="livesum")


_ACKED, _TIMED_OUT = PUBLISHED.labels("acked"), PUBLISHED.labels("timeout")


def count_published(acked: int, timed_out: int) -> None:
    """Count the outcomes of one send."""
    if acked:
        _ACKED.inc(acked)
    if timed_out:
        _TIMED_OUT.inc(timed_out)
