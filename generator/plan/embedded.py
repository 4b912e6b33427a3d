"""The embedded runtime: the model as a library the application imports.

``package/`` is an installable package named after the project (its own ``pyproject.toml``; ``make package``
builds the wheel) with ``predict`` for one entity and ``predict_many`` for many, typed from the feature
service and the model's output. It reads a local, versioned bundle: the trained model, a SQLite snapshot of
the online features and a manifest with checksums. ``scripts/build_bundle.py`` (``make bundle``) builds
bundles centrally, where training and materialization run; ``<project>.bundle`` installs them on the device
atomically, verifies them, keeps the last good one, refuses (or warns about) stale ones and purges old ones.
No Feast, no Triton client and no server at prediction time.

On-demand views: the bundle stores only the features kept in the online store (the service's view features and
every view field an on-demand view of the service reads), never the on-demand outputs, which depend on the
request. Each on-demand transformation travels in the bundle as Feast itself stores it (the registry's UDF,
pickled by value with dill; feature_repo/on_demand.py stays the one place to edit it), and ``predict`` takes
the request-time fields as typed keyword arguments, computes the on-demand features in process and hands the
model its inputs in the served order. dill and pandas are then dependencies, imported at the first prediction.

A model that reads no feature service (a tensor such as a camera frame comes with each call) needs no bundle:
the package alone, whose ``predict`` checks the declared inputs and answers the declared outputs, with a
placeholder model of those shapes until the team drops in the real one. Every embedded package gets a live load
test (``tests/test_fitness_latency.py``): predict in process at the spec's rate, against the spec's p99.
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
# what on-demand transformations need besides: the UDF unpickled (dill) and run on a frame (pandas)
ON_DEMAND_DEPENDENCIES = ["dill>=0.3.8", "pandas>=2,<3"]
KEY_TYPES = {"int64": "int", "int32": "int", "string": "str"}
# spec dtype -> the Python type predict takes for a request value
PY_TYPES = {
    "int32": "int",
    "int64": "int",
    "float32": "float",
    "float64": "float",
    "string": "str",
    "bool": "bool",
    "bytes": "bytes",
    "unix_timestamp": "datetime",
}


def embedded_runtime(arch: Architecture) -> bool:
    """The embedded runtime serves the model, reading a feature service."""
    return arch.serving.runtime == "embedded" and bool(arch.spec.serving.models[0].feature_service)


def embedded_tensor_runtime(arch: Architecture) -> bool:
    """The embedded runtime serves a model that reads no features: its inputs come with each call."""
    return arch.serving.runtime == "embedded" and not arch.spec.serving.models[0].feature_service


def _column(ref: str) -> str:
    """A feature's name as Feast gives it with full feature names: ``view__field``."""
    view, _, field = ref.partition(".")
    return f"{view}__{field}"


def _stored_dtype(arch: Architecture, ref: str) -> str:
    """The dtype of a view field the online store keeps (a hashed or encrypted personal field is text)."""
    view, _, field = ref.partition(".")
    v = arch.spec.view(view)
    served = {f.name: f.dtype for f in v.served_fields} if v is not None else {}
    return served.get(field, "string")


def on_demand(arch: Architecture, service: str) -> dict[str, Any]:
    """What the embedded library reads and computes for a feature service.

    ``stored``: the features the bundle keeps (the service's view features, then every view field an on-demand
    view of the service reads), each ``{"column": view__field, "ref": view:field, "dtype"}``; ``inputs``: the
    column of each model input in the served order (a stored feature or an on-demand output); ``views``: the
    on-demand views the service reads, with the stored columns and request fields each reads and its outputs;
    ``request``: every request field they need (Feast asks for every field of a request source they read).
    """
    from requirements_spec.models import RequestSourceSpec

    from .feature_repo import protected_ref, served_features

    spec, fs = arch.spec, arch.feature_store
    served = served_features(arch, service)
    odfvs = {o.name: o for o in spec.features.on_demand} if spec.features is not None else {}
    stored: dict[str, dict[str, str]] = {}
    for ref in served:
        if ref.partition(".")[0] not in odfvs:
            stored.setdefault(ref, {"column": _column(ref), "ref": ref.replace(".", ":", 1), "dtype": ""})
    views: list[dict[str, Any]] = []
    request: dict[str, dict[str, str]] = {}
    for name in dict.fromkeys(ref.partition(".")[0] for ref in served if ref.partition(".")[0] in odfvs):
        o = odfvs[name]
        reads: dict[str, str] = {}  # stored column -> the field name the transformation also reads it by
        fields: list[str] = []
        for ref in o.inputs:
            src = spec.source(ref.partition(".")[0])
            if isinstance(src, RequestSourceSpec):
                for f in src.fields:
                    request.setdefault(f.name, {"name": f.name, "dtype": f.dtype, "source": src.name})
                    fields += [f.name] if f.name not in fields else []
            elif fs is not None and ref not in fs.dropped_fields:
                read = protected_ref(ref, fs)
                stored.setdefault(read, {"column": _column(read), "ref": read.replace(".", ":", 1), "dtype": ""})
                reads[_column(read)] = read.partition(".")[2]
        views.append({"name": o.name, "stored": reads, "request": fields, "outputs": [f.name for f in o.fields]})
    for ref, entry in stored.items():
        entry["dtype"] = _stored_dtype(arch, ref)
    return {
        "stored": list(stored.values()),
        "inputs": [_column(ref) for ref in served],
        "views": views,
        "request": list(request.values()),
    }


