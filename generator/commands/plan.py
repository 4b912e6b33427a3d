"""`archgen plan SPEC [--format text|json|markdown]`: every decision, its reasons and the findings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from requirements_spec import load_spec

from ..errors import INVALID_SPEC, OK


def use_color(stream: object = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    stream = stream if stream is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in os.environ


def run(spec_path: Path, fmt: str = "text") -> int:
    """Print the plan; exit 65 when a finding is an error (the plan is printed either way)."""
    from ..boundary import json_document
    from ..decide import decide, finding_diagnostics
    from ..views.report import plan_data, plan_markdown, plan_text

    arch = decide(load_spec(spec_path))
    code = INVALID_SPEC if arch.errors else OK
    if fmt == "json":
        out = json_document("plan", code, finding_diagnostics(arch, errors_only=False), **plan_data(arch))
    elif fmt == "markdown":
        out = plan_markdown(arch)
    else:
        out = plan_text(arch, color=use_color())
    sys.stdout.write(out)
    return code
