"""External programs (graphviz ``dot``, ...): always with a timeout, always reaped.

:func:`run_tool` starts the program in a session of its own, so that on a timeout, an interrupt or any
other exit the whole process group is killed and waited for: no orphan is left running, and a program that
hangs never hangs archgen.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_TIMEOUT = 60.0
TIMEOUT_ENV = "ARCHGEN_TOOL_TIMEOUT"  # seconds; for slow machines (and for tests)


@dataclass(frozen=True)
class ToolResult:
    """What an external program did: its exit status (None: killed after the timeout) and output."""

    returncode: int | None  # None: killed after the timeout
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        """The program exited 0."""
        return self.returncode == 0

    def reason(self) -> str:
        """Why it failed, in one line."""
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


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        proc.kill()


def run_tool(command: Sequence[str], data: bytes = b"", *, timeout: float | None = None) -> ToolResult:
    """Run ``command`` with ``data`` on stdin; its output, or ``returncode=None`` when it ran out of time.

    Raises OSError when the program cannot be started (missing, not executable).
    """
    limit = tool_timeout() if timeout is None else timeout
    proc = subprocess.Popen(
        list(command),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: killed as a whole
    )
    try:
        out, err = proc.communicate(data, timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return ToolResult(None, out, err)
    except BaseException:  # an interrupt: the program goes with archgen
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
    # the program may have left children of its own in its group: they go too
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    return ToolResult(proc.returncode, out, err)
