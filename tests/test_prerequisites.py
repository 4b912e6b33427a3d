"""scripts/prerequisites.py of a generated repository: a missing service is one clear message with the command
that fixes it (exit 69), never a traceback; a missing PostgreSQL database is created when the account may."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from triton_harness import PRESETS, generate

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
psycopg = pytest.importorskip("psycopg")
ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("prereq")
    generate(PRESETS / "realtime.yaml", dest, ("feature_repo",))  # PostgreSQL offline store, Redis online
    assert (dest / "scripts" / "prerequisites.py").is_file()
    return dest


def _run(repo: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "REDIS_"))}
    return subprocess.run(
        [sys.executable, "scripts/prerequisites.py"],
        cwd=repo,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _admin() -> object:
    try:
        return psycopg.connect(ADMIN, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL does not answer on 127.0.0.1:5432: {exc}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_missing_database_is_created(repo: Path) -> None:
    db = f"archgen_prereq_{uuid.uuid4().hex[:8]}"
    with _admin() as conn:  # type: ignore[attr-defined]
        try:
            result = _run(repo, POSTGRES_DB=db)
            assert result.returncode == 0, result.stderr
            assert f"created the PostgreSQL database {db}" in result.stderr
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone() is not None
            again = _run(repo, POSTGRES_DB=db)  # now it exists: nothing to do
            assert again.returncode == 0 and "created" not in again.stderr
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}"')


def test_an_account_that_may_not_create_gets_the_command(repo: Path) -> None:
    role, db = f"archgen_nocreate_{uuid.uuid4().hex[:6]}", f"archgen_prereq_{uuid.uuid4().hex[:8]}"
    with _admin() as conn:  # type: ignore[attr-defined]
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
        try:
            result = _run(repo, POSTGRES_DB=db, POSTGRES_USER=role)
        finally:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    assert result.returncode == 69, result.stderr
    assert "Traceback" not in result.stderr
    assert f"createdb -h 127.0.0.1 -p 5432 -U postgres -O {role} {db}" in result.stderr


def test_services_that_do_not_answer_are_named_with_the_fix(repo: Path) -> None:
    port = _free_port()
    result = _run(repo, POSTGRES_PORT=str(port), REDIS_CONNECTION_STRING=f"127.0.0.1:{port}")
    assert result.returncode == 69, result.stderr
    assert "Traceback" not in result.stderr
    assert f"PostgreSQL does not answer at 127.0.0.1:{port}" in result.stderr
    assert f"Redis does not answer at 127.0.0.1:{port}" in result.stderr and "redis-server" in result.stderr
