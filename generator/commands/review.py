"""`archgen review SPEC [-o review.html]`: one self-contained HTML page for a design review."""

from __future__ import annotations

import sys
from pathlib import Path

from requirements_spec import load_spec

from ..errors import CANT_CREATE, ArchgenError
from ..views.diagrams import INSTALL_HINT, dot_available, render, to_mermaid, views
from ..views.docs import DiagramEmbed, review_html
from ..write.outfile import write_output


def run(spec: Path, output: Path, force: bool = False) -> int:
    """Write the self-contained HTML review page of ``spec`` to ``output``."""
    from ..decide import decide

    loaded = load_spec(spec)
    arch = decide(loaded)  # error findings are shown on the page, not refused: the review is where they belong
    if output.is_dir() and not output.is_symlink():
        raise ArchgenError(f"{output} is a folder; give the HTML file to write", exit_code=CANT_CREATE)
    images = dot_available()
    embeds = []
    skipped = []
    for v in views(arch):
        svg = None
        if images:
            try:
                svg = render(v, "svg")
            except ArchgenError:  # dot failed or hung on this drawing: the page shows its Mermaid text
                skipped.append(f"{v.name}.svg")
        embeds.append(DiagramEmbed(v.name, v.title, svg, to_mermaid(v)))
    if not images or skipped:
        what = ", ".join(skipped) if skipped else ", ".join(f"{v.name}.svg" for v in views(arch))
        print(
            f"warning: graphviz `dot` is not on PATH or does not draw: skipped {what}; the page shows those diagrams "
            f"as Mermaid text.\n    hint: {INSTALL_HINT}",
            file=sys.stderr,
        )
    page = review_html(arch, embeds, spec_file=Path(loaded.filename).name)
    write_output(output, page.encode("utf-8"), force=force, reads=[spec], parents=True)
    print(f"wrote {output}: {len(embeds)} diagrams, {len(arch.decisions)} decisions, {len(arch.findings)} findings")
    return 0
