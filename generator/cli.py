"""The archgen command line. Only this module knows about typer.

Every command body imports its implementation lazily, so a quick command such as
``archgen validate`` never pays for Feast, tritonclient or graphviz.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from . import __version__

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


def _run(body: Callable[[], int | None], command: str, fmt: str = "text") -> NoReturn:
    """Run a command body in the error boundary every command shares; exit with its code."""
    from .boundary import run_command

    raise typer.Exit(run_command(body, command=command, fmt=fmt, debug=_debug))


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
    """Formats of a report: text (a terminal), json (tools) or markdown (review documents)."""

    text = "text"
    json = "json"
    markdown = "markdown"


class ReportFormat(StrEnum):
    """Formats of a command that reports problems: text, or one JSON document (docs/json-output.md)."""

    text = "text"
    json = "json"


class DiagramFormat(StrEnum):
    """Formats of `archgen diagram`: images through graphviz, or the dot and Mermaid text."""

    png = "png"
    svg = "svg"
    dot = "dot"
    mermaid = "mermaid"


SpecArg = Annotated[Path, typer.Argument(help="The requirements spec (YAML).", show_default=False)]


@app.command()
def validate(
    spec: SpecArg,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="text or json diagnostics.")] = ReportFormat.text,
) -> None:
    """Check a spec: syntax, fields, values and cross-references. Exit 0 when valid."""
    from .commands import validate as cmd

    _run(lambda: cmd.run(spec, fmt.value), "validate", fmt.value)


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file instead of stdout.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
) -> None:
    """Print the JSON Schema of the spec (for editors and CI)."""
    from .commands import schema as cmd

    _run(lambda: cmd.run(output, force), "schema")


@app.command()
def init(
    preset: Annotated[str, typer.Option("--preset", help="Start from a preset (see --list).")] = "starter",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file instead of stdout.")] = None,
    list_presets: Annotated[bool, typer.Option("--list", help="List the presets and exit.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")] = False,
) -> None:
    """Write a commented starter spec."""
    from .commands import init as cmd

    _run(lambda: cmd.run(preset, output, list_presets, force), "init")


@app.command()
def plan(
    spec: SpecArg,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="text, json or markdown.")] = OutputFormat.text,
) -> None:
    """Decide the architecture: every decision with its reason, alternatives and findings."""
    from .commands import plan as cmd

    _run(lambda: cmd.run(spec, fmt.value), "plan", fmt.value)


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

    _run(lambda: cmd.run(old, new, fmt.value, exit_code), "diff", fmt.value)


@app.command()
def explain(
    key: Annotated[str, typer.Argument(help="A decision key or finding code (see `archgen explain --list`).")] = "",
    list_keys: Annotated[bool, typer.Option("--list", help="List every key.")] = False,
) -> None:
    """Print the documentation of a rule or finding."""
    from .commands import explain as cmd

    _run(lambda: cmd.run(key, list_keys), "explain")


@app.command("rules-doc")
def rules_doc(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file instead of stdout.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
) -> None:
    """Generate docs/rules.md from the rules."""
    from .commands import explain as cmd

    _run(lambda: cmd.run_doc(output, force), "rules-doc")


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
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="text, or json: the summary (or the errors) as one JSON document.")
    ] = ReportFormat.text,
) -> None:
    """Generate the repository of a spec."""
    from .commands import new as cmd

    _run(lambda: cmd.run(spec, output, force, dry_run, overlay or [], trust, fmt.value), "new", fmt.value)


@app.command("export-template")
def export_template(
    spec: SpecArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="The template folder to create.", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty folder.")] = False,
) -> None:
    """Write a cookiecutter template of the decided architecture, for other teams to copy the pattern."""
    from .render import export as cmd

    _run(lambda: cmd.run(spec, output, force), "export-template")


@app.command()
def diagram(
    spec: SpecArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the diagrams.")] = Path("diagrams"),
    fmt: Annotated[DiagramFormat, typer.Option("--format", help="png, svg, dot or mermaid.")] = DiagramFormat.png,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output files.")] = False,
) -> None:
    """Draw the data-flow and deployment diagrams of a spec's architecture."""
    from .commands import diagram as cmd

    _run(lambda: cmd.run(spec, output, fmt.value, force), "diagram")


@app.command()
def review(
    spec: SpecArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")] = Path("review.html"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
) -> None:
    """Write a self-contained HTML page for a design review."""
    from .commands import review as cmd

    _run(lambda: cmd.run(spec, output, force), "review")


@app.command()
def check(
    directory: Annotated[Path, typer.Argument(help="A generated repository.")] = Path("."),
    fmt: Annotated[ReportFormat, typer.Option("--format", help="text or json.")] = ReportFormat.text,
) -> None:
    """Hold a generated repository to its spec: probes of every decision, manifest, Feast, Triton, schedulers."""
    from .commands import check as cmd

    _run(lambda: cmd.run(directory, fmt.value), "check", fmt.value)


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
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="text, or json: the decisions and files as one JSON document.")
    ] = ReportFormat.text,
) -> None:
    """Re-generate after a spec change, keeping the team's edits (three-way merge)."""
    from .commands import update as cmd

    _run(lambda: cmd.run(directory, spec, dry_run, overlay, trust, fmt.value), "update", fmt.value)


def main() -> None:
    """The typer application's entry point (``python -m generator.cli``)."""
    app()


if __name__ == "__main__":
    main()
