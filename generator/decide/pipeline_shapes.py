"""The shapes of a multi-model pipeline: which steps run per frame and which per object, what they return.

A detector-shaped pipeline (frames of any size -> a variable number of crops and boxes -> per-crop models)
needs more than name wiring: a step fed by a *per-object* tensor (spec ``per_object: true``, its leading -1
counts the objects) takes the objects as its batch dimension when it batches (``max_batch_size > 0``), so the
crops of many frames batch together under dynamic batching; the BLS model scatters the crops of every frame
to it and gathers the results per frame. This module works that out once, from the spec and the decided
batch sizes, for the rules (findings, the pipeline's instance count), the configs and the BLS template.
Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from requirements_spec.models import Spec

from .architecture import Architecture, TensorArch, TritonModelArch


@dataclass(frozen=True)
class PipeTensor:
    """A tensor inside the pipeline: who writes it and how it is shaped per frame."""

    name: str  # the pipeline's name for it (a step output, renamed <step>_<output> when the name is taken)
    step: str  # the step that writes it ("" for a pipeline input)
    output: str  # the step's output name
    dtype: str
    triton_dtype: str
    dims: tuple[int, ...]  # as the step declares them
    per_object: bool  # one row per object
    batched: bool  # written by a step whose batch dimension is the objects: dims lack the object dimension
    pii: bool

    @property
    def frame_dims(self) -> list[int]:
        """Its shape for one frame: the object count first where the step batched over objects."""
        return [-1, *self.dims] if self.batched else list(self.dims)


@dataclass(frozen=True)
class PipeStep:
    """One step of a pipeline: its model, how it is called, and which pipeline tensors its inputs and outputs are."""

    model: str
    per_object: bool  # called with the objects (of one or many frames) as its batch dimension
    max_batch_size: int
    inputs: tuple[tuple[str, str], ...]  # (step input, pipeline tensor)
    outputs: tuple[tuple[str, str], ...]  # (step output, pipeline tensor)


@dataclass(frozen=True)
class PipelineShapes:
    """The shapes of a pipeline: its steps, every tensor between them, what it returns, its errors and warnings."""

    name: str
    steps: tuple[PipeStep, ...]
    tensors: Mapping[str, PipeTensor]
    returns: tuple[PipeTensor, ...]  # what the pipeline answers, in order
    stop_tensor: str | None  # pipeline tensor the stop condition reads (None: any empty step output)
    stop_below: float | None  # objects scoring below are dropped
    errors: tuple[str, ...] = field(default=())  # shapes that cannot work
    warnings: tuple[str, ...] = field(default=())

    @property
    def per_object(self) -> bool:
        """Some tensor holds one row per object found (crops, boxes)."""
        return any(t.per_object for t in self.tensors.values())

    @property
    def max_batch_size(self) -> int:
        """The pipeline model's own: 0 (one frame per request, outputs sized per frame) once objects vary."""
        return 0 if self.per_object else min(s.max_batch_size for s in self.steps)

    def outputs(self) -> list[TensorArch]:
        """The pipeline model's declared outputs (per-frame shapes)."""
        return [
            TensorArch(
                name=t.name,
                dtype=t.dtype,
                triton_dtype=t.triton_dtype,
                dims=t.frame_dims,
                per_object=t.per_object,
                pii=t.pii,
            )
            for t in self.returns
        ]


def _fits(have: Sequence[int], want: Sequence[int]) -> bool:
    return len(have) == len(want) and all(a == b or a < 0 or b < 0 for a, b in zip(have, want, strict=True))


def _check_input(
    name: str,
    mbs: int,
    per_object: bool,
    tensor: Any,
    inp: str,
    source: PipeTensor,
    errors: list[str],
    warnings: list[str],
) -> None:
    """One input of step ``name`` against the tensor that feeds it: data type, dims, batching of variable sizes."""
    src = source.name
    have = source.frame_dims[1:] if per_object else source.frame_dims
    want = list(tensor.dims)
    if source.dtype != tensor.dtype:
        errors.append(f"step {name}: input {inp!r} is {tensor.dtype} but {src!r} is {source.dtype}")
    if not _fits(have, want):
        how = " per object" if per_object else ""
        errors.append(
            f"dims do not chain: {src!r} is {have}{how}, but input {inp!r} of step {name} "
            f"(max_batch_size {mbs}) declares {want}"
        )
    if mbs > 0 and not per_object and sum(1 for d in want if d < 0) >= 2:
        warnings.append(
            f"step {name} batches (max_batch_size {mbs}) input {inp!r} of variable size {want}: requests "
            "batch together only when their shapes are equal, so frames of different sizes never do"
        )


