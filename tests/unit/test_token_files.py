"""Token files and the local stack's data: for their owner alone, never written through a symbolic link."""

import stat
import sys

import click
import pytest

from infra.process import ManagedProcess, make_private, private_dir, run, wait_until, write_private
from producer_service.entrypoints.cli import _write_private


def mode(path) -> int:
    """The permission bits of a path (of the link itself for a symbolic link)."""
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_token_file_is_written_for_its_owner_alone_in_a_private_directory(tmp_path):
    path = tmp_path / "secrets" / "prometheus.token"
    _write_private(path, "s3cret")
    assert path.read_text() == "s3cret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_existing_readable_token_file_is_made_private_when_rewritten(tmp_path):
    path = tmp_path / "tokens.env"
    path.write_text("old")
    path.chmod(0o644)
    _write_private(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symbolic_link_is_refused_and_what_it_points_at_is_left_alone(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    target.chmod(0o644)
    link = tmp_path / "tokens.json"
    link.symlink_to(target)
    with pytest.raises(click.ClickException, match="refusing to write tokens to .*tokens.json: it is a symbolic link"):
        _write_private(link, "s3cret")
    assert target.read_text() == "keep me\n" and stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_dangling_symbolic_link_is_refused_and_creates_nothing(tmp_path):
    link = tmp_path / "tokens.json"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(click.ClickException, match="symbolic link"):
        _write_private(link, "s3cret")
    assert not (tmp_path / "elsewhere").exists()


def test_the_stack_makes_its_directories_private_even_when_an_older_run_made_them_open(tmp_path):
    older = tmp_path / "logs"
    older.mkdir()
    older.chmod(0o755)
    private_dir(older)
    new = tmp_path / "data" / "local" / "kafka"
    private_dir(new)
    assert [mode(path) for path in (older, new.parent.parent, new.parent, new)] == [0o700] * 4


def test_an_older_runs_open_files_are_made_private_and_symbolic_links_are_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not the stack's")
    outside.chmod(0o644)
    data = tmp_path / "data"
    (data / "sqlite").mkdir(parents=True)
    (data / "sqlite").chmod(0o755)
    (data / "sqlite" / "db.sqlite").write_text("rows")
    (data / "sqlite" / "db.sqlite").chmod(0o664)
    (data / "link").symlink_to(outside)
    make_private(data)
    assert [mode(path) for path in (data, data / "sqlite", data / "sqlite" / "db.sqlite")] == [0o700, 0o700, 0o600]
    assert mode(outside) == 0o644


def test_the_stack_refuses_to_write_its_files_through_a_symbolic_link(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    link = tmp_path / "server.properties"
    link.symlink_to(target)
    with pytest.raises(OSError):
        write_private(link, "node.id=1\n")
    assert target.read_text() == "keep me\n"
    write_private(tmp_path / "log4j2.properties", "status = warn\n")
    assert mode(tmp_path / "log4j2.properties") == 0o600


def test_private_processes_create_files_and_logs_for_their_owner_alone(tmp_path):
    run(["touch", str(tmp_path / "formatted")], "a private command", private=True)
    server = ManagedProcess("server", [sys.executable, "-c", f"open({str(tmp_path / 'db')!r}, 'w')"],
                            tmp_path / "server.log", private=True)
    server.start()
    wait_until(lambda: not server.alive, timeout=10, what="the server to write its file and exit")
    assert [mode(tmp_path / name) for name in ("formatted", "db", "server.log")] == [0o600] * 3
