"""Command line of the consumer service (`consumer-service ...`)."""

import faulthandler
import logging
import signal
import sys
import threading

import click

from shared_adapters.kafka_connection import check_accepted
from shared_adapters.logs import configure_logging
from shared_domain.config import exit_2_on_bad_setting

from ..config import load_log_settings, load_operator_settings, load_settings, settings_or_exit
from .bootstrap import create_topics, run_consumer_service
from .dlq_cli import dlq


@click.group()
@click.option("--log-level", default=None, help="Python logging level [env LOG_LEVEL; default: INFO].")
def cli(log_level: str | None) -> None:
    """Consume client messages into MongoDB and manage the dead-letter queue."""
    with exit_2_on_bad_setting():
        logs = load_log_settings(log_level)
    configure_logging(logs.level, logs.format)
    # Outages are reported once by the service itself; librdkafka would log every reconnect attempt.
    logging.getLogger("librdkafka").setLevel(logs.kafka_client_level)


@cli.command()
@click.option("--client", "client", default=None, help="Recipient client id to keep, or '*' for all [env CLIENT_ID].")
def run(client: str | None) -> None:
    """Consume messages addressed to one client (or all) until SIGTERM or Ctrl-C."""
    with exit_2_on_bad_setting():
        settings = load_settings(client)
        check_accepted(settings.kafka)
        code = run_consumer_service(settings, _stop_on_signals())
    sys.exit(code)


@cli.command()
def operator() -> None:
    """Serve the operator API and the dead-letter console on OPERATOR_BIND (default 127.0.0.1:8081)."""
    from .operator_server import OperatorServer

    with exit_2_on_bad_setting():
        settings = load_operator_settings()
        check_accepted(settings.consumer.kafka)
    OperatorServer(settings).run()


@cli.command("create-topics")
def create_topics_command() -> None:
    """Create the message and dead-letter topics if they do not exist."""
    with exit_2_on_bad_setting():
        settings = load_settings()
        ready = create_topics(settings, _stop_on_signals())
    if ready:
        click.echo(f"topics ready: {settings.messages_topic}, {settings.dead_letter_topic}")


@cli.command("migrate-message-ids")
def migrate_message_ids_command() -> None:
    """Move messages stored before message ids were per sender to their sender's key (safe to run again)."""
    from shared_adapters.mongo_client import connect

    from ..infrastructure.mongo_store import migrate_message_ids

    settings = settings_or_exit(None)
    mongo = connect(settings.mongodb_uri, settings.mongodb_timeout_ms)
    try:
        click.echo(f"moved {migrate_message_ids(mongo[settings.mongodb_database])} messages to per-sender ids")
    finally:
        mongo.close()


@cli.command("rebuild-views")
@click.option("--if-missing", is_flag=True,
              help="Only when there are stored messages and no views or pages of them yet (an upgrade).")
def rebuild_views_command(if_missing: bool) -> None:
    """Make the conversation views and message pages again from the stored messages (stop the consumers first)."""
    from shared_adapters.mongo_client import connect
    from shared_domain.conversation_views import VIEWS_COLLECTION
    from shared_domain.documents import MESSAGES_COLLECTION
    from shared_domain.message_pages import received_stream

    from ..infrastructure import kafka_io
    from ..infrastructure.mongo_views import rebuild_views

    settings = settings_or_exit(None)
    partitions = kafka_io.topic_partitions(settings.kafka, settings.stored_events_topic)
    if partitions is None:
        click.echo(f"the partitions of {settings.stored_events_topic} are not known: is Kafka up "
                   f"({settings.kafka.bootstrap_servers}) and the topic created?", err=True)
        sys.exit(2)
    mongo = connect(settings.mongodb_uri, settings.mongodb_timeout_ms)
    database = mongo[settings.mongodb_database]
    try:
        some_message = database[MESSAGES_COLLECTION].find_one({}, {"to": 1})
        # Views and pages come together: a store whose some message's recipient has no received stream lacks both.
        if if_missing and (some_message is None or database[VIEWS_COLLECTION].find_one(
                {"_id": received_stream(some_message["to"])}, {"_id": 1})):
            click.echo("conversation views: nothing to build")
            return
        click.echo(f"rebuilt {rebuild_views(database, partitions)} conversation views and pages")
    finally:
        mongo.close()


# A stop still under way this long after the signal is reported with every thread's stack (on stderr), before a
# supervisor's kill (commonly 15-30 s after its SIGTERM) leaves nothing to tell where it hung.
STOP_REPORT_S = 10.0


def _stop_on_signals() -> threading.Event:
    """Return an event set by SIGTERM or SIGINT, so loops finish their batch and exit."""
    stop = threading.Event()

    def request_stop(signum, _frame):
        logging.getLogger(__name__).info("received %s, finishing the current batch", signal.Signals(signum).name)
        first = not stop.is_set()
        stop.set()
        if first:  # a second signal does not put the report off
            try:
                faulthandler.dump_traceback_later(STOP_REPORT_S, exit=False)
            except (OSError, ValueError, RuntimeError) as error:  # stderr is no file here: nothing to report to
                logging.getLogger(__name__).debug("no report of a stop that hangs: %s", error)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


cli.add_command(dlq)
