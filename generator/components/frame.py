"""The frame of the generated repository: README, Makefile, pinned requirements, CODEOWNERS,
.gitignore and the tests/ folder.

Plain Jinja (through :mod:`generator.render`) rather than cookiecutter's ``generate_files``, on
purpose: cookiecutter renders file and folder *names* through Jinja, renders context values as
Jinja source (``prompt.render_variable``), writes straight to disk after ``chdir`` with no check
that paths stay inside the output, and its ``StrictEnvironment`` loads the ``time``/``random``/
``uuid`` extensions that defeat byte-identical output. Here which files exist is decided from the
architecture, user values stay data (escaped by the ``toml``/``yaml``/``py``/``sh`` filters) and
writing is left to :mod:`generator.write`. ``bench/bench_generate.py`` keeps cookiecutter as the
speed yardstick.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..architecture import Architecture
from ..plan import PlannedFile

FEAST_VERSION = "0.67.0"
# Feast extras per store choice (feast[...] in requirements.txt)
ONLINE_EXTRAS = {"sqlite": "", "redis": "redis", "postgres": "postgres"}
OFFLINE_EXTRAS = {
    "file": "",
    "duckdb": "duckdb",
    "postgres": "postgres",
    "bigquery": "gcp",
    "snowflake": "snowflake",
    "redshift": "aws",
    "spark": "spark",
}
PINS_COMMON = ("numpy>=2,<3", "scikit-learn==1.9.1")
PINS_CLIENT = ("tritonclient[grpc,http]==2.73.0", "protobuf>=6.33.5,<7")
PINS_TEST = ("pytest==9.2.0",)
PINS_TRITON = ("nvidia-pytriton==0.7.0", "numpy==1.26.4", "scikit-learn==1.9.1")


def feast_requirement(arch: Architecture) -> str | None:
    fs = arch.feature_store
    if fs is None:
        return None
    extras = {ONLINE_EXTRAS[fs.online_store], OFFLINE_EXTRAS[fs.offline_store]}
    if fs.registry == "sql":
        extras.add("postgres")  # the SQL registry lives in PostgreSQL (psycopg)
    extras.discard("")
    return f"feast[{','.join(sorted(extras))}]=={FEAST_VERSION}" if extras else f"feast=={FEAST_VERSION}"


def requirements(arch: Architecture) -> list[str]:
    """The main environment (Feast, training, the serving client, tests), pinned."""
    feast = feast_requirement(arch)
    pins = ([feast] if feast else []) + list(PINS_COMMON)
    if arch.serving.runtime == "triton":
        pins += list(PINS_CLIENT)
    return pins + list(PINS_TEST)


def _decisions(arch: Architecture, *keys: str) -> tuple[str, ...]:
    known = {d.key for d in arch.decisions}
    return tuple(k for k in keys if k in known)


def context(arch: Architecture) -> dict[str, Any]:
    spec = arch.spec
    owners = spec.project.owners
    has_triton = arch.serving.runtime == "triton"
    setup_modules = (["feast"] if arch.feature_store else []) + ["sklearn", "pytest"]
    if has_triton:
        setup_modules.append("tritonclient")
    return {
        "archgen_version": __version__,
        "project": spec.project.name,
        "description": spec.project.description,
        "owners": owners,
        "all_owners": sorted(
            {owners.data_engineering, owners.data_science} | ({owners.platform} if owners.platform else set())
        ),
        "has_feature_store": arch.feature_store is not None,
        "has_training": bool(arch.training.trained_models),
        "has_triton": has_triton,
        "requirements": requirements(arch),
        "triton_requirements": list(PINS_TRITON),
        "setup_modules": setup_modules,
        "view_names": [v.name for v in spec.features.views] if spec.features else [],
        "service_names": [s.name for s in spec.features.services] if spec.features else [],
    }


def plan(arch: Architecture) -> list[PlannedFile]:
    ctx = context(arch)
    run_keys = _decisions(
        arch, "online_store", "offline_store", "registry", "scheduler", "serving_runtime", "protocol", "deployment"
    )
    files = [
        PlannedFile("README.md", "frame", template="frame/README.md.j2", context=ctx, decisions=run_keys),
        PlannedFile(
            "Makefile",
            "frame",
            template="frame/Makefile.j2",
            context=ctx,
            decisions=_decisions(arch, "online_store", "serving_runtime", "training_mode"),
        ),
        PlannedFile(
            "pyproject.toml",
            "frame",
            template="frame/pyproject.toml.j2",
            context=ctx,
            decisions=_decisions(arch, "online_store", "offline_store", "registry", "serving_runtime"),
        ),
        PlannedFile(
            "requirements.txt",
            "frame",
            template="frame/requirements.txt.j2",
            context=ctx,
            decisions=_decisions(arch, "online_store", "offline_store", "registry", "serving_runtime"),
        ),
        PlannedFile("CODEOWNERS", "frame", template="frame/CODEOWNERS.j2", context=ctx),
        PlannedFile(".gitignore", "frame", template="frame/gitignore.j2", context=ctx),
        PlannedFile("tests/conftest.py", "frame", template="frame/tests/conftest.py.j2", context=ctx),
    ]
    if ctx["has_triton"]:
        files.append(
            PlannedFile(
                "requirements-triton.txt",
                "frame",
                template="frame/requirements-triton.txt.j2",
                context=ctx,
                decisions=_decisions(arch, "serving_runtime"),
            )
        )
    return files
