"""`archgen validate SPEC`."""

from __future__ import annotations

import json
from pathlib import Path

from requirements_spec import SpecError, load_spec


def run(spec_path: Path, fmt: str = "text") -> int:
    if fmt == "json":
        try:
            loaded = load_spec(spec_path)
        except SpecError as exc:
            print(json.dumps({"valid": False, "diagnostics": [d.as_dict() for d in exc.diagnostics]}, indent=2))
            return exc.exit_code
        print(json.dumps({"valid": True, "diagnostics": [], "project": loaded.spec.project.name}, indent=2))
        return 0
    loaded = load_spec(spec_path)
    spec = loaded.spec
    views = len(spec.features.views) if spec.features else 0
    print(
        f"{loaded.filename}: valid — project {spec.project.name}: {len(spec.entities)} entities, "
        f"{len(spec.sources)} sources, {views} feature views, {len(spec.serving.models)} models"
    )
    return 0
