"""Pipelines component: the scheduler configuration the ``scheduler`` decision chose (``pipelines/``),
the retention purge script and, at MLOps level 2, the CI workflow of the ML pipeline.

One list of jobs (:func:`jobs`) feeds every scheduler form, so a crontab, an Airflow DAG, a Kubernetes
CronJob, a Prefect deployment and a Dagster schedule of the same architecture run the same commands
at the same times with the same resources:

- ``materialize``: ``scripts/materialize.py`` at the materialization interval (<= freshness);
- ``train``: ``python -m training.train`` (fit + quality gate + export) at the training schedule, when
  training is scheduled and ``mlops_level`` >= 1 (level 0 documents the manual steps instead);
- ``purge``: ``scripts/purge.py`` at ``privacy.purge_cron`` when a retention is set;
- ``bundle``: ``scripts/build_bundle.py`` after materialization, for an embedded system.

Batch scoring chains training and scoring in one pipeline of its own (components/batch.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from ..decide.architecture import Architecture
from .plan import PlannedFile

COMPONENT = "pipelines"
K8S_NAME_MAX = 52  # CronJob names: the controller appends an 11-character suffix to Job names
APP_IMAGE = "local/{app}-app:dev"  # the image deploy/app.Dockerfile builds (see deploy/docker-compose.yaml)


@dataclass(frozen=True)
class Job:
    """One scheduled job: a Python entry point run from the repository root."""

    name: str  # identifier: [a-z_]
    cron: str  # 5-field
    command: tuple[str, ...]  # argv after `python`
    purpose: str
    cpus: float = 1.0
    memory_gb: float = 2.0
    gpus: int = 0
    timeout_s: int = 3600
    writes_models: bool = False  # needs the model repository mounted read-write
    decisions: tuple[str, ...] = ()

    @property
    def dash(self) -> str:
        """The job's name with dashes (Kubernetes names)."""
        return self.name.replace("_", "-")

    @property
    def shell(self) -> str:
        """The job's command for a shell."""
        return "python " + " ".join(self.command)


#: where the serving runtime writes its logs (serving/triton_runtime.py): the purge owns the *.log files in it
SERVING_LOGS = ".run"


def personal_outputs(arch: Architecture) -> list[str]:
    """``model.tensor`` of every served output that is personal data (``pii: true``, e.g. recognised text)."""
    return [f"{m.name}.{t.name}" for m in arch.spec.serving.models for t in m.outputs if t.pii]


def purges(arch: Architecture) -> bool:
    """Whether the system has a retention purge: a retention, and something of its own to hold to it (the
    feature store's data, or answers holding personal data in the serving logs).
    """
    return bool(
        arch.privacy.retention_s
        and arch.privacy.purge_cron
        and (arch.feature_store is not None or personal_outputs(arch))
    )


def scheduled_training(arch: Architecture) -> bool:
    """A scheduler runs training."""
    return arch.training_scheduled


def jobs(arch: Architecture) -> list[Job]:
    """Every scheduled job of the architecture, in a stable order."""
    out: list[Job] = []
    fs = arch.feature_store
    # batch scoring reads the offline store, and trains then scores in one pipeline (components/batch.py)
    batch = arch.serving.runtime == "batch_scoring"
    if fs is not None and fs.ingestion != "push" and fs.materialization_cron and fs.materialization_interval_s:
        out.append(
            Job(
                "materialize",
                fs.materialization_cron,
                ("scripts/materialize.py",),
                "load the latest feature values into the online store, at most the freshness apart",
                cpus=1.0,
                memory_gb=2.0,
                timeout_s=max(300, min(fs.materialization_interval_s, 3600)),
                decisions=("materialization", "ingestion"),
            )
        )
    tr = arch.training
    if scheduled_training(arch) and not batch:
        assert tr.schedule_cron is not None
        out.append(
            Job(
                "train",
                tr.schedule_cron,
                ("-m", "training.train"),
                "build the training set, fit, check the quality gate, export the next model version",
                cpus=tr.cpus,
                memory_gb=tr.memory_gb,
                gpus=tr.gpus if tr.accelerator == "gpu" else 0,
                timeout_s=4 * 3600,
                writes_models=True,
                decisions=("training_mode", "scheduler", "delivery"),
            )
        )
    if purges(arch):
        assert arch.privacy.purge_cron is not None
        out.append(
            Job(
                "purge",
                arch.privacy.purge_cron,
                ("scripts/purge.py",),
                "delete offline rows older than the retention period (online values expire by TTL)"
                if fs is not None
                else "delete the serving logs older than the retention period (personal answers are never logged)",
                timeout_s=3600,
                decisions=("pii",),
            )
        )
    if arch.serving.runtime == "embedded" and fs is not None and fs.ingestion != "push" and fs.materialization_cron:
        out.append(
            Job(
                "bundle",
                _after(fs.materialization_cron, 15),
                ("scripts/build_bundle.py",),
                "build a bundle for the devices: the newest gated model and a snapshot of the online features",
                timeout_s=1800,
                decisions=("serving_runtime", "embedded_bundle"),
            )
        )
    return out


