"""Command line of the producer service (`producer-service clients ...`, `operators ...`, `metrics-readers ...`)."""

import errno
import json
import os
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path

import click
from pymongo.errors import PyMongoError

from shared_adapters.logs import configure_logging
from shared_adapters.mongo_client import connect
from shared_adapters.mongo_identities import MongoIdentityRegistry
from shared_domain.config import exit_2_on_bad_setting
from shared_domain.documents import storable_text
from shared_domain.identity import CLIENT, METRICS, OPERATOR, AlreadyRegistered, NotRegistered, Principal
from shared_domain.message import client_id_problem

from ..config import load_command_log_settings, load_settings

GROUPS = {CLIENT: "clients", OPERATOR: "operators", METRICS: "metrics-readers"}


class Name(click.ParamType):
    """A client or operator name: the client id rules."""

    name = "name"

    def convert(self, value, param, ctx):
        """The name, or a usage error saying what is wrong with it."""
        problem = client_id_problem(value)
        if problem:
            self.fail(f"{storable_text(value)!r} {problem}", param, ctx)
        return value


@contextmanager
def _registry():
    """The identity registry of the configured store; exit 2 on bad settings, 1 when the store does not answer."""
    with exit_2_on_bad_setting():
        settings = load_settings()
    client = connect(settings.mongodb_uri, settings.mongodb_timeout_ms)
    try:
        yield MongoIdentityRegistry(client[settings.mongodb_database])
    except PyMongoError as error:
        click.echo(f"the store at MONGODB_URI did not answer ({type(error).__name__}); nothing was changed", err=True)
        sys.exit(1)
    except (AlreadyRegistered, NotRegistered) as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    finally:
        client.close()


def _principal_commands(role: str) -> click.Group:
    """The add / token / revoke / list commands for one role."""

    @click.group(name=GROUPS[role], help=f"Register {GROUPS[role].replace('-', ' ')} and manage their bearer tokens.")
    def group() -> None:
        pass

    @group.command()
    @click.argument("name", type=Name())
    @click.option("--name", "display_name", help="Display name [default: NAME].")
    @click.option("--label", default="", help="Label of the first token, e.g. the machine it is for.")
    def add(name: str, display_name: str | None, label: str) -> None:
        """Register NAME and print its first token (shown this once)."""
        with _registry() as registry:
            registry.add(role, name, display_name)
            token_id, token = registry.issue_token(role, name, label)
        click.echo(json.dumps({"name": name, "tokenId": token_id, "token": token}))

    @group.command()
    @click.argument("name", type=Name())
    @click.option("--label", default="", help="What the token is for.")
    def token(name: str, label: str) -> None:
        """Issue another token for NAME and print it (shown this once)."""
        with _registry() as registry:
            token_id, secret = registry.issue_token(role, name, label)
        click.echo(json.dumps({"name": name, "tokenId": token_id, "token": secret}))

    @group.command()
    @click.argument("name", type=Name())
    @click.option("--token", "token_id", help="Revoke only this token id; without it NAME and all its tokens.")
    def revoke(name: str, token_id: str | None) -> None:
        """Revoke a token, or NAME altogether; takes effect within a couple of seconds."""
        with _registry() as registry:
            registry.revoke(role, name, token_id)
        click.echo(f"revoked {token_id or name}")

    @group.command("list")
    def list_command() -> None:
        """List every NAME with its tokens' ids and labels (never the tokens)."""
        with _registry() as registry:
            click.echo(json.dumps(registry.listing(role), indent=2))

    return group


@click.group()
def cli() -> None:
    """Manage who may use the producer service's API."""
    with exit_2_on_bad_setting():
        level, log_format = load_command_log_settings()
    configure_logging(level, log_format)


@cli.command()
@click.argument("clients", nargs=-1)
@click.option("--operator", "operators", multiple=True, default=["operator"], show_default=True,
              help="Operator to register as well (repeatable).")
@click.option("--metrics-reader", "metrics_readers", multiple=True,
              help="Register a reader of GET /metrics only, e.g. Prometheus (repeatable).")
@click.option("--tokens-file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="JSON {name: token} kept between runs; only tokens still live are kept.")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write shell lines exporting CLIENTA_TOKEN=..., OPS_TOKEN=... for scripts to source.")
@click.option("--token-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write each token alone to DIR/NAME.token.")
@click.option("--metrics-token-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write only the metrics readers' tokens, each to DIR/NAME.token (Prometheus's credentials_file).")
def bootstrap(clients: tuple[str, ...], operators: tuple[str, ...], metrics_readers: tuple[str, ...],
              tokens_file: Path, env_file: Path | None, token_dir: Path | None, metrics_token_dir: Path | None) -> None:
    """Make sure CLIENTS, the operator(s) and metrics readers are registered, their tokens in --tokens-file."""
    wanted = ([(CLIENT, name) for name in clients] + [(OPERATOR, name) for name in operators]
              + [(METRICS, name) for name in metrics_readers])
    for path in (tokens_file, env_file, *(token_dir / f"{name}.token" for _role, name in wanted if token_dir),
                 *(metrics_token_dir / f"{name}.token" for name in metrics_readers if metrics_token_dir)):
        _refuse_symlink(path)
    kept = json.loads(tokens_file.read_text()) if tokens_file.exists() else {}
    tokens = {}
    with _registry() as registry:
        for role, name in wanted:
            if client_id_problem(name):
                click.echo(f"not registering {name!r}: {client_id_problem(name)}", err=True)
            elif registry.principal_of(kept.get(name, "")) == Principal(role, name):
                tokens[name] = kept[name]
            else:
                try:
                    tokens[name] = _token_for(registry, role, name)
                except NotRegistered:
                    click.echo(f"not issuing a token for {name}: it was revoked", err=True)
    _write_private(tokens_file, json.dumps(tokens, indent=2))
    if env_file:
        lines = (f"export {_env_name(name, name in operators[:1])}={shlex.quote(tokens[name])}\n"
                 for _role, name in wanted if name in tokens)
        _write_private(env_file, "".join(lines))
    for name, token in tokens.items() if token_dir else ():
        _write_private(token_dir / f"{name}.token", token)
    for name in metrics_readers if metrics_token_dir else ():
        if name in tokens:
            _write_private(metrics_token_dir / f"{name}.token", tokens[name])
    click.echo(f"registered with tokens in {tokens_file}: {', '.join(tokens)}")


def _token_for(registry: MongoIdentityRegistry, role: str, name: str) -> str:
    """A new token for `name`, registering it first when it is not yet."""
    try:
        registry.add(role, name)
    except AlreadyRegistered:
        pass
    return registry.issue_token(role, name, "bootstrap")[1]


def _env_name(name: str, first_operator: bool) -> str:
    """The variable a token is exported as: OPS_TOKEN for the first operator, else CLIENTA_TOKEN for clientA."""
    return "OPS_TOKEN" if first_operator else f"{''.join(c for c in name.upper() if c.isalnum())}_TOKEN"


def _refuse_symlink(path: Path | None) -> None:
    """Stop with one line, before anything is registered, when a token file to write is a symbolic link."""
    if path is not None and path.is_symlink():
        raise click.ClickException(f"refusing to write tokens to {path}: it is a symbolic link")


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read, never through a symbolic link."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise click.ClickException(f"refusing to write tokens to {path}: it is a symbolic link") from None
        raise
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


cli.add_command(_principal_commands(CLIENT))
cli.add_command(_principal_commands(OPERATOR))
cli.add_command(_principal_commands(METRICS))


if __name__ == "__main__":
    cli()
