"""The embedded runtime: the model as a library the application imports.

``package/`` is an installable package named after the project (its own ``pyproject.toml``; ``make package``
builds the wheel) with ``predict`` for one entity and ``predict_many`` for many, typed from the feature
service and the model's output. It reads a local, versioned bundle: the trained model, a SQLite snapshot of
the online features and a manifest with checksums. ``scripts/build_bundle.py`` (``make bundle``) builds
bundles centrally, where training and materialization run; ``<project>.bundle`` installs them on the device
atomically, verifies them, keeps the last good one, refuses (or warns about) stale ones and purges old ones.
No Feast, no Triton client and no server at prediction time.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..decide.architecture import Architecture
from .plan import PlannedFile

COMPONENT = "embedded"
DECISIONS = ("serving_runtime", "embedded_bundle")
# what the wheel needs at prediction time: the model's own libraries, nothing of the feature store
DEPENDENCIES = ["numpy>=2,<3", "scikit-learn==1.9.1", "joblib>=1.4"]
KEY_TYPES = {"int64": "int", "int32": "int", "string": "str"}


def embedded_runtime(arch: Architecture) -> bool:
    """The embedded runtime serves the model, reading a feature service."""
    return arch.serving.runtime == "embedded" and bool(arch.spec.serving.models[0].feature_service)


def context(arch: Architecture) -> dict[str, Any]:
    """The template context of the embedded package."""
    from requirements_spec.types import duration_seconds

    from .serving import client_context

    spec = arch.spec
    ctx = client_context(arch)
    entry = ctx["entry"]
    join_keys = [k for k, _ in ctx["entity_keys"]]
    dtypes = {e.join_key: e.dtype for e in spec.entities}
    types = [KEY_TYPES[dtypes.get(k, "string")] for k in join_keys]
    entity = next((e.name for e in spec.entities if e.join_key == (join_keys or [""])[0]), "entity")
    service = spec.service(entry.feature_service or "")
    views = sorted({ref.partition(".")[0] for ref in service.features}) if service is not None else []
    views = [v for v in views if spec.view(v) is not None]
    first = spec.view(views[0]) if views else None
    source = spec.stored_source(first.source) if first is not None else None  # a stream: where it lands
    population = (
        {"name": source.name, "kind": source.kind, "location": source.path if source.kind == "file" else source.table}
        if source is not None
        else {"name": "", "kind": "file", "location": ""}
    )
    freshness = spec.features.freshness if spec.features is not None else None
    project = spec.project.name
    return {
        "project": project,
        "description": spec.project.description or f"predictions of {entry.name}",
        "version": f"{__version__}",
        "dependencies": DEPENDENCIES,
        "model": entry.name,
        "feature_service": entry.feature_service,
        "features": [t.name for t in entry.inputs],
        "outputs": [entry.outputs[0].name],
        "join_keys": join_keys,
        "key_params": ", ".join(f"{k}: {t}" for k, t in zip(join_keys, types, strict=True)),
        "many_type": types[0] if len(types) == 1 else f"tuple[{', '.join(types)}]",
        "key_dtype": types[0] if types else "str",
        "entity_label": entity,
        "unknown_key": "0" if types and types[0] == "int" else "no_such_key",
        "population": population,
        "views": views,
        "freshness": freshness or "none",
        "freshness_s": duration_seconds(freshness) if freshness else None,
        "policy": spec.serving.stale_bundle,
        "retention_s": arch.privacy.retention_s,
        "bundle_var": f"{project.upper()}_BUNDLE_DIR",
        "predict_keys": " ".join(["1001", "1002"] if types and types[0] == "int" else [f"{entity}_0001"]),
    }


def _f(path: str, template: str, ctx: dict[str, Any]) -> PlannedFile:
    return PlannedFile(path, COMPONENT, template=template, context=ctx, decisions=DECISIONS)


def plan(arch: Architecture) -> list[PlannedFile]:
    """The embedded package and its bundle tooling (none unless the runtime is embedded)."""
    if not embedded_runtime(arch):
        return []
    ctx = context(arch)
    pkg = f"package/{ctx['project']}"
    return [
        _f("package/pyproject.toml", "embedded/pyproject.toml.j2", ctx),
        _f("package/README.md", "embedded/README.md.j2", ctx),
        _f("package/build_backend.py", "embedded/build_backend.py.j2", ctx),
        _f(f"{pkg}/__init__.py", "embedded/package_init.py.j2", ctx),
        _f(f"{pkg}/__main__.py", "embedded/main.py.j2", ctx),
        _f(f"{pkg}/bundle.py", "embedded/bundle.py.j2", ctx),
        PlannedFile(f"{pkg}/py.typed", COMPONENT, content=""),
        _f("scripts/build_bundle.py", "embedded/build_bundle.py.j2", ctx),
        _f("tests/test_embedded.py", "embedded/test_embedded.py.j2", ctx),
    ]
