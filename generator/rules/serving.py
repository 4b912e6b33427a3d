"""Serving rules: runtime, protocol and the Triton model configuration."""

from __future__ import annotations

import math
from typing import Any

from requirements_spec.models import ModelSpec

from .context import Outcome, ReqPath, RuleContext
from .registry import rule
from .thresholds import THRESHOLDS

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


def _model(i: int, *rest: str) -> ReqPath:
    return ("serving", "models", i, *rest)


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
    spec = ctx.spec
    sv = spec.serving
    if sv.mode == "batch":
        return Outcome(
            "batch_scoring",
            "predictions are precomputed: a scheduled job scores every entity and writes the predictions where "
            "the application reads them",
            [MODE],
            [("triton", "a server answering requests nobody sends")],
        )
    if sv.mode == "async":
        return Outcome(
            "async_worker",
            "predictions on demand through a broker: a worker consumes the request queue and publishes results",
            [MODE, ("existing", "broker")],
            [("triton", "callers would block on a synchronous call")],
        )
    if sv.mode == "embedded":
        return Outcome(
            "embedded",
            "the model ships as a library dependency of the application: no network hop",
            [MODE],
            [("triton", "a network hop and a service for a model the application can call in-process")],
        )
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
    if not reasons and spec.delivery.priority == "speed" and thin_ok:
        return Outcome(
            "python_rest",
            f"one small CPU model ({m.framework}) at {sv.throughput_rps} requests/s with a {sv.latency_p99_ms} ms "
            "budget, and the team favours speed: a thin Python REST wrapper (FastAPI) is the simplest thing. "
            f"Its cost: no dynamic batching, one request per worker at a time, a Python hop per call; move to "
            f"Triton from {rps_min} requests/s or below {p99_max} ms",
            [MODE, LATENCY, THROUGHPUT, ("delivery", "priority"), _model(0, "framework")],
            [("triton", "one more server to learn for a model a 30-line wrapper serves within the budget")],
        )
    if not reasons:
        why = (
            "the team favours reliability"
            if spec.delivery.priority == "reliability"
            else f"{m.framework} needs a Triton backend"
            if m.framework not in THIN_FRAMEWORKS
            else "the model is stateful"
            if m.stateful
            else "the model takes tensors, not a row of features"
            if tensors
            else "gRPC is asked for"
        )
        reads += [("delivery", "priority"), _model(0, "framework"), LATENCY, THROUGHPUT]
        return Outcome(
            "triton",
            f"one model within a relaxed budget, but {why}: Triton gives health checks, metrics, versioned "
            "model loading and batching without custom code",
            reads,
            [("python_rest", "custom serving code to write and keep healthy: " + why)],
        )
    return Outcome(
        "triton",
        "Triton Inference Server: " + ", ".join(reasons) + "; it runs models in parallel, batches requests "
        "dynamically and serves every framework here",
        reads,
        [
            (
                "python_rest",
                "no dynamic batching and one request per worker at a time: does not hold " + " and ".join(reasons),
            )
        ],
    )


@rule(
    "protocol",
    title="Protocol: how clients call the model server",
    reads=("serving.protocol", "serving.latency_p99_ms"),
    alternatives=("rest", "grpc"),
    choices=("rest", "grpc"),
    after=("serving_runtime",),
    thresholds=("grpc_below_p99_ms",),
)
def protocol(ctx: RuleContext) -> Outcome:
    """gRPC below `grpc_below_p99_ms` (binary framing, persistent HTTP/2 connections); else as asked.

    The thin Python wrapper speaks REST only.
    """
    sv = ctx.spec.serving
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
)
def triton_backend(ctx: RuleContext) -> Outcome:
    """onnx: onnxruntime; pytorch: pytorch (TorchScript); tensorflow: tensorflow; sklearn and python: the
    python backend (sklearn models are loaded from their joblib artefact inside it)."""
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


