"""Serving: the rules (runtime, protocol, the Triton model configuration, batch and embedded serving) and
their findings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from requirements_spec.models import ModelSpec, Spec
from requirements_spec.types import cron_expression

from .context import Conflict, Outcome, ReqPath, RuleContext
from .pipelines import pipe_shapes
from .registry import finding, rule
from .table import Row, always, first_match
from .thresholds import THRESHOLDS
from .values import BATCHING, typed

MODE: ReqPath = ("serving", "mode")
LATENCY: ReqPath = ("serving", "latency_p99_ms")
THROUGHPUT: ReqPath = ("serving", "throughput_rps")
PROTOCOL: ReqPath = ("serving", "protocol")

BACKENDS = {
    "sklearn": "python",
    "python": "python",
    "onnx": "onnxruntime",
    "pytorch": "pytorch",
    "tensorflow": "tensorflow",
}
THIN_FRAMEWORKS = ("sklearn", "python")


def _model(i: int, *rest: str | int) -> ReqPath:
    return ("serving", "models", i, *rest)


IN_PROCESS = ("embedded", "batch_scoring")  # runtimes that load the model in process: no Triton, no protocol


def _in_process(ctx: RuleContext) -> bool:
    """Embedded and batch runtimes call the model in process: Triton's settings and a protocol do not apply."""
    return ctx.choice("serving_runtime") in IN_PROCESS


def _unused_note(ctx: RuleContext) -> str:
    runtime = ctx.choice("serving_runtime")
    if runtime in ("python_rest", "embedded"):
        return f" (the {runtime} runtime does not run Triton: recorded for when the model moves to it)"
    return ""


def _per_model(values: dict[str, str]) -> str:
    """``a: x; b: y``, or just ``x`` when every model got the same."""
    if len(set(values.values())) == 1 and len(values) > 1:
        return f"all: {next(iter(values.values()))}"
    return "; ".join(f"{k}: {v}" for k, v in values.items())


@dataclass(frozen=True)
class _Demand:
    """What the serving runtime rule weighs: what calls for Triton, and whether a thin wrapper could serve."""

    spec: Spec
    rps_min: float  # threshold triton_from_rps
    p99_max: float  # threshold triton_below_p99_ms
    reasons: tuple[str, ...]  # what calls for Triton, in words: several models, GPUs, the throughput, the p99
    reads: tuple[ReqPath, ...]  # the requirements those reasons read
    tensors: bool  # the first model takes tensors (an image), not a row of features
    thin_ok: bool  # ... and is one small CPU model (sklearn, python), stateless, over REST, on a row of features


def _batch(d: _Demand) -> Outcome:
    return Outcome(
        "batch_scoring",
        "predictions are precomputed: a scheduled job scores every entity and writes the predictions where "
        "the application reads them",
        [MODE],
        [("triton", "a server answering requests nobody sends")],
    )


def _async(d: _Demand) -> Outcome:
    return Outcome(
        "async_worker",
        "predictions on demand through a broker: a worker consumes the request queue and publishes results",
        [MODE, ("existing", "broker")],
        [("triton", "callers would block on a synchronous call")],
    )


def _embedded(d: _Demand) -> Outcome:
    return Outcome(
        "embedded",
        "the model ships as a library dependency of the application: no network hop",
        [MODE],
        [("triton", "a network hop and a service for a model the application can call in-process")],
    )


def _thin(d: _Demand) -> Outcome:
    sv = d.spec.serving
    m = sv.models[0]
    return Outcome(
        "python_rest",
        f"one small CPU model ({m.framework}) at {sv.throughput_rps} requests/s with a {sv.latency_p99_ms} ms "
        "budget, and the team favours speed: a thin Python REST wrapper (FastAPI) is the simplest thing. "
        f"Its cost: no dynamic batching, one request per worker at a time, a Python hop per call; move to "
        f"Triton from {d.rps_min} requests/s or below {d.p99_max} ms",
        [MODE, LATENCY, THROUGHPUT, ("delivery", "priority"), _model(0, "framework")],
        [("triton", "one more server to learn for a model a 30-line wrapper serves within the budget")],
    )


def _triton_for_operations(d: _Demand) -> Outcome:
    spec = d.spec
    m = spec.serving.models[0]
    why = (
        "the team favours reliability"
        if spec.delivery.priority == "reliability"
        else f"{m.framework} needs a Triton backend"
        if m.framework not in THIN_FRAMEWORKS
        else "the model is stateful"
        if m.stateful
        else "the model takes tensors, not a row of features"
        if d.tensors
        else "gRPC is asked for"
    )
    return Outcome(
        "triton",
        f"one model within a relaxed budget, but {why}: Triton gives health checks, metrics, versioned "
        "model loading and batching without custom code",
        [*d.reads, ("delivery", "priority"), _model(0, "framework"), LATENCY, THROUGHPUT],
        [("python_rest", "custom serving code to write and keep healthy: " + why)],
    )


