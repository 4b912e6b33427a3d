"""Deployment: one machine (docker compose) and scale-out (Kubernetes, kustomize base + overlays).

Which files exist follows the decisions: ``deployment`` (docker_compose | kubernetes), the
stores (Redis / PostgreSQL services, the Spark driver's permissions), the scheduler (our own
scheduler service and CronJobs, or a pointer to the orchestrator the company runs) and the
GPU needs of the Triton models and of training. Runtime ``python_rest`` has no Triton: the REST
service (``serving/rest_app.py``) runs from the app image, as the ``rest-app`` compose service or
Deployment, with the model repository volume mounted. Environments (dev, staging, prod) differ only
in configuration: env files for compose, overlays for Kubernetes. Secrets are never written:
compose reads ``${VAR}`` from an env file the team keeps out of git, Kubernetes references a
Secret created out of band (``secretKeyRef``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..decide.architecture import Architecture
from .feature_repo import feast_auth
from .plan import PlannedFile

COMPONENT = "deploy"

# Triton 2.51.0 is the server in NGC release 24.10 (the version the generated python models are tested with).
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"
PYTHON_IMAGE = "python:3.11-slim"
REDIS_IMAGE = "redis:7.4-alpine"
POSTGRES_IMAGE = "postgres:16-alpine"
# Spark's own image (its entrypoint starts the executors Spark asks Kubernetes for), Java 17 and Python 3; the
# Spark jobs' image (deploy/spark.Dockerfile) adds the repository's packages, so driver and executors match
SPARK_IMAGE = "apache/spark:4.0.1-scala2.13-java17-ubuntu"  # Spark and its entrypoint; Python is 3.11's
# on docker compose the app image runs the Spark jobs itself (local[*] in the scheduler's container): it takes the
# Java runtime pyspark needs from this image (Java 17, as pyspark runs on here)
JAVA_IMAGE = "eclipse-temurin:17-jre"
KUBERNETES_VERSION = "1.30"  # the API version the manifests are validated against
EXAMPLE_REGISTRY = "registry.example.internal"  # where the built images go when the spec names no site registry
ENVIRONMENTS = ("dev", "staging", "prod")

TRITON_HTTP, TRITON_GRPC, TRITON_METRICS = 8000, 8001, 8002
# Triton API groups behind the admin key (--http-restricted-api / --grpc-restricted-protocol): all but
# inference, health and metadata, so clients cannot load, unload or reconfigure models
TRITON_RESTRICTED = "model-repository,model-config,shared-memory,statistics,trace,logging"
FEATURE_SERVER_PORT = 6566
REST_PORT = 8080  # the python_rest runtime's REST service (serving.REST_PORT)
# privacy.residency eu/us: the regions of the major clouds inside it (the values of the node label
# topology.kubernetes.io/region), the storage class its volumes use, and the warehouse's location
REGION_LABEL = "topology.kubernetes.io/region"
RESIDENCY_REGIONS: dict[str, tuple[str, ...]] = {
    "eu": (
        # AWS, Google Cloud, Azure: regions in EU member states
        "eu-central-1",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-3",
        "europe-central2",
        "europe-north1",
        "europe-southwest1",
        "europe-west1",
        "europe-west3",
        "europe-west4",
        "europe-west8",
        "europe-west9",
        "francecentral",
        "germanywestcentral",
        "italynorth",
        "northeurope",
        "polandcentral",
        "spaincentral",
        "swedencentral",
        "westeurope",
    ),
    "us": (
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west2",
        "us-west3",
        "us-west4",
        "centralus",
        "eastus",
        "eastus2",
        "northcentralus",
        "southcentralus",
        "westcentralus",
        "westus",
        "westus2",
        "westus3",
    ),
}
# warehouse locations inside the residency: BigQuery's multi-region, the AWS region of Redshift
WAREHOUSE_LOCATION: dict[str, dict[str, str]] = {
    "eu": {"BIGQUERY_LOCATION": "EU", "AWS_REGION": "eu-central-1"},
    "us": {"BIGQUERY_LOCATION": "US", "AWS_REGION": "us-east-1"},
}
# own scheduler (docker compose service, Kubernetes CronJobs) unless the company runs an orchestrator
EXTERNAL_ORCHESTRATORS = ("airflow", "prefect", "dagster")


@dataclass(frozen=True)
class EnvVar:
    """A variable the generated services read: its name, whether it is a secret, and per-environment examples."""

    name: str
    secret: bool
    examples: dict[str, str] = field(default_factory=dict)  # environment -> placeholder value
    doc: str = ""
    # built from other variables when the service starts, e.g. "{REDIS_HOST}:{REDIS_PORT}": compose writes
    # ${REDIS_HOST}, Kubernetes $(REDIS_HOST); never stored in an env file or a ConfigMap
    derived: str = ""

    def compose_value(self) -> str:
        """The value as docker-compose writes a variable: ``${NAME}``."""
        return re.sub(r"\{([A-Z0-9_]+)\}", r"${\1}", self.derived)

    def k8s_value(self) -> str:
        """The value as Kubernetes writes a variable: ``$(NAME)``."""
        return re.sub(r"\{([A-Z0-9_]+)\}", r"$(\1)", self.derived)


@dataclass(frozen=True)
class Job:
    """A scheduled job of the deployment: its name, cron, command and purpose."""

    name: str  # k8s-safe
    cron: str
    command: list[str]
    purpose: str
    gpus: int = 0
    cpus: float = 1.0
    memory_gb: float = 2.0
    k8s_name: str = ""  # <app>-<job>: the same name the pipelines component gives its CronJobs
    writable: str = ""  # why the job writes inside its image (root filesystem not read-only), or ""


def slug(name: str, max_len: int = 63) -> str:
    """A DNS-1123 label from a spec name (lowercase, '-' instead of '_', at most 63 characters)."""
    out = re.sub(r"[^a-z0-9-]", "-", name.lower().replace("_", "-"))
    out = re.sub(r"-{2,}", "-", out)[:max_len].strip("-")
    return out or "app"


# ------------------------------------------------------------------ what the deployment contains
def uses_redis(arch: Architecture) -> bool:
    """The deployment runs Redis (the online store)."""
    return arch.uses_redis


def uses_postgres(arch: Architecture) -> bool:
    """The deployment runs PostgreSQL (a store or the registry)."""
    return arch.uses_postgres


def uses_spark(arch: Architecture) -> bool:
    """The deployment runs Spark (the offline store, or the engine that computes the rollups)."""
    return arch.uses_spark


def app_runs_spark(arch: Architecture) -> bool:
    """The app image runs the Spark jobs (docker compose, or a batch system's jobs: local[*] in their own
    container, no Spark image of their own), so it carries Java.
    """
    return arch.uses_spark and (arch.deployment.target == "docker_compose" or arch.serving.runtime == "batch_scoring")


def java_context(arch: Architecture, app_spark: bool) -> dict[str, Any]:
    """What the app image's Dockerfile reads to carry a Java runtime when its containers run Spark jobs."""
    fs = arch.feature_store
    return {
        "app_spark": app_spark,
        "spark_offline": fs is not None and fs.batch_engine == "spark.engine",
        "java_image": site_image(arch, JAVA_IMAGE),
    }


