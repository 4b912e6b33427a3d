"""Exit codes and the error type of the engine (documented in README.md, "Exit codes").

Both live in :mod:`requirements_spec.errors`, the base every stage shares; this module names them
for the generator's modules.
"""

from __future__ import annotations

from requirements_spec.errors import (
    CANT_CREATE,
    DEPENDENCY,
    FINDINGS,
    INTERNAL,
    INTERRUPTED,
    INVALID_SPEC,
    IO_ERROR,
    OK,
    UNREADABLE,
    UNSAFE,
    USAGE,
    ArchgenError,
    Diagnostic,
    Location,
)

__all__ = [
    "CANT_CREATE",
    "DEPENDENCY",
    "FINDINGS",
    "INTERNAL",
    "INTERRUPTED",
    "INVALID_SPEC",
    "IO_ERROR",
    "OK",
    "UNREADABLE",
    "UNSAFE",
    "USAGE",
    "ArchgenError",
    "Diagnostic",
    "Location",
]
