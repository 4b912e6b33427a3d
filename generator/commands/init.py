"""`archgen init [--preset NAME] [-o FILE] [--list] [--force]`: write a preset spec to start from."""

from __future__ import annotations

import sys
from difflib import get_close_matches
from pathlib import Path

from requirements_spec import presets

from ..errors import CANT_CREATE, USAGE, ArchgenError
from ..write.outfile import write_output


def run(preset: str, output: Path | None, list_presets: bool, force: bool) -> int:
    """Write the commented spec of ``preset`` to ``output`` (stdout), or list the presets."""
    if list_presets:
        width = max(len(name) for name in presets.names()) + 2
        for name in presets.names():
            default = "  (default)" if name == presets.STARTER else ""
            print(f"{name:<{width}}{presets.summary(name)}{default}")
        return 0
    try:
        text = presets.text(preset)
    except KeyError:
        close = [n for n in presets.names() if n.startswith(preset)] or get_close_matches(preset, presets.names(), n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        raise ArchgenError(
            f"unknown preset {preset!r}",
            exit_code=USAGE,
            hint=hint + "presets: " + ", ".join(presets.names()) + " (archgen init --list)",
        ) from None
    if output is None:
        sys.stdout.write(text)
        return 0
    if output.is_dir() and not output.is_symlink():
        raise ArchgenError(f"{output} is a directory", exit_code=CANT_CREATE, hint="name the spec file to write")
    write_output(output, text.encode("utf-8"), force=force)  # atomic: --force never leaves half a spec
    print(
        f"wrote {output} (preset {preset}); check it with: archgen validate {output}\n"
        f"    editor completion: archgen schema -o spec.schema.json, then put "
        f"`# yaml-language-server: $schema=spec.schema.json` on the first line",
        file=sys.stderr,
    )
    return 0
