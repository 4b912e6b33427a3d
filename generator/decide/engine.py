"""The engine: run the rules in order, run the checks, apply waivers, assemble the Architecture."""

from __future__ import annotations

from typing import Literal

from requirements_spec.errors import Diagnostic, Location, SpecError
from requirements_spec.loader import SourceMap
from requirements_spec.models import CatalogView, FeatureViewSpec, OnDemandViewSpec, Spec
from requirements_spec.validate import LoadedSpec

from .architecture import (
    PII_SUFFIX,
    Alternative,
    Architecture,
    Decision,
    DeploymentArch,
    FeatureStoreArch,
    Finding,
    NotApplicable,
    PrivacyArch,
    ServingArch,
    TensorArch,
    TrainingArch,
    TritonModelArch,
)
from .context import Conflict, RuleContext
from .pipelines import pipe_shapes
from .privacy import KEY_ENV, salt_env
from .registry import Check, Registry, Rule, RuleError, default_registry
from .serving import BACKENDS
from .values import (
    BATCHING,
    BY_NAME,
    COMPUTE_ENGINE,
    COUNT,
    DEPLOYMENT,
    FLAG,
    INSTANCE_GROUPS,
    MATERIALIZATION,
    NAMES,
    PERMISSIONS,
    RETENTION,
    TRAINING_MODE,
    Batching,
    Deployment,
    Retention,
    typed,
)
from .waivers import mark_waived

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
#: frameworks the local Triton (python backend) can run as they are
RUNS_NATIVELY = ("sklearn", "python")


def rule_id(rule: Rule) -> str:
    """The id of a rule in plans and docs: ``area.function`` (``feature_store.online_store``)."""
    module = rule.fn.__module__.removeprefix("generator.decide.")
    return f"{module}.{rule.fn.__name__}"


def decide(loaded: LoadedSpec | Spec, *, registry: Registry | None = None) -> Architecture:
    """Decide the architecture of a validated spec. Pure: the same spec gives the same Architecture."""
    if isinstance(loaded, LoadedSpec):
        spec, smap, spec_file = loaded.spec, loaded.source_map, loaded.filename
    else:
        spec, smap, spec_file = loaded, None, "spec.yaml"
    ctx = _run_rules(spec, smap, registry or default_registry())
    findings = _run_checks(ctx)
    return _assemble(ctx, spec_file, findings)


def _run_rules(spec: Spec, smap: SourceMap | None, registry: Registry) -> RuleContext:
    ctx = RuleContext(spec=spec, source_map=smap, registry=registry)
    for rule in registry.ordered():
        reason = rule.unless(ctx) if rule.unless is not None else None
        if reason is not None:
            ctx.not_applicable[rule.key] = NotApplicable(key=rule.key, rule=rule_id(rule), reason=reason)
            continue
        out = rule.fn(ctx)
        if out is None:
            ctx.not_applicable[rule.key] = NotApplicable(
                key=rule.key, rule=rule_id(rule), reason=rule.applies or "nothing in the spec for it to decide"
            )
            continue
        if rule.choices and out.choice not in rule.choices:
            raise RuleError(
                f"rule {rule_id(rule)} ({rule.origin}) chose {out.choice!r} for {rule.key!r}",
                hint="allowed: " + ", ".join(rule.choices),
            )
        if not out.reads:
            raise RuleError(f"rule {rule_id(rule)} ({rule.origin}) cites no requirement for {rule.key!r}")
        ctx.decisions[rule.key] = Decision(
            key=rule.key,
            choice=out.choice,
            rule=rule_id(rule),
            requirements=ctx.reqs(out.reads),
            rationale=out.rationale,
            alternatives=[Alternative(choice=c, reason=r) for c, r in out.alternatives],
        )
        ctx.values[rule.key] = out.value
    return ctx


