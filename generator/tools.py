"""External programs (graphviz ``dot``, kustomize, docker compose): with a timeout, bounded output, always reaped.

:func:`run_tool` starts the program without a shell, in a session of its own, so that on a timeout, an
interrupt or any other exit the whole process group is killed and waited for: no orphan is left running,
and a program that hangs never hangs archgen. Its output is read as it comes and kept up to a cap
(``max_output`` bytes for stdout and stderr together): a program that prints more is stopped, so a planted
input can neither fill archgen's memory nor flood a CI log. :func:`minimal_env` is the environment for a
program that reads untrusted input (``archgen check``): no variable of the caller's (a CI secret) reaches it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

DEFAULT_TIMEOUT = 60.0
TIMEOUT_ENV = "ARCHGEN_TOOL_TIMEOUT"  # seconds; for slow machines (and for tests)
DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024  # bytes of stdout and stderr together: far above any drawing or build
_CHUNK = 64 * 1024
_DRAIN_S = 5.0  # after the group is killed: how long the readers may take to see the pipes close


@dataclass(frozen=True)
class ToolResult:
    """What an external program did: its exit status (None: killed) and output."""

    returncode: int | None  # None: killed after the timeout, or for printing too much
    stdout: bytes
    stderr: bytes
    overflow: bool = False  # stopped for printing more than max_output bytes

    @property
    def ok(self) -> bool:
        """The program exited 0 within the output limit."""
        return self.returncode == 0 and not self.overflow

    def reason(self) -> str:
        """Why it failed, in one line."""
        if self.overflow:
            return "printed more than the output limit (stopped)"
        if self.returncode is None:
            return "did not finish in time (killed)"
        text = " ".join(self.stderr.decode("utf-8", "replace").split())[:300]
        return f"exit status {self.returncode}" + (f": {text}" if text else "")


def tool_timeout(default: float = DEFAULT_TIMEOUT) -> float:
    """The timeout of external programs (from the environment, else ``default``)."""
    try:
        return float(os.environ.get(TIMEOUT_ENV, "") or default)
    except ValueError:
        return default


def minimal_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """PATH, a locale and ``home`` as HOME (and the tools' config folders) plus ``extra``; nothing else."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "HOME": str(home)}
    env |= {"XDG_CONFIG_HOME": str(home / ".config"), "DOCKER_CONFIG": str(home / ".docker")}
    return env | dict(extra or {})


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        proc.kill()


class _Capture:
    """Both pipes read in threads, each chunk counted against one shared cap; past it, ``on_overflow`` runs."""

    def __init__(self, cap: int, on_overflow: threading.Event) -> None:
        self.cap = cap
        self.total = 0
        self.lock = threading.Lock()
        self.overflow = on_overflow
        self.parts: dict[str, list[bytes]] = {"out": [], "err": []}

    def read(self, name: str, pipe: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := pipe.read1(_CHUNK):  # type: ignore[attr-defined]
                with self.lock:
                    room = self.cap - self.total
                    self.total += len(chunk)
                    if room > 0:
                        self.parts[name].append(chunk[:room])
                    if self.total > self.cap:
                        self.overflow.set()
                        return

    def get(self, name: str) -> bytes:
        with self.lock:
            return b"".join(self.parts[name])


def _feed(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(OSError, ValueError):  # BrokenPipeError: the program did not read it all
        if data:
            pipe.write(data)
    with contextlib.suppress(OSError, ValueError):
        pipe.close()


def run_tool(
    command: Sequence[str],
    data: bytes = b"",
    *,
    timeout: float | None = None,
    max_output: int = DEFAULT_MAX_OUTPUT,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ToolResult:
    """Run ``command`` (no shell) with ``data`` on stdin; its output, ``returncode=None`` when it ran out of time,
    ``overflow=True`` when it printed more than ``max_output`` bytes (it is then stopped).

    Raises OSError when the program cannot be started (missing, not executable).
    """
    limit = tool_timeout() if timeout is None else timeout
    proc = subprocess.Popen(
        list(command),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: killed as a whole
        env=None if env is None else dict(env),
        cwd=cwd,
    )
    overflow = threading.Event()
    capture = _Capture(max_output, overflow)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    threads = [
        threading.Thread(target=_feed, args=(proc.stdin, data), daemon=True),
        threading.Thread(target=capture.read, args=("out", proc.stdout), daemon=True),
        threading.Thread(target=capture.read, args=("err", proc.stderr), daemon=True),
    ]
    timed_out = False
    try:
        for t in threads:
            t.start()
        deadline = limit
        while True:  # wait for the exit, the deadline or the cap, whichever comes first
            step = min(0.05, max(deadline, 0.0))
            try:
                proc.wait(timeout=step)
                break
            except subprocess.TimeoutExpired:
                deadline -= step
                if overflow.is_set():
                    break
                if deadline <= 0:
                    timed_out = True
                    break
    except BaseException:  # an interrupt: the program goes with archgen
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        # the program, and whatever it left running in its group, go; then it is reaped
        _kill_group(proc)
        proc.wait()
        for t in threads:
            t.join(_DRAIN_S)  # a pipe still held open by an escaped grandchild does not hang archgen
        for pipe in (proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                pipe.close()
    if overflow.is_set():
        return ToolResult(None, capture.get("out"), capture.get("err"), overflow=True)
    return ToolResult(None if timed_out else proc.returncode, capture.get("out"), capture.get("err"))


@contextlib.contextmanager
def scratch_home() -> Iterator[Path]:
    """An empty, private HOME for a tool run on untrusted input (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="archgen-tool-home-") as home:
        yield Path(home)