def _triton_for_load(d: _Demand) -> Outcome:
    return Outcome(
        "triton",
        "Triton Inference Server: " + ", ".join(d.reasons) + "; it runs models in parallel, batches requests "
        "dynamically and serves every framework here",
        d.reads,
        [
            (
                "python_rest",
                "no dynamic batching and one request per worker at a time: does not hold " + " and ".join(d.reasons),
            )
        ],
    )


SERVING_RUNTIME_TABLE: tuple[Row[_Demand], ...] = (
    Row("`serving.mode: batch`", "batch_scoring", lambda d: d.spec.serving.mode == "batch", _batch),
    Row("`serving.mode: async`", "async_worker", lambda d: d.spec.serving.mode == "async", _async),
    Row("`serving.mode: embedded`", "embedded", lambda d: d.spec.serving.mode == "embedded", _embedded),
    Row(
        "nothing calls for Triton, the team favours speed (`delivery.priority: speed`), and one small CPU model "
        "(sklearn or python, stateless) reads a row of features over REST",
        "python_rest",
        lambda d: not d.reasons and d.spec.delivery.priority == "speed" and d.thin_ok,
        _thin,
    ),
    Row(
        "nothing calls for Triton, but the team favours reliability, or the model is not one a thin wrapper serves "
        "(another framework, stateful, tensors, gRPC)",
        "triton",
        lambda d: not d.reasons,
        _triton_for_operations,
    ),
    Row(
        "otherwise: several models, GPU inference, a throughput from `triton_from_rps` or a p99 below "
        "`triton_below_p99_ms`",
        "triton",
        always,
        _triton_for_load,
    ),
)


def _demand(spec: Spec) -> _Demand:
    sv = spec.serving
    rps_min, p99_max = THRESHOLDS["triton_from_rps"], THRESHOLDS["triton_below_p99_ms"]
    gpu = [i for i, m in enumerate(sv.models) if m.accelerator == "gpu"]
    reasons: list[str] = []
    reads: list[ReqPath] = [MODE]
    if len(sv.models) > 1:
        reasons.append(f"{len(sv.models)} models run side by side")
        reads.append(("serving", "models"))
    if gpu:
        reasons.append("GPU inference")
        reads += [_model(i, "accelerator") for i in gpu]
    if sv.throughput_rps >= rps_min:
        reasons.append(f"{sv.throughput_rps} requests/s (from {rps_min} batching pays)")
        reads.append(THROUGHPUT)
    if sv.latency_p99_ms < p99_max:
        reasons.append(f"p99 {sv.latency_p99_ms} ms (below {p99_max} ms)")
        reads.append(LATENCY)
    m = sv.models[0]
    # the thin wrapper serves one row of features per request: a model that takes tensors (an image) needs Triton
    tensors = m.feature_service is None and bool(m.inputs)
    thin_ok = m.framework in THIN_FRAMEWORKS and not m.stateful and sv.protocol == "rest" and not tensors
    return _Demand(spec, rps_min, p99_max, tuple(reasons), tuple(reads), tensors, thin_ok)


@rule(
    "serving_runtime",
    title="Serving runtime: what answers prediction requests",
    reads=(
        "serving.mode",
        "serving.models",
        "serving.models[].accelerator",
        "serving.throughput_rps",
        "serving.latency_p99_ms",
        "delivery.priority",
        "serving.protocol",
    ),
    alternatives=("triton", "python_rest", "batch_scoring", "async_worker", "embedded"),
    choices=("triton", "python_rest", "batch_scoring", "async_worker", "embedded"),
    thresholds=("triton_from_rps", "triton_below_p99_ms"),
    table=SERVING_RUNTIME_TABLE,
)
def serving_runtime(ctx: RuleContext) -> Outcome:
    """Online serving goes to Triton Inference Server when it pays off; the other modes get their runtime.

    Triton (parallel model execution, dynamic batching, many frameworks) serves several models,
    GPU models, a throughput from `triton_from_rps` or a p99 below `triton_below_p99_ms`. One small
    CPU model (sklearn or python) with a relaxed budget, when the team favours speed of delivery,
    gets a thin REST wrapper in Python (FastAPI): simplest to build, but no dynamic batching, one
    request per worker at a time and a Python hop on every call — it must be replaced by Triton
    once the budget tightens. Batch mode scores on a schedule into a table, async mode is a worker
    on a broker queue, embedded mode ships the model as a library.
    """
    return first_match(SERVING_RUNTIME_TABLE, _demand(ctx.spec))


TRITON_APPLIES = "a Triton server serves the models (every runtime but python_rest)"


def _no_triton(ctx: RuleContext) -> str | None:
    """Triton settings apply only where a Triton server serves the models."""
    from .architecture import TRITON_RUNTIMES

    if ctx.choice("serving_runtime") in TRITON_RUNTIMES:
        return None
    where = {
        "python_rest": "the REST service runs the model in its own process",
        "embedded": "the model runs in the application's process, as a library",
        "batch_scoring": "batch scoring runs the model in process",
    }
    return f"no Triton server: {where.get(str(ctx.choice('serving_runtime')), 'the model runs in process')}"


