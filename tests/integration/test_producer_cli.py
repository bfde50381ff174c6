"""`producer-service`: clients, operators and metrics readers with their tokens, on the real store."""

import json
import os
import stat
import subprocess

import pytest

from infra.process import free_port
from tests.support.services import BIN


@pytest.fixture
def env(mongo, unique):
    """The CLI's environment: a database of its own on the real store."""
    return {**os.environ, "MONGODB_URI": mongo.address, "MONGODB_DATABASE": f"cli_{unique}"}


def cli(env, *args: str) -> subprocess.CompletedProcess:
    """Run `producer-service ARGS`."""
    return subprocess.run([str(BIN / "producer-service"), *args], env=env, capture_output=True, text=True, timeout=60)


def test_clients_are_added_given_tokens_listed_without_secrets_and_revoked(env):
    added = cli(env, "clients", "add", "clientA", "--name", "Client A", "--label", "laptop")
    first = json.loads(added.stdout)
    second = json.loads(cli(env, "clients", "token", "clientA", "--label", "phone").stdout)
    assert len(first["token"]) >= 43 and first["token"] != second["token"]
    listing = cli(env, "clients", "list").stdout
    [client] = json.loads(listing)
    assert client["displayName"] == "Client A" and [t["label"] for t in client["tokens"]] == ["laptop", "phone"]
    assert first["token"] not in listing and second["token"] not in listing
    assert cli(env, "clients", "add", "clientA").returncode == 1  # taken
    assert cli(env, "clients", "revoke", "clientA", "--token", first["tokenId"]).returncode == 0
    [client] = json.loads(cli(env, "clients", "list").stdout)
    assert [t["revokedAt"] is not None for t in client["tokens"]] == [True, False] and client["revokedAt"] is None
    assert cli(env, "clients", "add", "bad id!").returncode == 2


def test_bootstrap_keeps_live_tokens_and_replaces_revoked_ones(env, tmp_path):
    tokens_file, env_file = tmp_path / "tokens.json", tmp_path / "tokens.env"
    args = ["bootstrap", "clientA", "clientB", "bad!name", "--tokens-file", str(tokens_file), "--env-file", str(env_file),
            "--token-dir", str(tmp_path / "secrets")]
    first = cli(env, *args)
    assert first.returncode == 0 and "not registering 'bad!name'" in first.stderr
    tokens = json.loads(tokens_file.read_text())
    assert set(tokens) == {"clientA", "clientB", "operator"}
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600 == stat.S_IMODE(env_file.stat().st_mode)
    assert f"export CLIENTA_TOKEN={tokens['clientA']}" in env_file.read_text().splitlines()
    operator_file = tmp_path / "secrets" / "operator.token"
    assert operator_file.read_text() == tokens["operator"] and stat.S_IMODE(operator_file.stat().st_mode) == 0o600
    cli(env, *args)
    assert json.loads(tokens_file.read_text()) == tokens
    cli(env, "clients", "revoke", "clientB")
    third = json.loads((cli(env, *args), tokens_file.read_text())[1])
    assert third["clientA"] == tokens["clientA"] and third["operator"] == tokens["operator"]
    assert "clientB" not in third  # revoked clients stay revoked


def test_bootstrap_registers_a_metrics_reader_and_writes_its_token_alone_to_the_metrics_dir(env, tmp_path):
    metrics_dir = tmp_path / "metrics"
    result = cli(env, "bootstrap", "clientA", "--metrics-reader", "prometheus", "--tokens-file",
                 str(tmp_path / "tokens.json"), "--metrics-token-dir", str(metrics_dir))
    assert result.returncode == 0, result.stderr
    tokens = json.loads((tmp_path / "tokens.json").read_text())
    assert set(tokens) == {"clientA", "operator", "prometheus"}
    assert [path.name for path in metrics_dir.iterdir()] == ["prometheus.token"]
    token_file = metrics_dir / "prometheus.token"
    assert token_file.read_text() == tokens["prometheus"]
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and stat.S_IMODE(metrics_dir.stat().st_mode) == 0o700
    assert [reader["name"] for reader in json.loads(cli(env, "metrics-readers", "list").stdout)] == ["prometheus"]
    assert [operator["name"] for operator in json.loads(cli(env, "operators", "list").stdout)] == ["operator"]


@pytest.mark.parametrize("option", ["--tokens-file", "--env-file", "--metrics-token-dir"])
def test_bootstrap_refuses_a_token_file_that_is_a_symbolic_link_and_leaves_its_target_alone(env, tmp_path, option):
    target = tmp_path / "precious.txt"
    target.write_text("not a token file\n")
    target.chmod(0o644)
    paths = {"--tokens-file": tmp_path / "tokens.json", "--env-file": tmp_path / "tokens.env",
             "--metrics-token-dir": tmp_path / "metrics"}
    link = paths[option] / "prometheus.token" if option == "--metrics-token-dir" else paths[option]
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(target)
    result = cli(env, "bootstrap", "clientA", "--metrics-reader", "prometheus",
                 *(part for name, path in paths.items() for part in (name, str(path))))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"Error: refusing to write tokens to {link}: it is a symbolic link"]
    assert target.read_text() == "not a token file\n" and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert link.is_symlink()
    assert json.loads(cli(env, "clients", "list").stdout) == []  # stopped before registering anyone


def test_a_store_that_does_not_answer_ends_the_command_with_exit_1_and_one_line():
    env = {**os.environ, "MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/", "MONGODB_TIMEOUT_MS": "300"}
    result = cli(env, "clients", "list")
    assert result.returncode == 1 and "did not answer" in result.stderr and "Traceback" not in result.stderr
