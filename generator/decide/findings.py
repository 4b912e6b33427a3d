"""Findings: conflicting or infeasible requirements. Errors stop generation; warnings can be waived."""

from __future__ import annotations

from collections.abc import Iterator

from requirements_spec.models import StreamSourceSpec
from requirements_spec.types import duration_seconds, format_seconds

from .architecture import Finding
from .context import ReqPath, RuleContext
from .pipelines import pipe_shapes
from .registry import FindingKind, check
from .thresholds import THRESHOLDS
from .values import BATCHING, MATERIALIZATION, NAMES, TRAINING_MODE, typed

CLOUD_WAREHOUSES = ("bigquery", "snowflake", "redshift")
CLOUD_PLATFORMS = ("sagemaker", "heroku")
GPULESS_PLATFORMS = ("heroku",)
WAREHOUSE: ReqPath = ("existing", "warehouse")
PLATFORM: ReqPath = ("existing", "platform")
AUTONOMY: ReqPath = ("autonomy",)
RESIDENCY: ReqPath = ("privacy", "residency")
HANDLING: ReqPath = ("privacy", "pii_handling")


def _kind(code: str, severity: str, title: str, doc: str) -> FindingKind:
    return FindingKind(code=code, severity=severity, title=title, doc=doc)  # type: ignore[arg-type]


# ---------------------------------------------------------------- autonomy and residency
AIRGAP_WAREHOUSE = _kind(
    "autonomy.airgap_cloud_warehouse",
    "error",
    "Air-gapped system with a cloud warehouse",
    "An air-gapped site reaches nothing beyond itself, so BigQuery, Snowflake or Redshift cannot be its warehouse.",
)
AIRGAP_PLATFORM = _kind(
    "autonomy.airgap_cloud_platform",
    "error",
    "Air-gapped system on a cloud platform",
    "SageMaker and Heroku are cloud services; an air-gapped system cannot run on them.",
)
ONPREM_PLATFORM = _kind(
    "residency.on_prem_cloud_platform",
    "error",
    "On-premises residency on a cloud platform",
    "Data that must stay on premises cannot be served from SageMaker or Heroku.",
)
ONPREM_WAREHOUSE = _kind(
    "residency.on_prem_cloud_warehouse",
    "error",
    "On-premises residency with a cloud warehouse",
    "Data that must stay on premises cannot live in BigQuery, Snowflake or Redshift.",
)
ONPREM_CLOUD = _kind(
    "residency.on_prem_cloud_autonomy",
    "error",
    "On-premises residency with cloud autonomy",
    "autonomy `cloud` runs the system on a cloud provider; residency `on_prem` forbids exactly that.",
)
REGION = _kind(
    "residency.region_not_enforced",
    "warning",
    "Regional residency on a cloud service archgen cannot pin",
    "residency eu/us with a cloud warehouse or platform: archgen cannot check where that service keeps "
    "the data; pin the dataset and endpoint regions yourself, or waive with the contract that does.",
)


@check(AIRGAP_WAREHOUSE, AIRGAP_PLATFORM, ONPREM_PLATFORM, ONPREM_WAREHOUSE, ONPREM_CLOUD, REGION)
def autonomy_and_residency(ctx: RuleContext) -> Iterator[Finding]:
    spec = ctx.spec
    wh, platform = spec.existing.warehouse, spec.existing.platform
    res = spec.privacy.residency
    if spec.autonomy == "air_gapped" and wh in CLOUD_WAREHOUSES:
        yield ctx.finding(
            AIRGAP_WAREHOUSE.code,
            f"autonomy is air_gapped but the warehouse is {wh}, a cloud service the site cannot reach",
            [AUTONOMY, WAREHOUSE],
            "use an on-site warehouse (files, postgres, spark) or set autonomy to self_hosted",
        )
    if spec.autonomy == "air_gapped" and platform in CLOUD_PLATFORMS:
        yield ctx.finding(
            AIRGAP_PLATFORM.code,
            f"autonomy is air_gapped but the platform is {platform}, a cloud service",
            [AUTONOMY, PLATFORM],
            "deploy on local, docker-compose or an on-site kubernetes, or set autonomy to cloud",
        )
    if res == "on_prem" and platform in CLOUD_PLATFORMS:
        yield ctx.finding(
            ONPREM_PLATFORM.code,
            f"residency is on_prem but the platform is {platform}, which runs in the provider's cloud",
            [RESIDENCY, PLATFORM],
            "deploy on an on-premises platform (local, docker-compose, kubernetes, openshift) or relax residency",
        )
    if res == "on_prem" and wh in CLOUD_WAREHOUSES:
        yield ctx.finding(
            ONPREM_WAREHOUSE.code,
            f"residency is on_prem but the warehouse is {wh}, a cloud service",
            [RESIDENCY, WAREHOUSE],
            "keep the data in an on-premises warehouse (files, postgres, spark) or relax residency",
        )
    if res == "on_prem" and spec.autonomy == "cloud":
        yield ctx.finding(
            ONPREM_CLOUD.code,
            "residency is on_prem but autonomy is cloud",
            [RESIDENCY, AUTONOMY],
            "set autonomy to self_hosted or air_gapped, or relax residency",
        )
    if res in ("eu", "us") and (wh in CLOUD_WAREHOUSES or platform in CLOUD_PLATFORMS):
        cited = (
            [RESIDENCY]
            + ([WAREHOUSE] if wh in CLOUD_WAREHOUSES else [])
            + ([PLATFORM] if platform in CLOUD_PLATFORMS else [])
        )
        yield ctx.finding(
            REGION.code,
            f"residency {res}: archgen cannot check the region of "
            + " and ".join(x for x in (wh, platform) if x in CLOUD_WAREHOUSES + CLOUD_PLATFORMS),
            cited,
            f"pin datasets and endpoints to the {res.upper()} region, then waive this warning citing where",
        )