def _after(cron: str, minutes: int) -> str:
    """The same schedule, ``minutes`` later when the minute field is a plain number (after its run ends)."""
    minute, rest = cron.split(" ", 1)
    return f"{(int(minute) + minutes) % 60} {rest}" if minute.isdigit() and int(minute) + minutes < 60 else cron


def k8s_name(project: str, job: str) -> str:
    """``<project>-<job>`` as a DNS label of at most 52 characters (a hash keeps cut names apart)."""
    base = re.sub(r"-{2,}", "-", project.replace("_", "-")).strip("-")
    name = f"{base}-{job.replace('_', '-')}"
    if len(name) <= K8S_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    room = K8S_NAME_MAX - len(job) - len(digest) - 2
    return f"{base[:room].rstrip('-')}-{digest}-{job.replace('_', '-')}"


def k8s_quantity_cpu(cpus: float) -> str:
    """A CPU count as a Kubernetes quantity: ``2`` or ``500m``."""
    millis = round(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def k8s_quantity_memory(gb: float) -> str:
    """A size in GB as a Kubernetes quantity: ``4Gi`` or ``512Mi``."""
    mib = round(gb * 1024)
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def context(arch: Architecture) -> dict[str, Any]:
    """The template context of the scheduler configs."""
    project = arch.spec.project.name
    app = re.sub(r"-{2,}", "-", project.replace("_", "-")).strip("-")
    job_list = jobs(arch)
    return {
        "project": project,
        "app": app,
        "home_var": f"{project.upper()}_HOME",
        "image": APP_IMAGE.format(app=app),
        # the Spark jobs' image (deploy/spark.Dockerfile): driver and executors alike
        "spark": arch.uses_spark,
        "spark_image": f"local/{app}-spark:dev",
        "jobs": job_list,
        "k8s": {
            j.name: {
                "name": k8s_name(project, j.name),
                "cpu": k8s_quantity_cpu(j.cpus),
                "cpu_limit": k8s_quantity_cpu(j.cpus * 2),
                "memory": k8s_quantity_memory(j.memory_gb),
            }
            for j in job_list
        },
        "scheduler": arch.training.scheduler,
        "mlops_level": arch.mlops_level,
        "training_mode": arch.training.mode,
        "scheduled_training": scheduled_training(arch),
        "online_broker": arch.training.consumer_broker,
        "retention_s": arch.privacy.retention_s,
        "model_pvc": f"{app}-model-repository",
        # the encryption key of personal fields: a Secret of its own, for materialization only (deploy/k8s)
        "pii_key_secret": f"{app}-pii-key" if arch.privacy.pii_key_env else "",
        **pod_placement(arch, [j.name for j in job_list]),
        **ci_context(arch),
    }


def pod_placement(arch: Architecture, job_names: list[str]) -> dict[str, Any]:
    """What the Kubernetes pod specs share with deploy/k8s: residency placement and which jobs write their image."""
    from . import deploy

    return {
        "residency": deploy.residency(arch),
        "writable": {name: deploy.job_writes_image(arch, name) for name in job_names},
    }


def ci_context(arch: Architecture) -> dict[str, Any]:
    """The CI of the level-2 pipeline (``existing.ci``) and the services its feature steps need."""
    from . import deploy

    return {
        "ci": arch.spec.existing.ci,
        # CD (build, push, staging, fitness against staging, approved promotion): Kubernetes with Triton (no
        # Triton image to promote for the REST service, nothing to measure in staging for batch jobs)
        "cd": arch.mlops_level >= 2 and arch.deployment.target == "kubernetes" and arch.triton_serves,
        "cd_images": ["triton", "app", *(["spark"] if arch.uses_spark else [])],
        "k8s_client": "1.30.0",  # kubectl of the GitLab CD jobs: the API version the manifests target
        "cd_model": arch.serving.entrypoint,
        # the image names deploy/k8s/overlays/<env> give (templates/deploy/k8s/overlay-kustomization.yaml.j2)
        "cd_overlay_registry": deploy.app_registry(arch),
        "ci_redis": deploy.uses_redis(arch),
        "ci_postgres": deploy.uses_postgres(arch),
        "redis_image": deploy.site_image(arch, deploy.REDIS_IMAGE),
        "postgres_image": deploy.site_image(arch, deploy.POSTGRES_IMAGE),
        "ci_python_image": deploy.site_image(arch, "python:3.11"),
        "ci_docker_image": deploy.site_image(arch, "docker:27"),
        "ci_dind_image": deploy.site_image(arch, "docker:27-dind"),
    }


def _f(path: str, template: str, ctx: dict[str, Any], decisions: tuple[str, ...] = ("scheduler",)) -> PlannedFile:
    return PlannedFile(path, COMPONENT, template=template, context=ctx, decisions=decisions)


def plan(arch: Architecture) -> list[PlannedFile]:
    """The scheduler configs of the decided scheduler, and the purge job.

    The Kubernetes manifests under pipelines/k8s/ get a kustomization.yaml naming every one of them: kustomize
    loads no file from outside deploy/k8s/base, only folders with their own kustomization.
    """
    files = _plan(arch)
    k8s = "pipelines/k8s/"
    manifests = sorted(f.path.removeprefix(k8s) for f in files if f.path.startswith(k8s) and f.path.endswith(".yaml"))
    if manifests:
        kctx = {"project": arch.spec.project.name, "manifests": manifests}
        files.append(_f(f"{k8s}kustomization.yaml", "pipelines/k8s-kustomization.yaml.j2", kctx))
    return files


def _plan(arch: Architecture) -> list[PlannedFile]:
    ctx = context(arch)
    job_list: list[Job] = ctx["jobs"]
    files: list[PlannedFile] = []
    if purges(arch):
        files.append(_f("scripts/purge.py", "pipelines/purge.py.j2", _purge_context(arch), ("pii",)))
    if arch.mlops_level >= 2 and ctx["ci"] == "gitlab":
        files.append(_f(".gitlab-ci.yml", "pipelines/gitlab-ci.yml.j2", ctx, ("delivery",)))
    elif arch.mlops_level >= 2:
        files.append(_f(".github/workflows/ml-pipeline.yml", "pipelines/ml-pipeline.yml.j2", ctx, ("delivery",)))
    if ctx["cd"]:
        files.append(_f("deploy/release.mk", "pipelines/release.mk.j2", ctx, ("delivery", "deployment")))
    if arch.serving.runtime == "batch_scoring":
        from .batch import pipeline_files

        files += pipeline_files(arch)
    if not job_list and arch.training.mode != "online":
        return files
    files.append(_f("pipelines/README.md", "pipelines/README.md.j2", ctx))
    return files + _scheduler_files(arch, ctx, job_list)


def _scheduler_files(arch: Architecture, ctx: dict[str, Any], job_list: list[Job]) -> list[PlannedFile]:
    """The config of the decided scheduler: a crontab, Airflow DAGs, CronJobs, a Prefect or Dagster project."""
    files: list[PlannedFile] = []
    scheduler = arch.training.scheduler
    if scheduler in ("crontab", "none"):
        files.append(_f("pipelines/crontab", "pipelines/crontab.j2", ctx))
    elif scheduler == "airflow":
        for j in job_list:
            files.append(
                _f(
                    f"pipelines/airflow/dags/{ctx['project']}_{j.name}.py",
                    "pipelines/airflow_dag.py.j2",
                    {**ctx, "job": j},
                )
            )
    elif scheduler == "kubernetes_cronjob":
        for j in job_list:
            files.append(_f(f"pipelines/k8s/{j.dash}-cronjob.yaml", "pipelines/cronjob.yaml.j2", {**ctx, "job": j}))
        if arch.training.mode == "online":
            files.append(
                _f("pipelines/k8s/online-training-deployment.yaml", "pipelines/online-deployment.yaml.j2", ctx)
            )
    elif scheduler == "prefect":
        files.append(_f("pipelines/prefect/flows.py", "pipelines/prefect_flows.py.j2", ctx))
        files.append(_f("pipelines/prefect/prefect.yaml", "pipelines/prefect.yaml.j2", ctx))
    elif scheduler == "dagster":
        files.append(_f("pipelines/dagster/definitions.py", "pipelines/dagster_definitions.py.j2", ctx))
    return files


def _purge_context(arch: Architecture) -> dict[str, Any]:
    """What the purge may delete: only what this system writes (never a source), with its timestamp column.

    The protected copies of sources with hashed personal fields, the online store's tables (PostgreSQL and
    SQLite; Redis expires its keys itself), the scores batch scoring writes (its table, or its run partitions)
    and, where served outputs are personal data, the serving logs (the answers are never logged; a log that
    could hold anything of them is deleted once older than the retention).
    """
    from . import feature_repo

    spec = arch.spec
    fs = arch.feature_store
    owned: list[dict[str, str]] = []
    batch_sources: list[dict[str, Any]] = []
    if fs is not None:
        model = feature_repo.build_model(arch)
        batch_sources = model["batch_sources"]
        ts_of = {b["name"]: b["timestamp_field"] for b in batch_sources}
        for p in model["protected"]:
            kind = "file" if p["kind"] == "file" else "table"
            owned.append(
                {
                    "what": f"protected copy of {p['name']}",
                    "kind": kind,
                    "location": p["protected"],
                    "ts": ts_of[p["name"]],
                }
            )
        if fs.online_store in ("postgres", "sqlite"):
            for v in model["views"]:
                table = f"{fs.project}_{v['name']}"
                owned.append({"what": f"online table {table}", "kind": "online", "location": table, "ts": "event_ts"})
    if arch.serving.runtime == "batch_scoring":  # the score store batch scoring writes (components/batch.py)
        from .batch import score_store

        table, target = score_store(arch)
        if target == "postgres":
            owned.append({"what": f"score table {table}", "kind": "table", "location": table, "ts": "scored_at"})
        elif target == "parquet":
            owned.append({"what": "score runs", "kind": "output", "location": f"scores/{table}", "ts": ""})
        # a Spark, BigQuery, Snowflake or Redshift score table is purged by the warehouse's own retention
    personal = personal_outputs(arch)
    if personal:  # answers holding personal data are never logged; any log is kept no longer than the retention
        owned.append(
            {
                "what": f"serving logs {SERVING_LOGS}/*.log",
                "kind": "logs",
                "location": SERVING_LOGS,
                "ts": "",
            }
        )
    sources = sorted({b["path"] for b in batch_sources} | {b["table"] for b in batch_sources if b["kind"] != "file"})
    return {
        "project": spec.project.name,
        "retention_s": arch.privacy.retention_s,
        "retention": spec.privacy.retention,
        "owned": owned,
        "sources": sorted(s.name for s in spec.sources if s.kind in ("file", "table")),
        "source_locations": sources,
        "offline_store": fs.offline_store if fs is not None else "none",
        "online_store": fs.online_store if fs is not None else "none",
        "personal_outputs": personal,
    }
