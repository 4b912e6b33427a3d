"""The plan of an Architecture as text (terminal), JSON data (tools) and Markdown (review documents).

Pure: returns strings and data; the CLI prints them. The JSON shape is documented in docs/plan-json.md;
:func:`generator.boundary.json_document` adds the keys every command's document has (docs/json-output.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..decide.architecture import Architecture, Decision, Finding, Requirement

SECTIONS = {
    "feature_store": "Feature store",
    "training": "Training",
    "serving": "Serving",
    "pipelines": "Serving",
    "privacy": "Privacy and autonomy",
    "delivery": "Delivery and deployment",
}
OTHER_SECTION = "Rules from installed packages"


def section_of(decision: Decision) -> str:
    """The section of the plan a decision is listed under."""
    return SECTIONS.get(decision.rule.split(".", 1)[0], OTHER_SECTION)


def grouped(decisions: Iterable[Decision]) -> list[tuple[str, list[Decision]]]:
    """The decisions by section, in order."""
    out: dict[str, list[Decision]] = {}
    for d in decisions:
        out.setdefault(section_of(d), []).append(d)
    order = [*SECTIONS.values(), OTHER_SECTION]
    return sorted(out.items(), key=lambda kv: order.index(kv[0]))


def counts(arch: Architecture) -> dict[str, int]:
    """How many decisions, errors, warnings and waived warnings."""
    return {
        "decisions": len(arch.decisions),
        "errors": len(arch.errors),
        "warnings": len(arch.warnings),
        "waived": sum(1 for f in arch.warnings if f.waiver is not None),
    }


def value_text(value: Any) -> str:
    """A value as the plan shows it: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def where(req: Requirement) -> str:
    """``line N``, or ``default`` for a value not written in the spec."""
    return f"line {req.line}" if req.line else "default"