def site_image(arch: Architecture, public: str) -> str:
    """A public image as the site pulls it: from existing.image_registry under its public path when one is set.

    nvcr.io/nvidia/tritonserver:T -> <registry>/nvidia/tritonserver:T; python:3.11-slim -> <registry>/library/python...
    An air-gapped spec always names its registry (validation), so it gets no public default.
    """
    registry = arch.spec.existing.image_registry
    if registry is None:
        return public
    first, _, rest = public.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):  # a registry host: dropped
        path = rest
    elif rest:
        path = public
    else:
        path = f"library/{public}"  # Docker Hub's official images
    return f"{registry}/{path}"


def app_registry(arch: Architecture) -> str:
    """Where the system's own images are pushed: the site's registry, or the example one to replace."""
    return f"{arch.spec.existing.image_registry or EXAMPLE_REGISTRY}/{slug(arch.spec.project.name)}"


def images(arch: Architecture) -> dict[str, str]:
    """The base and service images the system runs, as the site pulls them (images.txt of make offline-bundle)."""
    out = {"python": site_image(arch, PYTHON_IMAGE)}
    if arch.triton_serves:
        out["triton"] = site_image(arch, TRITON_IMAGE)
    if uses_redis(arch):
        out["redis"] = site_image(arch, REDIS_IMAGE)
    if uses_postgres(arch):
        out["postgres"] = site_image(arch, POSTGRES_IMAGE)
    if uses_spark(arch) and not app_runs_spark(arch):
        out["spark"] = site_image(arch, SPARK_IMAGE)
    if uses_spark(arch):  # the app image (local Spark jobs) or the Spark image takes its Java runtime from it
        out["java"] = site_image(arch, JAVA_IMAGE)
    return out