def _no_wire(runtime: str | None) -> str | None:
    """Why no wire protocol is decided for a runtime, or None when callers reach it over a network."""
    if runtime == "embedded":
        return "the model is an in-process library of the application: no caller reaches it over a network"
    if runtime == "batch_scoring":
        return "batch scoring writes predictions where the application reads them: nobody calls the model"
    return None


@rule(
    "protocol",
    title="Protocol: how clients call the model server",
    reads=("serving.protocol", "serving.latency_p99_ms"),
    alternatives=("rest", "grpc"),
    choices=("rest", "grpc"),
    after=("serving_runtime",),
    thresholds=("grpc_below_p99_ms",),
    unless=lambda ctx: _no_wire(ctx.choice("serving_runtime")),
    applies="callers reach the model over a network: runtime triton, python_rest or async_worker",
)
def protocol(ctx: RuleContext) -> Outcome | None:
    """gRPC below `grpc_below_p99_ms` (binary framing, persistent HTTP/2 connections); else as asked.

    The thin Python wrapper speaks REST only.
    """
    sv = ctx.spec.serving
    if _in_process(ctx):
        return None  # nothing is called over a network
    limit = THRESHOLDS["grpc_below_p99_ms"]
    if ctx.choice("serving_runtime") == "python_rest":
        return Outcome(
            "rest",
            "the thin Python wrapper is a REST service",
            [PROTOCOL],
            [("grpc", "would need generated stubs in the wrapper; Triton is the way to gRPC")],
        )
    if sv.latency_p99_ms < limit:
        asked = "" if sv.protocol == "grpc" else " (REST was asked for, but its JSON encoding costs too much here)"
        return Outcome(
            "grpc",
            f"p99 {sv.latency_p99_ms} ms is below {limit} ms: gRPC has lower per-call overhead than REST{asked}",
            [LATENCY, PROTOCOL],
            [("rest", "JSON encoding and a new request per call eat a tight budget")],
        )
    other = "rest" if sv.protocol == "grpc" else "grpc"
    return Outcome(
        sv.protocol,
        f"p99 {sv.latency_p99_ms} ms leaves room for either protocol: {sv.protocol} as asked",
        [PROTOCOL, LATENCY],
        [(other, f"{sv.protocol} was asked for and the budget does not force a change")],
    )


@rule(
    "triton_backend",
    title="Triton backend of each model",
    reads=("serving.models[].framework",),
    alternatives=("python", "onnxruntime", "pytorch", "tensorflow"),
    after=("serving_runtime",),
    unless=_no_triton,
    applies=TRITON_APPLIES,
)
def triton_backend(ctx: RuleContext) -> Outcome | None:
    """onnx: onnxruntime; pytorch: pytorch (TorchScript); tensorflow: tensorflow; sklearn and python: the
    python backend (sklearn models are loaded from their joblib artefact inside it).
    """
    if _in_process(ctx):
        return None  # the model runs in process: no Triton model configuration
    models = ctx.spec.serving.models
    value = {m.name: BACKENDS[m.framework] for m in models}
    return Outcome(
        _per_model(value),
        "each framework runs in its native backend; scikit-learn and custom code in the python backend"
        + _unused_note(ctx),
        [_model(i, "framework") for i in range(len(models))],
        [("python for everything", "loses the native backends' speed and memory handling")],
        value=value,
    )


def _batching(m: ModelSpec, p99: float, rps: float) -> dict[str, Any]:
    """The batching of one model from the cost model: one execution costs `call + row * batch` us.

    A request may wait at most `wait` us (the budget's share, capped) for others to join it; at ``rps`` that
    brings ``rps * wait`` requests. When that is under 2, no batch fills within the wait: the model
    batches with no delay (only requests that queue while it is busy are batched, at no cost in latency).
    Otherwise the target batch is what arrives within the wait (no larger than max_batch_size nor than
    what computes within the same share of the budget, rounded down to a power of two), the delay is the
    time that target takes to arrive, and the preferred sizes are the target doubled up to max_batch_size.
    """
    off = {"max_batch_size": 0, "dynamic": False, "preferred": [], "delay_us": 0, "fills": False, "batch": 1}
    if m.stateful:
        return {**off, "max_batch_size": m.max_batch_size if m.max_batch_size is not None else 0}
    mbs = m.max_batch_size if m.max_batch_size is not None else THRESHOLDS["default_max_batch_size"]
    if mbs == 0:
        return off
    call = THRESHOLDS["batch_call_cost_us"][m.framework]
    row = THRESHOLDS["batch_row_cost_us"][m.framework]
    share = p99 * 1000 * THRESHOLDS["queue_delay_share"]
    wait = min(share, THRESHOLDS["queue_delay_max_us"])
    computes = int((share - call) / row) if row else mbs  # the largest batch computed within the share
    target = max(1, min(mbs, computes, int(rps * wait / 1e6)))
    target = 1 << (target.bit_length() - 1)  # a power of two, as the sizes batches are usually tuned for
    if target < 2:
        return {**off, "max_batch_size": mbs, "dynamic": True}
    delay = max(THRESHOLDS["queue_delay_min_us"], min(int(wait), math.ceil(target / rps * 1e6)))
    preferred = sorted({target << k for k in range(mbs.bit_length()) if target << k < mbs} | {mbs})
    return {
        "max_batch_size": mbs,
        "dynamic": True,
        "preferred": preferred,
        "delay_us": delay,
        "fills": True,
        "batch": target,
    }


