"""Which decisions change between two specs, and which requirement changes drove them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..decide.architecture import Architecture, Decision, Finding, Requirement
from .report import md_cell, short_value, value_text


@dataclass(frozen=True)
class RequirementChange:
    """A spec value that differs between the two specs, with its lines."""

    path: str
    old: Any
    new: Any
    old_line: int = 0
    new_line: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (docs/plan-json.md)."""
        return {
            "path": self.path,
            "old": self.old,
            "new": self.new,
            "old_line": self.old_line,
            "new_line": self.new_line,
        }


@dataclass(frozen=True)
class DecisionChange:
    """A decision that changed, appeared or disappeared, and the requirement changes that drove it."""

    key: str
    kind: Literal["changed", "added", "removed"]
    old: Decision | None
    new: Decision | None
    drivers: list[RequirementChange] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (docs/plan-json.md)."""
        return {
            "key": self.key,
            "change": self.kind,
            "old_choice": self.old.choice if self.old else None,
            "new_choice": self.new.choice if self.new else None,
            "rationale": self.new.rationale if self.new else None,
            "drivers": [d.as_dict() for d in self.drivers],
        }


@dataclass(frozen=True)
class ArchDiff:
    """What changes between two architectures: decisions, requirements and findings."""

    decisions: list[DecisionChange]
    requirements: list[RequirementChange]
    findings_added: list[Finding]
    findings_resolved: list[Finding]

    @property
    def empty(self) -> bool:
        """No decision or finding changes."""
        return not (self.decisions or self.findings_added or self.findings_resolved)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values of a JSON-like tree by dotted path (``serving.models[0].name``)."""
    out: dict[str, Any] = {}
    if isinstance(value, dict) and value:
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def _changed_requirements(old: Architecture, new: Architecture) -> list[RequirementChange]:
    a = flatten(old.spec.model_dump(mode="json"))
    b = flatten(new.spec.model_dump(mode="json"))
    return [RequirementChange(p, a.get(p), b.get(p)) for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p)]


def _drivers(old: Decision | None, new: Decision | None, changed: list[RequirementChange]) -> list[RequirementChange]:
    reqs: dict[str, tuple[Requirement | None, Requirement | None]] = {}
    for r in old.requirements if old else []:
        reqs[r.path] = (r, None)
    for r in new.requirements if new else []:
        reqs[r.path] = (reqs.get(r.path, (None, None))[0], r)
    out = []
    for path, (ro, rn) in reqs.items():
        ov = ro.value if ro else None
        nv = rn.value if rn else None
        if ro is not None and rn is not None and ov == nv:
            continue
        out.append(RequirementChange(path, ov, nv, ro.line if ro else 0, rn.line if rn else 0))
    if not out:  # the decision read a subtree: name the leaves below what it read
        read = [r.path for r in [*(old.requirements if old else []), *(new.requirements if new else [])]]
        out = [c for c in changed if any(c.path == p or c.path.startswith((p + ".", p + "[")) for p in read)]
    return out


def diff_architectures(old: Architecture, new: Architecture) -> ArchDiff:
    """The changes from ``old`` to ``new``."""
    changed = _changed_requirements(old, new)
    a = {d.key: d for d in old.decisions}
    b = {d.key: d for d in new.decisions}
    out: list[DecisionChange] = []
    for key in [*a, *(k for k in b if k not in a)]:
        da, db = a.get(key), b.get(key)
        if da is not None and db is not None and da.choice == db.choice:
            continue
        kind: Literal["changed", "added", "removed"] = "changed" if da and db else ("added" if db else "removed")
        out.append(DecisionChange(key, kind, da, db, _drivers(da, db, changed)))
    fa = {(f.code, f.message) for f in old.findings}
    fb = {(f.code, f.message) for f in new.findings}
    return ArchDiff(
        decisions=out,
        requirements=changed,
        findings_added=[f for f in new.findings if (f.code, f.message) not in fa],
        findings_resolved=[f for f in old.findings if (f.code, f.message) not in fb],
    )


# ---------------------------------------------------------------- output
def diff_data(diff: ArchDiff, old: Architecture, new: Architecture) -> dict[str, Any]:
    """The changes as JSON data (docs/plan-json.md)."""
    return {
        "old": old.spec_file,
        "new": new.spec_file,
        "decisions": [c.as_dict() for c in diff.decisions],
        "requirements": [c.as_dict() for c in diff.requirements],
        "findings_added": [f.model_dump(mode="json") for f in diff.findings_added],
        "findings_resolved": [f.model_dump(mode="json") for f in diff.findings_resolved],
    }


def _choice(d: Decision | None) -> str:
    return d.choice if d is not None else "(none)"


def _driver_text(c: RequirementChange) -> str:
    line = f" (line {c.new_line})" if c.new_line else ""
    return f"{c.path}: {short_value(c.old)} -> {short_value(c.new)}{line}"


def diff_text(diff: ArchDiff, old: Architecture, new: Architecture) -> str:
    """The changes as text."""
    lines = [f"{old.spec_file} -> {new.spec_file}"]
    if diff.empty:
        lines.append("no decision or finding changes")
    if diff.decisions:
        lines += ["", "Decisions"]
        for c in diff.decisions:
            lines.append(f"  {c.kind:<8} {c.key}: {_choice(c.old)} -> {_choice(c.new)}")
            if c.new is not None:
                lines.append(f"           why: {c.new.rationale}")
            for d in c.drivers:
                lines.append(f"           because {_driver_text(d)}")
    if diff.findings_added or diff.findings_resolved:
        lines += ["", "Findings"]
        lines += [f"  new      {f.severity} {f.code}: {f.message}" for f in diff.findings_added]
        lines += [f"  resolved {f.severity} {f.code}: {f.message}" for f in diff.findings_resolved]
    if diff.requirements:
        lines += ["", "Requirements changed"]
        lines += [f"  {c.path}: {short_value(c.old)} -> {short_value(c.new)}" for c in diff.requirements]
    return "\n".join(lines) + "\n"


def diff_markdown(diff: ArchDiff, old: Architecture, new: Architecture) -> str:
    """The changes as Markdown (a review document)."""
    lines = [f"# Decision changes: `{md_cell(old.spec_file)}` → `{md_cell(new.spec_file)}`", ""]
    if diff.empty:
        lines.append("No decision or finding changes.")
    if diff.decisions:
        lines += ["| decision | change | old | new | driven by |", "| --- | --- | --- | --- | --- |"]
        for c in diff.decisions:
            drivers = "; ".join(
                f"`{d.path}` {md_cell(value_text(d.old))} → {md_cell(value_text(d.new))}" for d in c.drivers
            )
            lines.append(
                f"| `{c.key}` | {c.kind} | {md_cell(_choice(c.old))} | **{md_cell(_choice(c.new))}** | {drivers} |"
            )
    if diff.findings_added or diff.findings_resolved:
        lines += ["", "## Findings", ""]
        lines += [f"- new {f.severity} `{f.code}`: {md_cell(f.message)}" for f in diff.findings_added]
        lines += [f"- resolved {f.severity} `{f.code}`: {md_cell(f.message)}" for f in diff.findings_resolved]
    return "\n".join(lines) + "\n"
