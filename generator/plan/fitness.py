"""Fitness tests, monitoring and the Model Analyzer profile: the generated system keeps proving it meets its spec.

``tests/test_fitness_*.py`` hold the running system to the numbers of the spec, each test named after the
requirement it guards and citing its line in ``.archgen/spec.yaml``:

- latency and throughput: an open-loop load test through the serving client (features + inference);
- privacy: no personal field reachable through a feature service or a model input, hashes never equal the
  raw values, feature TTLs and the purge within the retention;
- freshness: every scheduler config runs materialization at most ``freshness`` apart, TTLs outlive the
  interval, the online store was refreshed within ``freshness``;
- quality: the shipped model's recorded metric meets ``min_quality``;
- architecture: import rules between serving, training and the feature repo (AST, like ArchUnit);
- configuration: Triton configs, scheduler configs and deploy manifests validate (and ``archgen check``
  where archgen is installed).

``monitoring/`` holds the Prometheus scrape config and alert rules (Triton p99 and error rate, feature age),
with ``promtool`` unit tests of the rules, the feature-freshness monitor and the drift and quality check;
``model_analyzer/config.yaml`` gives Triton Model Analyzer the spec's p99 and throughput as constraints.

The test modules are planned in ``finalize``: which scheduler configs, model configs and manifests they
check is read from the files the other components planned, so a test checks exactly what was generated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from requirements_spec.types import duration_seconds

from ..decide.architecture import Architecture
from ..decide.pipeline_shapes import profile_inputs
from ..render.python_layout import from_import, tuple_literal
from ..views.docs import SPEC_COPY
from .deploy import TRITON_IMAGE
from .plan import PlannedFile

COMPONENT = "fitness"
LOCAL_MAX_RPS = 200  # the load test asks one machine for at most this rate (FITNESS_MAX_RPS overrides)
ERROR_RATE = 0.01  # alert threshold of failed requests: not in the spec, archgen's default
DRIFT_PSI = 0.2  # population stability index above which a feature or the predictions drifted
METRICS_PORT = 8002  # Triton's metrics port in deploy/ (docker compose, Kubernetes)
FRESHNESS_PORT = 9108  # where `monitoring/freshness_monitor.py --serve` exposes the feature ages
# model code the feature repository must not import: this repository's model packages and model runtimes
MODEL_MODULES = (
    *("training", "serving", "model_repository"),
    *("sklearn", "joblib", "torch", "tensorflow", "onnxruntime", "tritonclient"),
)


# ------------------------------------------------------------------ spec citations
_lines_of: list[tuple[Architecture, dict[str, int]]] = []  # the last architecture asked about, and its lines


def spec_lines(arch: Architecture) -> dict[str, int]:
    """Line of every requirement path a decision or finding read (0 when the spec left it at its default).

    Asked for many times per generation: computed once per architecture (the last one is kept).
    """
    if _lines_of and _lines_of[0][0] is arch:
        return _lines_of[0][1]
    lines: dict[str, int] = {}
    for requirements in [d.requirements for d in arch.decisions] + [f.requirements for f in arch.findings]:
        for r in requirements:
            if r.line or r.path not in lines:
                lines[r.path] = r.line
    _lines_of[:] = [(arch, lines)]
    return lines


def requirement(arch: Architecture, path: str, value: Any) -> dict[str, Any]:
    """A requirement a fitness test cites: its path, value and line in the spec copy."""
    return {"path": path, "value": value, "line": spec_lines(arch).get(path, 0)}


# ------------------------------------------------------------------ what the tests check
# what training writes into a model's version directory, by the backend that serves it
TRAINED_ARTEFACTS = {"onnxruntime": "model.onnx", "pytorch": "model.pt", "tensorflow": "model.savedmodel"}


def _serving(arch: Architecture, paths: set[str]) -> dict[str, Any]:
    """How the load test reaches the system: Triton through serving/client.py, the REST service, or predict in
    process (the embedded package).
    """
    kind = (
        "triton"
        if "serving/triton_runtime.py" in paths
        else "rest"
        if "serving/rest_app.py" in paths
        else "embedded"
        if arch.serving.runtime == "embedded"
        else ""
    )
    return {
        "kind": kind,
        "latency": requirement(arch, "serving.latency_p99_ms", arch.spec.serving.latency_p99_ms),
        "throughput": requirement(arch, "serving.throughput_rps", arch.spec.serving.throughput_rps),
        "local_max_rps": LOCAL_MAX_RPS,
        "entrypoint": arch.serving.entrypoint,
        # the artefact training exports per trained model: the live tests wait for it before measuring
        "trained": {
            m.name: TRAINED_ARTEFACTS.get(m.backend, "model.joblib")
            for m in sorted(arch.serving.models, key=lambda m: m.name)
            if m.name in arch.training.trained_models
        },
    }


def _views(arch: Architecture) -> list[dict[str, Any]]:
    features = arch.spec.features
    lines = spec_lines(arch)
    return [
        {
            "name": v.name,
            "ttl": v.ttl,
            "line": lines.get(f"features.views[{i}].ttl", 0),
        }
        for i, v in enumerate(features.views if features else [])
    ]


def _pii(arch: Architecture) -> dict[str, Any]:
    """Personal fields by what the online path may do with them, each with its spec line."""
    fs, features = arch.feature_store, arch.spec.features
    lines = spec_lines(arch)
    where: dict[str, tuple[str, int]] = {}  # view.field -> (its pii flag's path, line)
    if features is not None:
        for i, v in enumerate(features.views):
            for j, f in enumerate(v.fields):
                path = f"features.views[{i}].fields[{j}].pii"
                where[f"{v.name}.{f.name}"] = (path, lines.get(path, 0))
        for i, o in enumerate(features.on_demand):
            for j, f in enumerate(o.fields):
                path = f"features.on_demand[{i}].fields[{j}].pii"
                where[f"{o.name}.{f.name}"] = (path, lines.get(path, 0))

    def fields(refs: Sequence[str], handling: str) -> list[dict[str, Any]]:
        out = []
        for ref in sorted(refs):
            path, line = where.get(ref, ("privacy.pii_handling", 0))
            view, _, field = ref.partition(".")
            out.append({"ref": ref, "view": view, "field": field, "path": path, "line": line, "how": handling})
        return out

    if fs is None:
        return {"handling": arch.privacy.pii_handling, "handling_line": 0, "forbidden": [], "protected": []}
    return {
        "handling": arch.privacy.pii_handling,
        "handling_line": spec_lines(arch).get("privacy.pii_handling", 0),
        "forbidden": fields(fs.dropped_fields, "drop")
        + fields(fs.hashed_fields, "hash")
        + fields(fs.encrypted_fields, "encrypt"),
        "protected": fields(fs.hashed_fields, "hash") + fields(fs.encrypted_fields, "encrypt"),
        "suffix": "_encrypted" if fs.encrypted_fields else "_sha256",
        "decrypt_roles": arch.privacy.decrypt_roles,
    }


def _quality(arch: Architecture) -> dict[str, Any] | None:
    gate = arch.training.quality_gate
    if gate is None or not arch.training.trained_models:
        return None
    from .training import LOWER_IS_BETTER

    return {
        "metric": requirement(arch, "training.min_quality.metric", gate.metric),
        "threshold": requirement(arch, "training.min_quality.threshold", gate.threshold),
        "lower_is_better": gate.metric in LOWER_IS_BETTER,
        "models": sorted(arch.training.trained_models),
    }


def scheduler_forms(paths: Sequence[str]) -> list[tuple[str, str]]:
    """(file, form) of every generated scheduler config: how the fitness tests read its jobs."""
    out = []
    for p in sorted(paths):
        if p == "pipelines/crontab":
            out.append((p, "crontab"))
        elif p.startswith("pipelines/airflow/dags/") and p.endswith(".py"):
            out.append((p, "airflow"))
        elif p.startswith("pipelines/k8s/") and p.endswith("-cronjob.yaml"):
            out.append((p, "cronjob"))
        elif p == "pipelines/prefect/prefect.yaml":
            out.append((p, "prefect"))
        elif p == "pipelines/prefect/flows.py":
            out.append((p, "prefect_flows"))
        elif p == "pipelines/dagster/definitions.py":
            out.append((p, "dagster"))
        elif p == "deploy/scheduler.py":
            out.append((p, "jobs"))
    return out


def _jobs(arch: Architecture) -> list[dict[str, str]]:
    """The scheduled jobs: name, and the argument that identifies it on a command line."""
    from .pipelines import jobs

    return [{"name": j.name, "command": j.command[-1]} for j in jobs(arch)]


def _freshness(arch: Architecture) -> dict[str, Any] | None:
    features = arch.spec.features
    if features is None or arch.feature_store is None:
        return None
    return {
        "requirement": requirement(arch, "features.freshness", features.freshness),
        "seconds": duration_seconds(features.freshness),
        "batch": arch.serving.runtime == "batch_scoring",
        # batch scoring reads the offline store: nothing is materialized for it
        "materialized": arch.feature_store.ingestion != "push"
        and bool(features.views)
        and arch.serving.runtime != "batch_scoring",
    }


def _retention(arch: Architecture) -> dict[str, Any] | None:
    ret = arch.spec.privacy.retention
    if ret is None or arch.feature_store is None:
        return None
    return {"requirement": requirement(arch, "privacy.retention", ret), "seconds": duration_seconds(ret)}


def _import_rules(paths: set[str]) -> list[dict[str, Any]]:
    rules = []
    if any(p.startswith("serving/") for p in paths) and any(p.startswith("training/") for p in paths):
        rules.append(
            {
                "id": "serving-does-not-import-training",
                "folder": "serving",
                "forbidden": ["training"],
                "why": "serving answers requests; training code (and its dependencies) stays out of the request path",
            }
        )
    if any(p.startswith("feature_repo/") for p in paths):
        rules.append(
            {
                "id": "feature-repo-imports-no-model-code",
                "folder": "feature_repo",
                "forbidden": list(MODEL_MODULES),
                "why": "data engineering owns the feature definitions; they must load without any model code",
            }
        )
    if any(p.startswith("model_repository/") and p.endswith(".py") for p in paths):
        rules.append(
            {
                "id": "models-do-not-import-training",
                "folder": "model_repository",
                "forbidden": ["training", "feast"],
                "why": "Triton loads the models in its own runtime: they read artefacts, never the training code",
            }
        )
    return rules


def context(arch: Architecture, files: Sequence[PlannedFile] = ()) -> dict[str, Any]:
    """The template context of the fitness tests: what they hold the system to."""
    paths = {f.path for f in files}
    has_models = any(p.endswith("/config.pbtxt") for p in paths)
    return {
        "project": arch.spec.project.name,
        "spec_file": SPEC_COPY,
        "serving": _serving(arch, paths),
        "views": _views(arch),
        "pii": _pii(arch),
        "quality": _quality(arch),
        "freshness": _freshness(arch),
        "retention": _retention(arch),
        "jobs": _jobs(arch),
        "schedulers": [{"path": p, "form": form} for p, form in scheduler_forms(sorted(paths))],
        "import_rules": [{**r, "forbidden_text": tuple_literal(r["forbidden"], 8)} for r in _import_rules(paths)],
        "model_dirs": [
            d for d in ("model_repository", "serving/local_models") if any(p.startswith(d + "/") for p in paths)
        ]
        if has_models
        else [],
        "manifests": sorted(p for p in paths if p.startswith(("deploy/", "pipelines/k8s/")) and p.endswith(".yaml")),
        "has_feature_store": arch.feature_store is not None,
        "has_purge": "scripts/purge.py" in paths,
        "store_markers": store_markers(arch),
        "residency": _residency(arch),
    }


def _residency(arch: Architecture) -> dict[str, Any] | None:
    """What test_fitness_residency checks: regions and storage class of the manifests, warehouse locations."""
    from .deploy import WAREHOUSE_LOCATION, residency

    placed = residency(arch)
    if not placed["regions"]:
        return None
    fs = arch.feature_store
    wanted = WAREHOUSE_LOCATION[arch.privacy.residency]
    offline = {"bigquery": "BIGQUERY_LOCATION", "redshift": "AWS_REGION"}.get(fs.offline_store if fs else "", "")
    return {
        **placed,
        "requirement": requirement(arch, "privacy.residency", arch.privacy.residency),
        "locations": {offline: wanted[offline]} if offline else {},
    }


def store_markers(arch: Architecture) -> list[str]:
    """The conftest markers (servers that must answer) of the feature store's online, offline and registry stores."""
    fs = arch.feature_store
    if fs is None:
        return []
    servers = {fs.online_store or "sqlite", fs.offline_store} | ({"postgres"} if fs.registry == "sql" else set())
    return sorted(servers & {"redis", "postgres"})


