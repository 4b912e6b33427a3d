"""Waivers: a spec accepts a warning with a written justification; a waiver that cannot apply is a finding.

:func:`mark_waived` attaches each waiver to the warning it names. The three findings below are late
checks: they run after every other check and read its findings in ``ctx.findings``.
"""

from __future__ import annotations

from collections.abc import Iterator

from .architecture import Finding, Waived
from .context import Conflict, ReqPath, RuleContext
from .registry import FindingKind, finding


def _path(i: int) -> ReqPath:
    return ("waivers", i, "finding")


def mark_waived(ctx: RuleContext, found: list[Finding]) -> list[Finding]:
    """The findings, each warning that a waiver names carrying that waiver (its justification and line)."""
    waivers = ctx.spec.waivers
    if not waivers:
        return found
    by_code = {w.finding: (i, w) for i, w in enumerate(waivers)}
    out: list[Finding] = []
    for f in found:
        hit = by_code.get(f.code)
        kind = ctx.registry.kinds.get(f.code)
        if hit is not None and (f.severity == "warning" or (kind is not None and kind.waivable)):
            i, w = hit
            line = ctx.req(_path(i)).line
            # a waivable error, once justified, no longer stops generation: it is kept as a waived warning
            f = f.model_copy(
                update={
                    "severity": "warning",
                    "waiver": Waived(justification=w.justification, accepted_by=w.accepted_by, line=line),
                }
            )
        out.append(f)
    return out


def _is_scanner_waiver(code: str) -> bool:
    from ..plan.security import is_scanner_waiver

    return is_scanner_waiver(code)


def _waived(ctx: RuleContext) -> Iterator[tuple[ReqPath, str, FindingKind | None]]:
    """Each waiver of the spec: where it names its code, the code, and the kind of finding it names (if any)."""
    for i, w in enumerate(ctx.spec.waivers):
        yield _path(i), w.finding, ctx.registry.kinds.get(w.finding)


@finding("waiver.not_waivable", "warning", title="A waiver names an error", late=True)
def not_waivable(ctx: RuleContext) -> Iterator[Conflict]:
    """Errors are infeasible requirements; no justification makes them feasible (except the few marked
    waivable, such as a risk a team accepts). Fix the spec instead.
    """
    for path, code, kind in _waived(ctx):
        if kind is not None and kind.severity == "error" and not kind.waivable:
            yield Conflict(
                f"waiver for {code!r}: errors cannot be waived",
                [path],
                "remove the waiver and change the requirements the error cites",
            )


@finding("waiver.unknown_finding", "warning", title="A waiver names an unknown finding code", late=True)
def unknown_finding(ctx: RuleContext) -> Iterator[Conflict]:
    """The code is not a finding archgen (or an installed rule package) can report: a typo, or a finding that
    was renamed. `archgen explain --list` lists the codes.
    """
    for path, code, kind in _waived(ctx):
        # a scanner check (checkov.<id>, bandit.<id>) is skipped in .security/ with its justification
        if kind is None and not _is_scanner_waiver(code):
            yield Conflict(
                f"waiver for {code!r}: no such finding code",
                [path],
                "fix the code (see `archgen explain --list`) or remove the waiver",
            )


@finding("waiver.unused", "warning", title="A waiver accepts a warning that is not reported", late=True)
def unused(ctx: RuleContext) -> Iterator[Conflict]:
    """The spec no longer triggers the waived warning; remove the waiver so it cannot hide a future one."""
    fired = {f.code for f in ctx.findings}
    for path, code, kind in _waived(ctx):
        if kind is not None and (kind.severity == "warning" or kind.waivable) and code not in fired:
            yield Conflict(f"waiver for {code!r}: the spec does not trigger that warning", [path], "remove the waiver")


RULES = ()
FINDINGS = (not_waivable, unknown_finding, unused)
