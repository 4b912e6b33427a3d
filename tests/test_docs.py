"""Docs of a generated repo: architecture.md, ADRs, onboarding; traceability through the finalize hook."""

from __future__ import annotations

import re

import pytest

from generator.decide import decide
from generator.decide.architecture import Decision, Requirement
from generator.plan.plan import build_plan
from generator.render.render import render_file
from generator.views import docs_component
from generator.views.docs import ADR_ORDER, adr_entries, traceability
from requirements_spec import presets
from requirements_spec.validate import parse_spec

HOSTILE = "Scores {{ 7*7 }} <script>alert(1)</script> | pipes `ticks` & *stars*"


def arch_of(text: str, name: str = "spec.yaml"):  # type: ignore[no-untyped-def]
    return decide(parse_spec(text, name))


def render_docs(arch, plan) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The text files of the docs component (images are tested in test_diagrams.py)."""
    return {
        f.path: render_file(f, arch).decode("utf-8")
        for f in plan.files
        if f.component == "docs" and not f.path.endswith((".png", ".svg"))
    }


@pytest.fixture(scope="module")
def reference():  # type: ignore[no-untyped-def]
    arch = arch_of(presets.text("reference"))
    plan = build_plan(arch)
    return arch, plan, render_docs(arch, plan)


def test_docs_files_are_planned(reference) -> None:  # type: ignore[no-untyped-def]
    arch, _plan, docs = reference
    for path in ("docs/architecture.md", "docs/onboarding.md", "docs/review.html", "docs/adr/README.md"):
        assert path in docs
    for name in ("dataflow", "deployment"):
        assert f"docs/diagrams/{name}.dot" in docs and f"docs/diagrams/{name}.mmd" in docs
    adrs = [p for p in docs if re.fullmatch(r"docs/adr/\d{4}-[a-z0-9-]+\.md", p)]
    assert len(adrs) == len({d.key for d in arch.decisions})


def test_adr_numbers_are_fixed_by_key_not_by_decision_order(reference) -> None:  # type: ignore[no-untyped-def]
    arch = reference[0]
    entries = adr_entries(arch)
    assert [e.number for e in entries] == sorted(e.number for e in entries)
    for e in entries:
        if e.key in ADR_ORDER:
            assert e.number == ADR_ORDER.index(e.key) + 1
    shuffled = arch.model_copy(update={"decisions": list(reversed(arch.decisions))})
    assert [e.filename for e in adr_entries(shuffled)] == [e.filename for e in entries]
    extra = Decision(key="zz_custom", choice="x", rule="plugin.zz", requirements=[], rationale="r")
    more = arch.model_copy(update={"decisions": [extra, *arch.decisions]})
    numbers = {e.key: e.filename for e in adr_entries(more)}
    assert numbers["zz_custom"] == "0100-zz-custom.md"
    assert all(numbers[e.key] == e.filename for e in entries)  # nobody else moved


def test_adr_has_the_usual_form_with_spec_lines(reference) -> None:  # type: ignore[no-untyped-def]
    arch, _, docs = reference
    d = arch.decision("online_store")
    text = docs[f"docs/adr/{ADR_ORDER.index('online_store') + 1:04d}-online-store.md"]
    for heading in ("## Context", "## Decision", "## Alternatives considered", "## Consequences"):
        assert heading in text
    assert "- Status: accepted" in text
    assert f"`{d.choice}`" in text
    for r in d.requirements:
        assert f"`{r.path}`" in text and (f"(line {r.line})" in text or r.line == 0)
    for a in d.alternatives:
        assert f"`{a.choice}`" in text


def test_architecture_md_has_mermaid_decisions_and_traceability(reference) -> None:  # type: ignore[no-untyped-def]
    arch, plan, docs = reference
    text = docs["docs/architecture.md"]
    assert text.count("```mermaid\nflowchart LR\n") == 2
    for d in arch.decisions:
        row = next(line for line in text.splitlines() if line.startswith("| [") and f"`{d.choice}`" in line)
        assert row.count(" | ") >= 4
    assert "## Traceability" in text and "## Findings and waivers" in text
    # the finalize hook sees every component's files: requirements trace into files other components planned
    traced = set(re.findall(r"\]\(\.\./([^)]+)\)", text.split("## Traceability")[1]))
    others = {f.path for f in plan.files if f.component != "docs" and f.decisions}
    assert others, "other components record the decisions that shaped their files"
    assert others & traced
    assert "line " in text


def test_traceability_maps_requirement_to_decisions_to_files(reference) -> None:  # type: ignore[no-untyped-def]
    arch, plan, _ = reference
    traces = {t.path: t for t in traceability(arch, plan.files)}
    d = arch.decision("online_store")
    for r in d.requirements:
        assert "online_store" in traces[r.path].decisions
        expected = {f.path for f in plan.files if "online_store" in f.decisions}
        assert expected <= set(traces[r.path].files)


def test_onboarding_has_roles_walkthrough_and_places(reference) -> None:  # type: ignore[no-untyped-def]
    arch, _, docs = reference
    text = docs["docs/onboarding.md"]
    for needle in ("data engineering", "data science", "make setup", "make demo", "make train", "## Where each"):
        assert needle in text
    assert arch.spec.project.owners.data_engineering in text


def test_spec_text_is_escaped_in_every_doc() -> None:
    text = presets.text("reference").replace(
        "description: Rank available drivers for each incoming ride request.",
        f"description: {HOSTILE!r}".replace("'", '"'),
    )
    assert HOSTILE in text
    arch = arch_of(text)
    plan = build_plan(arch)
    rendered = render_docs(arch, plan)
    md = rendered["docs/architecture.md"]
    assert "{{ 7\\*7 }}" not in md and "\\{\\{ 7\\*7 \\}\\}" in md  # literal, not evaluated, not raw
    assert "<script>" not in md and "\\<script\\>" in md
    html = rendered["docs/review.html"]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    header = html.split("<header>")[1].split("</header>")[0]
    assert "{{ 7*7 }}" in header and "49" not in header  # shown literally, never evaluated


def test_docs_render_byte_identically_twice(reference) -> None:  # type: ignore[no-untyped-def]
    arch, _plan, docs = reference
    assert render_docs(arch, build_plan(arch)) == docs


def test_drawings_are_reported_skipped_on_every_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The note `new` prints runs no program (the unit tier fails any test that starts one): with a `dot` on
    PATH it names `archgen diagram`, without one it adds how to install graphviz."""
    monkeypatch.setattr("generator.views.diagrams.shutil.which", lambda name, *a, **k: "/usr/bin/dot")
    note = docs_component.skipped()
    assert note is not None and "archgen diagram" in note and "apt-get install graphviz" not in note
    monkeypatch.setattr("generator.views.diagrams.shutil.which", lambda name, *a, **k: None)
    note = docs_component.skipped()
    assert note is not None and "apt-get install graphviz" in note
    arch = arch_of(presets.text("reference"))
    paths = [f.path for f in build_plan(arch).files if f.path.startswith("docs/diagrams/")]
    assert not [p for p in paths if p.endswith((".png", ".svg"))]


def test_decision_without_requirements_line_is_shown_as_default() -> None:
    arch = arch_of(presets.text("reference"))
    extra = Decision(
        key="zz_custom", choice="x", rule="plugin.zz", requirements=[Requirement(path="a.b")], rationale="r."
    )
    arch = arch.model_copy(update={"decisions": [*arch.decisions, extra]})
    files = {f.path: f for f in build_plan(arch).files}
    text = render_file(files["docs/adr/0100-zz-custom.md"], arch).decode()
    assert "not in the spec: the default" in text and "r." in text and "r.." not in text