# ---------------------------------------------------------------- latency
LATENCY_INFEASIBLE = _kind(
    "latency.infeasible",
    "error",
    "p99 below what the runtime, protocol and online store can do",
    "The p99 budget covers the online feature read and the call to the model server; each has a floor "
    "(thresholds `online_read_floor_ms`, `serving_floor_ms`). A budget below their sum cannot be met.",
)


@check(LATENCY_INFEASIBLE)
def latency(ctx: RuleContext) -> Iterator[Finding]:
    """Online and embedded serving: the p99 must leave room for the generated path's floor (embedded included)."""
    sv = ctx.spec.serving
    if sv.mode not in ("online", "embedded"):
        return
    runtime, proto = ctx.choice("serving_runtime"), ctx.choice("protocol") or "in_process"
    floor = THRESHOLDS["serving_floor_ms"].get(f"{runtime}/{proto}", 0.0)
    parts = [f"{runtime} over {proto} {floor} ms" if proto != "in_process" else f"an in-process call {floor} ms"]
    cited: list[ReqPath] = [("serving", "latency_p99_ms"), ("serving", "protocol"), ("serving", "mode")]
    store = ctx.choice("online_store")
    read = 0.0
    if store is not None and any(m.feature_service for m in sv.models):
        read = THRESHOLDS["online_read_floor_ms"][store]
        floor += read
        parts.append(f"a {store} feature read {read} ms")
        cited.append(("serving", "throughput_rps"))
    if sv.latency_p99_ms < floor:
        embedded_floor = THRESHOLDS["serving_floor_ms"]["embedded/in_process"] + read
        if sv.mode == "embedded" or sv.latency_p99_ms < embedded_floor:
            fix = (
                f"raise serving.latency_p99_ms to at least {round(embedded_floor, 3)} ms: no serving mode meets "
                f"{sv.latency_p99_ms} ms (an in-process model still reads its features"
                + (f" from {store}" if read else "")
                + ")"
                + (", or read the features from a faster online store" if read else "")
            )
        else:
            fix = f"raise serving.latency_p99_ms to at least {floor} ms, or serve embedded (serving.mode: embedded)"
        yield ctx.finding(
            LATENCY_INFEASIBLE.code,
            f"p99 {sv.latency_p99_ms} ms is below the {round(floor, 3)} ms floor of " + " plus ".join(parts),
            cited,
            fix,
        )


# ---------------------------------------------------------------- features
FRESHNESS = _kind(
    "features.freshness_unreachable",
    "error",
    "Freshness shorter than materialization can deliver",
    "Views fed only by batch sources are as old as the materialization interval; a freshness below the "
    "shortest interval the offline store sustains (threshold `min_materialization_interval_s`) cannot be met "
    "without a push path.",
)
NO_PUSH = _kind(
    "features.realtime_without_push",
    "error",
    "Realtime computation with no way to push",
    "computation realtime/hybrid needs a stream source feeding a view or an on-demand view computed at "
    "request time; with neither, nothing is realtime.",
)
STREAM_NO_BROKER = _kind(
    "features.stream_without_broker",
    "warning",
    "Stream source but no broker",
    "A stream source names a topic, but existing.broker is none: no consumer is generated, the "
    "application must push events through the feature server's push API.",
)
TTL_SHORT = _kind(
    "features.ttl_below_materialization",
    "warning",
    "A view's TTL is shorter than the materialization interval",
    "Values expire before the next materialization refreshes them, so lookups return nulls in between.",
)


