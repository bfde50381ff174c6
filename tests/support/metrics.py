"""Reading a /metrics page (Prometheus text) the way Prometheus does."""

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> list[tuple[str, dict, float]]:
    """Every sample of a metrics text: (name, labels, value)."""
    return [(sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text) for sample in family.samples]


def value(text: str, name: str, **labels) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    return sum(v for n, sample_labels, v in samples(text) if n == name and labels.items() <= sample_labels.items())
