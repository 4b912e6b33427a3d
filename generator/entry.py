"""The `archgen` console script.

`archgen validate SPEC [--format text|json]` is the command editors, pre-commit hooks and CI
run on every save, so it is answered here without loading typer (about a third of the start-up
time). Every other command line, including any `validate` with other options (`--help`,
`--debug`, ...), goes to the typer application in :mod:`generator.cli`, which behaves the same.
"""

from __future__ import annotations

import sys

_FORMATS = ("text", "json")


def main() -> None:
    """The `archgen` console script: plain `validate` answered here, everything else by typer."""
    plain = _plain_validate(sys.argv[1:])
    if plain is None:
        from .cli import main as cli_main

        cli_main()
        return
    sys.exit(_validate(*plain))


def _plain_validate(argv: list[str]) -> tuple[str, str] | None:
    """(spec, format) for the plain forms of `validate`; None for anything else."""
    if not argv or argv[0] != "validate":
        return None
    spec: str | None = None
    fmt = "text"
    rest = argv[1:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--format" and i + 1 < len(rest) and rest[i + 1] in _FORMATS:
            fmt, i = rest[i + 1], i + 2
        elif arg.startswith("--format=") and arg.partition("=")[2] in _FORMATS:
            fmt, i = arg.partition("=")[2], i + 1
        elif arg.startswith("-") or spec is not None:
            return None  # an option or an extra argument: typer parses (or rejects) it
        else:
            spec, i = arg, i + 1
    return (spec, fmt) if spec else None


def _validate(spec: str, fmt: str) -> int:
    """The body of `archgen validate`, in the error boundary every command shares."""
    from pathlib import Path

    from .boundary import run_command
    from .commands import validate

    return run_command(lambda: validate.run(Path(spec), fmt), command="validate", fmt=fmt)


if __name__ == "__main__":
    main()
