"""`archgen explain KEY` / `--list`, and `archgen rules-doc -o docs/rules.md`."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import CANT_CREATE, OK, USAGE, ArchgenError


def run(key: str, list_keys: bool = False) -> int:
    from ..rules import default_registry
    from ..rules.doc import explain, listing, suggestions

    registry = default_registry()
    if list_keys:
        sys.stdout.write(listing(registry))
        return OK
    if not key:
        raise ArchgenError("name a decision key or finding code", exit_code=USAGE, hint="`archgen explain --list`")
    text = explain(registry, key)
    if text is None:
        close = suggestions(registry, key)
        hint = f"did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else "`archgen explain --list`"
        raise ArchgenError(f"no rule or finding {key!r}", exit_code=USAGE, hint=hint)
    sys.stdout.write(text)
    return OK


def run_doc(output: Path | None) -> int:
    from ..rules import default_registry
    from ..rules.doc import rules_document

    text = rules_document(default_registry())
    if output is None:
        sys.stdout.write(text)
        return OK
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ArchgenError(f"cannot write {output}: {exc.strerror}", exit_code=CANT_CREATE) from None
    print(f"wrote {output}", file=sys.stderr)
    return OK
