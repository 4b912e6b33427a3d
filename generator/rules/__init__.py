"""Decide stage: Spec -> Architecture. Pure; no I/O.

FIRST CUT: direct decisions so that every downstream stage has a working architecture.
The rule registry (one small function per key, metadata, thresholds table, findings,
waivers, entry points) replaces this module's internals without changing `decide()`.
"""

from __future__ import annotations

from typing import Any

from requirements_spec.errors import format_path
from requirements_spec.loader import SourceMap
from requirements_spec.models import Spec
from requirements_spec.types import cron_expression, duration_seconds
from requirements_spec.validate import LoadedSpec

from ..architecture import (
    Alternative,
    Architecture,
    Decision,
    DeploymentArch,
    FeatureStoreArch,
    PrivacyArch,
    Requirement,
    ServingArch,
    TensorArch,
    TrainingArch,
    TritonModelArch,
)

TRITON_DTYPES = {
    "bool": "TYPE_BOOL",
    "uint8": "TYPE_UINT8",
    "uint16": "TYPE_UINT16",
    "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64",
    "int8": "TYPE_INT8",
    "int16": "TYPE_INT16",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "fp16": "TYPE_FP16",
    "fp32": "TYPE_FP32",
    "fp64": "TYPE_FP64",
    "bf16": "TYPE_BF16",
    "string": "TYPE_STRING",
}
FIELD_TO_TENSOR = {
    "int32": "int32",
    "int64": "int64",
    "float32": "fp32",
    "float64": "fp64",
    "string": "string",
    "bool": "bool",
    "bytes": "string",
    "unix_timestamp": "int64",
}
BACKENDS = {
    "sklearn": "python",
    "python": "python",
    "onnx": "onnxruntime",
    "pytorch": "pytorch",
    "tensorflow": "tensorflow",
}


class _Ctx:
    def __init__(self, spec: Spec, source_map: SourceMap | None) -> None:
        self.spec = spec
        self.source_map = source_map
        self.decisions: list[Decision] = []

    def req(self, *path: str | int) -> Requirement:
        value: Any = self.spec
        for item in path:
            if value is None:
                break
            value = value[item] if isinstance(item, int) else getattr(value, item, None)
        if hasattr(value, "model_dump"):
            value = value.model_dump(mode="json")
        line = self.source_map.line(tuple(path)) if self.source_map else 0
        return Requirement(path=format_path(path), line=line, value=value)

    def decide(
        self,
        key: str,
        choice: str,
        rule: str,
        reqs: list[Requirement],
        rationale: str,
        alternatives: list[tuple[str, str]] = (),
    ) -> str:  # type: ignore[assignment]
        self.decisions.append(
            Decision(
                key=key,
                choice=choice,
                rule=rule,
                requirements=reqs,
                rationale=rationale,
                alternatives=[Alternative(choice=c, reason=r) for c, r in alternatives],
            )
        )
        return choice


