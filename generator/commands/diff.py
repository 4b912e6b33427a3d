"""`archgen diff OLD NEW`: which decisions change when the requirements change, and why."""

from __future__ import annotations

import sys
from pathlib import Path

from requirements_spec import load_spec

from ..errors import FINDINGS, OK


def run(old_path: Path, new_path: Path, fmt: str = "text", exit_code: bool = False) -> int:
    """Print the changes; with ``exit_code``, exit 1 when a decision or finding changes."""
    from ..decide import decide, finding_diagnostic
    from ..views.diffing import diff_architectures, diff_data, diff_markdown, diff_text

    old, new = decide(load_spec(old_path)), decide(load_spec(new_path))
    diff = diff_architectures(old, new)
    code = FINDINGS if exit_code and not diff.empty else OK
    if fmt == "json":
        from ..boundary import json_document

        added = [finding_diagnostic(f, new.spec_file) for f in diff.findings_added]  # the problems the change brings
        sys.stdout.write(json_document("diff", code, added, **diff_data(diff, old, new)))
    else:
        sys.stdout.write((diff_markdown if fmt == "markdown" else diff_text)(diff, old, new))
    return code
