"""`archgen diagram SPEC [-o DIR] [--format png|svg|dot|mermaid]`: draw the data-flow and deployment views.

Drawings (PNG, SVG) are all or nothing: when graphviz is missing, or fails or hangs on any one drawing,
no drawing is written; each one that could not be made is named with its reason, the DOT and Mermaid text
of every view is written instead (so the drawings can be made elsewhere) and the exit code is 69.
"""

from __future__ import annotations

import sys
from pathlib import Path

from requirements_spec import load_spec

from ..errors import CANT_CREATE, DEPENDENCY, UNSAFE, ArchgenError
from ..untrusted import escape
from ..views.diagrams import EXTENSIONS, IMAGE_FORMATS, INSTALL_HINT, dot_available, produce, views
from ..write.outfile import write_outputs

TEXT_FORMATS = ("dot", "mermaid")


def run(spec: Path, output: Path, fmt: str = "png", force: bool = False) -> int:
    """Draw the data-flow and deployment diagrams of ``spec`` into ``output`` in ``fmt``."""
    from ..decide import decide

    loaded = load_spec(spec)
    arch = decide(loaded)
    origin = Path(loaded.filename).name
    if output.is_symlink():
        raise ArchgenError(
            f"{output} is a symlink; archgen does not write through symlinks",
            exit_code=UNSAFE,
            hint="pass a real folder",
        )
    if output.exists() and not output.is_dir():
        raise ArchgenError(f"{output} exists and is not a folder", exit_code=CANT_CREATE)
    view_list = views(arch)
    failed: list[str] = []  # "<drawing>: <why>"
    files: list[tuple[Path, bytes]] = []
    if fmt not in IMAGE_FORMATS:
        files = [(output / f"{v.name}.{EXTENSIONS[fmt]}", produce(v, fmt, origin=origin)) for v in view_list]
    elif not dot_available():
        failed = [f"{v.name}.{EXTENSIONS[fmt]}: graphviz `dot` is not on PATH or does not draw" for v in view_list]
    else:
        for view in view_list:
            name = f"{view.name}.{EXTENSIONS[fmt]}"
            try:
                files.append((output / name, produce(view, fmt, origin=origin)))
            except ArchgenError as exc:  # dot failed or hung on this drawing
                failed.append(f"{name}: {exc.message}")
    if failed:  # nothing partial: no drawing at all, the text of every view instead
        files = [
            (output / f"{v.name}.{EXTENSIONS[f]}", produce(v, f, origin=origin))
            for v in view_list
            for f in TEXT_FORMATS
        ]
    write_outputs(files, force=force, reads=[spec], parents=True)
    for finding in arch.errors:
        print(f"note: the requirements conflict ({finding.code}): {finding.message}", file=sys.stderr)
    print("wrote " + ", ".join(escape(p) for p, _ in files))
    if failed:
        skipped = ", ".join(f"{v.name}.{EXTENSIONS[fmt]}" for v in view_list)
        reasons = "".join(f"\n    {escape(f)}" for f in failed)
        print(
            f"error: graphviz could not draw: skipped {skipped}, and wrote no drawing (the DOT and Mermaid text "
            f"instead):{reasons}\n    hint: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return DEPENDENCY
    return 0
