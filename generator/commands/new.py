"""`archgen new SPEC -o DIR [--force] [--dry-run]`: generate the repository of a spec."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

from requirements_spec import load_spec
from requirements_spec.validate import LoadedSpec

from ..generate import Generation, Overlays, generate_loaded
from ..write.manifest import MANIFEST, SPEC_COPY
from ..write.progress import Progress
from ..write.write import WriteResult, check_target, sigterm_interrupts, write_repository


def _plan_rows(gen: Generation) -> list[tuple[str, str, str]]:
    """(path, component, decisions) of every file, an overlay's (component overlay:<name>) included."""
    decided = {f.path: ", ".join(f.decisions) or "-" for f in gen.plan.files}
    rows = [
        (p, c, "-" if c.startswith("overlay:") else decided.get(p, "-"))
        for p, c in gen.components.items()
        if p not in (SPEC_COPY, MANIFEST)
    ]
    rows += [(SPEC_COPY, "archgen", "-"), (MANIFEST, "archgen", "-")]
    return sorted(rows)


def _print_plan(gen: Generation, output: Path) -> None:
    rows = _plan_rows(gen)
    width_path = max(len("path"), *(len(r[0]) for r in rows))
    width_comp = max(len("component"), *(len(r[1]) for r in rows))
    print(f"{'path':<{width_path}}  {'component':<{width_comp}}  decisions")
    for path, component, decisions in rows:
        print(f"{path:<{width_path}}  {component:<{width_comp}}  {decisions}")
    print(f"\n{len(rows)} files would be written to {output} (dry run: nothing was written)")


def _summary(gen: Generation, result: WriteResult, output: Path) -> None:
    per_component = Counter(gen.components.values())
    parts = ", ".join(f"{name} {count}" for name, count in sorted(per_component.items()))
    project = gen.arch.spec.project.name
    if result.new:
        print(f"Generated {project} in {output}: {len(gen.files)} files ({parts}).")
    else:
        print(
            f"Updated {project} in {output}: {len(result.created)} new, {len(result.replaced)} replaced, "
            f"{len(result.unchanged)} unchanged; {result.kept} files archgen does not manage were kept."
        )
        if result.removed:
            print(f"Removed {len(result.removed)} files archgen no longer generates: {', '.join(result.removed)}")
        if result.stale_kept:
            print(
                f"Kept {len(result.stale_kept)} files archgen no longer generates because they were edited: "
                f"{', '.join(result.stale_kept)}"
            )
    for finding in gen.arch.warnings:
        print(f"warning: {finding.code}: {finding.message}", file=sys.stderr)
    print("Next:")
    print(f"  cd {output}")
    print("  make demo      # set up, sample data, feature store, training, serving, a prediction")
    print("  make test      # the system's own tests")
    print("  less README.md # who owns what and how each part runs")


def _json(gen: Generation, output: Path, result: WriteResult | None, notes: list[str]) -> str:
    """The JSON document of `new --format json`: the files (planned, or written) and the warnings."""
    from ..boundary import json_document
    from ..decide import finding_diagnostics

    fields: dict[str, object] = {
        "output": str(output),
        "project": gen.arch.spec.project.name,
        "dry_run": result is None,
        "files": [{"path": p, "component": c, "decisions": d} for p, c, d in _plan_rows(gen)],
        "notes": notes,
    }
    if result is not None:
        fields["written"] = {
            "new": result.new,
            "created": result.created,
            "replaced": result.replaced,
            "unchanged": len(result.unchanged),
            "removed": result.removed,
            "stale_kept": result.stale_kept,
            "kept": result.kept,
        }
    return json_document("new", 0, finding_diagnostics(gen.arch, errors_only=False), **fields)


def run(
    spec: Path,
    output: Path,
    force: bool = False,
    dry_run: bool = False,
    overlays: list[Path] | None = None,
    trust: bool = False,
    fmt: str = "text",
) -> int:
    """Generate (or, with ``dry_run``, plan) the repository of ``spec`` into ``output``."""
    with sigterm_interrupts():  # SIGTERM, like Ctrl-C, ends with exit 130 and nothing left behind
        return _run(spec, output, force=force, dry_run=dry_run, overlays=overlays or [], trust=trust, fmt=fmt)


def _overlays(loaded: LoadedSpec, spec: Path, cli: list[Path], output: Path, trust: bool) -> Overlays | None:
    """The spec's overlays (relative to the spec file), then the command line's, in order."""
    from ..render.overlay import load_overlay, spec_overlays, unique_names

    if not cli and not loaded.spec.overlays:
        return None
    sources = spec_overlays(loaded.spec, spec.parent) + [load_overlay(p) for p in cli]
    return Overlays(unique_names(sources), trust=trust, root=Path(os.path.abspath(output)))


def _run(spec: Path, output: Path, *, force: bool, dry_run: bool, overlays: list[Path], trust: bool, fmt: str) -> int:
    progress = Progress(sys.stderr)
    if not dry_run:
        # refuse an occupied or unsafe target before spending time on rendering
        check_target(output, force=force, spec_path=spec)
    loaded = load_spec(spec)
    gen = generate_loaded(loaded, progress=progress, overlays=_overlays(loaded, spec, overlays, output, trust))
    if dry_run:
        if fmt == "json":
            sys.stdout.write(_json(gen, output, None, []))
        else:
            _print_plan(gen, output)
        return 0
    result = write_repository(output, gen.files, gen.modes, force=force, spec_path=spec, progress=progress)
    from ..views.docs_component import skipped

    note = skipped()  # e.g. PNG/SVG diagrams without graphviz
    if fmt == "json":
        sys.stdout.write(_json(gen, output, result, [note] if note else []))
        return 0
    _summary(gen, result, output)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return 0
