"""The archgen command line. Only this module knows about typer.

Every command body imports its implementation lazily, so a quick command such as
``archgen validate`` never pays for Feast, tritonclient or graphviz.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from . import __version__
from . import errors as ec

app = typer.Typer(
    name="archgen",
    help="Architecture as code for ML systems: a requirements spec in, a decided architecture and a "
    "working repository out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_debug = False


def _run(body: Callable[[], int | None]) -> NoReturn:
    """Run a command body; map every failure to a clear message and a documented exit code."""
    from requirements_spec.errors import SpecError

    _tolerant_streams()
    try:
        code = body() or 0
    except SpecError as exc:
        print(_terminal_safe(exc.render()), file=sys.stderr)
        code = exc.exit_code
    except ec.ArchgenError as exc:
        print(_terminal_safe(exc.render()), file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: nothing was changed", file=sys.stderr)
        code = ec.INTERRUPTED
    except Exception as exc:  # a bug: say so, and keep the traceback for --debug
        if _debug:
            raise
        print(
            _terminal_safe(f"internal error: {type(exc).__name__}: {exc}\n    (run with --debug for the traceback)"),
            file=sys.stderr,
        )
        code = ec.INTERNAL
    raise typer.Exit(code)


def _terminal_safe(text: str) -> str:
    """Messages quote the spec (an unknown key, a value): its control characters are shown escaped, not obeyed."""
    from .untrusted import escape

    return "\n".join(escape(line).replace("\\x09", "\t") for line in text.split("\n"))


def _tolerant_streams() -> None:
    """Any terminal encoding (LANG=C, PYTHONIOENCODING=ascii): characters it cannot show are escaped, not fatal."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # one that cannot be reconfigured keeps its setting
                reconfigure(errors="backslashreplace")


def _version(value: bool) -> None:
    if value:
        print(f"archgen {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    global _debug
    _debug = debug


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class DiagramFormat(StrEnum):
    png = "png"
    svg = "svg"
    dot = "dot"
    mermaid = "mermaid"


SpecArg = Annotated[Path, typer.Argument(help="The requirements spec (YAML).", show_default=False)]


@app.command()
def validate(
    spec: SpecArg,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="text or json diagnostics.")] = OutputFormat.text,
) -> None:
    """Check a spec: syntax, fields, values and cross-references. Exit 0 when valid."""
    from .commands import validate as cmd

    _run(lambda: cmd.run(spec, fmt.value))


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file instead of stdout.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
) -> None:
    """Print the JSON Schema of the spec (for editors and CI)."""
    from .commands import schema as cmd

    _run(lambda: cmd.run(output, force))


@app.command()
def init(
    preset: Annotated[str, typer.Option("--preset", help="Start from a preset (see --list).")] = "starter",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file instead of stdout.")] = None,
    list_presets: Annotated[bool, typer.Option("--list", help="List the presets and exit.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")] = False,
) -> None:
    """Write a commented starter spec."""
    from .commands import init as cmd

    _run(lambda: cmd.run(preset, output, list_presets, force))


@app.command()
def plan(
    spec: SpecArg,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="text, json or markdown.")] = OutputFormat.text,
) -> None:
    """Decide the architecture: every decision with its reason, alternatives and findings."""
    from .commands import plan as cmd

    _run(lambda: cmd.run(spec, fmt.value))


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(help="The spec before the change.")],
    new: Annotated[Path, typer.Argument(help="The spec after the change.")],
    fmt: Annotated[OutputFormat, typer.Option("--format", help="text, json or markdown.")] = OutputFormat.text,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when a decision or finding changes (for CI), else 0.")
    ] = False,
) -> None:
    """Show which decisions change when the requirements change, and why."""
    from .commands import diff as cmd

    _run(lambda: cmd.run(old, new, fmt.value, exit_code))


@app.command()
def explain(
    key: Annotated[str, typer.Argument(help="A decision key or finding code (see `archgen explain --list`).")] = "",
    list_keys: Annotated[bool, typer.Option("--list", help="List every key.")] = False,
) -> None:
    """Print the documentation of a rule or finding."""
    from .commands import explain as cmd

    _run(lambda: cmd.run(key, list_keys))


@app.command("rules-doc")
def rules_doc(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file instead of stdout.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
) -> None:
    """Generate docs/rules.md from the rules."""
    from .commands import explain as cmd

    _run(lambda: cmd.run_doc(output, force))


@app.command()
def new(
    spec: SpecArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="The folder to create.", show_default=False)],
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty folder (files archgen did not write are kept).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the file plan; write nothing.")] = False,
    overlay: Annotated[
        list[Path] | None,
        typer.Option(
            "--overlay",
            help="A company cookiecutter template (folder or zip) to render over the repository; "
            "repeat for several, applied in order after the spec's own overlays.",
        ),
    ] = None,
    trust: Annotated[bool, typer.Option("--trust", help="Run the overlays' cookiecutter hooks.")] = False,
) -> None:
    """Generate the repository of a spec."""
    from .commands import new as cmd

    _run(lambda: cmd.run(spec, output, force, dry_run, overlay or [], trust))


@app.command("export-template")
def export_template(
    spec: SpecArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="The template folder to create.", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty folder.")] = False,
) -> None:
    """Write a cookiecutter template of the decided architecture, for other teams to copy the pattern."""
    from .render import export as cmd

    _run(lambda: cmd.run(spec, output, force))


@app.command()
def diagram(
    spec: SpecArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the diagrams.")] = Path("diagrams"),
    fmt: Annotated[DiagramFormat, typer.Option("--format", help="png, svg, dot or mermaid.")] = DiagramFormat.png,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output files.")] = False,
) -> None:
    """Draw the data-flow and deployment diagrams of a spec's architecture."""
    from .commands import diagram as cmd

    _run(lambda: cmd.run(spec, output, fmt.value, force))


@app.command()
def review(
    spec: SpecArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")] = Path("review.html"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
) -> None:
    """Write a self-contained HTML page for a design review."""
    from .commands import review as cmd

    _run(lambda: cmd.run(spec, output, force))


@app.command()
def check(
    directory: Annotated[Path, typer.Argument(help="A generated repository.")] = Path("."),
    fmt: Annotated[OutputFormat, typer.Option("--format", help="text or json.")] = OutputFormat.text,
) -> None:
    """Hold a generated repository to its spec: probes of every decision, manifest, Feast, Triton, schedulers."""
    from .commands import check as cmd

    _run(lambda: cmd.run(directory, fmt.value))


@app.command()
def update(
    directory: Annotated[Path, typer.Argument(help="A generated repository.")] = Path("."),
    spec: Annotated[Path | None, typer.Option("--spec", help="The new spec (default: the recorded one).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")] = False,
    overlay: Annotated[
        list[Path] | None,
        typer.Option(
            "--overlay", help="Replace the overlays given on the command line of `new` (default: the recorded ones)."
        ),
    ] = None,
    trust: Annotated[bool, typer.Option("--trust", help="Run the overlays' cookiecutter hooks.")] = False,
) -> None:
    """Re-generate after a spec change, keeping the team's edits (three-way merge)."""
    from .commands import update as cmd

    _run(lambda: cmd.run(directory, spec, dry_run, overlay, trust))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