def _step_outputs(
    model: Any,
    name: str,
    last: bool,
    per_object: bool,
    fed_list: bool,
    pool: dict[str, PipeTensor],
    triton_dtypes: Mapping[str, str],
    errors: list[str],
) -> list[tuple[str, str]]:
    """Put the outputs of step ``name`` into the ``pool`` of pipeline tensors: (output, pipeline tensor) of each.

    An output whose name is taken is renamed ``<step>_<output>`` (the last step's keep their names).
    """
    outputs: list[tuple[str, str]] = []
    for t in model.outputs:
        target = t.name if last or t.name not in pool else f"{name}_{t.name}"
        keeps_objects = per_object or t.per_object or (fed_list and bool(t.dims) and t.dims[0] < 0)
        pool[target] = PipeTensor(
            target, name, t.name, t.dtype, triton_dtypes[t.dtype], tuple(t.dims), keeps_objects, per_object, t.pii
        )
        if t.per_object and (not t.dims or t.dims[0] != -1) and not per_object:
            errors.append(f"per-object output {t.name!r} of step {name} must start with -1 (the object count)")
        outputs.append((t.name, target))
    return outputs


def shapes(
    spec: Spec,
    batch_sizes: Mapping[str, int],
    first_inputs: Sequence[TensorArch],
    triton_dtypes: Mapping[str, str],
) -> PipelineShapes | None:
    """The shapes of the spec's pipeline, or None when it has none.

    ``batch_sizes``: each model's decided max_batch_size; ``first_inputs``: the first step's input tensors
    (the pipeline's inputs); ``triton_dtypes``: spec dtype -> Triton data type.
    """
    pipe = spec.serving.pipeline
    if pipe is None:
        return None
    pool: dict[str, PipeTensor] = {
        t.name: PipeTensor(t.name, "", t.name, t.dtype, t.triton_dtype, tuple(t.dims), False, False, False)
        for t in first_inputs
    }
    written: dict[tuple[str, str], str] = {}
    previous: list[str] = []
    steps: list[PipeStep] = []
    errors: list[str] = []
    warnings: list[str] = []
    for index, name in enumerate(pipe.steps):
        model = spec.model(name)
        if model is None:
            return None
        mbs = int(batch_sizes.get(name, 0))
        declared: Sequence[Any] = (model.inputs or list(first_inputs)) if index == 0 else model.inputs
        sources: list[tuple[str, str]] = []
        for position, tensor in enumerate(declared):
            if tensor.name in pool:
                sources.append((tensor.name, tensor.name))
            elif position < len(previous):
                sources.append((tensor.name, previous[position]))
            else:
                errors.append(f"step {name}: no tensor feeds its input {tensor.name!r}")
        fed_objects = [pool[src].per_object for _, src in sources if src in pool]
        per_object = bool(fed_objects) and any(fed_objects) and mbs > 0
        if per_object and not all(fed_objects):
            errors.append(f"step {name} takes objects as its batch dimension, but not every input of it is per object")
        for tensor, (inp, src) in zip(declared, sources, strict=False):  # an unfed input is reported above
            source = pool.get(src)
            if source is not None:
                _check_input(name, mbs, per_object, tensor, inp, source, errors, warnings)
        last = index == len(pipe.steps) - 1
        outputs = _step_outputs(model, name, last, per_object, any(fed_objects), pool, triton_dtypes, errors)
        written |= {(name, output): target for output, target in outputs}
        previous = [target for _, target in outputs]
        steps.append(PipeStep(name, per_object, mbs, tuple(sources), tuple(outputs)))
    refs = list(pipe.outputs) or [f"{pipe.steps[-1]}.{o}" for o, _ in steps[-1].outputs]
    returns = tuple(pool[written[(s, o)]] for s, _, o in (r.partition(".") for r in refs) if (s, o) in written)
    stop_tensor: str | None = None
    stop_below: float | None = None
    if pipe.stop_when is not None:
        step, _, out = pipe.stop_when.tensor.partition(".")
        stop_tensor = written.get((step, out))
        stop_below = None if pipe.stop_when.score_below is None else float(pipe.stop_when.score_below)
        if stop_tensor is not None and stop_below is not None and not pool[stop_tensor].per_object:
            errors.append(f"stop_when.score_below reads {pipe.stop_when.tensor}, which is not a per-object tensor")
    return PipelineShapes(
        pipe.name, tuple(steps), pool, returns, stop_tensor, stop_below, tuple(errors), tuple(warnings)
    )


