"""The batch runtime: precomputed predictions written where the business reads them.

``batch/score.py`` scores the whole population in process (point-in-time features from the offline store,
the path training uses; the model loaded once; chunked) into the warehouse: a PostgreSQL table, or
partitioned parquet when the warehouse is files. One pipeline chains training (with its quality gate) and
scoring, so scores never come from a model that failed its gate: an Airflow DAG (KubernetesPodOperator
with the app image on Kubernetes, BashOperator otherwise), a Kubernetes CronJob (training as the init
container) or a crontab line. No Triton, no autoscaler and no feature server: nothing answers requests.
"""

from __future__ import annotations

from typing import Any

from ..decide.architecture import Architecture
from .deploy import (
    PYTHON_IMAGE,
    config_context,
    java_context,
    overlay_files,
    pipeline_kustomize_dirs,
    pipelines_cronjobs,
    resident_storage_class,
    site_image,
    slug,
)
from .pipelines import (
    APP_IMAGE,
    Job,
    k8s_name,
    k8s_quantity_cpu,
    k8s_quantity_memory,
    pod_placement,
    scheduled_training,
)
from .plan import PlannedFile

COMPONENT = "batch"
DECISIONS = ("serving_runtime", "batch_scoring")
CHUNK_ROWS = 50_000  # entities per offline-store query: memory stays flat as the population grows
# the SQL type of an entity key in each warehouse's score table
KEY_SQL = {
    "postgres": {"int64": "BIGINT", "int32": "INTEGER", "string": "TEXT"},
    "bigquery": {"int64": "INT64", "int32": "INT64", "string": "STRING"},
    "snowflake": {"int64": "BIGINT", "int32": "INTEGER", "string": "VARCHAR"},
    "redshift": {"int64": "BIGINT", "int32": "INTEGER", "string": "VARCHAR(256)"},
}
# the class of batch/score.py that writes each target
WRITERS = {
    "postgres": "PostgresScores",
    "parquet": "ParquetScores",
    "spark": "SparkScores",
    "bigquery": "BigQueryScores",
    "snowflake": "SnowflakeScores",
    "redshift": "RedshiftScores",
}
# the score table's other columns in each warehouse: score, model_version, run_id, scored_at
SCORE_SQL = {
    "postgres": ("DOUBLE PRECISION", "INTEGER", "TEXT", "TIMESTAMPTZ"),
    "bigquery": ("FLOAT64", "INT64", "STRING", "TIMESTAMP"),
    "snowflake": ("DOUBLE", "BIGINT", "VARCHAR", "TIMESTAMP_TZ"),
    "redshift": ("DOUBLE PRECISION", "BIGINT", "VARCHAR(128)", "TIMESTAMPTZ"),
}
# offline stores whose sources batch/score.py reads itself, with Feast's point-in-time rule (a parquet scan, or
# one SQL query streamed in chunks); the others go through Feast's get_historical_features
DIRECT_READS = {"file": "file", "duckdb": "file", "postgres": "postgres"}


def batch_runtime(arch: Architecture) -> bool:
    """The batch scoring runtime serves the predictions."""
    return arch.serving.runtime == "batch_scoring"


def _decision_value(arch: Architecture) -> dict[str, Any]:
    d = arch.decision("batch_scoring")
    from ..decide.serving import score_target

    target = score_target(arch.spec.existing.warehouse)
    spec = arch.spec
    population = spec.serving.population
    if population is None:  # the rule's default: the scored service's first view's source
        service = spec.service(spec.serving.models[0].feature_service or "")
        view = spec.view(service.features[0].partition(".")[0]) if service is not None else None
        population = view.source if view is not None else None
    from requirements_spec.types import cron_expression

    schedule = spec.serving.schedule or spec.training.schedule
    return {
        "choice": d.choice,
        "population": population,
        "cron": cron_expression(schedule) if schedule else None,
        "target": target,
        "table": f"{spec.project.name}_scores",
    }


def score_store(arch: Architecture) -> tuple[str, str]:
    """Where batch scoring writes: (table name, target: "parquet" or the warehouse); the purge deletes only from it."""
    value = _decision_value(arch)
    return str(value["table"]), str(value["target"])