@check(FRESHNESS, NO_PUSH, STREAM_NO_BROKER, TTL_SHORT)
def features(ctx: RuleContext) -> Iterator[Finding]:
    f = ctx.spec.features
    if f is None:
        return
    spec = ctx.spec
    mat = typed(ctx, "materialization", MATERIALIZATION)
    interval = mat["interval_s"] if mat is not None else 0
    fresh = duration_seconds(f.freshness)
    pushed_views = typed(ctx, "ingestion", NAMES) or []
    pushed = set(pushed_views)
    streams = {s.name for s in spec.sources if isinstance(s, StreamSourceSpec)}
    batch_only = [(i, v) for i, v in enumerate(f.views) if v.source not in pushed]
    if interval > fresh and batch_only:
        names = ", ".join(v.name for _, v in batch_only)
        yield ctx.finding(
            FRESHNESS.code,
            f"freshness {f.freshness} is shorter than the {format_seconds(interval)} the {ctx.choice('offline_store')} "
            f"offline store can materialize, and {names} {'is' if len(batch_only) == 1 else 'are'} fed by batch only",
            [("features", "freshness"), WAREHOUSE, *(("features", "views", i, "source") for i, _ in batch_only)],
            f"relax features.freshness to {format_seconds(interval)} or more, or feed those views from a stream "
            "source with computation realtime/hybrid",
        )
    if f.computation != "precomputed" and not pushed and not f.on_demand:
        yield ctx.finding(
            NO_PUSH.code,
            f"computation is {f.computation} but no view reads a stream source and no on-demand view is declared",
            [("features", "computation"), ("features", "views")],
            "add a stream source (kind: stream) and read it from a view, declare an on-demand view, "
            "or set computation: precomputed",
        )
    used_streams = sorted(streams & {v.source for v in f.views})
    if used_streams and spec.existing.broker == "none":
        idx = [i for i, s in enumerate(spec.sources) if s.name in used_streams]
        yield ctx.finding(
            STREAM_NO_BROKER.code,
            f"stream source(s) {', '.join(used_streams)} but existing.broker is none: the application must push "
            "events itself",
            [("existing", "broker"), *(("sources", i, "topic") for i in idx)],
            "set existing.broker to the broker carrying the topic, or waive: the application pushes through the "
            "feature server",
        )
    for i, v in enumerate(f.views):
        if interval and v.source not in pushed and duration_seconds(v.ttl) < interval:
            yield ctx.finding(
                TTL_SHORT.code,
                f"view {v.name}: ttl {v.ttl} is shorter than the {format_seconds(interval)} materialization interval",
                [("features", "views", i, "ttl"), ("features", "freshness")],
                f"set the ttl of {v.name} to at least {format_seconds(interval)}",
            )


# ---------------------------------------------------------------- resources
GPU_PLATFORM = _kind(
    "resources.gpu_platform_without_gpus",
    "error",
    "GPU requirement on a platform without GPUs",
    "Heroku offers no GPUs; a GPU training job or GPU model cannot run there.",
)
GPU_LOCAL = _kind(
    "resources.gpu_on_single_machine",
    "warning",
    "GPU requirement on one machine",
    "On local/docker-compose the machine itself must have an NVIDIA GPU and the container toolkit; archgen "
    "cannot check that.",
)


def _gpu_paths(ctx: RuleContext) -> list[ReqPath]:
    spec = ctx.spec
    out: list[ReqPath] = []
    if spec.training.resources.accelerator == "gpu":
        out.append(("training", "resources", "accelerator"))
    out += [
        ("serving", "models", i, "accelerator") for i, m in enumerate(spec.serving.models) if m.accelerator == "gpu"
    ]
    return out