# ------------------------------------------------------------------ monitoring and Model Analyzer
def _monitoring_context(arch: Architecture) -> dict[str, Any]:
    serving = arch.serving
    entry = next(m for m in serving.models if m.name == serving.entrypoint)
    models = sorted(m.name for m in serving.models)
    p99 = float(serving.latency_p99_ms)
    freshness = _freshness(arch)
    return {
        "project": arch.spec.project.name,
        "alert_prefix": "".join(part.capitalize() for part in arch.spec.project.name.split("_")),
        "spec_file": SPEC_COPY,
        "latency": requirement(arch, "serving.latency_p99_ms", arch.spec.serving.latency_p99_ms),
        "throughput": requirement(arch, "serving.throughput_rps", arch.spec.serving.throughput_rps),
        "p99_us": round(p99 * 1000),
        "p99_ms": p99,
        "p99_text": format(p99, "g"),
        "stale_text": humanize_duration(2 * freshness["seconds"]) if freshness else "",  # the rule test's stale view
        "entrypoint": serving.entrypoint,
        "models": models,
        "model_regex": "|".join(models),
        "triton": arch.triton_serves,
        "metrics_port": METRICS_PORT,
        "freshness_port": FRESHNESS_PORT,
        "freshness": freshness,
        "views": _views(arch),
        "error_rate": ERROR_RATE,
        "drift_psi": DRIFT_PSI,
        "quality": _quality(arch),
        "protocol": "grpc" if serving.protocol == "grpc" else "http",
        "ma": _model_analyzer(arch, entry.name),
        "triton_image": TRITON_IMAGE,
    }


