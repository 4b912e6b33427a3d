"""`archgen review SPEC [-o review.html]`: one self-contained HTML page for a design review."""

from __future__ import annotations

import sys
from pathlib import Path

from requirements_spec import load_spec

from ..diagrams import INSTALL_HINT, dot_available, render, to_mermaid, views
from ..docs import DiagramEmbed, review_html
from ..errors import CANT_CREATE, IO_ERROR, ArchgenError


def run(spec: Path, output: Path) -> int:
    from ..rules import decide

    loaded = load_spec(spec)
    arch = decide(loaded)  # error findings are shown on the page, not refused: the review is where they belong
    images = dot_available()
    if not images:
        print(
            f"warning: graphviz `dot` is not on PATH: the page shows the diagrams as Mermaid text.\n"
            f"    hint: {INSTALL_HINT}",
            file=sys.stderr,
        )
    embeds = [DiagramEmbed(v.name, v.title, render(v, "svg") if images else None, to_mermaid(v)) for v in views(arch)]
    page = review_html(arch, embeds, spec_file=Path(loaded.filename).name)
    if output.is_dir():
        raise ArchgenError(f"{output} is a folder; give the HTML file to write", exit_code=CANT_CREATE)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ArchgenError(f"cannot write {output}: {exc.strerror}", exit_code=IO_ERROR) from None
    print(f"wrote {output}: {len(embeds)} diagrams, {len(arch.decisions)} decisions, {len(arch.findings)} findings")
    return 0
