"""`consumer-service dlq ...`: list, show, replay and discard dead-lettered records."""

import getpass
import json
import socket
import sys
from contextlib import contextmanager

import click

from shared_domain.clock import as_utc, to_iso
from shared_domain.documents import storable_text
from shared_domain.failed_messages import (ANY_STATUS, EQUALITY_FILTERS, REASON_CONTAINS, SINCE, STATUS, STATUS_FAILED,
                                           STATUSES, UNTIL, Selection, failure_view, reason_problem, selection)
from shared_domain.message import unsafe_text_problem

from ..application.dlq_operations import PublishFailed, ReplayPace, Report, discard, replay
from ..application.errors import StoreUnavailable
from .bootstrap import operations
from ..config import settings_or_exit

MAX_LIMIT = 1_000_000
MAX_RATE = 10_000.0


class RuleText(click.ParamType):
    """Text that must be valid UTF-8 (arguments that are not arrive with lone surrogates) and obey a rule."""

    name = "text"

    def __init__(self, problem_of=lambda _value: None):
        self._problem_of = problem_of

    def convert(self, value, param, ctx):
        """The value, or a usage error naming what is wrong with it."""
        problem = unsafe_text_problem(value) or self._problem_of(value)
        if problem:
            self.fail(f"{storable_text(value)!r} {problem}", param, ctx)
        return value


class Rate(click.ParamType):
    """Records per second: a finite number above 0, at most MAX_RATE."""

    name = "rate"

    def convert(self, value, param, ctx):
        """The rate as a float, or a usage error."""
        try:
            rate = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number", param, ctx)
        if not 0 < rate <= MAX_RATE:  # also false for nan
            self.fail(f"{value!r} must be above 0 and at most {MAX_RATE:g}", param, ctx)
        return rate


def _rule_of(name: str) -> RuleText:
    """Text obeying the rule of one equality filter of the grammar."""
    return RuleText(EQUALITY_FILTERS[name].problem)


