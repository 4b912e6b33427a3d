"""`archgen validate SPEC [--format text|json]`."""

from __future__ import annotations

import sys
from pathlib import Path

from requirements_spec import load_spec

from ..boundary import json_document


def run(spec_path: Path, fmt: str = "text") -> int:
    """Validate one spec and say what it holds; an invalid one raises ``SpecError`` with every problem."""
    loaded = load_spec(spec_path)
    spec = loaded.spec
    if fmt == "json":
        sys.stdout.write(json_document("validate", 0, [], project=spec.project.name))
        return 0
    views = len(spec.features.views) if spec.features else 0
    print(
        f"{loaded.filename}: valid — project {spec.project.name}: {len(spec.entities)} entities, "
        f"{len(spec.sources)} sources, {views} feature views, {len(spec.serving.models)} models"
    )
    return 0