def _batching_reason(m: ModelSpec, b: dict[str, Any], p99: float, rps: float) -> str:
    """Why, in numbers: the cost model of the model's framework and what the load brings within the wait."""
    call = THRESHOLDS["batch_call_cost_us"][m.framework]
    row = THRESHOLDS["batch_row_cost_us"][m.framework]
    wait = int(min(p99 * 1000 * THRESHOLDS["queue_delay_share"], THRESHOLDS["queue_delay_max_us"]))
    cost = f"{m.name} ({m.framework}: {call} us a call + {row} us a row)"
    arrivals = rps * wait / 1e6
    if b["fills"]:
        n = b["batch"]
        gain = (call + row) / (call / n + row)
        return (
            f"{cost}: {rps} requests/s bring {arrivals:.1f} requests within the {wait} us a request may wait; "
            f"a batch of {n} fills in {b['delay_us']} us and serves {gain:.1f}x the requests of one-by-one calls"
        )
    busy = rps * (call + row) / 1e6
    return (
        f"{cost}: {rps} requests/s bring only {arrivals:.1f} requests within the {wait} us a request may wait, "
        f"so no batch fills: no queue delay; requests that queue while the model is busy (one by one it is "
        f"busy {busy:.0%} of the time) are still batched, at no wait"
    )


@rule(
    "dynamic_batching",
    title="Batching: max_batch_size, dynamic batching, queue delay and preferred sizes",
    reads=(
        "serving.models[].max_batch_size",
        "serving.models[].stateful",
        "serving.models[].framework",
        "serving.latency_p99_ms",
        "serving.throughput_rps",
    ),
    after=("serving_runtime",),
    thresholds=(
        "default_max_batch_size",
        "queue_delay_share",
        "queue_delay_min_us",
        "queue_delay_max_us",
        "batch_call_cost_us",
        "batch_row_cost_us",
    ),
    unless=_no_triton,
    applies=TRITON_APPLIES,
)
def dynamic_batching(ctx: RuleContext) -> Outcome | None:
    """Enable dynamic batching for stateless models, with a queue delay the load can use.

    max_batch_size is the spec's value or `default_max_batch_size`. A request may wait at most
    `queue_delay_share` of the p99 budget (at most `queue_delay_max_us`) for others to join it. One
    execution costs `batch_call_cost_us + batch_row_cost_us x rows` of the model's framework, so a batch
    of n serves up to n times the requests of n calls when the per-call cost dominates. Where the
    throughput brings fewer than 2 requests within that wait, no batch can fill: the delay is 0 (batches
    form only from requests queued while the model is busy) instead of making every request wait.
    Otherwise the target batch is what arrives within the wait (capped by max_batch_size and by what
    computes within the same share of the budget; a power of two), the delay is its arrival time (at least
    `queue_delay_min_us`), and the preferred sizes are the target doubled up to max_batch_size. Stateful
    models keep their sequences instead (sequence batching); `max_batch_size: 0` turns batching off.
    """
    if _in_process(ctx):
        return None  # the model runs in process: no Triton model configuration
    sv = ctx.spec.serving
    value = {m.name: _batching(m, sv.latency_p99_ms, sv.throughput_rps) for m in sv.models}
    summary = {}
    for name, b in value.items():
        if not b["dynamic"]:
            summary[name] = f"max_batch_size {b['max_batch_size']}, no dynamic batching"
        elif b["fills"]:
            summary[name] = (
                f"max_batch_size {b['max_batch_size']}, preferred {b['preferred']}, queue delay {b['delay_us']} us"
            )
        else:
            summary[name] = f"max_batch_size {b['max_batch_size']}, no queue delay (the load fills no batch)"
    reads: list[ReqPath] = [LATENCY, THROUGHPUT]
    for i, m in enumerate(sv.models):
        if m.max_batch_size is not None:
            reads.append(_model(i, "max_batch_size"))
        if m.stateful:
            reads.append(_model(i, "stateful"))
        if value[m.name]["dynamic"]:
            reads.append(_model(i, "framework"))
    if not any(b["dynamic"] for b in value.values()):
        return Outcome(
            _per_model(summary),
            "batching is off: every model is stateful or sets max_batch_size 0 (its tensors carry their own "
            "leading dimension)" + _unused_note(ctx),
            reads,
            [("dynamic batching", "the models do not accept a batch dimension")],
            value=value,
        )
    reasons = [
        _batching_reason(m, value[m.name], sv.latency_p99_ms, sv.throughput_rps)
        for m in sv.models
        if value[m.name]["dynamic"]
    ]
    return Outcome(
        _per_model(summary),
        "; ".join(reasons)
        + ("; stateful models keep their sequences" if any(m.stateful for m in sv.models) else "")
        + _unused_note(ctx),
        reads,
        [
            ("no batching", "one execution per request pays the per-call cost for every request"),
            ("a longer queue delay", "would spend the latency budget waiting for requests the load does not bring"),
        ],
        value=value,
    )


