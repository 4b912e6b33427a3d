"""`archgen diagram SPEC [-o DIR] [--format png|svg|dot|mermaid]`: draw the data-flow and deployment views."""

from __future__ import annotations

import sys
from pathlib import Path

from requirements_spec import load_spec

from ..diagrams import EXTENSIONS, IMAGE_FORMATS, INSTALL_HINT, dot_available, produce, views
from ..errors import CANT_CREATE, IO_ERROR, ArchgenError


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise ArchgenError(f"cannot write {path}: {exc.strerror}", exit_code=IO_ERROR) from None


def run(spec: Path, output: Path, fmt: str = "png") -> int:
    from ..rules import decide

    loaded = load_spec(spec)
    arch = decide(loaded)
    origin = Path(loaded.filename).name
    formats = [fmt]
    if fmt in IMAGE_FORMATS and not dot_available():
        print(
            f"warning: graphviz `dot` is not on PATH: cannot draw {fmt}; writing the DOT and Mermaid text instead.\n"
            f"    hint: {INSTALL_HINT}",
            file=sys.stderr,
        )
        formats = ["dot", "mermaid"]
    if output.exists() and not output.is_dir():
        raise ArchgenError(f"{output} exists and is not a folder", exit_code=CANT_CREATE)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchgenError(f"cannot create {output}: {exc.strerror}", exit_code=CANT_CREATE) from None
    written = []
    for view in views(arch):
        for f in formats:
            path = output / f"{view.name}.{EXTENSIONS[f]}"
            _write(path, produce(view, f, origin=origin))
            written.append(str(path))
    for finding in arch.errors:
        print(f"note: the requirements conflict ({finding.code}): {finding.message}", file=sys.stderr)
    print("wrote " + ", ".join(written))
    return 0
