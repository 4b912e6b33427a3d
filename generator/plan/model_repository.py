"""The Triton model repository: one ``config.pbtxt`` per model (built as a ``ModelConfig`` protobuf),
python-backend code for python/sklearn models, placeholders where no trained artefact can exist yet,
ensembles for fixed lines of models and a BLS model for pipelines with control flow.

Production configs live in ``model_repository/``; models that cannot run on a CPU-only machine with the
python backend (other frameworks, KIND_GPU) also get a local stand-in under ``serving/local_models/``
(see :mod:`generator.plan.serving`).

Runtime ``python_rest`` runs no Triton: nothing is generated here, and ``model_repository/`` holds only the
``<model>/<N>/model.joblib`` versions training exports, which the REST service loads in process.
"""

from __future__ import annotations

from ..decide.architecture import Architecture, TritonModelArch
from ..decide.pipeline_shapes import bls_context, from_arch, standin_context
from .plan import PlannedFile
from .triton_config import config_text, wire_steps

COMPONENT = "model_repository"
DECISIONS = ("serving_runtime", "pipeline")


def models_by_name(arch: Architecture) -> dict[str, TritonModelArch]:
    """The served models by name."""
    return {m.name: m for m in arch.serving.models}


def _model_code(arch: Architecture, m: TritonModelArch, models: dict[str, TritonModelArch]) -> PlannedFile | None:
    path = f"model_repository/{m.name}/1/model.py"
    if m.kind == "bls":
        found = from_arch(arch)
        assert found is not None  # a BLS model is made for the spec's pipeline
        return PlannedFile(
            path,
            COMPONENT,
            template="model_repository/bls_model.py.j2",
            context={"model": m, "steps": wire_steps(m, models), **bls_context(arch, found)},
            decisions=("pipeline", "pipeline_instances"),
        )
    if m.kind != "model" or m.runs_here_as_python:
        return None
    standin = standin_context(arch, m, f"replace model_repository/{m.name}/1/model.py with the real model code")
    if m.placeholder and standin is not None:
        return PlannedFile(
            path, COMPONENT, template="model_repository/pipeline_standin.py.j2", context=standin, decisions=DECISIONS
        )
    if m.placeholder:
        return PlannedFile(
            path,
            COMPONENT,
            template="model_repository/placeholder_model.py.j2",
            context={"model": m, "standin": False, "trained": False},
            decisions=DECISIONS,
        )
    return PlannedFile(
        path,
        COMPONENT,
        template="model_repository/trained_model.py.j2",
        context={"model": m, "inputs": [t.name for t in m.inputs], "output": m.outputs[0].name},
        decisions=DECISIONS,
    )


def triton_served(arch: Architecture) -> bool:
    """Whether a Triton server serves the models (:attr:`Architecture.triton_serves`)."""
    return arch.triton_serves


def plan(arch: Architecture) -> list[PlannedFile]:
    """The Triton model repository: each model's config.pbtxt and code (none unless Triton serves)."""
    if not triton_served(arch):
        return []
    models = models_by_name(arch)
    files: list[PlannedFile] = []
    for m in sorted(models.values(), key=lambda x: x.name):
        files.append(
            PlannedFile(
                f"model_repository/{m.name}/config.pbtxt",
                COMPONENT,
                content=config_text(m, models),
                decisions=DECISIONS,
            )
        )
        code = _model_code(arch, m, models)
        if code is not None:
            files.append(code)
        else:  # ensembles and other backends: the version dir must exist (git drops empty dirs)
            files.append(
                PlannedFile(f"model_repository/{m.name}/1/.gitkeep", COMPONENT, content="", decisions=DECISIONS)
            )
    return files