@rule(
    "instance_group",
    title="Instance group: where each model runs and how many copies",
    reads=("serving.models[].accelerator", "serving.throughput_rps"),
    alternatives=("KIND_CPU", "KIND_GPU"),
    after=("serving_runtime",),
    thresholds=("cpu_instance_rps", "gpu_instance_rps", "max_cpu_instances", "max_gpu_instances"),
    unless=_no_triton,
    applies=TRITON_APPLIES,
)
def instance_group(ctx: RuleContext) -> Outcome | None:
    """KIND_GPU for GPU models, KIND_CPU otherwise; the count covers the throughput.

    count = ceil(throughput_rps / per-instance rate), between 1 and the per-kind maximum.
    """
    if _in_process(ctx):
        return None  # the model runs in process: no Triton model configuration
    sv = ctx.spec.serving
    value: dict[str, tuple[str, int]] = {}
    for m in sv.models:
        gpu = m.accelerator == "gpu"
        rate = THRESHOLDS["gpu_instance_rps" if gpu else "cpu_instance_rps"]
        most = THRESHOLDS["max_gpu_instances" if gpu else "max_cpu_instances"]
        value[m.name] = ("KIND_GPU" if gpu else "KIND_CPU", max(1, min(most, math.ceil(sv.throughput_rps / rate))))
    several = any(n > 1 for _, n in value.values())
    alternatives = (
        [("one instance", "requests would queue behind each other at this throughput")]
        if several
        else [("more instances", "memory for copies the throughput does not need")]
    )
    return Outcome(
        _per_model({k: f"{kind} x{n}" for k, (kind, n) in value.items()}),
        f"enough instances for {sv.throughput_rps} requests/s at {THRESHOLDS['cpu_instance_rps']} per CPU "
        f"instance / {THRESHOLDS['gpu_instance_rps']} per GPU instance" + _unused_note(ctx),
        [THROUGHPUT, *(_model(i, "accelerator") for i in range(len(sv.models)))],
        alternatives,
        value=value,
    )


@rule(
    "pipeline",
    title="Pipeline form: how several models are chained",
    reads=("serving.pipeline",),
    alternatives=("none", "ensemble", "bls"),
    choices=("none", "ensemble", "bls"),
    after=("serving_runtime",),
    unless=_no_triton,
    applies=TRITON_APPLIES,
)
def pipeline(ctx: RuleContext) -> Outcome | None:
    """A fixed line of models is a Triton ensemble (no glue code); control flow between models
    (skip the rest when nothing is detected, loops) is a python-backend BLS model calling the
    others, as in the lecture's plate recognition (detector, then STN, then LPRNet).
    """
    pipe = ctx.spec.serving.pipeline
    if pipe is None and _in_process(ctx):
        return None  # one model, called in process
    if pipe is None:
        return Outcome(
            "none",
            "no pipeline: each request goes to one model",
            [("serving", "pipeline")],
            [("ensemble", "nothing to chain")],
        )
    steps = " -> ".join(pipe.steps)
    reads: list[ReqPath] = [("serving", "pipeline", "steps"), ("serving", "pipeline", "conditional")]
    if pipe.conditional:
        return Outcome(
            "bls",
            f"{pipe.name}: {steps} with control flow between steps: a python-backend BLS model calls the others "
            "and skips the rest when a step finds nothing",
            reads,
            [("ensemble", "a fixed graph cannot skip or loop")],
        )
    return Outcome(
        "ensemble",
        f"{pipe.name}: {steps} is a fixed line: a Triton ensemble wires outputs to inputs with no glue code",
        reads,
        [("bls", "custom python code for a line an ensemble expresses declaratively")],
    )