def decide(loaded: LoadedSpec | Spec) -> Architecture:
    if isinstance(loaded, LoadedSpec):
        spec, smap, spec_file = loaded.spec, loaded.source_map, loaded.filename
    else:
        spec, smap, spec_file = loaded, None, "spec.yaml"
    c = _Ctx(spec, smap)
    ex, sv = spec.existing, spec.serving

    # ---------------- feature store
    fs: FeatureStoreArch | None = None
    if spec.features is not None:
        f = spec.features
        if spec.autonomy == "air_gapped" or (
            ex.platform == "local"
            and sv.throughput_rps < 500
            and sv.latency_p99_ms >= 10
            and ex.warehouse != "postgres"
        ):
            online = "sqlite"
        elif sv.latency_p99_ms < 10 or sv.throughput_rps >= 500 or ex.broker == "redis":
            online = "redis"
        elif ex.warehouse == "postgres":
            online = "postgres"
        else:
            online = "redis"
        c.decide(
            "online_store",
            online,
            "online_store",
            [c.req("serving", "latency_p99_ms"), c.req("serving", "throughput_rps"), c.req("existing", "platform")],
            f"{online} serves single-row reads within the {sv.latency_p99_ms} ms budget at {sv.throughput_rps} rps",
        )
        offline = {"files": "file"}.get(ex.warehouse, ex.warehouse)
        c.decide(
            "offline_store",
            offline,
            "offline_store",
            [c.req("existing", "warehouse")],
            "reuse the warehouse the company runs",
        )
        registry = "sql" if (ex.platform == "kubernetes" or spec.delivery.mlops_level == 2) else "file"
        c.decide(
            "registry",
            registry,
            "registry",
            [c.req("existing", "platform"), c.req("delivery", "mlops_level")],
            "a SQL registry is shared by many writers" if registry == "sql" else "one machine: a file registry",
        )
        ingestion = {"precomputed": "batch", "realtime": "push", "hybrid": "batch+push"}[f.computation]
        c.decide(
            "ingestion",
            ingestion,
            "ingestion",
            [c.req("features", "computation")],
            "batch materialization" if ingestion == "batch" else "push for fresh values",
        )
        fresh = duration_seconds(f.freshness)
        interval = max(60, min(fresh, 86400))
        cron = _interval_cron(interval)
        c.decide(
            "materialization",
            cron,
            "materialization",
            [c.req("features", "freshness")],
            f"materialize at least every {f.freshness}",
        )
        pii = [f"{v.name}.{fld.name}" for v in f.views for fld in v.fields if fld.pii]
        h = spec.privacy.pii_handling
        fs = FeatureStoreArch(
            project=spec.project.name,
            online_store=online,
            offline_store=offline,  # type: ignore[arg-type]
            registry=registry,
            ingestion=ingestion,
            materialization_cron=cron,  # type: ignore[arg-type]
            materialization_interval_s=interval,
            dropped_fields=pii if h == "drop" else [],
            hashed_fields=pii if h == "hash" else [],
            encrypted_fields=pii if h == "encrypt" else [],
            allowed_pii_fields=pii if h == "allow" else [],
        )

    # ---------------- training
    tr = spec.training
    orch = ex.orchestrator
    if orch != "none":
        scheduler = {"cron": "crontab", "kubernetes": "kubernetes_cronjob"}.get(orch, orch)
    elif ex.platform == "kubernetes":
        scheduler = "kubernetes_cronjob"
    else:
        scheduler = "crontab"
    c.decide(
        "scheduler",
        scheduler,
        "scheduler",
        [c.req("existing", "orchestrator"), c.req("existing", "platform")],
        "reuse the orchestrator the company runs" if orch != "none" else "no orchestrator: the simplest scheduler",
    )
    mode = {"schedule": "scheduled", "online": "online", "manual": "manual"}[tr.trigger]
    c.decide("training_mode", mode, "training_mode", [c.req("training", "trigger")], f"trigger is {tr.trigger}")
    trained = [m.name for m in sv.models if m.feature_service is not None and tr.label is not None]
    training = TrainingArch(
        mode=mode,
        scheduler=scheduler,  # type: ignore[arg-type]
        schedule_cron=cron_expression(tr.schedule) if tr.schedule else None,
        accelerator=tr.resources.accelerator,
        gpus=tr.resources.gpus,
        cpus=float(tr.resources.cpus),
        memory_gb=float(tr.resources.memory_gb),
        quality_gate=tr.min_quality,
        trained_models=trained,
        consumer_broker=ex.broker if tr.trigger == "online" and ex.broker != "none" else None,
    )

    # ---------------- serving
    many = len(sv.models) > 1
    gpu = any(m.accelerator == "gpu" for m in sv.models)
    runtime = {"online": "triton", "batch": "batch_scoring", "async": "async_worker", "embedded": "embedded"}[sv.mode]
    c.decide(
        "serving_runtime",
        runtime,
        "serving_runtime",
        [c.req("serving", "mode"), c.req("serving", "latency_p99_ms"), c.req("serving", "throughput_rps")],
        "Triton: dynamic batching, many frameworks" if runtime == "triton" else f"serving mode {sv.mode}",
        [("python_rest", "no batching; one process per model")] if runtime == "triton" else [],
    )
    protocol = "grpc" if sv.latency_p99_ms < 20 else sv.protocol
    c.decide(
        "protocol",
        protocol,
        "protocol",
        [c.req("serving", "protocol"), c.req("serving", "latency_p99_ms")],
        "gRPC has lower overhead" if protocol == "grpc" else "REST as asked",
    )
    form = "none"
    if sv.pipeline is not None:
        form = "bls" if sv.pipeline.conditional else "ensemble"
    c.decide("pipeline", form, "pipeline", [c.req("serving", "pipeline")], f"pipeline form {form}")
    models: list[TritonModelArch] = []
    budget_us = int(sv.latency_p99_ms * 1000)
    delay = max(100, min(budget_us // 10, 5000))
    for m in sv.models:
        inputs = _model_inputs(spec, m.name)
        mbs = m.max_batch_size if m.max_batch_size is not None else (0 if m.stateful else 32)
        count = max(1, min(4, int(sv.throughput_rps // 500) + 1))
        models.append(
            TritonModelArch(
                name=m.name,
                kind="model",
                framework=m.framework,
                backend=BACKENDS[m.framework],
                inputs=inputs,
                outputs=[_tensor(t.name, t.dtype, t.dims) for t in m.outputs],
                max_batch_size=mbs,
                dynamic_batching=mbs > 0 and not m.stateful,
                preferred_batch_sizes=[b for b in (4, 8, 16) if b <= mbs],
                max_queue_delay_us=delay,
                instance_kind="KIND_GPU" if m.accelerator == "gpu" else "KIND_CPU",
                instance_count=count,
                sequence_batching=m.stateful,
                feature_service=m.feature_service,
                placeholder=m.name not in trained,
                runs_here_as_python=m.framework not in ("sklearn", "python"),
            )
        )
    entry = models[0].name
    if sv.pipeline is not None:
        first = next(x for x in models if x.name == sv.pipeline.steps[0])
        last = next(x for x in models if x.name == sv.pipeline.steps[-1])
        pmbs = min((x.max_batch_size for x in models if x.name in sv.pipeline.steps), default=0)
        models.append(
            TritonModelArch(
                name=sv.pipeline.name,
                kind="bls" if sv.pipeline.conditional else "ensemble",
                framework="bls" if sv.pipeline.conditional else "ensemble",
                backend="python" if sv.pipeline.conditional else "",
                platform="" if sv.pipeline.conditional else "ensemble",
                inputs=first.inputs,
                outputs=last.outputs,
                max_batch_size=pmbs,
                dynamic_batching=False,
                instance_kind="KIND_CPU" if sv.pipeline.conditional else "",
                steps=list(sv.pipeline.steps),
                feature_service=first.feature_service,
            )
        )
        entry = sv.pipeline.name
    serving = ServingArch(
        mode=sv.mode,
        runtime=runtime,
        protocol=protocol,
        pipeline_form=form,  # type: ignore[arg-type]
        entrypoint=entry,
        models=models,
        latency_p99_ms=float(sv.latency_p99_ms),
        throughput_rps=float(sv.throughput_rps),
    )

    # ---------------- privacy, deployment, delivery
    pv = spec.privacy
    retention = duration_seconds(pv.retention) if pv.retention else None
    privacy = PrivacyArch(
        pii_handling=pv.pii_handling,
        residency=pv.residency,
        retention_s=retention,
        purge_cron="30 2 * * *" if retention else None,
        permissions=[(a.role, list(a.can)) for a in pv.access],
        local_mirror=spec.autonomy == "air_gapped" or pv.residency == "on_prem",
    )
    c.decide("pii", pv.pii_handling, "pii", [c.req("privacy", "pii_handling")], f"pii handling {pv.pii_handling}")
    target = "kubernetes" if ex.platform in ("kubernetes", "openshift") else "docker_compose"
    c.decide("deployment", target, "deployment", [c.req("existing", "platform")], f"platform {ex.platform}")
    deployment = DeploymentArch(target=target, platform=ex.platform, gpu_nodes=gpu or tr.resources.accelerator == "gpu")  # type: ignore[arg-type]
    c.decide(
        "delivery",
        f"mlops_level_{spec.delivery.mlops_level}",
        "delivery",
        [c.req("delivery", "mlops_level")],
        "automation level",
    )
    del many
    return Architecture(
        spec=spec,
        spec_file=spec_file,
        feature_store=fs,
        training=training,
        serving=serving,
        privacy=privacy,
        deployment=deployment,
        mlops_level=spec.delivery.mlops_level,
        decisions=c.decisions,
        findings=[],
    )


def _tensor(name: str, dtype: str, dims: list[int]) -> TensorArch:
    return TensorArch(name=name, dtype=dtype, triton_dtype=TRITON_DTYPES[dtype], dims=list(dims))


def _model_inputs(spec: Spec, model_name: str) -> list[TensorArch]:
    """Declared inputs, or one [1]-shaped input per feature of the model's feature service."""
    m = spec.model(model_name)
    assert m is not None
    if m.inputs:
        return [_tensor(t.name, t.dtype, t.dims) for t in m.inputs]
    svc = spec.service(m.feature_service or "")
    assert svc is not None and spec.features is not None
    out = []
    for ref in svc.features:
        view, _, field = ref.partition(".")
        dtype = "float64"
        for v in [*spec.features.views, *spec.features.on_demand]:
            if v.name == view:
                dtype = next(x.dtype for x in v.fields if x.name == field)
        out.append(_tensor(field, FIELD_TO_TENSOR[dtype], [1]))
    return out


def _interval_cron(seconds: int) -> str:
    minutes = max(1, seconds // 60)
    if minutes < 60:
        step = max(d for d in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if d <= minutes)
        return "*/1 * * * *" if step == 1 else f"*/{step} * * * *"
    hours = minutes // 60
    if hours < 24:
        step = max(d for d in (1, 2, 3, 4, 6, 8, 12) if d <= hours)
        return "0 * * * *" if step == 1 else f"0 */{step} * * *"
    return "0 0 * * *"
