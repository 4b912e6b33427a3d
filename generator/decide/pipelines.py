"""Serving pipelines: the rule (how many frames a BLS pipeline holds in flight) and its findings (shapes
that cannot work, personal outputs).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from .context import Conflict, Outcome, ReqPath, RuleContext
from .pipeline_shapes import PipelineShapes, shapes
from .registry import finding, rule
from .thresholds import THRESHOLDS

PIPE: ReqPath = ("serving", "pipeline")


def pipe_shapes(ctx: RuleContext) -> PipelineShapes | None:
    """The spec pipeline's shapes under the decided batch sizes (None: no pipeline)."""
    from .engine import TRITON_DTYPES, _model_inputs

    spec = ctx.spec
    pipe = spec.serving.pipeline
    if pipe is None or any(spec.model(s) is None for s in pipe.steps):
        return None
    from .values import BATCHING, typed

    batching = typed(ctx, "dynamic_batching", BATCHING) or {}
    sizes = {name: int(b["max_batch_size"]) for name, b in batching.items()}
    return shapes(spec, sizes, _model_inputs(spec, pipe.steps[0]), TRITON_DTYPES)


def _no_pipeline(ctx: RuleContext) -> str | None:
    """BLS instances apply only where the pipeline rule decided (a Triton server runs the models)."""
    skipped = ctx.not_applicable.get("pipeline")
    return f"no pipeline is decided: {skipped.reason}" if skipped is not None else None


@rule(
    "pipeline_instances",
    title="Pipeline instances: frames a BLS pipeline holds in flight",
    reads=("serving.throughput_rps", "serving.latency_p99_ms", "serving.models[].latency_ms"),
    after=("pipeline", "dynamic_batching"),
    thresholds=("max_pipeline_instances",),
    unless=_no_pipeline,
    applies="a Triton server runs the models, so the pipeline rule decides",
)
def pipeline_instances(ctx: RuleContext) -> Outcome:
    """A BLS instance holds one frame from its first step to its last, so the instances needed are the
    throughput times the chain's latency (Little's law): the sum of the steps' `latency_ms`, a step that
    declares none counting as an equal share of the p99 budget; at most `max_pipeline_instances`.
    """
    sv = ctx.spec.serving
    if ctx.choice("pipeline") != "bls" or sv.pipeline is None:
        return Outcome(
            "none",
            "no BLS pipeline: no model holds a request across a chain of calls",
            [PIPE],
            [("more instances", "nothing to hold in flight")],
            value=None,
        )
    share = float(sv.latency_p99_ms) / len(sv.pipeline.steps)
    parts = []
    reads: list[ReqPath] = [("serving", "throughput_rps"), ("serving", "latency_p99_ms"), (*PIPE, "steps")]
    total = 0.0
    for step in sv.pipeline.steps:
        m = ctx.spec.model(step)
        declared = m.latency_ms if m is not None else None
        ms = float(declared) if declared is not None else share
        if declared is not None and m is not None:
            reads.append(("serving", "models", sv.models.index(m), "latency_ms"))
        total += ms
        parts.append(f"{step} {ms:.0f} ms" + ("" if declared is not None else " (share of p99)"))
    most = THRESHOLDS["max_pipeline_instances"]
    needed = math.ceil(float(sv.throughput_rps) * total / 1000.0 - 1e-9)
    count = max(1, min(most, needed))
    capped = f", capped at {most}" if needed > most else ""
    return Outcome(
        f"{sv.pipeline.name}: KIND_CPU x{count}",
        f"{sv.throughput_rps} requests/s x chain latency {total:.0f} ms ({' + '.join(parts)}) = "
        f"{float(sv.throughput_rps) * total / 1000.0:.2f} frames in flight: {count} instance(s){capped}; each "
        "calls its steps asynchronously and scatters the objects of a frame to the per-object steps",
        reads,
        [("one instance", "frames would queue behind each other for the whole chain")],
        value=count,
    )


@finding("pipeline.personal_output_without_retention", "warning", title="Personal-data outputs with no retention")
def personal_output_without_retention(ctx: RuleContext) -> Iterator[Conflict]:
    """A model returns personal data (an output marked pii: a recognised name, address, plate), but the
    spec sets no privacy.retention: anything that stores the answers keeps them for ever.
    """
    spec = ctx.spec
    personal = [
        (i, j, m.name, t.name) for i, m in enumerate(spec.serving.models) for j, t in enumerate(m.outputs) if t.pii
    ]
    if personal and spec.privacy.retention is None:
        i, j, model, tensor = personal[0]
        yield Conflict(
            f"output {tensor} of {model} is personal data, but privacy.retention is not set",
            [("serving", "models", i, "outputs", j, "pii"), ("privacy", "retention")],
            "set privacy.retention (e.g. 30d) so stored answers are purged",
        )


@finding("pipeline.shapes_do_not_chain", "error", title="Pipeline shapes that cannot work")
def shapes_do_not_chain(ctx: RuleContext) -> Iterator[Conflict]:
    """A step's input does not take what the step before it returns (dims, data type, or objects mixed with
    frame tensors): Triton would refuse the request at run time.
    """
    found = pipe_shapes(ctx)
    if found is None:
        return
    for message in found.errors:
        yield Conflict(
            f"pipeline {found.name}: {message}",
            [(*PIPE, "steps")],
            "declare a per-object step's input without the object dimension (its batch dimension), or with it "
            "and max_batch_size 0; match data types",
        )


@finding("pipeline.variable_size_batching", "warning", title="Batching inputs of variable size")
def variable_size_batching(ctx: RuleContext) -> Iterator[Conflict]:
    """Triton batches requests only when their shapes are equal: frames of different sizes never batch, and
    a batch dimension on top of them only adds a dimension. Use max_batch_size 0, or fix the size.
    """
    found = pipe_shapes(ctx)
    if found is None:
        return
    for message in found.warnings:
        yield Conflict(
            f"pipeline {found.name}: {message}",
            [(*PIPE, "steps")],
            "set max_batch_size: 0 on the step, or fix its input size",
        )


RULES = (pipeline_instances,)
FINDINGS = (personal_output_without_retention, shapes_do_not_chain, variable_size_batching)