@rule(
    "sequence_batching",
    title="Stateful models: sequence batching",
    reads=("serving.models[].stateful",),
    alternatives=("sequence batching", "none"),
    after=("serving_runtime",),
    unless=_no_triton,
    applies=TRITON_APPLIES,
)
def sequence_batching(ctx: RuleContext) -> Outcome | None:
    """A stateful model gets Triton's sequence batcher: every request of a sequence (one correlation
    id) reaches the same instance, which keeps the state between them.
    """
    if _in_process(ctx):
        return None  # the model runs in process: no Triton model configuration
    models = ctx.spec.serving.models
    stateful = [(i, m.name) for i, m in enumerate(models) if m.stateful]
    if not stateful:
        return Outcome(
            "none",
            "every model is stateless: requests are independent and can be batched freely",
            [_model(i, "stateful") for i in range(len(models))],
            [("sequence batching", "no model keeps state")],
            value=[],
        )
    return Outcome(
        ", ".join(n for _, n in stateful),
        "these models keep state across a sequence of requests: the sequence batcher routes each sequence "
        "to one instance; clients send a sequence id with start and end flags",
        [_model(i, "stateful") for i, _ in stateful],
        [("dynamic batching", "would mix requests of different sequences")],
        value=[n for _, n in stateful],
    )


def _population(ctx: RuleContext) -> tuple[str | None, list[ReqPath]]:
    """The source whose rows are the entities to score: the declared one, else the source of the scored
    feature service's first view.
    """
    spec = ctx.spec
    if spec.serving.population is not None:
        return spec.serving.population, [("serving", "population")]
    service = spec.service(spec.serving.models[0].feature_service or "")
    for ref in service.features if service is not None else []:
        view = spec.view(ref.partition(".")[0])
        if view is not None:
            return view.source, [("serving", "population"), ("serving", "models", 0, "feature_service")]
    return None, [("serving", "population")]


# where batch scores go, by warehouse: the warehouse itself; parquet files when the warehouse is files
SCORE_WAREHOUSES = ("postgres", "spark", "bigquery", "snowflake", "redshift")


def score_target(warehouse: str) -> str:
    """The score store of a warehouse: the warehouse's own name, or "parquet" for files."""
    return warehouse if warehouse in SCORE_WAREHOUSES else "parquet"


def score_location(target: str, table: str) -> str:
    """Where the scores of a target lie, in words (the decision's value and the generated docs)."""
    return {
        "postgres": f"the PostgreSQL table {table}",
        "spark": f"the Spark dataset $SPARK_LAKE_ROOT/scores/{table}/ partitioned by run_id",
        "bigquery": f"the BigQuery table $BIGQUERY_DATASET.{table}",
        "snowflake": f"the Snowflake table {table.upper()} ($SNOWFLAKE_DATABASE.$SNOWFLAKE_SCHEMA)",
        "redshift": f"the Redshift table {table} (loaded from $REDSHIFT_S3_STAGING_LOCATION by COPY)",
    }.get(target, f"partitioned parquet scores/{table}/run_id=.../")


@rule(
    "batch_scoring",
    title="Batch scoring: the population, where the scores go and when",
    reads=("serving.population", "serving.schedule", "training.schedule", "existing.warehouse", "features.freshness"),
    alternatives=("warehouse table", "partitioned parquet"),
    after=("serving_runtime", "offline_store", "training_mode"),
)
def batch_scoring(ctx: RuleContext) -> Outcome | None:
    """Batch serving scores the whole population in process, with point-in-time features from the offline
    store as of the run (nothing materialized: as fresh as the sources) and the model loaded once, in chunks
    so memory stays flat. Scores go to the decided warehouse, with the entity keys, score, model version, run
    id and time: a PostgreSQL, BigQuery, Snowflake or Redshift table (the run's rows deleted and the new ones
    inserted in one transaction), a Spark dataset under the lake partitioned by run id (the run's partition
    replaced by Spark's dynamic partition overwrite), or partitioned parquet files when the warehouse is files;
    a rerun of a run replaces its rows. It runs right after training and its quality gate, on
    `serving.schedule` (default: the training schedule).
    """
    if ctx.choice("serving_runtime") != "batch_scoring":
        return None
    spec = ctx.spec
    population, reads = _population(ctx)
    schedule = spec.serving.schedule or spec.training.schedule
    reads.append(("serving", "schedule") if spec.serving.schedule else ("training", "schedule"))
    cron = cron_expression(schedule) if schedule else None
    target = score_target(spec.existing.warehouse)
    reads.append(("existing", "warehouse"))
    fresh = ""
    if spec.features is not None:  # read as of the run, nothing materialized in between
        reads.append(("features", "freshness"))
        fresh = f" (as fresh as the sources at the run, within the {spec.features.freshness} freshness)"
    table = f"{spec.project.name}_scores"
    where = score_location(target, table)
    when = f"at `{cron}`" if cron else "when run (`make score`)"
    return Outcome(
        f"{population or 'no population'} -> {where}, {when}",
        f"every entity of {population} is scored in process with point-in-time features from the offline store"
        f"{fresh}, in chunks; scores go to {where} {when}, right after training passes its gate",
        reads,
        [
            ("triton", "a model server for a job that calls the model once per chunk in process"),
            ("online features", "reading the online store row by row is slow and skips point-in-time correctness"),
            ("warehouse table", "the warehouse is parquet files: no database to write a table to")
            if target == "parquet"
            else ("partitioned parquet", "not where the business reads"),
        ],
        value={"population": population, "cron": cron, "target": target, "table": table},
    )


