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
    from ..decide import decide
    from ..views.report import plan_json, plan_markdown, plan_text

    arch = decide(load_spec(spec_path))
    if fmt == "json":
        out = plan_json(arch)
    elif fmt == "markdown":
        out = plan_markdown(arch)
    else:
        out = plan_text(arch, color=use_color())
    sys.stdout.write(out)
    return INVALID_SPEC if arch.errors else OK
