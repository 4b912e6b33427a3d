"""Shared by the Triton, serving and store tests: generate a repository from a spec, start and stop its
real Triton server through the generated serving/triton_runtime.py, and give a test its own PostgreSQL
database."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from generator.decide import decide
from generator.decide.architecture import Architecture
from generator.plan.plan import FilePlan, build_plan
from generator.render.render import render_plan
from requirements_spec.validate import load_spec

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "requirements_spec" / "presets"


def triton_venv() -> Path:
    return Path(os.environ.get("ARCHGEN_TRITON_VENV", ROOT / ".venv-triton")).resolve()


def have_triton() -> bool:
    return any(triton_venv().glob("lib/python3*/site-packages/pytriton/tritonserver/bin/tritonserver"))


def generate(spec: Path, dest: Path, components: tuple[str, ...] | None = None) -> Architecture:
    """Write the generated repository of ``spec`` into ``dest`` (only ``components`` when given)."""
    arch = decide(load_spec(spec))
    plan = build_plan(arch)
    if components is not None:
        plan = FilePlan(tuple(f for f in plan.files if f.component in components))
    for rel, data in render_plan(plan, arch).items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return arch


def load_client(repo: Path, name: str = "generated_serving_client") -> ModuleType:
    """A generated repository's serving/client.py as a module; it imports serving.system_data from the root."""
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    spec = importlib.util.spec_from_file_location(name, repo / "serving" / "client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runtime(repo: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRITON_VENV": str(triton_venv())}
    return subprocess.run(
        [sys.executable, "-m", "serving.triton_runtime", *args],
        cwd=repo,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def make_argv(*targets: str) -> list[str]:
    """`make TARGET...` for a generated repository, with archgen's virtualenvs standing in for its own."""
    venv = os.environ.get("ARCHGEN_VENV", str(ROOT / ".venv"))
    return ["make", "--no-print-directory", *targets, f"VENV={venv}", f"TRITON_VENV={triton_venv()}"]


def make_generated(
    repo: Path, *targets: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run targets of a generated repository's own Makefile with archgen's virtualenvs standing in for its own."""
    return subprocess.run(
        make_argv(*targets),
        cwd=repo,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
        env=env,
    )


class Server:
    """The generated runtime's server for one repository: ``start()`` once, ``stop()`` always."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.state: dict[str, Any] = {}

    def start(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = runtime(self.repo, "start", *args)
        if result.returncode != 0:
            log = self.repo / ".run" / "triton.log"
            tail = log.read_text()[-3000:] if log.is_file() else ""
            raise AssertionError(f"triton_runtime start failed:\n{result.stderr}\n{tail}")
        self.state = json.loads((self.repo / ".run" / "triton.json").read_text())
        return result

    @property
    def http(self) -> str:
        return f"127.0.0.1:{self.state['http_port']}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.state['grpc_port']}"

    def stop(self) -> None:
        runtime(self.repo, "stop", timeout=60)


@contextmanager
def running(repo: Path) -> Iterator[Server]:
    """The repository's Triton server, started for the ``with`` block and always stopped after it."""
    server = Server(repo)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def postgres_env(db: str, user: str) -> dict[str, str]:
    """The POSTGRES_* variables a generated repository reads, for a scratch database on 127.0.0.1:5432."""
    return {
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_DB": db,
        "POSTGRES_USER": user,
        "POSTGRES_PASSWORD": "",
        "POSTGRES_SSLMODE": "disable",
    }


@contextmanager
def scratch_database(prefix: str) -> Iterator[tuple[str, str]]:
    """A new database on the PostgreSQL at 127.0.0.1:5432 for one test, dropped after: (name, user).

    Skips the test when the server does not answer.
    """
    import pytest

    psycopg = pytest.importorskip("psycopg")
    admin = None
    error: Exception | None = None
    for user in ("postgres", "root"):
        try:
            admin = psycopg.connect(
                host="127.0.0.1", port=5432, dbname="test", user=user, autocommit=True, connect_timeout=3
            )
            break
        except Exception as exc:  # try the next user, then skip
            error = exc
    if admin is None:
        pytest.skip(f"PostgreSQL does not answer on 127.0.0.1:5432: {error}")
    db = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{db}"')
    try:
        yield db, admin.info.user
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()
