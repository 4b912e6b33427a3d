"""Diagnostics and the one error type of archgen, shared by every stage.

A :class:`Diagnostic` is one problem: a stable ``code``, a ``severity``, a ``message``, the
:class:`Location` it was found at (file, line, column, field path), the ``related`` locations it
involves and, where it helps, a ``hint``. The spec language (load, validate), the decision engine
(findings), ``archgen check`` (problems and drift) and every command's own errors all speak it;
``--format json`` prints it in one shape (``docs/json-output.md``).

:class:`ArchgenError` is the one exception: it carries diagnostics and a process exit code. The
subclasses only name a case (:class:`SpecError`, the spec is invalid, exit 65; :class:`SpecUnreadable`,
exit 66); the error boundary (:func:`generator.boundary.run_command`) catches the base. This module
is the base because ``generator`` depends on the spec language, never the reverse.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

PathItem = str | int
Path = tuple[PathItem, ...]
Severity = Literal["error", "warning", "info"]

# Process exit codes (README.md, "Exit codes"); generator.errors re-exports them.
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

#: the code of an error raised with a message only, by its exit code
ERROR_CODES = {
    FINDINGS: "error.findings",
    UNSAFE: "error.unsafe",
    INVALID_SPEC: "error.invalid_spec",
    UNREADABLE: "error.unreadable",
    DEPENDENCY: "error.dependency",
    INTERNAL: "error.internal",
    CANT_CREATE: "error.cant_create",
    IO_ERROR: "error.io",
    INTERRUPTED: "error.interrupted",
}
#: codes that name a category, not a documented finding: the text form does not show them
_UNSHOWN_CODES = ("spec.", "error.")


def format_path(path: Sequence[PathItem]) -> str:
    """Dotted field path: ``features.views[0].fields[2].name``."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += ("." if out else "") + item
    return out or "<root>"


@dataclass(frozen=True)
class Location:
    """A place: a file, a 1-based line and column (0 when unknown) and a field path inside it.

    ``path`` is a dotted spec path (``serving.models[0].inputs``) for the spec, a path inside a
    generated file where one is known, or empty.
    """

    file: str
    line: int = 0
    column: int = 0
    path: str = ""

    def __str__(self) -> str:
        """``file:line:column``, leaving out what is unknown."""
        text = self.file
        if self.line:
            text += f":{self.line}"
            if self.column:
                text += f":{self.column}"
        return text

    def cited(self) -> str:
        """``path (line N)``, or ``path (default)`` for a spec value not written in the file."""
        name = self.path or self.file
        return f"{name} (line {self.line})" if self.line else f"{name} (default)"

    def as_dict(self) -> dict[str, object]:
        """The JSON form (docs/json-output.md)."""
        return {"file": self.file, "line": self.line, "column": self.column, "path": self.path}


@dataclass(frozen=True)
class Diagnostic:
    """One problem: what it is (code, severity, message), where, what else it involves, and how to fix it."""

    code: str
    message: str
    location: Location | None = None
    severity: Severity = "error"
    hint: str | None = None
    related: tuple[Location, ...] = ()

    # ------------------------------------------------------------ the location's parts, for short reads
    @property
    def file(self) -> str:
        """The file of the location ('' when the diagnostic has none)."""
        return self.location.file if self.location else ""

    @property
    def line(self) -> int:
        """The 1-based line of the location (0 when unknown)."""
        return self.location.line if self.location else 0

    @property
    def column(self) -> int:
        """The 1-based column of the location (0 when unknown)."""
        return self.location.column if self.location else 0

    @property
    def path(self) -> str:
        """The field path of the location ('' when unknown)."""
        return self.location.path if self.location else ""

    def sort_key(self) -> tuple[str, int, int, str, str]:
        """File, line, column, path, message: the order diagnostics are shown in."""
        return (self.file, self.line, self.column, self.path, self.message)

    # ------------------------------------------------------------ forms
    def __str__(self) -> str:
        """``file:line:column: message``: the short form of a listing."""
        return f"{self.location}: {self.message}" if self.location else self.message

    def render(self) -> str:
        """The text form: ``file:line:col: severity: path: [code] message; see also ...`` and the hint.

        The code is shown when it names a documented finding (``archgen explain CODE``); the codes of
        the spec language (``spec.*``) and of plain errors (``error.*``) are categories, said by the message.
        """
        head = f"{self.severity}: "
        if self.location is not None:
            head = f"{self.location}: {head}"
            if self.location.path:
                head += f"{self.location.path}: "
        text = head + (f"[{self.code}] " if not self.code.startswith(_UNSHOWN_CODES) else "") + self.message
        if self.related:
            text += "; see also " + ", ".join(r.cited() for r in self.related)
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def as_dict(self) -> dict[str, object]:
        """The JSON form (docs/json-output.md)."""
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "location": self.location.as_dict() if self.location else None,
            "related": [r.as_dict() for r in self.related],
            "hint": self.hint,
        }


class ArchgenError(Exception):
    """The one error type of every stage: the diagnostics a user can act on, and the process exit code.

    ``ArchgenError(message, exit_code=..., hint=...)`` makes one diagnostic without a location (its code
    from the exit code, or ``code``); ``ArchgenError(diagnostics=[...])`` carries located ones.
    """

    #: the exit code when none is given
    exit_code: int = INTERNAL
    #: whether the text form ends with "N errors found" (a file's diagnostics)
    counted = False

    def __init__(
        self,
        message: str | None = None,
        *,
        exit_code: int | None = None,
        hint: str | None = None,
        code: str | None = None,
        diagnostics: Iterable[Diagnostic] = (),
    ) -> None:
        if exit_code is not None:
            self.exit_code = exit_code
        found = list(diagnostics)
        if message is not None:
            found.insert(0, Diagnostic(code or ERROR_CODES.get(self.exit_code, "error.internal"), message, hint=hint))
        unique = {d.sort_key(): d for d in reversed(found)}  # one per place and message, the first kept
        self.diagnostics: list[Diagnostic] = sorted(unique.values(), key=Diagnostic.sort_key)
        super().__init__(self.render())

    @property
    def message(self) -> str:
        """The first diagnostic's message."""
        return self.diagnostics[0].message if self.diagnostics else ""

    @property
    def hint(self) -> str | None:
        """The first diagnostic's hint."""
        return self.diagnostics[0].hint if self.diagnostics else None

    def render(self) -> str:
        """Every diagnostic in its text form (and, for a file's diagnostics, how many)."""
        lines = [d.render() for d in self.diagnostics]
        if self.counted:
            n = len(self.diagnostics)
            lines.append(f"{n} error{'s' if n != 1 else ''} found")
        return "\n".join(lines)


class SpecError(ArchgenError):
    """The spec is invalid: every diagnostic of the file (exit 65)."""

    exit_code = INVALID_SPEC
    counted = True

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        super().__init__(diagnostics=diagnostics)


class SpecUnreadable(SpecError):
    """The spec file could not be read at all (missing, a directory, permissions): exit 66."""

    exit_code = UNREADABLE
