"""`archgen diff OLD NEW`: which decisions change when the requirements change, and why."""

from __future__ import annotations

import sys
from pathlib import Path

from requirements_spec import load_spec

from ..errors import FINDINGS, OK


def run(old_path: Path, new_path: Path, fmt: str = "text", exit_code: bool = False) -> int:
    from ..decide import decide
    from ..views.diffing import diff_architectures, diff_json, diff_markdown, diff_text

    old, new = decide(load_spec(old_path)), decide(load_spec(new_path))
    diff = diff_architectures(old, new)
    render = {"json": diff_json, "markdown": diff_markdown}.get(fmt, diff_text)
    sys.stdout.write(render(diff, old, new))
    return FINDINGS if exit_code and not diff.empty else OK