def from_arch(arch: Architecture) -> PipelineShapes | None:
    """The shapes of the decided architecture's pipeline (None: none, or not a BLS pipeline)."""
    pipe = arch.spec.serving.pipeline
    if pipe is None or arch.serving.pipeline_form != "bls":
        return None
    models = {m.name: m for m in arch.serving.models}
    from .engine import TRITON_DTYPES

    sizes = {name: m.max_batch_size for name, m in models.items()}
    return shapes(arch.spec, sizes, models[pipe.steps[0]].inputs, TRITON_DTYPES)


#: tensor dtype of the spec -> numpy dtype (bf16 travels as float32); the generated serving/system_data.py
#: holds the same table (generator.plan.system_data passes it to the template)
TENSOR_NUMPY = {
    "bool": "bool",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "fp16": "float16",
    "fp32": "float32",
    "fp64": "float64",
    "bf16": "float32",
    "string": "object",
}


def numpy_dtype(dtype: str) -> str:
    """The numpy dtype of a spec tensor dtype."""
    return TENSOR_NUMPY.get(dtype, dtype)


def bls_context(arch: Architecture, found: PipelineShapes) -> dict[str, Any]:
    """What the BLS template needs."""
    steps = [
        {
            "model": s.model,
            "per_object": s.per_object,
            "max_batch_size": s.max_batch_size,
            "inputs": [list(i) for i in s.inputs],
            "outputs": [list(o) for o in s.outputs],
        }
        for s in found.steps
    ]
    pipe = arch.spec.serving.pipeline
    return {
        "steps_data": steps,
        "per_object": found.per_object,
        "per_object_tensors": sorted(n for n, t in found.tensors.items() if t.per_object),
        "returns": [t.name for t in found.returns],
        "pii": [t.name for t in found.returns if t.pii],
        "conditional": bool(pipe is not None and pipe.conditional),
        "stop_tensor": found.stop_tensor,
        "stop_below": found.stop_below,
    }


def standin_context(arch: Architecture, model: TritonModelArch, where: str) -> dict[str, Any] | None:
    """The context of a shape-honouring stand-in for a step of a per-object pipeline (None: not such a step)."""
    found = from_arch(arch)
    if found is None or not found.per_object:
        return None
    step = next((s for s in found.steps if s.model == model.name), None)
    if step is None:
        return None
    writes_objects = any(found.tensors[t].per_object for _, t in step.outputs)
    role = "object" if step.per_object else "detect" if writes_objects else None
    if role is None:
        return None
    spec_model = arch.spec.model(model.name)
    latency = spec_model.latency_ms if spec_model is not None and spec_model.latency_ms is not None else 5
    return {"model": model, "pipeline": found.name, "role": role, "latency_ms": latency, "where": where}


def demo_context(arch: Architecture) -> dict[str, Any] | None:
    """Sample frames and the client of a per-object pipeline (None: the spec has none)."""
    found = from_arch(arch)
    if found is None or not found.per_object:
        return None
    first = next(m for m in arch.serving.models if m.name == found.steps[0].model)
    frame = first.inputs[0]
    dims = list(frame.dims)
    channels = dims[2] if len(dims) == 3 and dims[2] > 0 else (3 if len(dims) == 3 else 0)
    height = dims[0] if dims and dims[0] > 0 else 160
    width = dims[1] if len(dims) > 1 and dims[1] > 0 else 240
    return {
        "pipeline": found.name,
        "protocol": arch.serving.protocol,
        "input": frame,
        "numpy_dtype": numpy_dtype(frame.dtype),
        "height": height,
        "width": width,
        "channels": channels,
        "base": 150,
        "returns": [t.name for t in found.returns],
        "per_object": [t.name for t in found.returns if t.per_object],
        "pii": [t.name for t in found.returns if t.pii],
        "retention": arch.spec.privacy.retention,
        "profile_data": PROFILE_DATA,
    }


#: where the sample script writes perf_analyzer's input data (frames with objects), relative to the repository
PROFILE_DATA = "model_analyzer/input_data.json"


def profile_inputs(arch: Architecture) -> dict[str, Any]:
    """Model Analyzer inputs of a per-object pipeline: the sample frames' shape and data (frames with objects,
    so the profile runs the whole chain, not only the early exit). None for any other system.
    """
    demo = demo_context(arch)
    if demo is None:
        return {"shapes": [], "input_data": None}
    frame: TensorArch = demo["input"]
    dims = [demo["height"], demo["width"]] + ([demo["channels"]] if demo["channels"] else [])
    return {"shapes": [f"{frame.name}:{','.join(str(d) for d in dims)}"], "input_data": PROFILE_DATA}
