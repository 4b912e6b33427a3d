"""The online serving path: the client (Feast online features, then Triton over the decided protocol),
the local Triton runtime, the CPU stand-ins of models that cannot run here, and per serving mode the
batch scorer or the broker worker.

Runtime ``python_rest`` has no Triton at all: a FastAPI service (``serving/rest_app.py``) predicts in
process (``serving/predictor.py``: Feast online features, then the ``model.joblib`` training exports into
``model_repository/<model>/<N>/``), and ``serving/client.py`` is its HTTP client.
"""

from __future__ import annotations

from typing import Any

from requirements_spec.models import Spec

from ..decide.architecture import Architecture, TritonModelArch
from ..decide.pipeline_shapes import TENSOR_NUMPY, demo_context, standin_context
from . import system_data
from .model_repository import models_by_name
from .plan import PlannedFile, rendered
from .triton_config import ARTEFACTS, config_text, needs_local_override

COMPONENT = "serving"
DECISIONS = ("serving_runtime", "protocol")
REST_PORT = 8080  # the REST service's port in production (deploy/); locally `make serve-start` picks a free one
MODEL_RELOAD_S = 30  # how often the REST service looks for a newer model version (Triton's poll interval too)
ARTEFACT = "model.joblib"  # what training exports into each version folder
# spec field dtype -> numpy dtype of a request value or an entity key (tensors: pipeline_shapes.TENSOR_NUMPY)
FIELD_NUMPY = {"float32": "float32", "float64": "float64", "int32": "int32", "int64": "int64", "string": "str"}


def worker_broker(arch: Architecture) -> str | None:
    """The broker serving/worker.py consumes (async serving; Redis when the spec names none), or None."""
    if arch.serving.mode != "async" or not arch.triton_serves:
        return None
    return arch.spec.existing.broker if arch.spec.existing.broker != "none" else "redis"


def _on_demand_inputs(spec: Spec, inputs: list[str], views: list[str], requests: list[list[str]]) -> None:
    """Add what an on-demand view's inputs read: the views to ``views``, request values to ``requests``."""
    for inp in inputs:
        src_name = inp.partition(".")[0]
        src = spec.source(src_name)
        if src is not None and src.kind == "request":  # Feast asks for every field of the source
            for f in src.fields:
                if [f.name, FIELD_NUMPY.get(f.dtype, "str")] not in requests:
                    requests.append([f.name, FIELD_NUMPY.get(f.dtype, "str")])
        elif src_name not in views:
            views.append(src_name)


def _request_keys(spec: Spec, service: str | None) -> tuple[list[list[str]], list[list[str]]]:
    """The entity join keys and the request-source values a request of the feature service carries."""
    svc = spec.service(service or "")
    if svc is None or spec.features is None:
        return [], []
    views: list[str] = []
    requests: list[list[str]] = []
    odfvs = {v.name: v for v in spec.features.on_demand}
    for ref in svc.features:
        view = ref.partition(".")[0]
        if view in odfvs:
            _on_demand_inputs(spec, odfvs[view].inputs, views, requests)
        elif view not in views:
            views.append(view)
    keys: list[list[str]] = []
    for name in views:
        v = spec.view(name)
        for ent in v.entities if v is not None else []:
            e = spec.entity(ent)
            if e is not None and [e.join_key, FIELD_NUMPY[e.dtype]] not in keys:
                keys.append([e.join_key, FIELD_NUMPY[e.dtype]])
    return keys, requests


def client_context(arch: Architecture) -> dict[str, Any]:
    """The template context of the serving client: the entry model, its feature service, keys and requests."""
    models = models_by_name(arch)
    entry = models[arch.serving.entrypoint]
    service = entry.feature_service
    keys, requests = _request_keys(arch.spec, service)
    features = (
        [[t.name, t.triton_dtype.removeprefix("TYPE_"), TENSOR_NUMPY[t.dtype]] for t in entry.inputs] if service else []
    )
    return {
        "entry": entry,
        "feature_service": service,
        "features": [[n, "BYTES" if d == "STRING" else d, np_] for n, d, np_ in features],
        "entity_keys": keys,
        "request_fields": requests,
        "inputs": [[t.name, t.triton_dtype.removeprefix("TYPE_"), t.dims] for t in entry.inputs],
        "outputs": [t.name for t in entry.outputs],
    }


def _standins(arch: Architecture) -> list[TritonModelArch]:
    return [m for m in sorted(arch.serving.models, key=lambda x: x.name) if needs_local_override(m)]


def _local_models(arch: Architecture) -> list[PlannedFile]:
    models = models_by_name(arch)
    files = []
    for m in _standins(arch):
        base = f"serving/local_models/{m.name}"
        files.append(PlannedFile(f"{base}/config.pbtxt", COMPONENT, content=config_text(m, models, local=True)))
        artefact = ARTEFACTS.get(m.backend, "the model file")
        standin = standin_context(arch, m, f"drop {artefact} into model_repository/{m.name}/1/")
        if m.runs_here_as_python and standin is not None:
            files.append(
                PlannedFile(
                    f"{base}/model.py",
                    COMPONENT,
                    template="model_repository/pipeline_standin.py.j2",
                    context=standin,
                    decisions=DECISIONS,
                )
            )
        elif m.runs_here_as_python:
            files.append(
                PlannedFile(
                    f"{base}/model.py",
                    COMPONENT,
                    template="model_repository/placeholder_model.py.j2",
                    context={"model": m, "standin": True, "trained": m.name in arch.training.trained_models},
                    decisions=DECISIONS,
                )
            )
    return files