def _run_checks(ctx: RuleContext) -> list[Finding]:
    """Every check; then the late ones (the waivers), which read the others' findings."""
    found: list[Finding] = []
    for chk in ctx.registry.checks:
        if not chk.late:
            found += _findings_of(chk, ctx)
    ctx.findings = mark_waived(ctx, found)
    found = list(ctx.findings)
    for chk in ctx.registry.checks:
        if chk.late:
            found += _findings_of(chk, ctx)
    return sorted(found, key=lambda f: (f.severity != "error", f.code, f.message))


def _findings_of(chk: Check, ctx: RuleContext) -> list[Finding]:
    """What one check reports: its Conflicts with its one code, or the Findings of the codes it declares."""
    declared = {k.code for k in chk.kinds}
    out: list[Finding] = []
    for item in chk.fn(ctx):
        if isinstance(item, Conflict):
            if len(chk.kinds) != 1:
                raise RuleError(
                    f"check {chk.name} ({chk.origin}) declares several codes: it must yield ctx.finding(...)"
                )
            item = ctx.finding(chk.kinds[0].code, item.message, item.reads, item.fix)
        elif item.code not in declared:
            raise RuleError(f"check {chk.name} ({chk.origin}) reported {item.code!r}, which it does not declare")
        out.append(item)
    return out


# ---------------------------------------------------------------- assembly
def _assemble(ctx: RuleContext, spec_file: str, findings: list[Finding]) -> Architecture:
    spec = ctx.spec
    return Architecture(
        spec=spec,
        spec_file=spec_file,
        feature_store=_feature_store(ctx),
        training=_training(ctx),
        serving=_serving(ctx),
        privacy=_privacy(ctx),
        deployment=_deployment(ctx),
        mlops_level=spec.delivery.mlops_level,
        decisions=list(ctx.decisions.values()),
        seams=typed(ctx, "customization", NAMES) or [],
        not_applicable=list(ctx.not_applicable.values()),
        findings=findings,
    )


def _feature_store(ctx: RuleContext) -> FeatureStoreArch | None:
    spec = ctx.spec
    if spec.features is None:
        return None
    mat = typed(ctx, "materialization", MATERIALIZATION) or {"cron": None, "interval_s": None}  # batch: none
    handling = spec.privacy.pii_handling
    pii = [ref for _, ref in ctx.pii_fields()]
    engine = typed(ctx, "compute_engine", COMPUTE_ENGINE)
    spark_conf = typed(ctx, "spark_settings", BY_NAME) or {}
    catalog = spec.existing.feature_registry
    return FeatureStoreArch(
        project=catalog.project if catalog else spec.project.name,
        online_store=ctx.choice("online_store"),
        offline_store=ctx.choice("offline_store"),
        registry=ctx.choice("registry"),
        ingestion=ctx.choice("ingestion"),
        materialization_cron=mat["cron"],
        materialization_interval_s=mat["interval_s"],
        dropped_fields=pii if handling == "drop" else [],
        hashed_fields=pii if handling == "hash" else [],
        encrypted_fields=pii if handling == "encrypt" else [],
        allowed_pii_fields=pii if handling == "allow" else [],
        on_demand_views=[o.name for o in spec.features.on_demand],
        push_sources=typed(ctx, "ingestion", NAMES) or [],
        compute_engine=engine["engine"] if engine else "local",
        batch_engine=engine["batch_engine"] if engine else "local",
        aggregated_views=list(engine["views"]) if engine else [],
        spark_conf=spark_conf,
        catalog_views=[v.name for v in catalog.views] if catalog else [],
        registry_path=catalog.path if catalog else None,
    )


def _training(ctx: RuleContext) -> TrainingArch:
    tr = ctx.spec.training
    mode = typed(ctx, "training_mode", TRAINING_MODE)
    assert mode is not None
    return TrainingArch(
        mode=ctx.choice("training_mode"),
        scheduler=ctx.choice("scheduler"),
        schedule_cron=mode["schedule_cron"],
        accelerator=ctx.choice("training_resources"),
        gpus=tr.resources.gpus,
        cpus=float(tr.resources.cpus),
        memory_gb=float(tr.resources.memory_gb),
        quality_gate=tr.min_quality,
        trained_models=list(mode["trained_models"]),
        consumer_broker=mode["consumer_broker"],
    )


