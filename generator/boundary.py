"""The error boundary every command runs in, and the one JSON shape of what commands report.

:func:`run_command` runs a command body and maps every failure to its diagnostics and a documented
exit code (README.md, "Exit codes"): an :class:`~requirements_spec.errors.ArchgenError` (every stage
raises it or a subclass), Ctrl-C, or a bug. Both the typer application (:mod:`generator.cli`) and the
quick path of ``archgen validate`` (:mod:`generator.entry`) call it; it imports neither typer nor any
heavy module.

With ``--format json`` a failure is a JSON document on stdout (:func:`json_document`), like a success:
docs/json-output.md describes the shape.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterable

from requirements_spec.errors import INTERNAL, INTERRUPTED, ArchgenError, Diagnostic

#: the version of the JSON documents (docs/json-output.md): changes only when a field is removed or changes meaning
SCHEMA_VERSION = 1
INTERRUPTED_MESSAGE = "interrupted: nothing was changed"


def run_command(body: Callable[[], int | None], *, command: str, fmt: str = "text", debug: bool = False) -> int:
    """Run ``body``; return its exit code, or report its failure (text on stderr, or JSON) and return that code.

    ``debug`` lets a bug's traceback through (``archgen --debug``).
    """
    tolerant_streams()
    try:
        return body() or 0
    except ArchgenError as exc:
        return _failed(command, fmt, exc.diagnostics, exc.exit_code, exc.render())
    except KeyboardInterrupt:
        interrupted = Diagnostic("error.interrupted", INTERRUPTED_MESSAGE)
        return _failed(command, fmt, [interrupted], INTERRUPTED, INTERRUPTED_MESSAGE)
    except Exception as exc:  # a bug: say so, and keep the traceback for --debug
        if debug:
            raise
        message = f"internal error: {type(exc).__name__}: {exc}"
        bug = Diagnostic("error.internal", message, hint="run with --debug for the traceback")
        return _failed(command, fmt, [bug], INTERNAL, f"{message}\n    (run with --debug for the traceback)")


def _failed(command: str, fmt: str, diagnostics: list[Diagnostic], code: int, text: str) -> int:
    if fmt == "json":
        sys.stdout.write(json_document(command, code, diagnostics))
    else:
        print(terminal_safe(text), file=sys.stderr)
    return code


def json_document(command: str, exit_code: int, diagnostics: Iterable[Diagnostic], **fields: object) -> str:
    """The JSON document of a command: its own ``fields`` and the keys every command's document has.

    Keys sorted, two-space indentation, UTF-8, a trailing newline: the same input gives the same bytes.
    """
    data = {
        **fields,
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "ok": exit_code == 0,
        "exit_code": exit_code,
        "diagnostics": [d.as_dict() for d in diagnostics],
    }
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def terminal_safe(text: str) -> str:
    """Messages quote the spec (an unknown key, a value): its control characters are shown escaped, not obeyed."""
    from .untrusted import escape

    return "\n".join(escape(line).replace("\\x09", "\t") for line in text.split("\n"))


def tolerant_streams() -> None:
    """Any terminal encoding (LANG=C, PYTHONIOENCODING=ascii): characters it cannot show are escaped, not fatal."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # one that cannot be reconfigured keeps its setting
                reconfigure(errors="backslashreplace")
