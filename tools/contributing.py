"""`python -m tools.contributing [--check]`: keep the generated parts of docs/contributing.md current.

docs/contributing.md is prose with generated sections between ``<!-- generated:NAME -->`` and
``<!-- end:NAME -->``; this module renders them from the registries:

- ``files``: where each generated file comes from: every file the component planners
  (``generator.plan.plan.COMPONENTS``) plan for the presets, grouped by component and by what produces it
  (a template, literal content, a function), with the decisions that shape it; then the templates no preset
  uses, with the planner that names them;
- ``areas``: the area modules of the decision engine (``generator.decide.registry.AREAS``), their rules and
  their findings;
- ``checked_in``: the files of this repository that a command writes, and the test that keeps each current.

Without ``--check`` it rewrites the sections in place; ``--check`` exits 1 when they are stale
(tests/test_contributing.py runs the same comparison).
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from generator.decide import decide
from generator.decide.registry import AREAS
from generator.plan.plan import COMPONENTS, PlannedFile
from requirements_spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "contributing.md"
PRESETS = ROOT / "requirements_spec" / "presets"
TEMPLATES = ROOT / "templates"
SECTION = re.compile(r"(<!-- generated:(\w+) -->\n)(.*?)(<!-- end:\2 -->)", re.DOTALL)

#: files of this repository a command writes: (path, which part, the command, the test that keeps it current)
CHECKED_IN = (
    ("docs/rules.md", "", "`archgen rules-doc -o docs/rules.md` (`make rules-doc`)", "tests/test_rules.py"),
    ("docs/contract.md", "", "`python -m generator.decide.contract > docs/contract.md`", "tests/test_contract.py"),
    ("docs/contributing.md", "its generated sections", "`python -m tools.contributing`", "tests/test_contributing.py"),
    ("reference_impl/", "", "`python -m tools.reference` (`make reference`)", "tests/test_reference_impl.py"),
    (
        "tests/golden/presets.sha256",
        "a digest of every preset's repository",
        "`python -m tools.reference` (`make reference`)",
        "tests/test_reference_impl.py",
    ),
    (
        "docs/json-output.md",
        "its JSON Schema",
        "by hand: every command's JSON is validated against it",
        "tests/test_diagnostics.py",
    ),
)


@dataclass
class _Source:
    """What produces some generated files, and what the presets give it."""

    component: str
    produced_by: str
    paths: set[str] = field(default_factory=set)
    decisions: set[str] = field(default_factory=set)
    presets: set[str] = field(default_factory=set)


def _produced_by(f: PlannedFile) -> str:
    if f.template is not None:
        return f"`templates/{f.template}`"
    if f.producer is not None:
        fn = f.producer.func if isinstance(f.producer, partial) else f.producer
        return f"`{fn.__module__}.{fn.__qualname__}`"
    return f"content from `{COMPONENTS[f.component]}`"


def _planned(arch: object) -> list[PlannedFile]:
    """The files the built-in planners plan (plugins left out), as :func:`generator.plan.plan.build_plan` asks."""
    modules = [importlib.import_module(m) for m in COMPONENTS.values()]
    files: list[PlannedFile] = [f for m in modules for f in m.plan(arch)]
    first = tuple(sorted(files, key=lambda f: f.path))
    for m in modules:
        finalize = getattr(m, "finalize", None)
        if finalize is not None:
            files += finalize(arch, first)
    return files


def _sources() -> dict[tuple[str, str], _Source]:
    out: dict[tuple[str, str], _Source] = {}
    for spec in sorted(PRESETS.glob("*.yaml")):
        for f in _planned(decide(load_spec(spec))):
            src = out.setdefault((f.component, _produced_by(f)), _Source(f.component, _produced_by(f)))
            # a drawing's format depends on the machine (graphviz): its extension is left open
            src.paths.add(re.sub(r"\.\w+$", ".*", f.path) if f.producer is not None else f.path)
            src.decisions.update(f.decisions)
            src.presets.add(spec.stem)
    return out


def _cell(items: Iterable[str], most: int = 3) -> str:
    shown = sorted(items)
    text = ", ".join(f"`{i}`" for i in shown[:most])
    return text + (f" and {len(shown) - most} more" if len(shown) > most else "") if shown else "-"


def files_section() -> str:
    """Where each generated file comes from, by component."""
    sources = _sources()
    used = {s.produced_by for s in sources.values()}
    lines: list[str] = []
    for component, module in COMPONENTS.items():
        rows = sorted((s for s in sources.values() if s.component == component), key=lambda s: min(s.paths))
        path = module.replace(".", "/") + ".py"
        lines += ["", f"### `{component}`: `{path}`", ""]
        lines += ["| files (in the presets) | produced by | decisions that shape them |", "| --- | --- | --- |"]
        lines += [f"| {_cell(s.paths)} | {s.produced_by} | {_cell(s.decisions, most=8)} |" for s in rows]
    unused = sorted(
        t.relative_to(TEMPLATES).as_posix()
        for t in TEMPLATES.rglob("*.j2")
        if f"`templates/{t.relative_to(TEMPLATES).as_posix()}`" not in used
    )
    lines += ["", "### Templates no preset uses", ""]
    lines += ["They are planned for other specs (another scheduler, CI, runtime); the planner that names them:", ""]
    lines += ["| template | named in |", "| --- | --- |"]
    lines += [f"| `templates/{t}` | {_named_in(t)} |" for t in unused]
    return "\n".join(lines[1:]) + "\n"


def _named_in(template: str) -> str:
    """The planner modules whose source names ``template`` (where a template is included by another: '-'): by its
    name, or by the path of the file :func:`generator.plan.plan.rendered` renders from it.
    """
    names = (f'"{template}"', f'rendered("{template.removesuffix(".j2")}"')
    found = [
        f"`{m.replace('.', '/')}.py`"
        for m in dict.fromkeys(COMPONENTS.values())
        if any(n in (ROOT / (m.replace(".", "/") + ".py")).read_text(encoding="utf-8") for n in names)
    ]
    return ", ".join(found) or "- (built from parts, or included by another template)"


def areas_section() -> str:
    """The area modules of the decision engine, their rules and findings (what `RULES` and `FINDINGS` list)."""
    lines = ["| area module | rules (decided keys) | findings (codes) |", "| --- | --- | --- |"]
    for area in AREAS:
        module = importlib.import_module(f"generator.decide.{area}")
        rules = ", ".join(f"`{r.key}`" for r in module.RULES) or "-"
        codes = ", ".join(f"`{k.code}`" for c in module.FINDINGS for k in c.kinds) or "-"
        lines.append(f"| `generator/decide/{area}.py` | {rules} | {codes} |")
    return "\n".join(lines) + "\n"


def checked_in_section() -> str:
    """The files of this repository a command writes, and the test that keeps each current."""
    lines = ["| file | written by | kept current by |", "| --- | --- | --- |"]
    lines += [
        f"| `{path}`{f' ({part})' if part else ''} | {command} | `{test}` |" for path, part, command, test in CHECKED_IN
    ]
    return "\n".join(lines) + "\n"


SECTIONS: dict[str, Callable[[], str]] = {
    "files": files_section,
    "areas": areas_section,
    "checked_in": checked_in_section,
}


def render(text: str) -> str:
    """``text`` with every generated section rendered anew."""
    names = {m.group(2) for m in SECTION.finditer(text)}
    missing = set(SECTIONS) - names
    if missing:
        raise SystemExit(f"{DOC}: no <!-- generated:NAME --> section for {sorted(missing)}")
    return SECTION.sub(lambda m: m.group(1) + "\n" + SECTIONS[m.group(2)]() + "\n" + m.group(4), text)


def main(argv: list[str]) -> int:
    """Rewrite the generated sections of docs/contributing.md, or with ``--check`` say whether they are current."""
    text = DOC.read_text(encoding="utf-8")
    fresh = render(text)
    if "--check" in argv:
        if fresh != text:
            print(f"{DOC} is stale: run `python -m tools.contributing`", file=sys.stderr)
            return 1
        return 0
    if fresh != text:
        DOC.write_text(fresh, encoding="utf-8")
        print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
