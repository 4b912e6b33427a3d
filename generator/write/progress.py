"""Progress display for the steps that take time, on stderr.

On a terminal one line is redrawn in place (``[render] 42/120``); otherwise (CI, pipes, tests)
each step prints one plain line when it starts and one when it ends, so logs stay readable.
The core stages take a :class:`Progress` (or ``None``) and never print themselves.
"""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Progress of a long command on stderr: one line a step, rewritten in place on a terminal."""

    def __init__(self, stream: TextIO | None, *, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = bool(tty if tty is not None else (stream is not None and stream.isatty()))
        self._step = ""
        self._total = 0
        self._t0 = 0.0
        self._last_draw = 0.0

    def _emit(self, text: str, *, end: str = "\n") -> None:
        if self.stream is None:
            return
        self.stream.write(text + end)
        self.stream.flush()

    def start(self, step: str, total: int = 0) -> None:
        """A step begins; ``total`` is the number of items it will advance through (0: unknown)."""
        self._step, self._total, self._t0, self._last_draw = step, total, time.monotonic(), 0.0
        if self.tty:
            self._emit(f"\r\x1b[K{step} ...", end="")
        else:
            self._emit(f"archgen: {step}" + (f" ({total} files)" if total else "") + " ...")

    def advance(self, done: int) -> None:
        """Redraw the counter on a terminal (at most every 50 ms); silent otherwise."""
        if not self.tty or not self._total:
            return
        now = time.monotonic()
        if now - self._last_draw >= 0.05 or done == self._total:
            self._last_draw = now
            self._emit(f"\r\x1b[K{self._step} {done}/{self._total}", end="")

    def done(self, note: str = "") -> None:
        """End the current step, with its time and a note."""
        elapsed = time.monotonic() - self._t0
        text = f"{self._step}: done in {elapsed:.2f} s" + (f" ({note})" if note else "")
        if self.tty:
            self._emit(f"\r\x1b[K{text}")
        else:
            self._emit(f"archgen: {text}")


def null_progress() -> Progress:
    """Progress that shows nothing."""
    return Progress(None, tty=False)
