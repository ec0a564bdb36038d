"""The `stacklo` command: one-line errors and exit codes, schema, migrate, create-admin."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Server, free_port, server_env
from tests.helpers import PASSWORD, unique_email


def run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stacklo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
        "postgresql+asyncpg://postgres@127.0.0.1:5432/no_such_db_x",
        "not a url at all",
    ],
)
def test_bad_database_url_is_one_line_and_non_zero(tmp_path: Path, url: str) -> None:
    result = run(server_env(url, tmp_path), "serve", "--port", str(free_port()))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stacklo: error: cannot connect to the database")
    assert "Traceback" not in result.stderr


def test_port_in_use_is_one_line_and_non_zero(server: Server) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(server.env, "serve", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip() == f"stacklo: error: port {port} on 127.0.0.1 is already in use"


def test_schema_prints_sdl() -> None:
    result = run({}, "schema")
    assert result.returncode == 0
    assert "type Query" in result.stdout and "interface Node" in result.stdout


def test_migrate_is_idempotent(server: Server) -> None:
    for _ in range(2):
        result = run(server.env, "migrate")
        assert result.returncode == 0, result.stderr
        assert "migrations applied" in result.stdout


def test_create_admin_and_duplicate(server: Server) -> None:
    email = unique_email("root")
    assert run(server.env, "create-admin", "--email", email, "--password", PASSWORD).returncode == 0
    again = run(server.env, "create-admin", "--email", email, "--password", PASSWORD)
    assert again.returncode == 1 and "EMAIL_TAKEN" in again.stderr
    weak = run(server.env, "create-admin", "--email", unique_email(), "--password", "123")
    assert weak.returncode == 1 and "WEAK_PASSWORD" in weak.stderr


def test_unknown_command_fails() -> None:
    assert run({}, "nope").returncode == 2
