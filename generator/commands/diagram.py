"""`archgen diagram SPEC [-o DIR] [--format png|svg|dot|mermaid]`: draw the data-flow and deployment views."""

from __future__ import annotations

import sys
from pathlib import Path

from requirements_spec import load_spec

from ..errors import CANT_CREATE, DEPENDENCY, UNSAFE, ArchgenError
from ..untrusted import escape
from ..views.diagrams import EXTENSIONS, IMAGE_FORMATS, INSTALL_HINT, dot_available, produce, views
from ..write.outfile import write_outputs


def run(spec: Path, output: Path, fmt: str = "png", force: bool = False) -> int:
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
    files: list[tuple[Path, bytes]] = []
    skipped: list[str] = []
    drawn = fmt not in IMAGE_FORMATS or dot_available()
    for view in views(arch):
        if fmt in IMAGE_FORMATS and drawn:
            try:
                files.append((output / f"{view.name}.{EXTENSIONS[fmt]}", produce(view, fmt, origin=origin)))
                continue
            except ArchgenError:  # dot failed or hung on this drawing
                pass
        if fmt in IMAGE_FORMATS:
            skipped.append(f"{view.name}.{EXTENSIONS[fmt]}")
            for f in ("dot", "mermaid"):  # the text forms, so the drawing can be made elsewhere
                files.append((output / f"{view.name}.{EXTENSIONS[f]}", produce(view, f, origin=origin)))
        else:
            files.append((output / f"{view.name}.{EXTENSIONS[fmt]}", produce(view, fmt, origin=origin)))
    write_outputs(files, force=force, reads=[spec], parents=True)
    for finding in arch.errors:
        print(f"note: the requirements conflict ({finding.code}): {finding.message}", file=sys.stderr)
    print("wrote " + ", ".join(escape(p) for p, _ in files))
    if skipped:
        print(
            f"error: graphviz `dot` is not on PATH or does not draw: skipped {', '.join(skipped)} "
            f"(wrote the DOT and Mermaid text instead).\n    hint: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return DEPENDENCY
    return 0
