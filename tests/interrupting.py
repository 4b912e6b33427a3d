"""Shared by the signal tests: run archgen as a real process, wait until it is writing, send it a signal
and expect the clean exit (130, a one-line message, no traceback)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _default_sigint() -> None:
    # a child of a non-interactive shell may start with SIGINT ignored; Ctrl-C semantics need the default
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def archgen_process(*args: str, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`python -m generator.cli ARGS` in the background; killed on the way out if it is still running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "generator.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_until(proc: subprocess.Popen[str], ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll ``ready`` until it holds; fail with ``what`` when the process ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():
            return
        time.sleep(0.01)
    raise AssertionError(f"{what} never started")


def interrupt(proc: subprocess.Popen[str], signum: int) -> str:
    """Send ``signum`` to a running process and check that it exits as interrupted; its stderr."""
    assert proc.poll() is None, "the process finished before the signal"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    return err