def context(arch: Architecture) -> dict[str, Any]:
    """The template context of the embedded package."""
    from requirements_spec.types import duration_seconds

    from ..render.python_layout import literal
    from .fitness import store_markers
    from .serving import client_context

    spec = arch.spec
    ctx = client_context(arch)
    entry = ctx["entry"]
    join_keys = [k for k, _ in ctx["entity_keys"]]
    dtypes = {e.join_key: e.dtype for e in spec.entities}
    types = [KEY_TYPES[dtypes.get(k, "string")] for k in join_keys]
    entity = next((e.name for e in spec.entities if e.join_key == (join_keys or [""])[0]), "entity")
    reads = on_demand(arch, entry.feature_service or "")
    found = [spec.view(name) for name in sorted({s["ref"].partition(":")[0] for s in reads["stored"]})]
    read_views = [v for v in found if v is not None]
    views = [v.name for v in read_views]
    # the population: a view keyed by every join key (its source has them all), else the first view
    keyed = [v for v in read_views if {_join_key(arch, e) for e in v.entities} >= set(join_keys)]
    first = (keyed or read_views)[0] if read_views else None
    source = spec.stored_source(first.source) if first is not None else None  # a stream: where it lands
    population = (
        {"name": source.name, "kind": source.kind, "location": source.path if source.kind == "file" else source.table}
        if source is not None
        else {"name": "", "kind": "file", "location": ""}
    )
    freshness = spec.features.freshness if spec.features is not None else None
    project = spec.project.name
    request = [{**r, "type": PY_TYPES[r["dtype"]]} for r in reads["request"]]
    key_dtypes = {k: dtypes.get(k, "string") for k in join_keys}
    # the package's and the bundle builder's view of the data: stored columns, model inputs, on-demand views
    data = {
        "stored": {s["column"]: s["dtype"] for s in reads["stored"]},
        "refs": {s["column"]: [s["ref"], s["dtype"]] for s in reads["stored"]},
        "inputs": reads["inputs"],
        "on_demand": {v["name"]: {k: v[k] for k in ("stored", "request", "outputs")} for v in reads["views"]},
        "request": {r["name"]: r["dtype"] for r in reads["request"]},
        "keys": key_dtypes,
    }
    many_param = "keys" if "keys" not in data["request"] else "entity_keys"
    return {
        "project": project,
        "description": spec.project.description or f"predictions of {entry.name}",
        "version": f"{__version__}",
        "dependencies": DEPENDENCIES + (ON_DEMAND_DEPENDENCIES if reads["views"] else []),
        "model": entry.name,
        "feature_service": entry.feature_service,
        "features": [t.name for t in entry.inputs],
        "outputs": [entry.outputs[0].name],
        "join_keys": join_keys,
        "key_tuple": f"({join_keys[0]},)" if len(join_keys) == 1 else f"({', '.join(join_keys)})",
        "key_params": ", ".join(f"{k}: {t}" for k, t in zip(join_keys, types, strict=True)),
        "many_type": types[0] if len(types) == 1 else f"tuple[{', '.join(types)}]",
        "key_types": types,
        "key_dtype": types[0] if types else "str",
        "entity_label": entity,
        "population": population,
        "views": views,
        "freshness": freshness or "none",
        "freshness_s": duration_seconds(freshness) if freshness else None,
        "policy": spec.serving.stale_bundle,
        "retention_s": arch.privacy.retention_s,
        "bundle_var": f"{project.upper()}_BUNDLE_DIR",
        # on-demand features: what the bundle stores, what predict computes from the request
        "on_demand": reads["views"],
        "request": request,
        "request_params": "".join(f", {r['name']}: {r['type']}" for r in request),
        "request_many_params": "".join(f", {r['name']}: Sequence[{r['type']}]" for r in request),
        "request_args": ", ".join(f"{r['name']}={r['name']}" for r in request),
        "many_param": many_param,
        "stored": reads["stored"],
        "stored_literal": literal(data["stored"], prefix=len("STORED: dict[str, str] = ")),
        "inputs_literal": literal(data["inputs"], prefix=len("INPUTS = ")),
        "on_demand_literal": literal(data["on_demand"], prefix=len("ON_DEMAND: dict[str, dict[str, Any]] = ")),
        "refs_literal": literal(data["refs"], prefix=len("STORED: dict[str, list[str]] = ")),
        "request_literal": literal(data["request"], prefix=len("REQUEST: dict[str, str] = ")),
        "keys_literal": literal(data["keys"], prefix=len("KEYS: dict[str, str] = ")),
        "keys_pairs": [[k, d] for k, d in data["keys"].items()],
        "request_pairs": [[k, d] for k, d in data["request"].items()],
        "cli_options_literal": literal({**data["keys"], **data["request"]}, prefix=len("OPTIONS = ")),
        "store_markers": store_markers(arch),  # the servers the feature store needs (the Feast comparison test)
        "uses_datetime": any(r["dtype"] == "unix_timestamp" for r in request),
        "tensor": False,
        **_live(arch),
    }


