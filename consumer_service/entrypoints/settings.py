"""Settings for command-line entrypoints: a bad value exits 2 with one line naming it."""

import sys

import click

from shared_adapters.kafka_connection import KafkaConnection, check_accepted
from shared_domain.config import ConfigError

from ..config import ConsumerSettings, load_settings


def settings_or_exit(client: str | None = None) -> ConsumerSettings:
    """Load settings or exit 2 with one line naming the bad variable."""
    try:
        return load_settings(client)
    except ConfigError as error:
        click.echo(str(error), err=True)
        sys.exit(2)


def accepted_or_exit(kafka: KafkaConnection) -> None:
    """Exit 2 with one line when the brokers refuse the configured credentials or TLS setup."""
    try:
        check_accepted(kafka)
    except ConfigError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
