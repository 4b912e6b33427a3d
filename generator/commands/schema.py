"""`archgen schema`."""

from __future__ import annotations

import sys
from pathlib import Path

from requirements_spec.schema import json_schema_text

from ..write.outfile import write_output


def run(output: Path | None, force: bool = False) -> int:
    """Print the JSON Schema of the spec, or write it to ``output``."""
    text = json_schema_text()
    if output is None:
        sys.stdout.write(text)
        return 0
    write_output(output, text.encode("utf-8"), force=force, regenerable=lambda head: head == text.encode()[: len(head)])
    print(f"wrote {output}", file=sys.stderr)
    return 0
