"""A sample archgen plugin: the company's license decision and the NOTICE.md it shapes.

``archgen.rules`` adds the decision ``acme_license`` (Apache-2.0 for systems that serve online,
otherwise proprietary); ``archgen.components`` adds ``NOTICE.md`` from this package's own template,
and a probe that ``archgen check`` runs: the notice must still name the decided license.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from generator.decide.context import Outcome, RuleContext
from generator.decide.registry import rule
from generator.plan.plan import PlannedFile

TEMPLATES = Path(__file__).parent / "templates"
NOTICE = "NOTICE.md"


@rule(
    "acme_license",
    title="Company license",
    reads=("serving.mode",),
    choices=("apache-2.0", "proprietary"),
    alternatives=("apache-2.0", "proprietary"),
)
def license_rule(ctx: RuleContext) -> Outcome:
    """Systems that serve online are published under Apache-2.0; the others stay proprietary."""
    online = ctx.spec.serving.mode == "online"
    choice = "apache-2.0" if online else "proprietary"
    other = "proprietary" if online else "apache-2.0"
    return Outcome(
        choice,
        f"serving mode is {ctx.spec.serving.mode}",
        [("serving", "mode")],
        [(other, "company policy for this serving mode")],
    )


def plan(arch: Any) -> list[PlannedFile]:
    decided = arch.decision("acme_license")
    return [
        PlannedFile(
            path=NOTICE,
            component="acme",
            template="acme/NOTICE.md.j2",
            context={"license": decided.choice, "why": decided.rationale},
            decisions=("acme_license",),
        )
    ]


def check(root: Path, report: Any) -> None:
    """The notice still names one of the company's licenses."""
    path = root / NOTICE
    if not path.is_file():
        report.add("acme.notice", NOTICE, "missing: the acme plugin generates it")
        return
    if not any(
        line.startswith("License: ") and line.split(": ", 1)[1] in ("apache-2.0", "proprietary")
        for line in path.read_text(encoding="utf-8").splitlines()
    ):
        report.add("acme.notice", NOTICE, "names no company license (License: apache-2.0 | proprietary)")
    report.count("acme notices")