def offline_reads(arch: Architecture, features: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """How batch/score.py reads its point-in-time features: (engine, views).

    "file" or "postgres": straight from each view's offline source (the copy Feast reads, protected when personal
    fields are hashed), with Feast's rule: per entity, the newest row at or before the run time and no older
    than the view's ttl, ties going to the newest created timestamp. "feast" (no views): through
    get_historical_features, for offline stores read only through Feast and for services with on-demand views.
    """
    from requirements_spec.models import StreamSourceSpec
    from requirements_spec.types import duration_seconds

    from .feature_repo import build_model, served_features

    spec, fs = arch.spec, arch.feature_store
    engine = DIRECT_READS.get(fs.offline_store) if fs is not None else None
    service = spec.serving.models[0].feature_service or ""
    if fs is None or engine is None:
        return "feast", []
    sources = {b["name"]: b for b in build_model(arch)["batch_sources"]}
    views: dict[str, dict[str, Any]] = {}
    for ref in served_features(arch, service):
        name, _, field = ref.partition(".")
        view = spec.view(name)
        if view is None or name in fs.aggregated_views:  # on-demand or rolled up: Feast reads what it computes
            return "feast", []
        source = spec.source(view.source)
        batch = sources[source.batch_source if isinstance(source, StreamSourceSpec) else view.source]
        entry = views.setdefault(
            name,
            {
                "name": name,
                "join_keys": [_join_key(arch, e) for e in view.entities],
                "ttl_s": duration_seconds(view.ttl),
                "location": batch["read_path"] if engine == "file" else batch["read_table"],
                "timestamp_field": batch["timestamp_field"],
                "created_timestamp_field": batch["created_timestamp_field"],
                "fields": [],
            },
        )
        entry["fields"].append(field)
    if sorted(f for v in views.values() for f in v["fields"]) != sorted(features):
        return "feast", []  # the model's inputs are not plainly the views' fields
    return engine, list(views.values())


def _join_key(arch: Architecture, entity: str) -> str:
    found = arch.spec.entity(entity)
    return found.join_key if found is not None else entity


def _population(arch: Architecture, name: str | None) -> dict[str, Any]:
    """The population source as the decided offline store reads it.

    "file": the parquet file (the file and duckdb stores, the embedded default); "table": the PostgreSQL table
    (PostgreSQL is the warehouse); "feast": the warehouses read only through Feast (Spark, BigQuery, Snowflake,
    Redshift), by Feast's offline store from the source the registry holds, whose class is named here.
    """
    from .feature_repo import SOURCE_CLASSES, build_model

    source = arch.spec.stored_source(name or "")  # a stream: the file or table it lands in
    fs = arch.feature_store
    if source is None or fs is None:
        return {"name": name, "kind": "file", "location": ""}
    batch = next(b for b in build_model(arch)["batch_sources"] if b["name"] == source.name)
    if fs.offline_store in ("file", "duckdb"):
        return {"name": source.name, "kind": "file", "location": batch["path"]}
    if fs.offline_store == "postgres":
        return {"name": source.name, "kind": "table", "location": batch["table"]}
    module, cls = SOURCE_CLASSES[batch["kind"]]
    where = f"$SPARK_LAKE_ROOT/{batch['lake_path']}" if batch.get("lake_path") else batch["read_table"]
    return {
        "name": source.name,
        "kind": "feast",
        "location": where,
        "store": fs.offline_store,
        "source_module": module,
        "source_class": cls,
    }


def context(arch: Architecture) -> dict[str, Any]:
    """The template context of the batch scoring job."""
    from ..decide.serving import score_location
    from ..render.python_layout import literal
    from .serving import client_context

    spec = arch.spec
    value = _decision_value(arch)
    ctx = client_context(arch)
    entry = ctx["entry"]
    features = [t.name for t in entry.inputs]
    engine, views = offline_reads(arch, features)
    population = _population(arch, value["population"])
    join_keys = [k for k, _ in ctx["entity_keys"]]
    dtypes = {e.join_key: e.dtype for e in spec.entities}
    project = spec.project.name
    app = slug(project)  # as deploy/k8s names the system (its ConfigMap, Secrets and namespaces)
    tr = arch.training
    train_first = scheduled_training(arch)
    fs = arch.feature_store
    rollups = fs is not None and bool(fs.aggregated_views)
    # the pipeline's steps in order: fresh rollups before training and again before scoring (scripts/aggregate.py)
    in_sql = rollups and fs is not None and fs.compute_engine == "postgres"
    share = {
        "cpu": k8s_quantity_cpu(max(1.0, tr.cpus)),
        "cpu_limit": k8s_quantity_cpu(max(1.0, tr.cpus) * 2),
        "memory": k8s_quantity_memory(max(2.0, tr.memory_gb)),
    }
    target = value["target"]
    score_writable = pod_placement(arch, ["score"])["writable"]["score"] or (
        "score writes the predictions parquet under scores/" if target == "parquet" else ""
    )
    sql_types = KEY_SQL.get(target, KEY_SQL["postgres"])
    key_columns = [f"{k} {sql_types[dtypes.get(k, 'string')]}" for k in join_keys]
    score_columns = zip(("score", "model_version", "run_id", "scored_at"), SCORE_SQL.get(target, ()), strict=False)
    rollup_writable = _rollup_writable(arch)
    chain = [
        *(["aggregate_before_train"] if rollups and train_first else []),
        *(["train"] if train_first else []),
        *(["aggregate_before_score"] if rollups else []),
        "score",
    ]
    from .feature_repo import refreshes_protected_copies_itself

    return {
        # each environment's ConfigMap and Secrets the jobs read (deploy/k8s/overlays), the encryption key's own
        **config_context(arch),
        "batch": True,
        "project": project,
        "app": app,
        "home_var": f"{project.upper()}_HOME",
        "namespace_var": f"{project.upper()}_NAMESPACE",
        "protect_pii": refreshes_protected_copies_itself(arch),
        "model": entry.name,
        "feature_service": entry.feature_service,
        "features": features,
        "engine": engine,
        "views": literal(views, prefix=len("VIEWS = ")),
        "output": entry.outputs[0].name,
        "join_keys": join_keys,
        "key_sql_types": {k: sql_types[dtypes.get(k, "string")] for k in join_keys},
        # the score table's columns in the warehouse's SQL ("name TYPE"), in the order every writer sends them
        "table_columns_literal": literal(
            [*key_columns, *(f"{c} {t} NOT NULL" for c, t in score_columns)], prefix=len("TABLE_COLUMNS = ")
        ),
        "writer": WRITERS[target],
        "where": score_location(target, value["table"]),
        "spark_conf_literal": literal(dict(fs.spark_conf) if fs is not None else {}, prefix=len("SPARK_CONF = ")),
        "population": population,
        "population_literal": literal(
            {k: population[k] for k in ("name", "kind", "location")}, prefix=len("POPULATION = ")
        ),
        "target": value["target"],
        "table": value["table"],
        "cron": value["cron"],
        "chunk_rows": CHUNK_ROWS,
        "train_first": train_first,
        "rollups": rollups,
        "rollup_views": sorted(fs.aggregated_views) if fs is not None else [],
        "rollup_engine": fs.compute_engine if rollups and fs is not None else None,
        "chain": chain,
        "scheduler": tr.scheduler,
        "kubernetes": arch.deployment.target == "kubernetes",
        "image": APP_IMAGE.format(app=app),
        "model_pvc": f"{app}-model-repository",
        "cronjob_name": k8s_name(project, "train_score"),
        "train": {
            "cpu": k8s_quantity_cpu(tr.cpus),
            "cpu_limit": k8s_quantity_cpu(tr.cpus * 2),
            "memory": k8s_quantity_memory(tr.memory_gb),
            "gpus": tr.gpus if tr.accelerator == "gpu" else 0,
            "threads": max(1, round(tr.cpus)),
        },
        "score": share,
        # the rollup job: SQL inside PostgreSQL needs little; pandas or a Spark driver get scoring's share
        "rollup": {"cpu": "1", "cpu_limit": "2", "memory": "1Gi"} if in_sql else share,
        "postgres": target == "postgres",
        **pod_placement(arch, ["train", "score"]),
        "score_writable": score_writable,
        "rollup_writable": rollup_writable,
        # the CronJob's one checkov skip of a writable root filesystem carries every container's reason
        "cronjob_writable": "; ".join(w for w in (rollup_writable, score_writable) if w),
        "storage_class_file": resident_storage_class(arch),
    }


def image_context(arch: Architecture) -> dict[str, Any]:
    """What the batch image's Dockerfile and its .dockerignore read: the site's base image and package mirror."""
    return {
        "project": arch.spec.project.name,
        "python_image": site_image(arch, PYTHON_IMAGE),
        "package_mirror": arch.spec.existing.package_mirror or "",
        "local_mirror": arch.privacy.local_mirror,
        # the batch jobs run Spark (rollups, the population) in this image, local[*]: it carries Java
        **java_context(arch, arch.uses_spark),
    }


def _rollup_writable(arch: Architecture) -> str:
    """Why the rollup job writes inside its image ("" when it does not: SQL inside PostgreSQL, or no rollups)."""
    from .feature_repo import ROLLUP_DIR

    fs = arch.feature_store
    if fs is None or not fs.aggregated_views or fs.compute_engine == "postgres":
        return ""
    if fs.offline_store == "spark":
        where = "under SPARK_LAKE_ROOT (feature_repo/ unless set): point it at object storage"
    else:
        where = f"under feature_repo/{ROLLUP_DIR}/: move them to a volume"
    return f"aggregate writes the rollups {where} to make it read-only"


def _f(path: str, template: str, ctx: dict[str, Any], decisions: tuple[str, ...] = DECISIONS) -> PlannedFile:
    return PlannedFile(path, COMPONENT, template=template, context=ctx, decisions=decisions)


def pipeline_job(arch: Architecture) -> Job | None:
    """The train -> score pipeline as one scheduled job (what `archgen check` holds the scheduler configs to).

    None when the system scores in no pipeline (not batch, or no schedule: `make train score` by hand).
    """
    if not batch_runtime(arch) or not arch.spec.serving.models[0].feature_service:
        return None
    cron = _decision_value(arch)["cron"]
    if cron is None:
        return None
    return Job(
        "train_score",
        str(cron),
        ("-m", "batch.score"),
        "train with the quality gate, then score every entity of the population",
        decisions=("scheduler", *DECISIONS),
    )


def pipeline_files(arch: Architecture) -> list[PlannedFile]:
    """The train -> score pipeline in the decided scheduler's form (the pipelines component asks for it)."""
    ctx = context(arch)
    if ctx["cron"] is None:
        return []  # no schedule: `make train score` by hand
    scheduler = arch.training.scheduler
    sched = ("scheduler", *DECISIONS)
    if scheduler == "airflow":
        return [_f(f"pipelines/airflow/dags/{ctx['project']}_train_score.py", "batch/airflow_dag.py.j2", ctx, sched)]
    if scheduler == "kubernetes_cronjob":  # pipelines/k8s/kustomization.yaml names it (plan/pipelines.py)
        return [_f("pipelines/k8s/train-score-cronjob.yaml", "batch/cronjob.yaml.j2", ctx, sched)]
    return [_f("pipelines/batch.crontab", "batch/crontab.j2", ctx, sched)]


def plan(arch: Architecture) -> list[PlannedFile]:
    """The batch scoring job and its files (none unless the runtime is batch_scoring with a feature service)."""
    if not batch_runtime(arch) or not arch.spec.serving.models[0].feature_service:
        return []
    ctx = context(arch)
    files = [
        PlannedFile("batch/__init__.py", COMPONENT, content='"""Batch scoring. Generated by archgen."""\n'),
        _f("batch/score.py", "batch/score.py.j2", ctx),
        _f("batch/README.md", "batch/README.md.j2", ctx),
    ]
    if ctx["engine"] != "feast":  # its own reads of the offline store, held to Feast's
        files.append(_f("tests/test_batch_score.py", "batch/test_batch_score.py.j2", ctx))
    if ctx["kubernetes"]:  # the pods run the app image, built here; elsewhere the scheduler runs the jobs on its host
        image = image_context(arch)
        resources = ["model-repository-pvc.yaml", *([ctx["storage_class_file"]] if ctx["storage_class_file"] else [])]
        kctx = {**ctx, "resources": resources, "pipeline_dirs": pipeline_kustomize_dirs(pipelines_cronjobs(arch))}
        files += [
            _f("deploy/app.Dockerfile", "deploy/app.Dockerfile.j2", {**ctx, **image}, ("deployment",)),
            _f("deploy/app.Dockerfile.dockerignore", "deploy/app.dockerignore.j2", image, ("deployment",)),
            _f("deploy/.gitignore", "deploy/gitignore.j2", ctx, ("deployment",)),
            _f("deploy/check_secrets.py", "deploy/check_secrets.py.j2", ctx, ("deployment",)),
            _f("deploy/k8s/base/model-repository-pvc.yaml", "batch/pvc.yaml.j2", ctx, ("deployment",)),
            _f("deploy/k8s/base/kustomization.yaml", "deploy/k8s/base-kustomization.yaml.j2", kctx, ("deployment",)),
        ]
        if ctx["storage_class_file"]:  # privacy.residency pins the volume: the class it asks for
            files.append(
                _f(
                    f"deploy/k8s/base/{ctx['storage_class_file']}",
                    "deploy/k8s/resident-storageclass.yaml.j2",
                    ctx,
                    ("deployment", "residency"),
                )
            )
        # each environment: its namespace, the configuration and Secrets the jobs read, the app image's name
        nothing_served = {"server": "", "feature_server": False, "feast_auth": "", "cronjobs": False}
        files += overlay_files({**ctx, **nothing_served, "images": ["app"]}, COMPONENT, ("deployment",))
    return files
