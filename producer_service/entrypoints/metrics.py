"""The producer's own metrics, beside the request counts every app has (shared_adapters.metrics)."""

from prometheus_client import Counter, Gauge

PUBLISHED = Counter("kafka_publish_total", "Messages handed to Kafka, by outcome: acked, or timeout (a 503).",
                    ["outcome"])
OPEN_STREAMS = Gauge("live_streams_open", "Open GET /stream connections.", multiprocess_mode="livesum")


def count_published(acked: int, timed_out: int) -> None:
    """Count the outcomes of one send."""
    if acked:
        PUBLISHED.labels("acked").inc(acked)
    if timed_out:
        PUBLISHED.labels("timeout").inc(timed_out)