@check(GPU_PLATFORM, GPU_LOCAL)
def resources(ctx: RuleContext) -> Iterator[Finding]:
    gpus = _gpu_paths(ctx)
    platform = ctx.spec.existing.platform
    if not gpus:
        return
    if platform in GPULESS_PLATFORMS:
        yield ctx.finding(
            GPU_PLATFORM.code,
            f"GPUs are required but platform {platform} has none",
            [*gpus, PLATFORM],
            "use a platform with GPUs (kubernetes with GPU nodes, sagemaker, a local GPU machine) or set "
            "accelerator: cpu",
        )
    elif platform in ("local", "docker-compose"):
        yield ctx.finding(
            GPU_LOCAL.code,
            f"GPUs are required on one machine ({platform}): it must have an NVIDIA GPU and the container toolkit",
            [*gpus, PLATFORM],
            "check `nvidia-smi` on the machine, then waive this warning",
        )


# ---------------------------------------------------------------- privacy
PII_DROP = _kind(
    "privacy.pii_served_while_drop",
    "error",
    "A feature service exposes a pii field while pii_handling is drop",
    "drop means a pii field never leaves the feature store; a service listing it contradicts that. "
    "Validation accepts the spec, the decision engine refuses it.",
)
PII_ALLOW = _kind(
    "privacy.pii_allowed",
    "warning",
    "PII kept and served as is",
    "pii_handling allow keeps personal data in clear text; the review must accept that risk.",
)
TTL_RETENTION = _kind(
    "privacy.ttl_exceeds_retention",
    "error",
    "A view keeps values longer than the retention",
    "A TTL above privacy.retention serves values the purge job must already have deleted.",
)
PII_NO_RETENTION = _kind(
    "privacy.pii_without_retention",
    "warning",
    "PII kept with no retention",
    "Personal data (hashed, encrypted or allowed) is kept forever when no retention is set.",
)
PII_OPEN = _kind(
    "privacy.pii_served_without_access_control",
    "warning",
    "PII served with no access roles",
    "A feature service exposes pii-derived fields while privacy.access grants nothing: any client of the "
    "feature server can read them (encrypt needs roles to decrypt for).",
)


def _pii_in_services(ctx: RuleContext) -> list[tuple[ReqPath, str]]:
    f = ctx.spec.features
    if f is None:
        return []
    pii = {ref for _, ref in ctx.pii_fields()}
    return [
        (("features", "services", i, "features", j), ref)
        for i, s in enumerate(f.services)
        for j, ref in enumerate(s.features)
        if ref in pii
    ]


@check(PII_DROP, PII_ALLOW, TTL_RETENTION, PII_NO_RETENTION, PII_OPEN)
def privacy(ctx: RuleContext) -> Iterator[Finding]:
    spec = ctx.spec
    handling = spec.privacy.pii_handling
    fields = ctx.pii_fields()
    served = _pii_in_services(ctx)
    if handling == "drop":
        field_paths = {ref: p for p, ref in fields}
        for path, ref in served:
            yield ctx.finding(
                PII_DROP.code,
                f"feature service serves {ref}, a pii field, while pii_handling is drop",
                [path, field_paths[ref], HANDLING],
                f"remove {ref} from the service, or set privacy.pii_handling to hash",
            )
    if handling == "allow" and fields:
        yield ctx.finding(
            PII_ALLOW.code,
            "pii fields are kept and served in clear text: " + ", ".join(ref for _, ref in fields),
            [HANDLING, *(p for p, _ in fields)],
            "use pii_handling hash or encrypt, or waive with the legal basis for keeping them",
        )
    ret = spec.privacy.retention
    if ret is not None and spec.features is not None:
        for i, v in enumerate(spec.features.views):
            if duration_seconds(v.ttl) > duration_seconds(ret):
                yield ctx.finding(
                    TTL_RETENTION.code,
                    f"view {v.name} keeps values for {v.ttl}, longer than the {ret} retention",
                    [("features", "views", i, "ttl"), ("privacy", "retention")],
                    f"lower the ttl of {v.name} to {ret} or less",
                )
    if ret is None and fields and handling != "drop":
        yield ctx.finding(
            PII_NO_RETENTION.code,
            f"pii fields are kept ({handling}) with no retention",
            [("privacy", "retention"), HANDLING],
            "set privacy.retention (e.g. 365d) so a purge job deletes them",
        )
    if served and handling != "drop" and not spec.privacy.access:
        yield ctx.finding(
            PII_OPEN.code,
            f"services expose pii fields ({handling}) but privacy.access declares no role",
            [("privacy", "access"), HANDLING, *(p for p, _ in served)],
            "declare roles under privacy.access (e.g. {role: scoring, can: [online_read]})",
        )