# the parameters of each resident provisioner (decide.privacy.resident_provisioner): what the driver needs to
# create a share; the site's own values (a file system, a server) are placeholders its team fills in
PROVISIONER_PARAMETERS: dict[str, dict[str, str]] = {
    "filestore.csi.storage.gke.io": {"tier": "standard", "network": "default"},
    "efs.csi.aws.com": {
        "provisioningMode": "efs-ap",
        "fileSystemId": "change-me-efs-file-system-id",
        "directoryPerms": "700",
    },
    "nfs.csi.k8s.io": {"server": "change-me-nfs-server.example.internal", "share": "/exports"},
}


def residency(arch: Architecture) -> dict[str, Any]:
    """Where pods and volumes may be, from privacy.residency: node affinity and storage class (none for any/on_prem).

    The storage class is generated on Kubernetes (deploy/k8s/base/resident-storageclass.yaml): volumes are
    provisioned only in the allowed regions, once the pod that uses them is placed, and kept when released.
    """
    from ..decide.privacy import resident_provisioner

    res = arch.privacy.residency
    regions = list(RESIDENCY_REGIONS.get(res, ()))
    provisioner, because = resident_provisioner(arch.spec.existing.warehouse)
    return {
        "name": res,
        "label": REGION_LABEL,
        "regions": regions,
        # the cluster's StorageClass whose volumes stay in the region (its allowedTopologies pin the region label)
        "storage_class": f"{res}-resident" if regions else "",
        "provisioner": provisioner,
        "provisioner_why": because,
        "parameters": sorted(PROVISIONER_PARAMETERS[provisioner].items()),
    }


def resident_storage_class(arch: Architecture) -> str:
    """The file of the resident StorageClass in deploy/k8s/base ("" when no residency pins the volumes)."""
    return "resident-storageclass.yaml" if residency(arch)["storage_class"] else ""


def rest_app(arch: Architecture) -> bool:
    """Runtime python_rest: the REST service predicts in process and no Triton server is deployed."""
    return arch.rest_app_serves


def triton_gpus(arch: Architecture) -> int:
    """How many GPUs the Triton server asks for (0 or 1)."""
    if rest_app(arch):
        return 0
    return 1 if any(m.instance_kind == "KIND_GPU" for m in arch.serving.models) else 0


def own_scheduler(arch: Architecture) -> bool:
    """The deployment runs the scheduled jobs itself (no external orchestrator does)."""
    return arch.training.scheduler not in EXTERNAL_ORCHESTRATORS


def jobs(arch: Architecture) -> list[Job]:
    """The scheduled jobs: the pipelines component's list (one source of truth for every scheduler form)."""
    try:
        from . import pipelines
    except ImportError:
        return []
    return [
        Job(
            name=j.name.replace("_", "-"),
            cron=j.cron,
            command=["python", *j.command],
            purpose=j.purpose,
            gpus=j.gpus,
            cpus=j.cpus,
            memory_gb=j.memory_gb,
            k8s_name=cronjob_name(arch, j.name),
            writable=job_writes_image(arch, j.name),
        )
        for j in pipelines.jobs(arch)
    ]


def job_writes_image(arch: Architecture, job: str) -> str:
    """Why a scheduled job writes files inside its image, so its root filesystem cannot be read-only ("" if not).

    Training writes only the mounted model repository. The feature-store jobs write inside the repository
    when a store is a file there: the file registry, the SQLite online store, parquet sources and their copies.
    """
    fs = arch.feature_store
    if job == "train" or fs is None:
        return ""
    kept = [
        what
        for what, used in (
            ("the file registry", fs.registry == "file"),
            ("the SQLite online store", fs.online_store == "sqlite"),
            ("parquet sources and their protected copies", fs.offline_store in ("file", "duckdb")),
        )
        if used
    ]
    if not kept:
        return ""
    return (
        f"{job} writes {', '.join(kept)} under feature_repo/data/: move them to volumes or servers to make it read-only"
    )


