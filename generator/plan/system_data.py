"""One typed description of the data of a generated system: ``serving/system_data.py``.

The sample data (``scripts/generate_sample_data.py``), the serving client's example request (``make
predict``), request-time values and model inputs all come from this one description, so they agree
for every valid spec: entity keys of any dtype (string, int32, int64) and count, every request field
of every request source (Feast asks for all fields of a request source an on-demand view reads), and
tensor inputs, of which a sample of the declared shape and dtype is generated (``sample_tensor``).
"""

from __future__ import annotations

from typing import Any

from requirements_spec.models import RequestSourceSpec

from ..decide.architecture import Architecture
from ..decide.pipeline_shapes import TENSOR_NUMPY
from .plan import PlannedFile

COMPONENT = "serving"
PATH = "serving/system_data.py"
#: a variable-size dimension (-1) of a sample tensor gets this many items
VARIABLE_DIM = 4
#: the ids of an entity: <entity>_0001, ... for string keys, 1001, ... for integer keys
FIRST_INT_ID = 1001


def describe(arch: Architecture) -> dict[str, Any]:
    """The description as plain data (what the template writes as Python literals)."""
    spec = arch.spec
    entities = {e.name: {"join_key": e.join_key, "dtype": e.dtype} for e in spec.entities}
    request: dict[str, dict[str, str]] = {}
    for src in spec.sources:
        if isinstance(src, RequestSourceSpec):
            request[src.name] = {f.name: f.dtype for f in src.fields}
    models = {
        m.name: {
            "inputs": [[t.name, t.dtype, list(t.dims)] for t in m.inputs],
            "outputs": [[t.name, t.dtype, list(t.dims)] for t in m.outputs],
            "batching": m.max_batch_size > 0,
            "feature_service": m.feature_service,
        }
        for m in sorted(arch.serving.models, key=lambda x: x.name)
    }
    return {"entities": entities, "request_sources": request, "models": models}


def planned(arch: Architecture) -> PlannedFile:
    """serving/system_data.py: shaped by the spec's entities, sources and models (no decision)."""
    from ..render.python_layout import literal

    data = describe(arch)
    return PlannedFile(
        PATH,
        COMPONENT,
        template="serving/system_data.py.j2",
        context={
            "entities": literal(data["entities"], prefix=len("ENTITIES: dict[str, dict[str, str]] = ")),
            "request_sources": literal(data["request_sources"], prefix=46),
            "models": literal(data["models"], prefix=len("MODELS: dict[str, dict[str, Any]] = ")),
            "tensor_numpy": literal(TENSOR_NUMPY, prefix=len("TENSOR_NUMPY = ")),
            "variable_dim": VARIABLE_DIM,
            "first_int_id": FIRST_INT_ID,
        },
    )
