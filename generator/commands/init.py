"""`archgen init [--preset NAME] [-o FILE]`."""

from __future__ import annotations

import sys
from pathlib import Path

from requirements_spec import presets
from requirements_spec.schema import SCHEMA_ID

from ..errors import CANT_CREATE, USAGE, ArchgenError


def run(preset: str, output: Path | None, list_presets: bool, force: bool) -> int:
    if list_presets:
        for name in presets.names():
            print(f"{name:<16} {presets.summary(name)}")
        return 0
    try:
        body = presets.text(preset)
    except KeyError:
        raise ArchgenError(
            f"unknown preset {preset!r}", exit_code=USAGE, hint="presets: " + ", ".join(["starter", *presets.names()])
        ) from None
    text = f"# yaml-language-server: $schema={SCHEMA_ID}\n" + body
    if output is None:
        sys.stdout.write(text)
        return 0
    if output.exists() and not force:
        raise ArchgenError(f"{output} already exists", exit_code=CANT_CREATE, hint="use --force to overwrite it")
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ArchgenError(f"cannot write {output}: {exc.strerror}", exit_code=CANT_CREATE) from None
    print(f"wrote {output} (preset {preset}); check it with: archgen validate {output}", file=sys.stderr)
    return 0
