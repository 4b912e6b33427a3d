"""`archgen schema`."""

from __future__ import annotations

import sys
from pathlib import Path

from requirements_spec.schema import json_schema_text

from ..errors import CANT_CREATE, ArchgenError


def run(output: Path | None) -> int:
    text = json_schema_text()
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ArchgenError(f"cannot write {output}: {exc.strerror}", exit_code=CANT_CREATE) from None
    print(f"wrote {output}", file=sys.stderr)
    return 0