def _no_bundle(ctx: RuleContext) -> str | None:
    """Why no bundle ships to the devices, or None when the embedded library reads one."""
    if ctx.choice("serving_runtime") != "embedded":
        return "the model is not embedded in an application: nothing ships to devices"
    if not ctx.spec.serving.models[0].feature_service:
        return "the embedded model reads no features (its inputs come with each call): the package is all it needs"
    return None


@rule(
    "embedded_bundle",
    title="Embedded serving: the bundle the library reads",
    reads=("features.freshness", "serving.stale_bundle", "privacy.retention"),
    alternatives=("refuse", "warn"),
    after=("serving_runtime",),
    unless=_no_bundle,
    applies="runtime embedded, and the model reads a feature service",
)
def embedded_bundle(ctx: RuleContext) -> Outcome | None:
    """Embedded serving ships the model as a library reading a local, versioned bundle: the trained model, a
    SQLite snapshot of the online features and a manifest with checksums. Bundles are built centrally
    (`make bundle`), installed atomically on the device, verified, and refused (or served with a warning)
    when their features are older than the freshness allows; the previous good bundle keeps serving.
    """
    if ctx.choice("serving_runtime") != "embedded":
        return None
    spec = ctx.spec
    policy = spec.serving.stale_bundle
    fresh = spec.features.freshness if spec.features is not None else None
    reads: list[ReqPath] = [("serving", "stale_bundle"), ("privacy", "retention")]
    if fresh is not None:
        reads.insert(1, ("features", "freshness"))
    keep = f"; bundles older than the retention {spec.privacy.retention} are purged" if spec.privacy.retention else ""
    computed = sorted(o.name for o in spec.on_demand_views_of(spec.serving.models[0].feature_service or ""))
    transforms = f" with the on-demand transformations ({', '.join(computed)}: run on each request)" if computed else ""
    stale = "refused" if policy == "refuse" else "served with a warning"
    return Outcome(
        f"{policy} bundles older than {fresh}" if fresh else "no feature freshness: every bundle is served",
        f"the model and a SQLite snapshot of the online features travel as one checksummed bundle{transforms}; a "
        f"bundle whose features are older than {fresh} is {stale}{keep}",
        reads,
        [
            ("warn" if policy == "refuse" else "refuse", "the spec's serving.stale_bundle says otherwise"),
            ("feature server", "a network hop and a server on the device"),
        ],
        value={"policy": policy},
    )


# ---------------------------------------------------------------- findings
@finding("latency.infeasible", "error", title="p99 below what the runtime, protocol and online store can do")
def latency_infeasible(ctx: RuleContext) -> Iterator[Conflict]:
    """The p99 budget covers the online feature read and the call to the model server; each has a floor
    (thresholds `online_read_floor_ms`, `serving_floor_ms`). An embedded predict has its own (`embedded_floor_ms`):
    the in-process call, the bundle's feature snapshot read, each on-demand transformation and the model's call.
    A budget below the sum cannot be met.
    """
    sv = ctx.spec
    if sv.serving.mode not in ("online", "embedded"):  # online and embedded serving: the generated path has a floor
        return
    embedded, embedded_parts = _embedded_floor(ctx)
    if sv.serving.mode == "embedded":
        floor, parts = embedded, embedded_parts
    else:
        runtime, proto = ctx.choice("serving_runtime"), ctx.choice("protocol") or "in_process"
        floor = THRESHOLDS["serving_floor_ms"].get(f"{runtime}/{proto}", 0.0)
        parts = [f"{runtime} over {proto} {floor} ms"]
        store = ctx.choice("online_store")
        if store is not None and any(m.feature_service for m in sv.serving.models):
            read = THRESHOLDS["online_read_floor_ms"][store]
            floor += read
            parts.append(f"a {store} feature read {read} ms")
    budget = sv.serving.latency_p99_ms
    if budget >= floor:
        return
    cited: list[ReqPath] = [LATENCY, MODE] if sv.serving.mode == "embedded" else [LATENCY, PROTOCOL, MODE]
    if sv.serving.mode == "embedded":
        fix = f"raise serving.latency_p99_ms to at least {embedded} ms: nothing is faster than a predict in process"
    elif budget < embedded:
        fix = (
            f"raise serving.latency_p99_ms to at least {embedded} ms: no serving mode meets {budget} ms "
            f"(a predict in process still spends {' plus '.join(embedded_parts)})"
        )
    else:
        fix = (
            f"raise serving.latency_p99_ms to at least {round(floor, 3)} ms, or serve embedded (serving.mode: embedded)"
        )
    yield Conflict(f"p99 {budget} ms is below the {round(floor, 3)} ms floor of " + " plus ".join(parts), cited, fix)


