"""Command line of the producer service (`producer-service clients ...`, `producer-service operators ...`)."""

import json
import sys
from contextlib import contextmanager

import click
from pymongo.errors import PyMongoError

from consumer_service.infrastructure.mongo_store import connect
from shared_domain.config import ConfigError
from shared_domain.message import client_id_problem

from ..application.identity import CLIENT, OPERATOR, AlreadyRegistered, NotRegistered
from ..config import load_settings
from ..infrastructure.mongo_identities import MongoIdentityRegistry


class Name(click.ParamType):
    """A client or operator name: the client id rules."""

    name = "name"

    def convert(self, value, param, ctx):
        """The name, or a usage error saying what is wrong with it."""
        problem = client_id_problem(value)
        if problem:
            self.fail(f"{value.encode('utf-8', 'backslashreplace').decode()!r} {problem}", param, ctx)
        return value


@contextmanager
def _registry():
    """The identity registry of the configured store; exit 2 on bad settings, 1 when the store does not answer."""
    try:
        settings = load_settings()
    except ConfigError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
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

    @click.group(name=f"{role}s", help=f"Register {role}s and manage their bearer tokens.")
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


cli.add_command(_principal_commands(CLIENT))
cli.add_command(_principal_commands(OPERATOR))


if __name__ == "__main__":
    cli()