def _batching(m: ModelSpec, p99: float) -> dict[str, Any]:
    if m.stateful:
        mbs = m.max_batch_size if m.max_batch_size is not None else 0
        return {"max_batch_size": mbs, "dynamic": False, "preferred": [], "delay_us": 0}
    mbs = m.max_batch_size if m.max_batch_size is not None else THRESHOLDS["default_max_batch_size"]
    if mbs == 0:
        return {"max_batch_size": 0, "dynamic": False, "preferred": [], "delay_us": 0}
    delay = int(p99 * 1000 * THRESHOLDS["queue_delay_share"])
    delay = max(THRESHOLDS["queue_delay_min_us"], min(delay, THRESHOLDS["queue_delay_max_us"]))
    preferred = sorted({b for b in (mbs // 4, mbs // 2, mbs) if b >= 2})
    return {"max_batch_size": mbs, "dynamic": True, "preferred": preferred, "delay_us": delay}


@rule(
    "dynamic_batching",
    title="Batching: max_batch_size, dynamic batching, queue delay and preferred sizes",
    reads=(
        "serving.models[].max_batch_size",
        "serving.models[].stateful",
        "serving.latency_p99_ms",
        "serving.throughput_rps",
    ),
    after=("serving_runtime",),
    thresholds=(
        "default_max_batch_size",
        "queue_delay_share",
        "queue_delay_min_us",
        "queue_delay_max_us",
    ),
)
def dynamic_batching(ctx: RuleContext) -> Outcome:
    """Enable dynamic batching for stateless models: throughput at a held latency.

    max_batch_size is the spec's value or `default_max_batch_size`; the server waits at most
    `queue_delay_share` of the p99 budget (between `queue_delay_min_us` and `queue_delay_max_us`)
    to fill a batch, preferring a quarter, half and full batch. Stateful models keep their
    sequences instead (sequence batching); `max_batch_size: 0` turns batching off.
    """
    sv = ctx.spec.serving
    value = {m.name: _batching(m, sv.latency_p99_ms) for m in sv.models}
    summary = {
        name: (
            f"max_batch_size {b['max_batch_size']}, preferred {b['preferred']}, queue delay {b['delay_us']} us"
            if b["dynamic"]
            else f"max_batch_size {b['max_batch_size']}, no dynamic batching"
        )
        for name, b in value.items()
    }
    reads: list[ReqPath] = [LATENCY, THROUGHPUT]
    for i, m in enumerate(sv.models):
        if m.max_batch_size is not None:
            reads.append(_model(i, "max_batch_size"))
        if m.stateful:
            reads.append(_model(i, "stateful"))
    share = THRESHOLDS["queue_delay_share"]
    if not any(b["dynamic"] for b in value.values()):
        return Outcome(
            _per_model(summary),
            "batching is off: every model is stateful or sets max_batch_size 0 (its tensors carry their own "
            "leading dimension)" + _unused_note(ctx),
            reads,
            [("dynamic batching", "the models do not accept a batch dimension")],
            value=value,
        )
    return Outcome(
        _per_model(summary),
        f"dynamic batching trades a wait of at most {share:.0%} of the {sv.latency_p99_ms} ms budget for "
        f"throughput at {sv.throughput_rps} requests/s; stateful models keep their sequences" + _unused_note(ctx),
        reads,
        [
            ("no batching", "one inference per request leaves the hardware idle between requests"),
            ("a longer queue delay", "would spend the latency budget waiting"),
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
)
def instance_group(ctx: RuleContext) -> Outcome:
    """KIND_GPU for GPU models, KIND_CPU otherwise; the count covers the throughput.

    count = ceil(throughput_rps / per-instance rate), between 1 and the per-kind maximum.
    """
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
)
def pipeline(ctx: RuleContext) -> Outcome:
    """A fixed line of models is a Triton ensemble (no glue code); control flow between models
    (skip the rest when nothing is detected, loops) is a python-backend BLS model calling the
    others, as in the lecture's plate recognition (detector, then STN, then LPRNet)."""
    pipe = ctx.spec.serving.pipeline
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
)
def sequence_batching(ctx: RuleContext) -> Outcome:
    """A stateful model gets Triton's sequence batcher: every request of a sequence (one correlation
    id) reaches the same instance, which keeps the state between them."""
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