def cronjob_name(arch: Architecture, job: str) -> str:
    """The Kubernetes name of the CronJob of ``job``."""
    from .pipelines import k8s_name

    return str(k8s_name(arch.spec.project.name, job))


def triton_resources(arch: Architecture) -> dict[str, Any]:
    """Requests/limits of one Triton replica, from the instance groups the models ask for."""
    instances = sum(m.instance_count for m in arch.serving.models if m.instance_kind == "KIND_CPU")
    cpu = max(1, min(8, instances))
    memory_gi = 2 + len(arch.serving.models)
    return {"cpu": cpu, "cpu_limit": cpu * 2, "memory": f"{memory_gi}Gi", "gpus": triton_gpus(arch)}


def rest_resources(arch: Architecture) -> dict[str, Any]:
    """Requests/limits of one REST service replica: one prediction at a time, the Feast client and one model."""
    return {"cpu": 1, "cpu_limit": 2, "memory": "1Gi"}


def replica_bounds(arch: Architecture) -> dict[str, dict[str, int]]:
    """HPA min/max per environment from the throughput target (about 250 rps per CPU replica, headroom x2)."""
    need = max(1, math.ceil(arch.serving.throughput_rps / 250))
    prod_max = max(3, min(20, need * 2))
    return {
        "dev": {"min": 1, "max": 2},
        "staging": {"min": 1, "max": max(2, prod_max // 2)},
        "prod": {"min": max(2, need), "max": max(prod_max, need + 1)},
    }


def environment_variables(arch: Architecture) -> list[EnvVar]:
    """The variables the feature store, the serving client and the jobs read, per environment.

    The feature store's come from :func:`generator.plan.feature_repo.env_vars` (the ``${VAR}``
    placeholders of ``feature_repo/feature_store.yaml``), so names cannot drift apart. A batch system's jobs
    call no server: they read the stores' variables only (its score table is in the warehouse they read).
    """
    app = slug(arch.spec.project.name)
    out: list[EnvVar] = [EnvVar("DEPLOY_ENV", False, {e: e for e in ENVIRONMENTS}, "which environment this is")]
    if arch.serving.runtime != "batch_scoring":  # the batch jobs call no server
        out += _client_variables(arch)
    fs = arch.feature_store
    if fs is None:
        return out
    if arch.uses_spark and not app_runs_spark(arch):  # Kubernetes: the Spark jobs run in Spark's image
        out.append(
            EnvVar(
                "SPARK_IMAGE",
                False,
                {e: _image(arch, "spark", e) for e in ENVIRONMENTS},
                "the image Spark starts its executors from (deploy/spark.Dockerfile), the same as the job's",
            )
        )
    if arch.feature_server_runs:
        out.append(
            EnvVar(
                "FEATURE_SERVER_URL",
                False,
                dict.fromkeys(ENVIRONMENTS, f"http://feature-server:{FEATURE_SERVER_PORT}"),
                "Feast feature server",
            )
        )
    feast_vars = dict(_feast_env_vars(arch))
    if "REDIS_CONNECTION_STRING" in feast_vars or fs.online_store == "redis":
        feast_vars.pop("REDIS_CONNECTION_STRING", None)
        out += [
            EnvVar("REDIS_HOST", False, _hosts("redis", app), "Redis online store host"),
            EnvVar("REDIS_PORT", False, dict.fromkeys(ENVIRONMENTS, "6379"), "Redis port"),
            EnvVar("REDIS_PASSWORD", True, _secret("redis"), "Redis password"),
            EnvVar(
                "REDIS_CONNECTION_STRING",
                True,
                doc="Feast's Redis connection string: host:port,key=value (not a URL)",
                derived="{REDIS_HOST}:{REDIS_PORT},password={REDIS_PASSWORD}",
            ),
        ]
    if fs.registry == "sql" and "POSTGRES_HOST" not in feast_vars:
        # the SQL registry needs a database: PostgreSQL (a container on one machine)
        feast_vars.pop("FEAST_REGISTRY_URL", None)
        out += _postgres_vars(app)
        out.append(
            EnvVar(
                "FEAST_REGISTRY_URL",
                True,
                doc="SQLAlchemy URL of the SQL registry",
                derived="postgresql+psycopg://{POSTGRES_USER}:{POSTGRES_PASSWORD}@{POSTGRES_HOST}:{POSTGRES_PORT}/"
                "{POSTGRES_DB}",
            )
        )
    elif "POSTGRES_HOST" in feast_vars:
        for name in [n for n in feast_vars if n.startswith("POSTGRES_")]:
            feast_vars.pop(name)
        out += _postgres_vars(app)
    # on docker compose and in batch jobs the Spark jobs run in the app's container (local[*]): no Kubernetes
    # master to name
    special = SPECIAL_EXAMPLES if not app_runs_spark(arch) else {}
    for name, (secret, doc, default) in sorted(feast_vars.items()):
        examples = _secret(name.lower().replace("_", "-")) if secret else dict(special.get(name, {}))
        for e in ENVIRONMENTS:
            examples.setdefault(e, default or "change-me")
        out.append(EnvVar(name, secret, examples, doc))
    return out


def _client_variables(arch: Architecture) -> list[EnvVar]:
    """Where the serving client finds the server: the REST service, or Triton and its admin key."""
    grpc = arch.serving.protocol == "grpc"
    out: list[EnvVar] = []
    if rest_app(arch):
        out.append(
            EnvVar(
                "SERVING_URL",
                False,
                dict.fromkeys(ENVIRONMENTS, f"http://rest-app:{REST_PORT}"),
                "REST service of the serving client (serving/client.py)",
            )
        )
    else:
        out.append(
            EnvVar(
                "TRITON_URL",
                False,
                dict.fromkeys(ENVIRONMENTS, f"triton:{TRITON_GRPC if grpc else TRITON_HTTP}"),
                "Triton endpoint of the serving client",
            )
        )
        out.append(
            EnvVar(
                "TRITON_ADMIN_KEY",
                True,
                _secret("triton-admin"),
                "key of Triton's restricted APIs (model control, repository, config, statistics, ...): "
                "clients get inference, health and metadata only",
            )
        )
    return out


# per-environment examples of variables whose dev default would be wrong elsewhere
SPECIAL_EXAMPLES: dict[str, dict[str, str]] = {
    "SPARK_MASTER": {
        "dev": "local[*]",
        "staging": "k8s://https://kubernetes.default.svc",
        "prod": "k8s://https://kubernetes.default.svc",
    },
}


def _feast_env_vars(arch: Architecture) -> list[tuple[str, tuple[bool, str, str]]]:
    """(name, (secret, description, local default)) of the feature repo's variables."""
    try:
        from . import feature_repo
    except ImportError:
        return []
    if not hasattr(feature_repo, "env_vars"):
        return []
    return [(v.name, (bool(v.secret), str(v.description), str(v.default))) for v in feature_repo.env_vars(arch)]


def _postgres_vars(app: str) -> list[EnvVar]:
    return [
        EnvVar("POSTGRES_HOST", False, _hosts("postgres", app), "PostgreSQL host"),
        EnvVar("POSTGRES_PORT", False, dict.fromkeys(ENVIRONMENTS, "5432"), "PostgreSQL port"),
        EnvVar("POSTGRES_DB", False, dict.fromkeys(ENVIRONMENTS, "feast"), "PostgreSQL database"),
        EnvVar("POSTGRES_USER", False, dict.fromkeys(ENVIRONMENTS, "feast"), "PostgreSQL user"),
        EnvVar("POSTGRES_PASSWORD", True, _secret("postgres"), "PostgreSQL password"),
        EnvVar(
            "POSTGRES_SSLMODE",
            False,
            {"dev": "disable", "staging": "require", "prod": "verify-full"},
            "libpq sslmode: disable only for local development (Feast's default is require)",
        ),
    ]


def _image(arch: Architecture, image: str, env: str) -> str:
    """One of the system's images as an environment's overlay names it (k8s/overlay-kustomization.yaml.j2)."""
    app = slug(arch.spec.project.name)
    if env == "dev":
        return f"local/{app}-{image}:dev"
    return f"{app_registry(arch)}/{app}-{image}:change-me-git-sha"


def _hosts(service: str, app: str) -> dict[str, str]:
    return {
        "dev": service,
        "staging": f"{service}.{app}-staging.example.internal",
        "prod": f"{service}.{app}-prod.example.internal",
    }


def _secret(what: str) -> dict[str, str]:
    return {e: f"change-me-{what}-{e}" for e in ENVIRONMENTS}


def secret_examples(env_vars: list[EnvVar], env: str) -> list[tuple[str, str]]:
    """Secret keys of one environment with placeholder values; derived ones spelled out from the others."""
    values = {v.name: v.examples.get(env, "") for v in env_vars if not v.derived}
    out = []
    for v in env_vars:
        if not v.secret:
            continue
        value = (
            re.sub(r"\{([A-Z0-9_]+)\}", lambda m: values.get(m.group(1), ""), v.derived)
            if v.derived
            else values[v.name]
        )
        out.append((v.name, value))
    return out


def pipelines_cronjobs(arch: Architecture) -> list[str]:
    """Kubernetes CronJob files the pipelines component already generates (so deploy does not duplicate them)."""
    try:
        from . import pipelines
    except ImportError:
        return []
    return sorted(
        f.path
        for f in pipelines.plan(arch)
        if f.path.startswith("pipelines/") and f.path.endswith((".yaml", ".yml")) and "k8s" in f.path
    )


def pipeline_kustomize_dirs(paths: list[str]) -> list[str]:
    """Folders of the pipelines' manifests that carry a kustomization.yaml, relative to deploy/k8s/base."""
    dirs = sorted({p.rsplit("/", 1)[0] for p in paths if p.endswith("/kustomization.yaml")})
    return [f"../../../{d}" for d in dirs]


# ------------------------------------------------------------------ the plan
def plan(arch: Architecture) -> list[PlannedFile]:
    """The deployment files: docker-compose, Kubernetes manifests and their overlays, images, env files."""
    if arch.serving.runtime != "triton" and arch.feature_store is None:
        return []
    if arch.serving.runtime in ("embedded", "batch_scoring"):
        return []  # no server to deploy: the embedded and batch runtimes bring their own (components/batch.py)
    ctx = context(arch)
    files = [
        _t("deploy/README.md", "deploy/README.md.j2", ctx, ("deployment", "online_store", "scheduler")),
        _t("deploy/.gitignore", "deploy/gitignore.j2", ctx),
        _t("deploy/docker-compose.yaml", "deploy/docker-compose.yaml.j2", ctx, ("deployment", "online_store")),
        _t("deploy/app.Dockerfile", "deploy/app.Dockerfile.j2", ctx, ("compute_engine",) if ctx["app_spark"] else ()),
        _t("deploy/app.Dockerfile.dockerignore", "deploy/app.dockerignore.j2", ctx),
        _t("deploy/check_secrets.py", "deploy/check_secrets.py.j2", ctx),
    ]
    if ctx["spark"] and not ctx["app_spark"]:  # Kubernetes: the Spark jobs (driver and executors) run in Spark's
        # image with the repository's packages (on compose the app image runs them, with its Java)
        files += [
            _t("deploy/spark.Dockerfile", "deploy/spark.Dockerfile.j2", ctx, ("compute_engine", "spark_settings")),
            _t("deploy/spark.Dockerfile.dockerignore", "deploy/app.dockerignore.j2", ctx),
        ]
    if not ctx["rest_app"]:  # python_rest serves from the app image: no Triton image to build
        files += [
            _t("deploy/triton.Dockerfile", "deploy/triton.Dockerfile.j2", ctx, ("serving_runtime",)),
            _t("deploy/triton.Dockerfile.dockerignore", "deploy/triton.dockerignore.j2", ctx),
        ]
    for env in ENVIRONMENTS:
        files.append(_t(f"deploy/env/{env}.env.example", "deploy/env.example.j2", {**ctx, "env": env}))
    if ctx["own_scheduler"] and ctx["jobs"]:
        files.append(_t("deploy/scheduler.py", "deploy/scheduler.py.j2", ctx, ("scheduler",)))
    if arch.deployment.target == "kubernetes":
        files += _k8s_files(arch, ctx)
    from ..decide.contract import only_decided

    return only_decided(arch, files)  # no feature store: no online_store decision shaped the README


def _t(path: str, template: str, ctx: dict[str, Any], decisions: tuple[str, ...] = ()) -> PlannedFile:
    return PlannedFile(path=path, component=COMPONENT, template=template, context=ctx, decisions=decisions)


def _k8s_files(arch: Architecture, ctx: dict[str, Any]) -> list[PlannedFile]:
    base = "deploy/k8s/base"
    server = ctx["server"]  # triton, or rest-app (python_rest)
    names = [f"{server}-deployment.yaml", f"{server}-service.yaml", "model-repository-pvc.yaml"]
    if ctx["feature_server"]:
        names += ["feature-server-deployment.yaml", "feature-server-service.yaml", "feature-server-hpa.yaml"]
    if ctx["redis"]:
        names += ["redis-statefulset.yaml", "redis-service.yaml"]
    if ctx["spark"]:
        names += ["spark-rbac.yaml", "spark-defaults-configmap.yaml"]
    if ctx["access_roles"]:
        names.append("feast-access.yaml")
    if resident_storage_class(arch):
        names.append(resident_storage_class(arch))
    names.append("network-policies.yaml")
    shaped = {
        "spark-defaults-configmap.yaml": ("deployment", "spark_settings"),
        "resident-storageclass.yaml": ("deployment", "residency"),
    }
    files = [_t(f"{base}/{n}", f"deploy/k8s/{n}.j2", ctx, shaped.get(n, ("deployment",))) for n in names]
    for kind in ("hpa", "pdb"):  # one template for either server
        names.append(f"{server}-{kind}.yaml")
        files.append(_t(f"{base}/{server}-{kind}.yaml", f"deploy/k8s/serving-{kind}.yaml.j2", ctx, ("deployment",)))
    if ctx["cronjobs"]:
        for j in ctx["jobs"]:
            name = f"cronjob-{j.name}.yaml"
            names.append(name)
            files.append(_t(f"{base}/{name}", "deploy/k8s/cronjob.yaml.j2", {**ctx, "job": j}, ("scheduler",)))
    kctx = {**ctx, "resources": sorted(names)}
    files.append(_t(f"{base}/kustomization.yaml", "deploy/k8s/base-kustomization.yaml.j2", kctx))
    return files + overlay_files(ctx, COMPONENT)


PII_KEY_SECRET = "pii-key"  # <app>-pii-key: the encryption key, readable only by the roles granted read_pii


def access_roles(arch: Architecture) -> list[dict[str, Any]]:
    """One ServiceAccount, Role and RoleBinding per role of privacy.access (Feast's Kubernetes authorization).

    Feast matches a caller's roles by the names of the Roles bound to its ServiceAccount, so the Role is
    named exactly as the spec's role; the ServiceAccount and RoleBinding names are DNS labels of it.
    """
    if arch.deployment.target != "kubernetes" or feast_auth(arch) != "kubernetes":
        return []
    return [
        {
            "role": role,
            "account": f"feast-{slug(role, 57)}",
            "actions": ", ".join(can),
            "read_pii": "read_pii" in can and bool(arch.privacy.pii_key_env),
        }
        for role, can in arch.privacy.permissions
    ]


def config_context(arch: Architecture) -> dict[str, Any]:
    """What each environment's configuration reads: the variables (its ConfigMap, the Secret's keys and their
    examples), the encryption key's own Secret and where the system's images are pushed (the overlays).
    """
    app = slug(arch.spec.project.name)
    env_vars = environment_variables(arch)
    pii_key = arch.privacy.pii_key_env
    return {
        "app": app,
        "project": arch.spec.project.name,
        "app_registry": app_registry(arch),
        "environments": list(ENVIRONMENTS),
        "env_vars": env_vars,
        "config_vars": [v for v in env_vars if not v.secret and not v.derived],
        "secret_vars": [v for v in env_vars if v.secret and not v.derived],
        "derived_vars": [v for v in env_vars if v.derived],
        "secret_examples": {e: secret_examples(env_vars, e) for e in ENVIRONMENTS},
        # the encryption key of personal fields is a Secret of its own: only the containers that encrypt get it
        "k8s_secret_keys": [v.name for v in env_vars if v.secret and v.name != pii_key],
        "secret_names": sorted(v.name for v in env_vars if v.secret and not v.derived),
        "pii_key_secret": f"{app}-{PII_KEY_SECRET}" if pii_key else "",
    }


def overlay_files(ctx: dict[str, Any], component: str, decisions: tuple[str, ...] = ()) -> list[PlannedFile]:
    """deploy/k8s/overlays/<env>: each environment's namespace, configuration, image names and Secret's example.

    ``ctx``: :func:`config_context` with what the overlay names beside it (``images``; the autoscaled ``server``
    and the feature server when a service answers requests).
    """
    files = []
    for env in ENVIRONMENTS:
        ectx = {**ctx, "env": env}
        over = f"deploy/k8s/overlays/{env}"
        for name, template in (
            ("kustomization.yaml", "overlay-kustomization.yaml"),
            ("namespace.yaml", "namespace.yaml"),
            ("secrets.env.example", "secrets.env.example"),
        ):
            files.append(
                PlannedFile(f"{over}/{name}", component, f"deploy/k8s/{template}.j2", ectx, decisions=decisions)
            )
        if ctx.get("feast_auth") == "kubernetes" and ctx.get("feature_server"):
            path = f"{over}/feature-server-tokenreview.yaml"
            files.append(PlannedFile(path, component, "deploy/k8s/tokenreview.yaml.j2", ectx, decisions=decisions))
    return files


def context(arch: Architecture) -> dict[str, Any]:
    """The template context of the deployment files."""
    app = slug(arch.spec.project.name)
    own = own_scheduler(arch)
    pipeline_cronjobs = pipelines_cronjobs(arch) if arch.deployment.target == "kubernetes" else []
    job_list = jobs(arch)
    return {
        **config_context(arch),
        "triton_image": site_image(arch, TRITON_IMAGE),
        "python_image": site_image(arch, PYTHON_IMAGE),
        "batch": False,  # deploy/app.Dockerfile of a server's image (the batch planner renders a job's)
        "redis_image": site_image(arch, REDIS_IMAGE),
        "postgres_image": site_image(arch, POSTGRES_IMAGE),
        "package_mirror": arch.spec.existing.package_mirror or "",
        "k8s_version": KUBERNETES_VERSION,
        "ports": {
            "http": TRITON_HTTP,
            "grpc": TRITON_GRPC,
            "metrics": TRITON_METRICS,
            "feature_server": FEATURE_SERVER_PORT,
            "rest": REST_PORT,
        },
        "rest_app": rest_app(arch),
        "server": "rest-app" if rest_app(arch) else "triton",
        "triton_restricted": TRITON_RESTRICTED,
        "images": (["app"] if rest_app(arch) else ["triton", "app"])
        + (["spark"] if uses_spark(arch) and not app_runs_spark(arch) else []),
        "spark_base_image": site_image(arch, SPARK_IMAGE),
        "spark_conf": sorted(arch.feature_store.spark_conf.items()) if arch.feature_store else [],
        "rest": rest_resources(arch),
        "redis": uses_redis(arch),
        "postgres": uses_postgres(arch),
        "spark": uses_spark(arch),
        **java_context(arch, app_runs_spark(arch)),
        "feature_store": arch.feature_store is not None,
        "feature_server": arch.feature_server_runs,
        "gpus": triton_gpus(arch),
        "triton": triton_resources(arch),
        "replicas": replica_bounds(arch),
        "own_scheduler": own,
        "jobs": job_list,
        # CronJobs in deploy/k8s only when the pipelines component does not already generate them
        "cronjobs": own and not pipeline_cronjobs,
        "pipeline_cronjobs": pipeline_cronjobs,
        # kustomize loads only directories (with their own kustomization.yaml) from outside the base
        "pipeline_dirs": pipeline_kustomize_dirs(pipeline_cronjobs),
        "train_job": any(j.name == "train" for j in job_list),
        "writes_models": ["train"],
        "train_cronjob": cronjob_name(arch, "train"),
        "model_pvc": f"{app}-model-repository",
        "scheduler": arch.training.scheduler,
        "feast_auth": feast_auth(arch),
        "residency": residency(arch),
        "access_roles": access_roles(arch),
        "local_mirror": arch.privacy.local_mirror,
        "models": [m.name for m in arch.serving.models],
        "entrypoint": arch.serving.entrypoint,
        "protocol": arch.serving.protocol,
        "k8s": arch.deployment.target == "kubernetes",
        "throughput_rps": arch.serving.throughput_rps,
        "latency_p99_ms": arch.serving.latency_p99_ms,
    }