def short_value(value: Any, limit: int = 60) -> str:
    """A value cut to ``limit`` characters."""
    text = value_text(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------- JSON
def plan_data(arch: Architecture) -> dict[str, Any]:
    """The plan as JSON data (docs/plan-json.md)."""
    c = counts(arch)
    dumped = arch.model_dump(mode="json")
    components = {
        k: dumped[k] for k in ("feature_store", "training", "serving", "privacy", "deployment", "mlops_level")
    }
    return {
        "spec_file": arch.spec_file,
        "project": arch.spec.project.name,
        "feasible": not arch.errors,
        "summary": c,
        "decisions": [d.model_dump(mode="json") for d in arch.decisions],
        "not_applicable": [n.model_dump(mode="json") for n in arch.not_applicable],
        "findings": [f.model_dump(mode="json") for f in arch.findings],
        "architecture": components,
    }


# ---------------------------------------------------------------- text
class Style:
    """ANSI styling, or none."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def bold(self, text: str) -> str:
        """``text`` in bold."""
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        """``text`` dimmed."""
        return self._wrap("2", text)

    def green(self, text: str) -> str:
        """``text`` in green."""
        return self._wrap("32", text)

    def red(self, text: str) -> str:
        """``text`` in bold red."""
        return self._wrap("1;31", text)

    def yellow(self, text: str) -> str:
        """``text`` in yellow."""
        return self._wrap("33", text)


def plan_text(arch: Architecture, *, color: bool = False) -> str:
    """The plan as text: every decision with its reasons and alternatives, then the findings."""
    s = Style(color)
    c = counts(arch)
    lines = [
        s.bold(f"{arch.spec.project.name}")
        + f" ({arch.spec_file}): {c['decisions']} decisions, {_n(c['errors'], 'error')}, "
        + _n(c["warnings"], "warning")
        + (f" ({c['waived']} waived)" if c["waived"] else ""),
    ]
    for section, decisions in grouped(arch.decisions):
        lines += ["", s.bold(section)]
        for d in decisions:
            lines.append(f"  {s.bold(d.key)} = {s.green(d.choice)}  {s.dim('[' + d.rule + ']')}")
            lines.append(f"    why: {d.rationale}")
            reads = ", ".join(f"{r.path}={short_value(r.value)} ({where(r)})" for r in d.requirements)
            lines.append(s.dim(f"    read: {reads}"))
            for a in d.alternatives:
                lines.append(s.dim(f"    not {a.choice}: {a.reason}"))
    if arch.not_applicable:
        lines += ["", s.bold("Not applicable (not decided)")]
        for n in arch.not_applicable:
            lines.append(f"  {s.bold(n.key)}  {s.dim('[' + n.rule + ']')}: {n.reason}")
    lines += ["", s.bold("Findings")]
    if not arch.findings:
        lines.append("  none: the requirements are consistent")
    for f in arch.findings:
        lines += finding_text(f, s)
    if arch.errors:
        lines += ["", s.red(f"{_n(len(arch.errors), 'error')}: nothing can be generated until the spec changes")]
    return "\n".join(lines) + "\n"


def finding_text(f: Finding, s: Style) -> list[str]:
    """One finding as text lines: severity, code, message, requirements, fix."""
    if f.severity == "error":
        label = s.red("ERROR")
    elif f.waiver is not None:
        label = s.dim("waived")
    else:
        label = s.yellow("warning")
    out = [f"  {label} {s.bold(f.code)}: {f.message}"]
    out.append("    requirements: " + ", ".join(f"{r.path} ({where(r)})" for r in f.requirements))
    out.append(f"    fix: {f.fix}")
    if f.waiver is not None:
        by = f" by {f.waiver.accepted_by}" if f.waiver.accepted_by else ""
        out.append(f"    accepted{by} (line {f.waiver.line}): {f.waiver.justification}")
    return out


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


# ---------------------------------------------------------------- markdown
def md_cell(text: str) -> str:
    """``text`` safe in a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def plan_markdown(arch: Architecture) -> str:
    """The plan as Markdown (a review document)."""
    c = counts(arch)
    lines = [
        f"# Architecture decisions: {md_cell(arch.spec.project.name)}",
        "",
        f"Generated by `archgen plan` from `{md_cell(arch.spec_file)}`: {c['decisions']} decisions, "
        f"{_n(c['errors'], 'error')}, {_n(c['warnings'], 'warning')}"
        + (f" ({c['waived']} waived)" if c["waived"] else "")
        + ".",
    ]
    lines += ["", "## Findings", ""]
    if not arch.findings:
        lines.append("None: the requirements are consistent.")
    else:
        lines += ["| severity | code | finding | requirements | fix |", "| --- | --- | --- | --- | --- |"]
        for f in arch.findings:
            sev = "waived warning" if f.waiver is not None else f.severity
            reqs = ", ".join(f"`{r.path}` ({where(r)})" for r in f.requirements)
            msg = md_cell(f.message)
            if f.waiver is not None:
                by = f" by {f.waiver.accepted_by}" if f.waiver.accepted_by else ""
                msg += f" — *accepted{md_cell(by)}: {md_cell(f.waiver.justification)}*"
            lines.append(f"| {sev} | `{f.code}` | {msg} | {reqs} | {md_cell(f.fix)} |")
    for section, decisions in grouped(arch.decisions):
        lines += ["", f"## {section}", "", "| decision | choice | why |", "| --- | --- | --- |"]
        lines += [f"| `{d.key}` | **{md_cell(d.choice)}** | {md_cell(d.rationale)} |" for d in decisions]
        for d in decisions:
            lines += ["", f"### `{d.key}`: {md_cell(d.choice)}", "", md_cell(d.rationale), ""]
            lines.append(f"Rule `{d.rule}` read:")
            lines.append("")
            lines += [f"- `{r.path}` = `{md_cell(short_value(r.value, 80))}` ({where(r)})" for r in d.requirements]
            if d.alternatives:
                lines += ["", "Alternatives rejected:", ""]
                lines += [f"- **{md_cell(a.choice)}**: {md_cell(a.reason)}" for a in d.alternatives]
    if arch.not_applicable:
        lines += ["", "## Not applicable", "", "| decision | why it is not made |", "| --- | --- |"]
        lines += [f"| `{n.key}` | {md_cell(n.reason)} |" for n in arch.not_applicable]
    return "\n".join(lines) + "\n"