def _readme_models(arch: Architecture) -> list[dict[str, Any]]:
    rows = []
    for m in sorted(arch.serving.models, key=lambda x: x.name):
        if m.kind == "ensemble":
            what = "Triton ensemble (platform ensemble): " + " -> ".join(m.steps)
        elif m.kind == "bls":
            what = "python BLS pipeline with control flow: " + " -> ".join(m.steps)
        elif m.runs_here_as_python:
            what = (
                f"drop `{ARTEFACTS.get(m.backend, 'the model file')}` into `1/`; served locally by its python stand-in"
            )
        elif m.placeholder:
            what = "PLACEHOLDER `1/model.py`: replace it with the real model code"
        else:
            what = "`1/model.py` serves `model.joblib`, exported by `make train`"
        step = m.kind == "model" and m.name in (arch.spec.serving.pipeline.steps if arch.spec.serving.pipeline else [])
        weights = (
            f"`{ARTEFACTS.get(m.backend, 'the model file')}` into `model_repository/{m.name}/1/` (the stand-in "
            f"`serving/local_models/{m.name}/model.py` then serves only where the `{m.backend}` backend is missing)"
            if m.runs_here_as_python
            else f"replace `model_repository/{m.name}/1/model.py` with the model's code, loading its weights from `1/`"
        )
        rows.append(
            {
                "name": m.name,
                "backend": m.backend or m.platform,
                "kind": m.instance_kind,
                "what": what,
                "step": step,
                "weights": weights,
            }
        )
    return rows


def _request_dtype(dtype: str) -> str:
    """The type a request value of a spec tensor dtype is parsed as (int64, float64 or str)."""
    if dtype == "string":
        return "str"
    return "float64" if dtype.startswith(("fp", "bf")) else "int64"


def rest_context(arch: Architecture) -> dict[str, Any]:
    """What the in-process predictor, the REST service and its client need (runtime python_rest)."""
    ctx = client_context(arch)
    entry = ctx["entry"]
    columns = [t.name for t in entry.inputs]
    if not ctx["feature_service"]:  # no feature store lookup: the request carries the model's inputs
        ctx["entity_keys"] = [[t.name, _request_dtype(t.dtype)] for t in entry.inputs]
        ctx["request_fields"] = []
    return {
        **ctx,
        "columns": columns,
        "output": entry.outputs[0].name,
        "trained": entry.name in arch.training.trained_models,
        "artefact": ARTEFACT,
        "reload_s": MODEL_RELOAD_S,
        "port": REST_PORT,
        "rest": True,
    }


def _rest_plan(arch: Architecture) -> list[PlannedFile]:
    """Runtime python_rest: no Triton runtime, configs or stand-ins; the model is served in process."""
    ctx = rest_context(arch)
    return [
        PlannedFile("serving/__init__.py", COMPONENT, content='"""The online serving path. Generated by archgen."""\n'),
        rendered("serving/predictor.py", COMPONENT, ctx),
        rendered("serving/rest_app.py", COMPONENT, ctx, decisions=DECISIONS),
        PlannedFile("serving/client.py", COMPONENT, template="serving/rest_client.py.j2", context=ctx),
        system_data.planned(arch),
        rendered("serving/README.md", COMPONENT, ctx, decisions=DECISIONS),
    ]


def plan(arch: Architecture) -> list[PlannedFile]:
    """The serving client and server files of the decided runtime."""
    from ..decide.contract import only_decided

    if arch.serving.runtime in ("embedded", "batch_scoring"):
        # their own runtimes (components/embedded.py and components/batch.py); the one typed description of
        # the system's data (sample keys, request values, model inputs) serves them too
        return [system_data.planned(arch)]
    # a runtime without callers on the network has no protocol decision: its files are shaped by the runtime alone
    return only_decided(arch, _rest_plan(arch) if arch.rest_app_serves else _triton_plan(arch))


def _triton_plan(arch: Architecture) -> list[PlannedFile]:
    ctx = client_context(arch)
    standins = {m.name: [m.backend, m.instance_kind] for m in _standins(arch)}
    demo = demo_context(arch)
    files = [
        PlannedFile("serving/__init__.py", COMPONENT, content='"""The online serving path. Generated by archgen."""\n'),
        rendered("serving/client.py", COMPONENT, ctx, decisions=DECISIONS),
        system_data.planned(arch),
        rendered("serving/triton_runtime.py", COMPONENT, {"standins": standins}, decisions=("serving_runtime",)),
        rendered(
            "serving/README.md",
            COMPONENT,
            {**ctx, "models": _readme_models(arch), "standins": sorted(standins), "rest": False, "demo": demo},
            decisions=DECISIONS,
        ),
        *_local_models(arch),
    ]
    if demo is not None:
        files += [rendered(f"serving/{name}.py", COMPONENT, demo) for name in ("pipeline_client", "pipeline_samples")]
    broker = worker_broker(arch)
    if broker is not None:
        urls = {"redis": "redis://127.0.0.1:6379/0", "kafka": "127.0.0.1:9092", "rabbitmq": "amqp://127.0.0.1:5672/"}
        worker = {**ctx, "broker": broker, "queue": f"{arch.spec.project.name}.requests", "default_url": urls[broker]}
        files.append(rendered("serving/worker.py", COMPONENT, worker))
    return files