def _embedded_floor(ctx: RuleContext) -> tuple[float, list[str]]:
    """The least p99 of a predict in process, and what it is made of: the call, the feature snapshot read, each
    on-demand transformation of the entry model's feature service, the model's own call.
    """
    costs = THRESHOLDS["embedded_floor_ms"]
    call = THRESHOLDS["serving_floor_ms"]["embedded/in_process"]
    parts = [(f"an in-process call {call} ms", call)]
    service = ctx.spec.serving.models[0].feature_service
    if service:
        parts.append((f"a read of the bundle's feature snapshot {costs['snapshot_read']} ms", costs["snapshot_read"]))
        views = ctx.spec.on_demand_views_of(service)
        if views:
            cost = round(costs["on_demand_view"] * len(views), 3)
            parts.append((f"{len(views)} on-demand transformation(s) {cost} ms", cost))
    parts.append((f"the model's call {costs['model_call']} ms", costs["model_call"]))
    return round(sum(c for _, c in parts), 3), [text for text, _ in parts]


@finding("serving.nothing_to_score", "error", title="Batch scoring of a model that reads no features")
def nothing_to_score(ctx: RuleContext) -> Iterator[Conflict]:
    """Batch scoring scores every entity of a population with the entity's features from the offline store. A
    model that reads no feature service has neither: its inputs (a tensor such as an image) come with each call,
    so a scheduled job would have nothing to score and nowhere to read it from.
    """
    sv = ctx.spec.serving
    if sv.mode != "batch" or sv.models[0].feature_service:
        return
    yield Conflict(
        f"serving.mode is batch, but model {sv.models[0].name} reads no feature service: batch scoring has no "
        "entities to score and no features to score them with",
        [MODE, _model(0, "feature_service")],
        "serve the model online or embedded (serving.mode), or give it a feature service (features.services) "
        "whose entities batch scoring scores",
    )


@finding("serving.stateful_in_pipeline", "warning", title="A stateful model inside a pipeline")
def stateful_in_pipeline(ctx: RuleContext) -> Iterator[Conflict]:
    """Every request through the pipeline must carry a sequence id with start/end flags, and the stateful
    step is not dynamically batched.
    """
    sv = ctx.spec.serving
    if sv.pipeline is None:
        return
    for i, m in enumerate(sv.models):
        if m.stateful and m.name in sv.pipeline.steps:
            yield Conflict(
                f"model {m.name} is stateful and a step of pipeline {sv.pipeline.name}",
                [_model(i, "stateful"), ("serving", "pipeline", "steps")],
                "send sequence ids with every pipeline request, or move the stateful model out of the pipeline",
            )


@finding("serving.throughput_beyond_one_machine", "warning", title="Throughput beyond one machine")
def throughput_beyond_one_machine(ctx: RuleContext) -> Iterator[Conflict]:
    """Above `single_machine_max_rps` one docker-compose host becomes the bottleneck; Kubernetes scales out."""
    sv, limit = ctx.spec.serving, THRESHOLDS["single_machine_max_rps"]
    if ctx.choice("deployment") == "docker_compose" and sv.throughput_rps > limit and sv.mode == "online":
        yield Conflict(
            f"{sv.throughput_rps} requests/s on one machine (above {limit})",
            [THROUGHPUT, ("existing", "platform")],
            "deploy on kubernetes (existing.platform: kubernetes), or waive after a load test",
        )


@finding("serving.variable_size_batching", "warning", title="Variable-size inputs batched dynamically")
def variable_size_batching(ctx: RuleContext) -> Iterator[Conflict]:
    """Dynamic batching joins requests only when every input has the same shape; an input with a variable
    dimension (-1) splits batches by shape, so the batching the plan promises may not happen.
    """
    spec = ctx.spec
    batching = typed(ctx, "dynamic_batching", BATCHING) or {}
    # the steps of a shaped pipeline are judged with their shapes (pipeline.variable_size_batching)
    piped = set(spec.serving.pipeline.steps) if spec.serving.pipeline and pipe_shapes(ctx) is not None else set()
    for i, m in enumerate(spec.serving.models):
        if m.name not in batching or not batching[m.name]["dynamic"] or m.name in piped:
            continue
        variable = [j for j, t in enumerate(m.inputs) if -1 in t.dims]
        if variable:
            names = ", ".join(m.inputs[j].name for j in variable)
            yield Conflict(
                f"model {m.name}: input(s) {names} have a variable dimension (-1), yet requests are batched "
                "dynamically: only requests of equal shape join a batch",
                [*(_model(i, "inputs", j, "dims") for j in variable), ("serving", "models", i)],
                f"fix the dimension, pad inputs to a fixed size, or set serving.models[{i}].max_batch_size: 0",
            )


RULES = (
    serving_runtime,
    protocol,
    triton_backend,
    dynamic_batching,
    instance_group,
    pipeline,
    sequence_batching,
    batch_scoring,
    embedded_bundle,
)
FINDINGS = (
    latency_infeasible,
    nothing_to_score,
    stateful_in_pipeline,
    throughput_beyond_one_machine,
    variable_size_batching,
)
