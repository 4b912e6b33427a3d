"""Diagnostics: every problem in a spec, with the place it was found."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PathItem = str | int
Path = tuple[PathItem, ...]


def format_path(path: Sequence[PathItem]) -> str:
    """Dotted field path: ``features.views[0].fields[2].name``."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += ("." if out else "") + item
    return out or "<root>"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem: where it is, what it is and, where it helps, how to fix it."""

    line: int
    column: int
    file: str = field(compare=False)
    path: str = field(compare=True)
    message: str = field(compare=True)
    hint: str | None = field(default=None, compare=False)
    severity: str = field(default="error", compare=False)

    def render(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.path}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
            "severity": self.severity,
        }


class SpecError(Exception):
    """The one error type of the spec language: carries every diagnostic of a file."""

    #: process exit code (see README, "Exit codes")
    exit_code = 65

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: list[Diagnostic] = sorted(set(diagnostics))
        super().__init__(self.render())

    def render(self) -> str:
        lines = [d.render() for d in self.diagnostics]
        n = len(self.diagnostics)
        lines.append(f"{n} error{'s' if n != 1 else ''} found")
        return "\n".join(lines)


class SpecUnreadable(SpecError):
    """The spec file could not be read at all (missing, a directory, permissions)."""

    exit_code = 66