# ---------------------------------------------------------------- training
ONLINE_NO_BROKER = _kind(
    "training.online_without_broker",
    "error",
    "Online training without a broker",
    "Learning on the fly consumes events from a broker (Kafka, RabbitMQ, Redis streams); with none there is "
    "nothing to consume.",
)
NO_LABEL = _kind(
    "training.label_missing",
    "error",
    "Training is triggered but no label is declared",
    "A model reading a feature service is trained from historical features joined with a label; without "
    "training.label a scheduled or online training run has nothing to fit.",
)
NO_GATE = _kind(
    "training.quality_gate_missing",
    "warning",
    "No minimum quality at MLOps level 1 or 2",
    "An automated pipeline ships whatever it trains unless training.min_quality stops it.",
)
MANUAL_AUTOMATED = _kind(
    "training.manual_at_mlops_level",
    "warning",
    "Manual training at an automated MLOps level",
    "MLOps level 1 and 2 automate the training pipeline, but trigger manual means nothing runs it.",
)


@check(ONLINE_NO_BROKER, NO_LABEL, NO_GATE, MANUAL_AUTOMATED)
def training(ctx: RuleContext) -> Iterator[Finding]:
    spec = ctx.spec
    tr, level = spec.training, spec.delivery.mlops_level
    if tr.trigger == "online" and spec.existing.broker == "none":
        yield ctx.finding(
            ONLINE_NO_BROKER.code,
            "training.trigger is online but existing.broker is none",
            [("training", "trigger"), ("existing", "broker")],
            "set existing.broker (kafka, rabbitmq, redis) or use trigger: schedule",
        )
    fs_models = [i for i, m in enumerate(spec.serving.models) if m.feature_service is not None]
    if tr.trigger != "manual" and tr.label is None and fs_models:
        yield ctx.finding(
            NO_LABEL.code,
            f"training is triggered ({tr.trigger}) for models reading a feature service, but training.label is not set",
            [
                ("training", "trigger"),
                ("training", "label"),
                *(("serving", "models", i, "feature_service") for i in fs_models),
            ],
            "add training.label: {source: ..., field: ...}, or set training.trigger: manual",
        )
    if level >= 1 and tr.min_quality is None and tr.trigger != "manual":
        yield ctx.finding(
            NO_GATE.code,
            f"MLOps level {level} ships every trained model: no training.min_quality",
            [("delivery", "mlops_level"), ("training", "min_quality")],
            "add training.min_quality: {metric: roc_auc, threshold: 0.7} (or the metric that fits)",
        )
    if tr.trigger == "manual" and level >= 1 and any(m.feature_service for m in spec.serving.models):
        yield ctx.finding(
            MANUAL_AUTOMATED.code,
            f"MLOps level {level} automates training, but training.trigger is manual",
            [("training", "trigger"), ("delivery", "mlops_level")],
            "set training.trigger: schedule with a schedule, or delivery.mlops_level: 0",
        )


# ---------------------------------------------------------------- serving and deployment
STATEFUL_PIPE = _kind(
    "serving.stateful_in_pipeline",
    "warning",
    "A stateful model inside a pipeline",
    "Every request through the pipeline must carry a sequence id with start/end flags, and the stateful "
    "step is not dynamically batched.",
)
ONE_MACHINE = _kind(
    "serving.throughput_beyond_one_machine",
    "warning",
    "Throughput beyond one machine",
    "Above `single_machine_max_rps` one docker-compose host becomes the bottleneck; Kubernetes scales out.",
)
NOT_GENERATED = _kind(
    "deployment.platform_not_generated",
    "warning",
    "Deployment for this platform is not generated",
    "SageMaker and Heroku deployments are not generated; archgen writes the docker-compose bundle and its "
    "images, which the team wires into the platform.",
)


@check(STATEFUL_PIPE, ONE_MACHINE, NOT_GENERATED)
def serving(ctx: RuleContext) -> Iterator[Finding]:
    spec = ctx.spec
    sv = spec.serving
    if sv.pipeline is not None:
        for i, m in enumerate(sv.models):
            if m.stateful and m.name in sv.pipeline.steps:
                yield ctx.finding(
                    STATEFUL_PIPE.code,
                    f"model {m.name} is stateful and a step of pipeline {sv.pipeline.name}",
                    [("serving", "models", i, "stateful"), ("serving", "pipeline", "steps")],
                    "send sequence ids with every pipeline request, or move the stateful model out of the pipeline",
                )
    limit = THRESHOLDS["single_machine_max_rps"]
    if ctx.choice("deployment") == "docker_compose" and sv.throughput_rps > limit and sv.mode == "online":
        yield ctx.finding(
            ONE_MACHINE.code,
            f"{sv.throughput_rps} requests/s on one machine (above {limit})",
            [("serving", "throughput_rps"), PLATFORM],
            "deploy on kubernetes (existing.platform: kubernetes), or waive after a load test",
        )
    if spec.existing.platform in CLOUD_PLATFORMS:
        yield ctx.finding(
            NOT_GENERATED.code,
            f"platform {spec.existing.platform}: archgen generates a docker-compose bundle, not a "
            f"{spec.existing.platform} deployment",
            [PLATFORM],
            "deploy the generated images to the platform by hand, then waive this warning",
        )


