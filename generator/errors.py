"""Errors of the engine and their exit codes (documented in README.md, "Exit codes")."""

from __future__ import annotations

OK = 0
FINDINGS = 1  # `plan`/`diff`/`check`/`update`: the command ran and found problems (or conflicts)
USAGE = 2  # bad command line (typer/click)
UNSAFE = 4  # refused as unsafe: a path or symlink that leads outside the target
INVALID_SPEC = 65  # the spec is invalid or its requirements conflict (errors in findings)
UNREADABLE = 66  # the spec cannot be read
DEPENDENCY = 69  # a tool the command needs is missing
INTERNAL = 70  # a bug in archgen or its templates
CANT_CREATE = 73  # the output cannot be created (exists without --force, read-only, ...)
IO_ERROR = 74  # an I/O error while writing (disk full, ...)
INTERRUPTED = 130


class ArchgenError(Exception):
    """An error a user can act on: a message, an optional hint, and the process exit code."""

    def __init__(self, message: str, *, exit_code: int = INTERNAL, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text
