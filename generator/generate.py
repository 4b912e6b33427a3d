"""The generation pipeline shared by `new`, `update` and `check`: spec -> files in memory.

load -> validate -> decide -> stop on error findings -> plan -> render -> add `.archgen/`.
Only loading reads the disk; nothing here writes (that is :mod:`generator.write.write`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from requirements_spec import load_spec
from requirements_spec.validate import LoadedSpec, parse_spec

from .decide.architecture import Architecture, Finding
from .errors import INVALID_SPEC, ArchgenError
from .plan.plan import FilePlan, build_plan
from .render.overlay import OverlaySource
from .render.render import render_file
from .write.manifest import MANIFEST, SPEC_COPY, Manifest, OverlayRecord, build_manifest
from .write.progress import Progress, null_progress

RECORD_COMPONENT = "archgen"


@dataclass(frozen=True)
class Generation:
    """Everything one generation produced, before anything is written."""

    loaded: LoadedSpec
    arch: Architecture
    plan: FilePlan
    files: dict[str, bytes]  # every file of the repository, `.archgen/` included
    modes: dict[str, int]
    components: dict[str, str]
    manifest: Manifest

    def paths(self) -> list[str]:
        """Every path of the repository, sorted."""
        return sorted(self.files)


def _finding_line(f: Finding) -> str:
    where = ", ".join(f"{r.path} (line {r.line})" if r.line else r.path for r in f.requirements)
    text = f"  {f.code}: {f.message}"
    if where:
        text += f"\n      requirements: {where}"
    if f.fix:
        text += f"\n      fix: {f.fix}"
    return text


def require_feasible(arch: Architecture) -> None:
    """Error findings stop generation (exit 65): a repository that cannot meet its spec is not written."""
    from .decide import require_feasible as check

    check(arch)  # raises InfeasibleSpec (a SpecError, exit 65) with every error finding at its line
    if arch.errors:  # never reached while the rules helper does its job; kept as the last line of defence
        lines = "\n".join(_finding_line(f) for f in arch.errors)
        raise ArchgenError(
            f"{arch.spec_file}: the requirements conflict; nothing was generated\n{lines}", exit_code=INVALID_SPEC
        )


def decide(loaded: LoadedSpec) -> Architecture:
    """Decide, stop on error findings, and point the architecture at the spec copy in the repository.

    Generated docs cite requirement lines; they cite `.archgen/spec.yaml` (a verbatim copy, so the
    lines match), never the path the spec had on the command line, so output does not depend on it.
    """
    from .decide import decide as decide_rules

    arch = decide_rules(loaded)
    require_feasible(arch)
    return arch.model_copy(update={"spec_file": SPEC_COPY})


def _modes(plan: FilePlan) -> dict[str, int]:
    return {f.path: 0o755 if f.executable else 0o644 for f in plan.files}


def render_all(plan: FilePlan, arch: Architecture, progress: Progress) -> dict[str, bytes]:
    """Every file's bytes, in plan order; files drawn by another program are started first, in threads.

    graphviz takes a few tenths of a second per image, nearly all of it in its own process: started
    before the templates render, the drawings are ready by the time the loop reaches them.
    """
    progress.start("rendering", len(plan.files))
    out: dict[str, bytes] = {}
    external = [f for f in plan.files if f.external]
    pool = ThreadPoolExecutor(max_workers=len(external), thread_name_prefix="archgen-draw") if external else None
    try:
        started = {f.path: pool.submit(render_file, f, arch) for f in external} if pool is not None else {}
        for n, f in enumerate(plan.files, start=1):
            job = started.get(f.path)
            out[f.path] = job.result() if job is not None else render_file(f, arch)
            progress.advance(n)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    progress.done(f"{len(out)} files")
    return out


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Hold the cyclic garbage collector for one generation, then give it back as it was.

    A generation allocates a few hundred thousand short-lived objects (parser events, models, template
    contexts) and frees nearly all of them by reference counting; the collector's passes over them cost
    about a quarter of the time on a spec with a thousand views and reclaim nothing that would not be
    reclaimed right after. Memory stays bounded: the loader caps a spec at 1 MiB and 200,000 nodes, and
    cyclic garbage left behind is collected by the next full collection.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # Hand what survived (the result, mostly) to the oldest generation in one step: re-enabled as is,
        # the collector's first pass would walk every object allocated while it was held.
        gc.freeze()
        gc.unfreeze()
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class Overlays:
    """The company templates to render over the repository (:mod:`generator.render.overlay`), in order."""

    sources: Sequence[OverlaySource] = ()
    trust: bool = False  # run their hooks
    root: Path | None = None  # the repository: the manifest records each template's place relative to it


def generate_loaded(
    loaded: LoadedSpec, *, progress: Progress | None = None, overlays: Overlays | None = None
) -> Generation:
    """Decide, plan and render a spec that is already loaded and validated."""
    with no_gc_pauses():
        return _generate_loaded(loaded, progress, overlays)


def _generate_loaded(loaded: LoadedSpec, progress: Progress | None, overlays: Overlays | None = None) -> Generation:
    progress = progress or null_progress()
    arch = decide(loaded)
    plan = build_plan(arch)
    for reserved in (SPEC_COPY, MANIFEST):
        if reserved in plan.paths():
            raise ArchgenError(f"internal: a component planned {reserved}, which archgen writes itself")
    files = render_all(plan, arch, progress)
    modes = _modes(plan)
    components = {f.path: f.component for f in plan.files}
    records: tuple[OverlayRecord, ...] = ()
    if overlays is not None and overlays.sources:
        from .render import overlay

        for source in overlays.sources:
            overlay.apply(overlay.render_overlay(source, arch, trust=overlays.trust), files, modes, components)
        records = tuple(s.record(overlays.root) for s in overlays.sources)
    spec_bytes = loaded.text.encode("utf-8")
    files[SPEC_COPY] = spec_bytes
    modes[SPEC_COPY] = 0o644
    components[SPEC_COPY] = RECORD_COMPONENT
    manifest = build_manifest(arch.spec.project.name, spec_bytes, files, modes, components, records)
    files[MANIFEST] = manifest.to_json()
    modes[MANIFEST] = 0o644
    components[MANIFEST] = RECORD_COMPONENT
    return Generation(loaded, arch, plan, files, modes, components, manifest)


def generate(spec_path: Path, *, progress: Progress | None = None, overlays: Overlays | None = None) -> Generation:
    """Load, validate, decide, check, plan and render the spec at ``spec_path``."""
    with no_gc_pauses():
        return _generate_loaded(load_spec(spec_path), progress, overlays)


def generate_text(text: str, filename: str = "spec.yaml", *, progress: Progress | None = None) -> Generation:
    """The same from spec text (e.g. the recorded `.archgen/spec.yaml` for `update` and `check`)."""
    with no_gc_pauses():
        return _generate_loaded(parse_spec(text, filename), progress)