# ---------------------------------------------------------------- waivers (raised by the engine)
WAIVER_ERROR = _kind(
    "waiver.not_waivable",
    "warning",
    "A waiver names an error",
    "Errors are infeasible requirements; no justification makes them feasible. Fix the spec instead.",
)
WAIVER_UNKNOWN = _kind(
    "waiver.unknown_finding",
    "warning",
    "A waiver names an unknown finding code",
    "The code is not a finding archgen (or an installed rule package) can report: a typo, or a finding that "
    "was renamed. `archgen explain --list` lists the codes.",
)
WAIVER_UNUSED = _kind(
    "waiver.unused",
    "warning",
    "A waiver accepts a warning that is not reported",
    "The spec no longer triggers the waived warning; remove the waiver so it cannot hide a future one.",
)


@check(WAIVER_ERROR, WAIVER_UNKNOWN, WAIVER_UNUSED)
def waivers(ctx: RuleContext) -> Iterator[Finding]:
    """Placeholder: waivers are matched by the engine after every other check has run."""
    return iter(())


# ---------------------------------------------------------------- requirements the system would drop
SCHEDULE_AT_LEVEL_0 = _kind(
    "training.schedule_at_mlops_level_0",
    "warning",
    "A training schedule that nothing runs at MLOps level 0",
    "MLOps level 0 generates no pipeline: training is a manual step (`make train`). A training.schedule "
    "would be promised in the docs and run by no scheduler.",
)
VARIABLE_BATCHING = _kind(
    "serving.variable_size_batching",
    "warning",
    "Variable-size inputs batched dynamically",
    "Dynamic batching joins requests only when every input has the same shape; an input with a variable "
    "dimension (-1) splits batches by shape, so the batching the plan promises may not happen.",
)


@check(SCHEDULE_AT_LEVEL_0, VARIABLE_BATCHING)
def dropped_requirements(ctx: RuleContext) -> Iterator[Finding]:
    """Requirements the generated system would not honour: said at plan time, never dropped in silence."""
    spec = ctx.spec
    tr = spec.training
    mode = typed(ctx, "training_mode", TRAINING_MODE)
    trained = mode["trained_models"] if mode is not None else []
    if spec.delivery.mlops_level == 0 and tr.trigger == "schedule" and tr.schedule is not None and trained:
        yield ctx.finding(
            SCHEDULE_AT_LEVEL_0.code,
            f"training.schedule {tr.schedule!r} is set, but MLOps level 0 generates no scheduler entry for training",
            [("training", "schedule"), ("delivery", "mlops_level")],
            "set delivery.mlops_level: 1 to run training on the schedule, or remove training.schedule "
            "(training stays a manual `make train`)",
        )
    batching = typed(ctx, "dynamic_batching", BATCHING) or {}
    # the steps of a shaped pipeline are judged with their shapes (pipeline.variable_size_batching)
    piped = set(spec.serving.pipeline.steps) if spec.serving.pipeline and pipe_shapes(ctx) is not None else set()
    for i, m in enumerate(spec.serving.models):
        if m.name not in batching or not batching[m.name]["dynamic"] or m.name in piped:
            continue
        variable = [j for j, t in enumerate(m.inputs) if -1 in t.dims]
        if variable:
            names = ", ".join(m.inputs[j].name for j in variable)
            yield ctx.finding(
                VARIABLE_BATCHING.code,
                f"model {m.name}: input(s) {names} have a variable dimension (-1), yet requests are batched "
                "dynamically: only requests of equal shape join a batch",
                [*(("serving", "models", i, "inputs", j, "dims") for j in variable), ("serving", "models", i)],
                f"fix the dimension, pad inputs to a fixed size, or set serving.models[{i}].max_batch_size: 0",
            )