def selection_options(command):
    """Add the filter options shared by list, replay and discard: the filter grammar's, each under its name."""
    options = [
        click.option("--to", "to", type=_rule_of("to"), help="Recipient client of the message."),
        click.option("--from", "from", type=_rule_of("from"), help="Sender client of the message."),
        click.option("--error-type", "errorType", type=_rule_of("errorType"),
                     help="e.g. StoreUnavailable, SchemaViolation, UndecodableRecord."),
        click.option("--reason-contains", REASON_CONTAINS, type=RuleText(),
                     help="Text the failure reason contains (any case)."),
        click.option("--client", "client", type=_rule_of("client"),
                     help="Consumer deployment that dead-lettered it (a client id, or '*')."),
        click.option("--status", STATUS, type=click.Choice([*STATUSES, ANY_STATUS]), default=STATUS_FAILED,
                     show_default=True),
        click.option("--since", SINCE, type=click.DateTime(), help="Failed at or after (UTC)."),
        click.option("--until", UNTIL, type=click.DateTime(), help="Failed before (UTC)."),
        click.option("--limit", type=click.IntRange(1, MAX_LIMIT), help="At most this many records."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _selection(ids, limit, **filters) -> Selection:
    """Build a selection from ids or the filter options (times without a zone are UTC)."""
    in_utc = {name: filters[name] and as_utc(filters[name]) for name in (SINCE, UNTIL)}
    return selection({**filters, **in_utc}, ids=ids, limit=limit)


def _operator(by: str | None) -> str:
    """Who is acting: --by, else user@host."""
    return by or f"{getpass.getuser()}@{socket.gethostname()}"


@contextmanager
def _operations(by: str | None = None):
    """Operations for one command; a store or broker that does not answer ends it with exit 1 and a clear line."""
    try:
        with operations(settings_or_exit(), _operator(by)) as ops:
            yield ops
    except StoreUnavailable as error:
        _stop(f"the store did not answer ({error})")
    except PublishFailed as error:
        _stop(f"the broker did not acknowledge a replay ({error})")


def _stop(why: str) -> None:
    """Explain why the command stopped and that running it again goes on from there."""
    click.echo(f"\nstopped: {why}; nothing was lost, run the same command again to go on", err=True)
    sys.exit(1)


@click.group()
def dlq() -> None:
    """Inspect, replay and discard dead-lettered records."""


@dlq.command("list")
@selection_options
def list_command(limit, **filters) -> None:
    """List failed records, oldest first."""
    with _operations() as ops:
        documents = ops.failures.select(_selection((), limit or 50, **filters), records=False)
    rows = [(d["_id"], d["status"], d["errorType"], str(d["attempts"]), to_iso(d["failedAt"]),
             f"{d.get('from', '?')}->{d.get('to', '?')}", d["reason"][:60]) for d in documents]
    _table(("ID", "STATUS", "ERROR TYPE", "ATTEMPTS", "FAILED AT", "FROM->TO", "REASON"), rows)


@dlq.command()
@click.argument("failure_id", type=RuleText())
def show(failure_id: str) -> None:
    """Show one failed record: payload, headers and history."""
    with _operations() as ops:
        [document] = ops.failures.select(Selection(ids=(failure_id,))) or [None]
    if document is None:
        click.echo(f"no failed record {failure_id}", err=True)
        sys.exit(1)
    click.echo(json.dumps(failure_view(document), indent=2, ensure_ascii=False))


@dlq.command("replay")
@click.argument("ids", nargs=-1, type=RuleText())
@selection_options
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; change nothing.")
@click.option("--rate", type=Rate(), help=f"At most this many records per second (up to {MAX_RATE:g}).")
@click.option("--force", is_flag=True, help="Replay even if already replayed or past the replay cap.")
@click.option("--by", type=RuleText(), help="Operator name recorded in the history [default: user@host].")
def replay_command(ids, limit, dry_run, rate, force, by, **filters) -> None:
    """Republish failed records (by id, or by filter) to the message topic."""
    chosen = _selection(ids, limit, **filters)
    with _operations(by) as ops, _progress("replaying") as progress:
        report = replay(chosen, ops, dry_run=dry_run, force=force, pace=ReplayPace(rate) if rate else lambda: None,
                        on_each=progress, chunk=max(1, min(100, int(rate))) if rate else 100)
    _summary("replayed", report)


@dlq.command("discard")
@click.argument("ids", nargs=-1, type=RuleText())
@selection_options
@click.option("--reason", required=True, type=RuleText(reason_problem), help="Why these records must never be retried.")
@click.option("--dry-run", is_flag=True, help="Show what would be discarded; change nothing.")
@click.option("--force", is_flag=True, help="Discard even if already replayed.")
@click.option("--by", type=RuleText(), help="Operator name recorded in the history [default: user@host].")
def discard_command(ids, limit, reason, dry_run, force, by, **filters) -> None:
    """Mark failed records discarded, with a reason."""
    chosen = _selection(ids, limit, **filters)
    with _operations(by) as ops, _progress("discarding") as progress:
        report = discard(chosen, ops, reason=reason, dry_run=dry_run, force=force, on_each=progress)
    _summary("discarded", report)


class _progress:
    """A click progress bar that learns its length from the first callback."""

    def __init__(self, label: str):
        self._label, self._bar = label, None

    def __enter__(self):
        return self

    def __call__(self, _failure_id: str, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = click.progressbar(length=total, label=self._label, file=sys.stderr).__enter__()
        self._bar.update(1)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _summary(verb: str, report: Report) -> None:
    """Print what was done, per record, then one summary line."""
    prefix = "would be " if report.dry_run else ""
    for failure_id in report.done:
        click.echo(f"{prefix}{verb}: {failure_id}")
    for kind, entries in (("skipped", report.skipped), ("refused", report.refused)):
        for failure_id, reason in entries.items():
            click.echo(f"{kind}: {failure_id} ({reason})")
    for failure_id in report.missing:
        click.echo(f"missing: {failure_id} (no such failed record)")
    dry = " (dry run: nothing changed)" if report.dry_run else ""
    click.echo(f"{verb} {len(report.done)}, skipped {len(report.skipped)}, refused {len(report.refused)}, "
               f"missing {len(report.missing)}{dry}")


def _table(header: tuple, rows: list[tuple]) -> None:
    """Print rows as aligned columns."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
