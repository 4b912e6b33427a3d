"""`archgen check DIR`: verify a generated repository in place (see :mod:`generator.checks.checks`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..boundary import json_document
from ..checks.checks import Report, check_repository
from ..checks.probes import requirement_text
from ..errors import FINDINGS, OK, UNREADABLE, ArchgenError
from ..untrusted import escape

SHOWN = 20  # files listed per category before "... and N more"


def _listing(title: str, paths: list[str]) -> list[str]:
    if not paths:
        return []
    lines = [f"  {title} ({len(paths)}):"]
    lines += [f"    {escape(p)}" for p in paths[:SHOWN]]
    if len(paths) > SHOWN:
        lines.append(f"    ... and {len(paths) - SHOWN} more")
    return lines


def render(report: Report, directory: Path) -> str:
    """The report as text: the manifest's view, what was checked and skipped, the drift and the problems."""
    lines = [f"archgen check {escape(directory)}"]
    if report.managed:
        lines.append(
            f"manifest: {report.managed} managed files; {len(report.changed)} changed, {len(report.deleted)} deleted, "
            f"{len(report.added)} not from archgen (information, not failures)"
        )
        lines += _listing("changed since generation", report.changed)
        lines += _listing("deleted", report.deleted)
        lines += _listing("added", report.added)
    if report.checked:
        lines.append("checked: " + ", ".join(f"{what} ({n})" for what, n in sorted(report.checked.items())))
    for reason in report.skipped:
        lines.append(f"skipped: {escape(reason)}")
    info = [d for d in report.drift if d.severity != "error"]
    drift = [d for d in report.drift if d.severity == "error"]
    if info:
        lines.append(f"{len(info)} edit(s) that still satisfy the spec (information):")
        lines += [f"  {escape(d.location)}: {escape(d.message)} [{requirement_text(d.related)}]" for d in info]
    if drift:
        lines.append(f"{len(drift)} requirement(s) broken:")
        for d in drift:
            lines += [
                f"  {escape(d.location)}: {escape(d.message)}",
                f"    breaks: {requirement_text(d.related)}",
                f"    fix: {escape(d.hint)}",
            ]
    if report.problems or drift:
        if report.problems:
            lines.append(f"{len(report.problems)} problem(s):")
            lines += [f"  {escape(p)}" for p in report.problems]  # names and reasons only, control characters escaped
        lines.append("FAILED")
    else:
        lines.append("OK")
    return "\n".join(lines)


def report_data(report: Report, directory: Path) -> dict[str, Any]:
    """The report as JSON data (``--format json``), besides its diagnostics: the problems, then the drift."""
    return {
        "directory": str(directory),
        "managed": report.managed,
        "changed": report.changed,
        "deleted": report.deleted,
        "added": report.added,
        "checked": dict(sorted(report.checked.items())),
        "skipped": report.skipped,
    }


def run(directory: Path, fmt: str = "text") -> int:
    """Check the repository in ``directory``; exit 1 when a problem or a broken requirement is found."""
    if not directory.is_dir():
        raise ArchgenError(f"{directory} is not a directory", exit_code=UNREADABLE, hint="pass a generated repository")
    report = check_repository(directory)
    code = OK if report.ok else FINDINGS
    if fmt == "json":
        sys.stdout.write(json_document("check", code, report.problems + report.drift, **report_data(report, directory)))
    else:
        print(render(report, directory))
    return code
