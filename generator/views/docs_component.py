"""Docs of the generated repository: diagrams, architecture.md, ADRs, onboarding and the review page.

``plan`` contributes the diagrams (DOT and Mermaid on every machine; PNG and SVG are drawn by
``archgen diagram``, see :func:`skipped`), so the generated files are the same whether graphviz is installed
or not. ``finalize`` runs after every component has planned, because architecture.md and the ADRs list the
files each decision shaped. Images and the review page are ``producer`` callables, so graphviz
runs in the render stage, never while planning.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from ..decide.architecture import Architecture
from ..plan.plan import PlannedFile
from .diagrams import EXTENSIONS, IMAGE_FORMATS, View, produce, render, skipped_note, to_mermaid, views
from .docs import (
    SPEC_COPY,
    DiagramEmbed,
    adr_entries,
    area_places,
    decision_rows,
    finding_rows,
    review_html,
    risks,
    traceability,
)

COMPONENT = "docs"


def _formats() -> tuple[str, ...]:
    """DOT and Mermaid on every machine: the generated files never depend on graphviz being installed.

    The drawings (PNG, SVG) are reported as skipped; `archgen diagram` draws them where graphviz runs.
    """
    return ("dot", "mermaid")


def skipped() -> str | None:
    """The message `archgen new` prints when diagrams were left out (graphviz missing), else None."""
    return skipped_note()


def plan(arch: Architecture) -> list[PlannedFile]:
    """The diagram files of the docs, in every format this machine draws."""
    files = []
    for view in views(arch):
        for fmt in _formats():
            files.append(
                PlannedFile(
                    path=f"docs/diagrams/{view.name}.{EXTENSIONS[fmt]}",
                    component=COMPONENT,
                    producer=partial(produce, view, fmt, origin=SPEC_COPY),
                    external=fmt in IMAGE_FORMATS,
                )
            )
    return files


def _review(arch: Architecture, view_list: Sequence[View], with_images: bool, rows: list[dict[str, Any]]) -> bytes:
    embeds = [
        DiagramEmbed(v.name, v.title, render(v, "svg") if with_images else None, to_mermaid(v)) for v in view_list
    ]
    return review_html(arch, embeds, spec_file=SPEC_COPY, rows=rows).encode("utf-8")


def _glance(arch: Architecture) -> list[tuple[str, str]]:
    fs, tr, sv = arch.feature_store, arch.training, arch.serving
    rows = []
    if fs is not None:
        rows += [
            ("feature store", f"Feast project {fs.project}"),
            ("online / offline store", f"{fs.online_store or 'none (batch scoring)'} / {fs.offline_store}"),
            ("registry", fs.registry),
            ("ingestion", _ingestion(fs.ingestion, fs.materialization_cron)),
        ]
    gate = f", gate {tr.quality_gate.metric} >= {tr.quality_gate.threshold}" if tr.quality_gate else ""
    rows += [
        ("training", f"{tr.mode} on {tr.scheduler}" + (f" ({tr.schedule_cron})" if tr.schedule_cron else "") + gate),
        ("serving", f"{sv.runtime} over {sv.wire}, entrypoint {sv.entrypoint}"),
        ("service level", f"p99 <= {sv.latency_p99_ms:g} ms at {sv.throughput_rps:g} rps"),
        ("models", ", ".join(f"{m.name} ({m.framework})" for m in sv.models)),
        ("deployment", f"{arch.deployment.target} on {arch.deployment.platform}"),
        ("MLOps level", str(arch.mlops_level)),
    ]
    return rows


def _ingestion(ingestion: str, cron: str | None) -> str:
    return f"{ingestion}, materialize {cron}" if cron else f"{ingestion}, nothing materialized"


def _summary(arch: Architecture) -> str:
    """One paragraph of Markdown from decided values only (names, enums, numbers, canonical crons)."""
    fs, tr, sv = arch.feature_store, arch.training, arch.serving
    models = ", ".join(f"`{m.name}`" for m in sv.models if m.kind == "model")
    text = (
        f"It serves {models} through {sv.runtime} ({sv.wire}) within {sv.latency_p99_ms:g} ms p99 "
        f"at {sv.throughput_rps:g} requests per second"
    )
    if fs is not None and fs.online_store is not None and fs.materialization_cron is not None:
        text += (
            f", with features from Feast (online store {fs.online_store}, offline store {fs.offline_store}) "
            f"materialized on the schedule `{fs.materialization_cron}`"
        )
    elif fs is not None:
        text += f", with point-in-time features from Feast's {fs.offline_store} offline store as of each run"
    if tr.mode == "scheduled" and tr.schedule_cron:
        text += f". Models are retrained on `{tr.schedule_cron}` by {tr.scheduler}"
    elif tr.mode == "online":
        text += ". Models learn online from the event stream"
    else:
        text += ". Models are trained by hand"
    if not arch.decided("deployment"):
        return text + "; nothing of it is deployed as a service."
    return text + f"; it deploys with {arch.deployment.target.replace('_', ' ')}."


def finalize(arch: Architecture, files: Sequence[PlannedFile]) -> list[PlannedFile]:
    """architecture.md, ADRs, onboarding and review page: they need the whole plan for traceability."""
    entries = adr_entries(arch)
    rows = {row["key"]: row for row in decision_rows(arch, SPEC_COPY)}
    all_risks = risks(arch)
    adrs = [
        PlannedFile(
            path=f"docs/adr/{e.filename}",
            component=COMPONENT,
            template="docs/adr.md.j2",
            context={
                "spec_file": SPEC_COPY,
                "number": f"{e.number:04d}",
                "title": e.title,
                "d": rows[e.key],
                "risks": [r for r in all_risks if r.source == e.key],
                "files": sorted(f.path for f in files if e.key in f.decisions),
            },
            decisions=(e.key,),
        )
        for e in entries
    ]
    view_list = views(arch)
    with_images = any(f.path == f"docs/diagrams/{view_list[0].name}.svg" for f in files)  # never, see _formats
    own = [
        *adrs,
        PlannedFile(
            path="docs/adr/README.md",
            component=COMPONENT,
            template="docs/adr_index.md.j2",
            context={
                "spec_file": SPEC_COPY,
                "entries": [{"filename": e.filename, "key": e.key, "choice": e.decision.choice} for e in entries],
            },
        ),
        PlannedFile(
            path="docs/review.html",
            component=COMPONENT,
            producer=partial(_review, arch, view_list, with_images, list(rows.values())),
            external=with_images,
        ),
    ]
    every = [*files, *own]
    paths = sorted({f.path for f in every} | {"docs/architecture.md", "docs/onboarding.md"})
    gate = arch.training.quality_gate
    own += [
        PlannedFile(
            path="docs/architecture.md",
            component=COMPONENT,
            template="docs/architecture.md.j2",
            context={
                "spec_file": SPEC_COPY,
                "relative_prefix": "../",
                "glance": _glance(arch),
                "views": [
                    {
                        "name": v.name,
                        "mermaid": to_mermaid(v),
                        "images": [f"{v.name}.{ext}" for ext in ("svg", "png") if with_images],
                    }
                    for v in view_list
                ],
                "decisions": list(rows.values()),
                "findings": finding_rows(arch, SPEC_COPY),
                "risks": all_risks,
                "traces": traceability(arch, every),
            },
        ),
        PlannedFile(
            path="docs/onboarding.md",
            component=COMPONENT,
            template="docs/onboarding.md.j2",
            context={
                "spec_file": SPEC_COPY,
                "summary": _summary(arch),
                "has_features": arch.feature_store is not None,
                "online_store": arch.feature_store.online_store if arch.feature_store else "",
                "materialized": bool(arch.feature_store and arch.feature_store.materialization_cron),
                "gate": f"{gate.metric} >= {gate.threshold}" if gate else "",
                "areas": area_places(paths),
            },
        ),
    ]
    return own