def _join_key(arch: Architecture, entity: str) -> str:
    found = arch.spec.entity(entity)
    return found.join_key if found is not None else entity


def _f(path: str, template: str, ctx: dict[str, Any], decisions: tuple[str, ...] = DECISIONS) -> PlannedFile:
    return PlannedFile(path, COMPONENT, template=template, context=ctx, decisions=decisions)


def _live(arch: Architecture) -> dict[str, Any]:
    """What the live load test of predict (tests/test_fitness_latency.py) holds the library to."""
    from ..views.docs import SPEC_COPY
    from .fitness import LOCAL_MAX_RPS, requirement

    serving = arch.spec.serving
    return {
        "latency": requirement(arch, "serving.latency_p99_ms", serving.latency_p99_ms),
        "throughput": requirement(arch, "serving.throughput_rps", serving.throughput_rps),
        "local_max_rps": LOCAL_MAX_RPS,
        "spec_file": SPEC_COPY,
    }


def tensor_context(arch: Architecture) -> dict[str, Any]:
    """The template context of the embedded package of a model that reads no features."""
    from ..decide.pipeline_shapes import TENSOR_NUMPY
    from ..render.python_layout import literal

    spec = arch.spec
    model = spec.serving.models[0]
    inputs = [{"name": t.name, "dtype": t.dtype, "dims": list(t.dims)} for t in model.inputs]
    outputs = [{"name": t.name, "dtype": t.dtype, "dims": list(t.dims)} for t in model.outputs]

    def declared(tensors: list[dict[str, Any]]) -> dict[str, list[Any]]:
        return {t["name"]: [TENSOR_NUMPY[t["dtype"]], t["dims"]] for t in tensors}

    return {
        "project": spec.project.name,
        "description": spec.project.description or f"predictions of {model.name}",
        "version": f"{__version__}",
        "dependencies": ["numpy>=2,<3"],
        "model": model.name,
        "tensor": True,
        "inputs": inputs,
        "outputs": outputs,
        "inputs_literal": literal(declared(inputs), prefix=len("INPUTS: dict[str, tuple[str, list[int]]] = ")),
        "outputs_literal": literal(declared(outputs), prefix=len("OUTPUTS: dict[str, tuple[str, list[int]]] = ")),
        "params": "".join(f", {t['name']}: Any" for t in inputs),  # keyword-only: predict(*, image: Any)
        **_live(arch),
    }


def _tensor_plan(arch: Architecture) -> list[PlannedFile]:
    """The package of a model that reads no features: predict on the inputs each call brings, no bundle."""
    ctx = tensor_context(arch)
    pkg = f"package/{ctx['project']}"
    runtime = ("serving_runtime",)
    return [
        _f("package/pyproject.toml", "embedded/pyproject.toml.j2", ctx, runtime),
        _f("package/README.md", "embedded/tensor_README.md.j2", ctx, runtime),
        _f("package/build_backend.py", "embedded/build_backend.py.j2", ctx, runtime),
        _f(f"{pkg}/__init__.py", "embedded/tensor_init.py.j2", ctx, runtime),
        PlannedFile(f"{pkg}/py.typed", COMPONENT, content=""),
        _f("scripts/predict.py", "embedded/tensor_predict.py.j2", ctx, runtime),
        _f("tests/test_embedded.py", "embedded/test_tensor.py.j2", ctx, runtime),
        _f("tests/test_fitness_latency.py", "embedded/test_fitness_latency.py.j2", ctx, runtime),
    ]


def plan(arch: Architecture) -> list[PlannedFile]:
    """The embedded package and its bundle tooling (none unless the runtime is embedded)."""
    if embedded_tensor_runtime(arch):
        return _tensor_plan(arch)
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
        _f("scripts/predict.py", "embedded/predict.py.j2", ctx),
        _f("tests/test_embedded.py", "embedded/test_embedded.py.j2", ctx),
        _f("tests/test_fitness_latency.py", "embedded/test_fitness_latency.py.j2", ctx),
    ]