def _serving(ctx: RuleContext) -> ServingArch:
    spec = ctx.spec
    sv = spec.serving
    mode = typed(ctx, "training_mode", TRAINING_MODE)
    trained = set(mode["trained_models"] if mode is not None else [])
    # Triton settings are decided only where Triton serves: elsewhere a model runs in process, unbatched
    backends = typed(ctx, "triton_backend", BY_NAME) or {}
    unbatched = Batching(max_batch_size=0, dynamic=False, preferred=[], delay_us=0)
    batching = typed(ctx, "dynamic_batching", BATCHING) or {m.name: unbatched for m in sv.models}
    groups = typed(ctx, "instance_group", INSTANCE_GROUPS) or {m.name: ("KIND_CPU", 1) for m in sv.models}
    stateful = typed(ctx, "sequence_batching", NAMES) or []
    sequences = set(stateful)
    models: list[TritonModelArch] = []
    shaped = pipe_shapes(ctx)
    per_object = {s.model for s in shaped.steps if s.per_object} if shaped is not None else set()
    for m in sv.models:
        b = batching[m.name]
        kind, count = groups[m.name]
        models.append(
            TritonModelArch(
                name=m.name,
                kind="model",
                framework=m.framework,
                backend=backends.get(m.name, BACKENDS[m.framework]),
                inputs=_model_inputs(spec, m.name),
                outputs=[_tensor(t.name, t.dtype, t.dims, per_object=t.per_object, pii=t.pii) for t in m.outputs],
                max_batch_size=b["max_batch_size"],
                dynamic_batching=b["dynamic"],
                preferred_batch_sizes=list(b["preferred"]),
                max_queue_delay_us=b["delay_us"],
                instance_kind=kind,
                instance_count=count,
                sequence_batching=m.name in sequences,
                feature_service=m.feature_service,
                placeholder=m.name not in trained,
                per_object=m.name in per_object,
                runs_here_as_python=m.framework not in RUNS_NATIVELY,
            )
        )
    entry = models[0].name
    form = ctx.choice("pipeline") or "none"
    if sv.pipeline is not None and form != "none":
        models.append(_pipeline_model(sv.pipeline.name, list(sv.pipeline.steps), form, models))
        if form == "bls" and shaped is not None:
            models[-1] = models[-1].model_copy(
                update={
                    "outputs": shaped.outputs(),
                    "max_batch_size": shaped.max_batch_size,
                    "instance_count": typed(ctx, "pipeline_instances", COUNT) or 1,
                }
            )
        entry = sv.pipeline.name
    return ServingArch(
        mode=sv.mode,
        runtime=ctx.choice("serving_runtime"),
        protocol=_protocol(ctx.choice("protocol")),
        pipeline_form=form,
        entrypoint=entry,
        models=models,
        latency_p99_ms=float(sv.latency_p99_ms),
        throughput_rps=float(sv.throughput_rps),
    )


def _protocol(choice: str | None) -> Literal["rest", "grpc"] | None:
    if choice == "rest":
        return "rest"
    if choice == "grpc":
        return "grpc"
    return None


def _pipeline_model(name: str, steps: list[str], form: str, models: list[TritonModelArch]) -> TritonModelArch:
    by_name = {m.name: m for m in models}
    first, last = by_name[steps[0]], by_name[steps[-1]]
    bls = form == "bls"
    return TritonModelArch(
        name=name,
        kind="bls" if bls else "ensemble",
        framework="bls" if bls else "ensemble",
        backend="python" if bls else "",
        platform="" if bls else "ensemble",
        inputs=first.inputs,
        outputs=last.outputs,
        max_batch_size=min(by_name[s].max_batch_size for s in steps),
        dynamic_batching=False,
        instance_kind="KIND_CPU" if bls else "",
        steps=steps,
        feature_service=first.feature_service,
    )