def humanize_duration(seconds: int) -> str:
    """Seconds as Prometheus' ``humanizeDuration`` template function prints them (for the rule tests)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _model_analyzer(arch: Architecture, entrypoint: str) -> dict[str, Any]:
    """Model Analyzer's constraints are whole numbers (ms, inferences/s): the spec's, rounded to stay strict."""
    serving = arch.serving
    entry = next(m for m in serving.models if m.name == entrypoint)
    composite = entry.kind in ("ensemble", "bls")
    return {
        "model": entrypoint,
        "p99_ms": max(1, math.floor(serving.latency_p99_ms)),
        "min_rps": max(1, math.ceil(serving.throughput_rps)),
        "cpu_only": all(m.instance_kind != "KIND_GPU" for m in serving.models),
        # ensembles and BLS pipelines are profiled by Model Analyzer's quick search only
        "search": "quick" if composite else "brute",
        "bls_steps": list(entry.steps) if entry.kind == "bls" else [],
        "max_instances": max(4, max((m.instance_count for m in serving.models), default=1) * 2),
        "max_batch": max((m.max_batch_size for m in serving.models), default=0),
        **profile_inputs(arch),
    }


def _f(arch: Architecture, path: str, template: str, ctx: dict[str, Any], decisions: tuple[str, ...]) -> PlannedFile:
    known = {d.key for d in arch.decisions}
    shaped = tuple(k for k in decisions if k in known)
    return PlannedFile(path, COMPONENT, template=template, context=ctx, decisions=shaped)


def plan(arch: Architecture) -> list[PlannedFile]:
    """The monitoring files: Prometheus, alerts, Model Analyzer, freshness and drift checks."""
    ctx = _monitoring_context(arch)
    files = [_f(arch, "monitoring/README.md", "monitoring/README.md.j2", ctx, ("serving_runtime",))]
    if ctx["triton"]:
        latency = ("dynamic_batching", "instance_group", "protocol")
        files += [
            _f(arch, "monitoring/prometheus.yml", "monitoring/prometheus.yml.j2", ctx, ("serving_runtime",)),
            _f(arch, "monitoring/alerts.yml", "monitoring/alerts.yml.j2", ctx, latency),
            _f(arch, "monitoring/alerts_test.yml", "monitoring/alerts_test.yml.j2", ctx, latency),
            _f(arch, "model_analyzer/config.yaml", "monitoring/model_analyzer.yaml.j2", ctx, latency),
        ]
    if ctx["freshness"] is not None and ctx["freshness"]["materialized"]:
        files.append(
            _f(arch, "monitoring/freshness_monitor.py", "monitoring/freshness_monitor.py.j2", ctx, ("materialization",))
        )
    if ctx["quality"] is not None and arch.spec.training.label is not None:
        files.append(_f(arch, "monitoring/drift_check.py", "monitoring/drift_check.py.j2", ctx, ("quality_gate",)))
    return files


def _imports(ctx: dict[str, Any]) -> dict[str, str]:
    """The names each test module takes from tests/fitness.py (by what its template renders)."""
    privacy = ["feast_definitions"]
    if ctx["pii"]["forbidden"]:
        privacy += ["FORBIDDEN_PII", "ROOT"]
    if ctx["pii"]["protected"]:
        privacy += ["PROTECTED_PII", "ROOT", "load_module"]
    if ctx["retention"] is not None:
        privacy += ["RETENTION", "VIEW_TTLS"] + (["load_module"] if ctx["has_purge"] else [])
    freshness = ["FRESHNESS", "feast_definitions"]
    if ctx["freshness"] is not None and ctx["freshness"]["batch"]:
        freshness += ["ROOT", "load_module"]
    if ctx["freshness"] is not None and ctx["freshness"]["materialized"]:
        freshness += ["JOBS", "SCHEDULER_CONFIGS", "VIEW_TTLS", "Cron", "feature_store", "load_module"]
        freshness += ["not_ready", "scheduler_of", "schedules"]
    quality = ["LOWER_IS_BETTER", "MIN_QUALITY", "MIN_QUALITY_METRIC", "ROOT", "TRAINED_MODELS", "not_ready"]
    return {
        "privacy": from_import("fitness", privacy),
        "freshness": from_import("fitness", freshness),
        "quality": from_import("fitness", quality),
    }


def finalize(arch: Architecture, files: Sequence[PlannedFile]) -> list[PlannedFile]:
    """The fitness tests, planned after every other component (they test those files)."""
    ctx = context(arch, files)
    ctx["imports"] = _imports(ctx)

    def test_file(name: str, *decisions: str) -> PlannedFile:
        return _f(arch, f"tests/{name}.py", f"fitness/{name}.py.j2", ctx, decisions)

    out = [
        test_file("fitness"),
        test_file("test_fitness_architecture"),
        test_file("test_fitness_configuration", "scheduler"),
    ]
    if ctx["serving"]["kind"] in ("triton", "rest"):  # embedded: the package's own load test (plan/embedded.py)
        out += [test_file("loadgen"), test_file("test_fitness_latency", "dynamic_batching", "instance_group")]
    if ctx["has_feature_store"] and (ctx["pii"]["forbidden"] or ctx["retention"] is not None):
        out.append(test_file("test_fitness_privacy", "pii", "retention"))
    if ctx["freshness"] is not None:
        out.append(test_file("test_fitness_freshness", "materialization"))
    if ctx["quality"] is not None:
        out.append(test_file("test_fitness_quality", "quality_gate"))
    if ctx["residency"] is not None:
        out.append(test_file("test_fitness_residency", "residency"))
    return out