def _privacy(ctx: RuleContext) -> PrivacyArch:
    pv = ctx.spec.privacy
    ret = typed(ctx, "retention", RETENTION) or Retention(retention_s=None, purge_cron=None)
    return PrivacyArch(
        pii_handling=pv.pii_handling,
        residency=pv.residency,
        retention_s=ret["retention_s"],
        purge_cron=ret["purge_cron"],
        permissions=typed(ctx, "access", PERMISSIONS) or [],
        local_mirror=typed(ctx, "residency", FLAG) is True,
        pii_salt_env=salt_env(ctx.spec.project.name) if pv.pii_handling == "hash" else None,
        pii_key_env=KEY_ENV if pv.pii_handling == "encrypt" else None,
    )


def _deployment(ctx: RuleContext) -> DeploymentArch:
    return DeploymentArch(
        target=ctx.choice("deployment") or "docker_compose",  # embedded: nothing is deployed
        platform=ctx.spec.existing.platform,
        gpu_nodes=bool((typed(ctx, "deployment", DEPLOYMENT) or Deployment(gpu_nodes=False))["gpu_nodes"]),
    )


def _tensor(name: str, dtype: str, dims: list[int], *, per_object: bool = False, pii: bool = False) -> TensorArch:
    return TensorArch(
        name=name, dtype=dtype, triton_dtype=TRITON_DTYPES[dtype], dims=list(dims), per_object=per_object, pii=pii
    )


def _model_inputs(spec: Spec, model_name: str) -> list[TensorArch]:
    """Declared inputs, or one [1]-shaped input per feature of the model's feature service."""
    m = spec.model(model_name)
    assert m is not None
    if m.inputs:
        return [_tensor(t.name, t.dtype, t.dims) for t in m.inputs]
    svc = spec.service(m.feature_service or "")
    assert svc is not None and spec.features is not None
    out = []
    # hash and encrypt: the model sees what the feature service serves, the hash or the ciphertext (text)
    suffix = PII_SUFFIX.get(spec.privacy.pii_handling)
    for ref in svc.features:
        view, _, field = ref.partition(".")
        dtype, pii = "float64", False
        catalog = spec.existing.feature_registry.views if spec.existing.feature_registry else []
        views: list[FeatureViewSpec | OnDemandViewSpec | CatalogView] = [
            *spec.features.views,
            *spec.features.on_demand,
            *catalog,
        ]
        for v in views:
            if v.name == view:
                served = v.served_fields if isinstance(v, FeatureViewSpec) else v.fields
                declared = next(x for x in served if x.name == field)
                dtype, pii = declared.dtype, declared.pii
        if pii and suffix:
            field, dtype = field + suffix, "string"
        out.append(_tensor(field, FIELD_TO_TENSOR[dtype], [1]))
    return out


# ---------------------------------------------------------------- errors stop generation
class InfeasibleSpec(SpecError):
    """The spec is valid but its requirements conflict: every error finding as a diagnostic (exit 65)."""

    exit_code = 65

    def __init__(self, diagnostics: list[Diagnostic], findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__(diagnostics)


def finding_diagnostics(arch: Architecture, *, errors_only: bool = True) -> list[Diagnostic]:
    """The findings (the errors only, by default) as diagnostics: located at the first written requirement."""
    out: list[Diagnostic] = []
    for f in arch.findings:
        if errors_only and f.severity != "error":
            continue
        out.append(finding_diagnostic(f, arch.spec_file))
    return out


def finding_diagnostic(f: Finding, spec_file: str) -> Diagnostic:
    """One finding as a diagnostic: its code, at its first written requirement, the others related."""
    places = [Location(spec_file, r.line, r.column, r.path) for r in f.requirements]
    first = next((p for p in places if p.line), places[0] if places else Location(spec_file, 0, 0, "<root>"))
    return Diagnostic(
        f.code,
        f.message,
        first,
        severity=f.severity,
        hint=f.fix,
        related=tuple(p for p in places if p is not first),
    )


def require_feasible(arch: Architecture) -> Architecture:
    """Raise :class:`InfeasibleSpec` (exit 65) when the architecture has error findings; else return it."""
    if arch.errors:
        raise InfeasibleSpec(finding_diagnostics(arch), arch.errors)
    return arch
