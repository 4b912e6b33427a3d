"""Diagrams of an Architecture: the data-flow view and the deployment view.

Each view is first built as plain data (:class:`View`: nodes with fixed ids, clusters, edges) from the
Architecture alone; two back ends draw it:

* :func:`to_mermaid` writes Mermaid text (no binary needed; renders on any git host);
* :func:`to_dot` / :func:`render` build the graph with ``diagrams`` (graphviz) for DOT, SVG and PNG.

Output is stable: every node has a fixed ``nodeid``; the written DOT and SVG carry no absolute path (icon paths
in DOT are relative to the icon folders, icons in SVG are inlined as data URIs) and no graphviz version comment.
``diagrams`` and ``graphviz`` are imported inside functions only. Without the ``dot`` binary, DOT and Mermaid
text can still be written; PNG and SVG need it (:func:`dot_available`, :data:`INSTALL_HINT`).
"""

from __future__ import annotations

import base64
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..decide.architecture import Architecture
from ..errors import DEPENDENCY, ArchgenError

INSTALL_HINT = (
    "install graphviz to draw PNG/SVG diagrams: `apt-get install graphviz` (Debian/Ubuntu), "
    "`brew install graphviz` (macOS), then run `archgen diagram` again"
)
IMAGE_FORMATS = ("png", "svg")
TEXT_FORMATS = ("dot", "mermaid")
EXTENSIONS = {"png": "png", "svg": "svg", "dot": "dot", "mermaid": "mmd"}


# ------------------------------------------------------------------ the views as data
@dataclass(frozen=True)
class DNode:
    """A node of a diagram: its id, label, icon and cluster."""

    id: str  # fixed graphviz node id and Mermaid id: [a-z0-9_]
    label: str
    icon: str  # a key of ICONS
    cluster: str = ""  # a DCluster id, or "" for the top level


@dataclass(frozen=True)
class DEdge:
    """An edge of a diagram: data, or control (dashed)."""

    src: str
    dst: str
    label: str = ""
    dashed: bool = False  # control (schedules, definitions) rather than data


@dataclass(frozen=True)
class DCluster:
    """A cluster of a diagram (nested in ``parent``)."""

    id: str
    label: str
    parent: str = ""


@dataclass(frozen=True)
class View:
    """One diagram: its clusters, nodes and edges, drawn by graphviz or written as Mermaid."""

    name: str  # file stem: "dataflow" | "deployment"
    title: str
    clusters: tuple[DCluster, ...]
    nodes: tuple[DNode, ...]
    edges: tuple[DEdge, ...]


@dataclass
class _Builder:
    clusters: list[DCluster] = field(default_factory=list)
    nodes: list[DNode] = field(default_factory=list)
    edges: list[DEdge] = field(default_factory=list)

    def cluster(self, cid: str, label: str, parent: str = "") -> str:
        self.clusters.append(DCluster(cid, label, parent))
        return cid

    def node(self, nid: str, label: str, icon: str, cluster: str = "") -> str:
        if icon not in ICONS:
            raise KeyError(icon)
        self.nodes.append(DNode(nid, label, icon, cluster))
        return nid

    def edge(self, src: str, dst: str, label: str = "", *, dashed: bool = False) -> None:
        self.edges.append(DEdge(src, dst, label, dashed))

    def view(self, name: str, title: str) -> View:
        ids = [n.id for n in self.nodes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate node ids in {name}: {ids}")
        known = set(ids)
        for e in self.edges:
            if e.src not in known or e.dst not in known:
                raise ValueError(f"edge {e.src} -> {e.dst} in {name} names an unknown node")
        return View(name, title, tuple(self.clusters), tuple(self.nodes), tuple(self.edges))


# icon key -> "module.Class" of the diagrams package, or "archgen:<name>" for generator/icons/<name>.png
ICONS = {
    "airflow": "onprem.workflow.Airflow",
    "bigquery": "gcp.analytics.Bigquery",
    "client": "onprem.client.Client",
    "cron": "archgen:cron",
    "cronjob": "k8s.compute.Cronjob",
    "deploy": "k8s.compute.Deploy",
    "docker": "onprem.container.Docker",
    "duckdb": "onprem.database.Duckdb",
    "feast": "archgen:feast",
    "files": "generic.storage.Storage",
    "hpa": "k8s.clusterconfig.HPA",
    "k8s_node": "k8s.infra.Node",
    "kafka": "onprem.queue.Kafka",
    "model": "archgen:model",
    "postgres": "onprem.database.Postgresql",
    "pvc": "k8s.storage.PVC",
    "python": "programming.language.Python",
    "rabbitmq": "onprem.queue.Rabbitmq",
    "redis": "onprem.inmemory.Redis",
    "redshift": "aws.database.Redshift",
    "server": "onprem.compute.Server",
    "service": "k8s.network.SVC",
    "snowflake": "saas.analytics.Snowflake",
    "spark": "onprem.analytics.Spark",
    "sqlite": "archgen:sqlite",
    "triton": "archgen:triton",
    "users": "onprem.client.Users",
    "workflow": "archgen:workflow",
}
_STORE_ICONS = {"file": "files", "files": "files"}  # everything else is named as its icon key
_SCHEDULER_ICONS = {
    "crontab": "cron",
    "airflow": "airflow",
    "prefect": "workflow",
    "dagster": "workflow",
    "kubernetes_cronjob": "cronjob",
}
_BROKER_ICONS = {"kafka": "kafka", "rabbitmq": "rabbitmq", "redis": "redis"}
_RUNTIME_LABELS = {
    "triton": "Triton Inference Server",
    "python_rest": "Python REST service",
    "batch_scoring": "batch scoring job",
    "async_worker": "async worker",
    "embedded": "embedded library",
}


def _store_icon(kind: str) -> str:
    return _STORE_ICONS.get(kind, kind if kind in ICONS else "files")


def _scheduler_label(arch: Architecture) -> str:
    return arch.training.scheduler.replace("_", " ")


def views(arch: Architecture) -> list[View]:
    """The diagrams of an architecture: data flow and deployment."""
    return [dataflow_view(arch), deployment_view(arch)]


def dataflow_view(arch: Architecture) -> View:
    """Sources -> offline store -> materialization -> online store -> serving -> clients; training; scheduler."""
    tr = arch.training
    b = _Builder()
    batch_sources = _source_nodes(arch, b)
    scheduled = tr.scheduler != "none" and (arch.feature_store is not None or tr.mode == "scheduled")
    if scheduled:
        b.node("scheduler", f"scheduler\n{_scheduler_label(arch)}", _SCHEDULER_ICONS[tr.scheduler])
    _feast_nodes(arch, b, batch_sources, scheduled)
    _training_nodes(arch, b, scheduled)
    if arch.serving.runtime == "batch_scoring":
        _batch_scoring_flow(arch, b, scheduled)
    elif arch.serving.runtime == "embedded":
        _embedded_flow(arch, b, scheduled)
    else:
        _serving_nodes(arch, b)
    return b.view("dataflow", f"{arch.spec.project.name}: data flow")


def _source_nodes(arch: Architecture, b: _Builder) -> list[str]:
    """The data sources, in their cluster; the ids of the batch ones (files and tables)."""
    spec = arch.spec
    batch_sources: list[str] = []
    if spec.sources:
        b.cluster("c_sources", "data sources (data engineering)")
    for s in spec.sources:
        nid = f"src_{s.name}"
        if s.kind == "file":
            b.node(nid, f"{s.name}\nparquet file", "files", "c_sources")
            batch_sources.append(nid)
        elif s.kind == "table":
            b.node(nid, f"{s.name}\ntable", _store_icon(spec.existing.warehouse), "c_sources")
            batch_sources.append(nid)
        elif s.kind == "stream":
            b.node(nid, f"{s.name}\nstream", _BROKER_ICONS.get(spec.existing.broker, "kafka"), "c_sources")
        else:
            b.node(nid, f"{s.name}\nrequest data", "client", "c_sources")
    return batch_sources


def _feast_nodes(arch: Architecture, b: _Builder, batch_sources: list[str], scheduled: bool) -> None:
    """The feature store: stores, registry and materialization, fed by the sources."""
    fs = arch.feature_store
    if fs is None:
        return
    b.cluster("c_feast", f"Feast feature store: {fs.project}")
    b.node("offline_store", f"offline store\n{fs.offline_store}", _store_icon(fs.offline_store), "c_feast")
    b.node("registry", f"registry\n{fs.registry}", "feast", "c_feast")
    online, cron = fs.online_store, fs.materialization_cron  # batch scoring: neither
    if online is not None and cron is not None:
        b.node("materialize", f"materialize\n{cron}", "feast", "c_feast")
        b.node("online_store", f"online store\n{online}", _store_icon(online), "c_feast")
    for s in arch.spec.sources:
        nid = f"src_{s.name}"
        if nid in batch_sources:
            b.edge(nid, "offline_store", "events")
        elif s.kind == "stream" and "push" in fs.ingestion and online is not None and cron is not None:
            b.edge(nid, "online_store", "push")
    if online is None or cron is None:
        return
    b.edge("offline_store", "materialize", "latest values")
    b.edge("materialize", "online_store")
    b.edge("registry", "materialize", "definitions", dashed=True)
    if scheduled:
        b.edge("scheduler", "materialize", cron, dashed=True)


def _training_nodes(arch: Architecture, b: _Builder, scheduled: bool) -> None:
    """Training: from historical features (or a broker's events) to a new version in the model repository."""
    tr = arch.training
    b.cluster("c_training", "training (data science)")
    b.node("train", f"training/train.py\n{tr.mode}", "python", "c_training")
    b.node("model_repo", "model repository", "files", "c_training")
    if arch.feature_store is not None and tr.trained_models:
        b.edge("offline_store", "train", "historical features")
    if tr.mode == "online" and tr.consumer_broker:
        b.node("train_events", f"events\n{tr.consumer_broker}", _BROKER_ICONS.get(tr.consumer_broker, "kafka"))
        b.edge("train_events", "train", "consume")
    gate = f"if {tr.quality_gate.metric} >= {tr.quality_gate.threshold}" if tr.quality_gate else "new version"
    b.edge("train", "model_repo", gate)
    if scheduled and tr.mode == "scheduled":
        b.edge("scheduler", "train", tr.schedule_cron or "", dashed=True)


def _serving_nodes(arch: Architecture, b: _Builder) -> None:
    """Serving: the runtime and its models, and how a client's request reaches them with its features."""
    spec, fs, sv = arch.spec, arch.feature_store, arch.serving
    b.cluster("c_serving", "serving")
    runtime_icon = "triton" if sv.runtime == "triton" else "python"
    b.node("serving", f"{_RUNTIME_LABELS[sv.runtime]}\n{sv.wire}", runtime_icon, "c_serving")
    for m in sv.models:
        b.node(f"model_{m.name}", f"{m.name}\n{m.framework}", "model", "c_serving")
    b.edge("model_repo", "serving", "loads")
    _model_edges(arch, b)
    b.node("clients", "clients", "users")
    requests = [f"src_{s.name}" for s in spec.sources if s.kind == "request"]
    if sv.runtime == "python_rest":  # the REST service reads the features and predicts in process
        b.edge("clients", "serving", sv.wire)
        if fs is not None:
            b.edge("online_store", "serving", "online features")
            b.edge("registry", "serving", "definitions", dashed=True)
            for src in requests:
                b.edge(src, "serving", "request values")
    elif fs is not None:
        b.node("client_lib", "serving/client.py\nfeatures + inference", "python", "c_serving")
        b.edge("clients", "client_lib", "request")
        b.edge("online_store", "client_lib", "online features")
        b.edge("registry", "client_lib", "definitions", dashed=True)
        b.edge("client_lib", "serving", sv.wire)
        for src in requests:
            b.edge(src, "client_lib", "request values")
    else:
        b.edge("clients", "serving", sv.wire)


def _score_store(arch: Architecture) -> tuple[str, str, str]:
    """(node label, icon, what the runtime writes there) of the batch scores: a warehouse table or parquet runs."""
    from ..plan.batch import score_store

    table, target = score_store(arch)
    if target == "postgres":
        return f"scores\ntable {table}", "postgres", "scores, one run at a time"
    if target == "spark":
        return f"scores\nlake scores/{table}/run_id=.../", _store_icon("spark"), "a partition per run, by Spark"
    if target != "parquet":
        return f"scores\n{target} table {table}", _store_icon(target), "scores, one run at a time"
    return f"scores\nscores/{table}/run_id=.../", "files", "a parquet partition per run"


def _batch_scoring_flow(arch: Architecture, b: _Builder, scheduled: bool) -> None:
    """Batch: a scheduled job scores the population with point-in-time features from the offline store and the
    gated model, in process, into the warehouse; the business reads the scores there. No server, no online store.
    """
    fs, sv = arch.feature_store, arch.serving
    b.cluster("c_serving", "batch scoring (no server: nobody calls the model)")
    b.node("serving", f"{_RUNTIME_LABELS[sv.runtime]}\nbatch/score.py, in process", "python", "c_serving")
    for m in sv.models:
        b.node(f"model_{m.name}", f"{m.name}\n{m.framework}", "model", "c_serving")
    b.edge("model_repo", "serving", "newest gated version")
    _model_edges(arch, b, "loads in process")
    if fs is not None:
        b.edge("offline_store", "serving", "point-in-time features as of the run")
        b.edge("registry", "train", "definitions", dashed=True)
    label, icon, what = _score_store(arch)
    b.node("scores", label, icon)
    b.edge("serving", "scores", what)
    b.node("clients", "business applications", "users")
    b.edge("scores", "clients", "read the scores")
    if scheduled:
        b.edge("train", "serving", "then, if the gate passed", dashed=True)


def _embedded_flow(arch: Architecture, b: _Builder, scheduled: bool) -> None:
    """Embedded: bundles (gated model + a snapshot of the online features + manifest) are built centrally and
    installed on the device, where the application calls the library in process. No server.
    """
    fs, sv, project = arch.feature_store, arch.serving, arch.spec.project.name
    if not arch.spec.serving.models[0].feature_service:  # a model that reads no features: the package alone
        b.cluster("c_serving", "in the application (no server, no network)")
        b.node("serving", f"{_RUNTIME_LABELS[sv.runtime]}\n{project}.predict(), in process", "python", "c_serving")
        for m in sv.models:
            b.node(f"model_{m.name}", f"{m.name}\n{m.framework}", "model", "c_serving")
        _model_edges(arch, b, "calls in process")
        b.node("clients", "the application", "users")
        b.edge("clients", "serving", "predict(inputs)")
        return
    b.node("bundle_build", "scripts/build_bundle.py\nbundle (make bundle)", "python", "c_training")
    b.edge("model_repo", "bundle_build", "newest gated version")
    if fs is not None:
        b.edge("online_store", "bundle_build", "feature snapshot")
    if scheduled:
        b.edge("scheduler", "bundle_build", "after materialization", dashed=True)
    b.cluster("c_serving", "on the device (no server, no network)")
    b.node("bundle", "bundle\nmodel, features.sqlite, manifest", "files", "c_serving")
    b.node("serving", f"{_RUNTIME_LABELS[sv.runtime]}\n{project}.predict(), in process", "python", "c_serving")
    for m in sv.models:
        b.node(f"model_{m.name}", f"{m.name}\n{m.framework}", "model", "c_serving")
    b.edge("bundle_build", "bundle", "installed atomically, checksums verified")
    b.edge("bundle", "serving", "model and features")
    _model_edges(arch, b, "loads in process")
    b.node("clients", "the application", "users")
    b.edge("clients", "serving", "predict(...)")


def _model_edges(arch: Architecture, b: _Builder, entry_label: str = "entrypoint") -> None:
    sv = arch.serving
    entry = sv.entrypoint
    by_name = {m.name: m for m in sv.models}
    b.edge("serving", f"model_{entry}", entry_label)
    pipe = by_name.get(entry)
    if pipe is not None and pipe.steps:
        if pipe.kind == "ensemble":
            for a, c in zip(pipe.steps, pipe.steps[1:], strict=False):
                b.edge(f"model_{a}", f"model_{c}")
            b.edge(f"model_{entry}", f"model_{pipe.steps[0]}", "ensemble")
        else:
            for step in pipe.steps:
                b.edge(f"model_{entry}", f"model_{step}", "calls", dashed=True)


def deployment_view(arch: Architecture) -> View:
    """What runs where: one machine (docker compose) or Kubernetes; the device for an embedded system."""
    if arch.serving.runtime == "embedded":
        return _embedded_view(arch)
    if arch.serving.runtime == "batch_scoring":
        return _batch_view(arch)
    if arch.deployment.target == "kubernetes":
        return _kubernetes_view(arch)
    return _one_machine_view(arch)


_CLOUD_WAREHOUSES = ("bigquery", "snowflake", "redshift")


def _shared_stores(
    arch: Architecture, b: _Builder, cluster: str, *, stateful_label: str, online: bool = True, scores: bool = False
) -> dict[str, str]:
    """Nodes for the stores; returns role -> node id (several roles may share one PostgreSQL).

    Without `online` (batch scoring reads only the offline store) no online store is drawn; with `scores` the
    batch scores are a table of the PostgreSQL warehouse (role "scores").
    """
    fs = arch.feature_store
    roles: dict[str, str] = {}
    if fs is None:
        return roles
    if fs.offline_store in _CLOUD_WAREHOUSES:
        b.cluster("c_cloud", "managed warehouse")
        roles["offline"] = b.node("offline_store", f"offline store\n{fs.offline_store}", fs.offline_store, "c_cloud")
    elif fs.offline_store == "postgres":
        roles["offline"] = "postgres"
    else:
        label = "parquet files" if fs.offline_store == "file" else fs.offline_store
        icon = _store_icon(fs.offline_store)
        roles["offline"] = b.node("offline_store", f"offline store\n{label}", icon, cluster)
    if not online:
        pass
    elif fs.online_store == "sqlite":
        roles["online"] = b.node("online_store", "online store\nsqlite file", "sqlite", cluster)
    elif fs.online_store == "redis":
        roles["online"] = b.node("online_store", f"redis\n{stateful_label}", "redis", cluster)
    else:
        roles["online"] = "postgres"
    roles["registry"] = "postgres" if fs.registry == "sql" else b.node("registry", "registry\nfile", "feast", cluster)
    if scores:
        roles["scores"] = "postgres"
    uses = [role for role in ("offline", "online", "registry", "scores") if roles.get(role) == "postgres"]
    if uses:
        b.node("postgres", "postgresql\n" + ", ".join(uses), "postgres", cluster)
    return roles


def _one_machine_view(arch: Architecture) -> View:
    fs, tr = arch.feature_store, arch.training
    b = _Builder()
    host = b.cluster("c_host", f"one machine ({arch.deployment.platform}): deploy/docker-compose.yaml")
    rest = arch.serving.runtime == "python_rest"
    if rest:
        server = b.node("rest_app", "rest-app container\nserving/rest_app.py", "python", host)
    else:
        server = b.node(
            "triton", "tritonserver\ncontainer", "triton" if arch.serving.runtime == "triton" else "python", host
        )
    b.node("model_repo", "model_repository/\nvolume", "files", host)
    b.edge("model_repo", server, "loads")
    roles = _shared_stores(arch, b, host, stateful_label="container")
    b.node("jobs", "feast apply, materialize,\ntraining (python)", "python", host)
    if tr.scheduler != "none":
        b.node("scheduler", f"scheduler\n{_scheduler_label(arch)}", _SCHEDULER_ICONS[tr.scheduler], host)
        b.edge("scheduler", "jobs", "runs", dashed=True)
    if fs is not None:
        b.edge("jobs", roles["online"], "writes features")
        b.edge(roles["offline"], "jobs", "reads")
        if roles["registry"] != roles["online"]:
            b.edge("jobs", roles["registry"], "apply", dashed=True)
    b.edge("jobs", "model_repo", "exports model")
    b.node("clients", "clients", "users")
    if rest:
        b.edge("clients", server, arch.serving.wire)
        if fs is not None:
            b.edge(roles["online"], server, "online features")
        return b.view("deployment", f"{arch.spec.project.name}: deployment (one machine)")
    b.node("client_lib", "serving/client.py", "python", host)
    b.edge("clients", "client_lib", "request")
    b.edge("client_lib", "triton", arch.serving.protocol or "http")
    if fs is not None:
        b.edge(roles["online"], "client_lib", "online features")
    return b.view("deployment", f"{arch.spec.project.name}: deployment (one machine)")


def _kubernetes_view(arch: Architecture) -> View:
    fs, tr = arch.feature_store, arch.training
    b = _Builder()
    k8s = b.cluster("c_k8s", f"Kubernetes ({arch.deployment.platform}): deploy/k8s/")
    rest = arch.serving.runtime == "python_rest"
    if rest:
        b.node("svc", "rest-app\nService", "service", k8s)
        server = b.node("rest_app", "rest-app Deployment\nserving/rest_app.py", "deploy", k8s)
    else:
        b.node("svc", "triton\nService", "service", k8s)
        server = b.node(
            "triton", "tritonserver\nDeployment", "triton" if arch.serving.runtime == "triton" else "deploy", k8s
        )
    b.node("hpa", "autoscaler\nHPA", "hpa", k8s)
    b.node("model_repo", "model repository\nPVC", "pvc", k8s)
    b.edge("svc", server)
    b.edge("hpa", server, "scales", dashed=True)
    b.edge("model_repo", server, "loads")
    if arch.deployment.gpu_nodes:
        b.node("gpu_nodes", "GPU nodes", "k8s_node", k8s)
        if not rest:  # the REST service runs on CPUs: the GPUs are training's
            b.edge(server, "gpu_nodes", "scheduled on", dashed=True)
    roles = _shared_stores(arch, b, k8s, stateful_label="StatefulSet")
    if tr.scheduler == "kubernetes_cronjob":
        jobs_icon, jobs_label = "cronjob", "materialize, train\nCronJobs"
    else:
        jobs_icon, jobs_label = "python", "materialize, train\njobs"
    b.node("jobs", jobs_label, jobs_icon, k8s)
    if tr.scheduler not in ("none", "kubernetes_cronjob"):
        b.node("scheduler", f"scheduler\n{_scheduler_label(arch)}", _SCHEDULER_ICONS[tr.scheduler])
        b.edge("scheduler", "jobs", "runs", dashed=True)
    if fs is not None:
        b.edge(roles["offline"], "jobs", "reads")
        b.edge("jobs", roles["online"], "writes features")
    b.edge("jobs", "model_repo", "exports model")
    if rest and arch.deployment.gpu_nodes:
        b.edge("jobs", "gpu_nodes", "scheduled on", dashed=True)
    b.node("clients", "clients\n(serving/client.py)", "users")
    b.edge("clients", "svc", arch.serving.wire)
    if fs is not None:
        b.edge(roles["online"], server if rest else "clients", "online features")
    return b.view("deployment", f"{arch.spec.project.name}: deployment (Kubernetes)")


def _batch_view(arch: Architecture) -> View:
    """Batch scoring: scheduled jobs (train, then score) and the warehouse; no server, Service or autoscaler."""
    fs, tr = arch.feature_store, arch.training
    b = _Builder()
    k8s = arch.deployment.target == "kubernetes"
    if k8s:
        where = b.cluster("c_k8s", f"Kubernetes ({arch.deployment.platform}): deploy/k8s/, pipelines/")
        b.node("model_repo", "model repository\nPVC", "pvc", where)
        if tr.scheduler == "kubernetes_cronjob":
            jobs = b.node("jobs", "train, then score\nCronJob (training as init container)", "cronjob", where)
        else:
            jobs = b.node("jobs", "train, then score\npods of the app image", "python", where)
    else:
        where = b.cluster("c_host", f"one machine ({arch.deployment.platform}): jobs only, no server")
        b.node("model_repo", "model_repository/", "files", where)
        jobs = b.node("jobs", "training/train.py, then\nbatch/score.py (python)", "python", where)
    if tr.scheduler not in ("none", "kubernetes_cronjob"):
        b.node("scheduler", f"scheduler\n{_scheduler_label(arch)}", _SCHEDULER_ICONS[tr.scheduler])
        b.edge("scheduler", jobs, "runs", dashed=True)
    label, icon, what = _score_store(arch)
    in_warehouse = icon == "postgres" and fs is not None and fs.offline_store == "postgres"
    stateful = "StatefulSet" if k8s else "container"
    roles = _shared_stores(arch, b, where, stateful_label=stateful, online=False, scores=in_warehouse)
    if fs is not None:
        b.edge(roles["offline"], jobs, "point-in-time features")
    b.edge(jobs, "model_repo", "exports, then loads the gated model")
    scores = roles["scores"] if in_warehouse else b.node("scores", label, icon, where)
    b.edge(jobs, scores, what)
    b.node("clients", "business applications", "users")
    b.edge(scores, "clients", "read the scores")
    kind = "Kubernetes" if k8s else "one machine"
    return b.view("deployment", f"{arch.spec.project.name}: deployment ({kind}, batch)")


def _embedded_view(arch: Architecture) -> View:
    """Embedded: central jobs build bundles; each device runs the application with the library and its bundles."""
    fs, tr, project = arch.feature_store, arch.training, arch.spec.project.name
    b = _Builder()
    if not arch.spec.serving.models[0].feature_service:  # a model that reads no features: the wheel is all
        central = b.cluster("c_central", "central: the build")
        b.node("wheel", f"dist/{project}-*.whl\n(make package)", "files", central)
        device = b.cluster("c_device", "each device: no server, no network at prediction time")
        b.node("app", f"the application\n+ the {project} package", "python", device)
        b.edge("wheel", "app", "pip install")
        return b.view("deployment", f"{project}: deployment (embedded)")
    central = b.cluster("c_central", "central: scheduled jobs")
    roles = _shared_stores(arch, b, central, stateful_label="container")
    b.node("jobs", "feast apply, materialize,\ntraining, bundle build (python)", "python", central)
    b.node("model_repo", "model_repository/", "files", central)
    b.node("bundles", "dist/bundles/\nversioned bundles", "files", central)
    if tr.scheduler != "none":
        b.node("scheduler", f"scheduler\n{_scheduler_label(arch)}", _SCHEDULER_ICONS[tr.scheduler], central)
        b.edge("scheduler", "jobs", "runs", dashed=True)
    if fs is not None:
        b.edge(roles["offline"], "jobs", "reads")
        b.edge("jobs", roles["online"], "writes features")
        b.edge(roles["online"], "jobs", "snapshot", dashed=True)
    b.edge("jobs", "model_repo", "exports model")
    b.edge("jobs", "bundles", "builds")
    device = b.cluster("c_device", "each device: no server, no network at prediction time")
    b.node("device_bundles", "installed bundles\n(last good kept)", "files", device)
    b.node("app", f"the application\n+ the {project} package", "python", device)
    b.edge("bundles", "device_bundles", "install, verify checksums")
    b.edge("device_bundles", "app", "model and features")
    return b.view("deployment", f"{project}: deployment (embedded)")


# ------------------------------------------------------------------ Mermaid
def _mermaid_text(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", "<br/>") + '"'


def to_mermaid(view: View) -> str:
    """A diagram as Mermaid text (renders on any git host)."""
    lines = ["flowchart LR"]
    children: dict[str, list[DCluster]] = {}
    for c in view.clusters:
        children.setdefault(c.parent, []).append(c)

    def emit(cluster: str, indent: str) -> None:
        for c in children.get(cluster, []):
            lines.append(f"{indent}subgraph {c.id}[{_mermaid_text(c.label)}]")
            emit(c.id, indent + "  ")
            lines.append(f"{indent}end")
        for n in view.nodes:
            if n.cluster == cluster:
                lines.append(f"{indent}{n.id}[{_mermaid_text(n.label)}]")

    emit("", "  ")
    for e in view.edges:
        arrow = "-.->" if e.dashed else "-->"
        label = f"|{_mermaid_text(e.label)}|" if e.label else ""
        lines.append(f"  {e.src} {arrow}{label} {e.dst}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ graphviz via diagrams
def icon_dirs() -> tuple[Path, Path]:
    """The diagrams package's icon folder and archgen's own."""
    import diagrams

    from ..icons import HERE

    return Path(diagrams.__file__).resolve().parent.parent / "resources", HERE


def _node_class(icon: str) -> type:
    import importlib

    module, _, cls = ICONS[icon].rpartition(".")
    return getattr(importlib.import_module(f"diagrams.{module}"), cls)


def _dot_source(view: View) -> str:
    """DOT text as graphviz needs it: icon paths absolute (never written out as is)."""
    import diagrams
    from diagrams.custom import Custom

    from ..icons import icon_path

    d = diagrams.Diagram(
        view.title,
        filename=view.name,
        show=False,
        direction="LR",
        graph_attr={"pad": "0.4", "splines": "spline", "nodesep": "0.5", "ranksep": "0.9", "fontsize": "18"},
    )
    diagrams.setdiagram(d)
    try:
        by_cluster: dict[str, list[DNode]] = {}
        for n in view.nodes:
            by_cluster.setdefault(n.cluster, []).append(n)
        children: dict[str, list[DCluster]] = {}
        for c in view.clusters:
            children.setdefault(c.parent, []).append(c)
        made: dict[str, object] = {}

        def make_nodes(cluster: str) -> None:
            for n in by_cluster.get(cluster, []):
                target = ICONS[n.icon]
                longest = max(len(part) for part in n.label.split("\n"))
                size = {"width": f"{max(1.4, 0.1 * longest):.1f}"}
                if target.startswith("archgen:"):
                    path = str(icon_path(target.removeprefix("archgen:")))
                    made[n.id] = Custom(n.label, path, nodeid=n.id, **size)
                else:
                    made[n.id] = _node_class(n.icon)(n.label, nodeid=n.id, **size)

        def make_cluster(c: DCluster) -> None:
            with diagrams.Cluster(c.label) as cl:
                cl.name = cl.dot.name = f"cluster_{c.id}"
                for child in children.get(c.id, []):
                    make_cluster(child)
                make_nodes(c.id)

        for c in children.get("", []):
            make_cluster(c)
        make_nodes("")
        for e in view.edges:
            edge = diagrams.Edge(label=e.label, style="dashed" if e.dashed else "")
            made[e.src] >> edge >> made[e.dst]
        return str(d.dot.source)
    finally:
        diagrams.setdiagram(None)


def to_dot(view: View, *, origin: str = "") -> str:
    """Portable DOT: icon paths relative to the icon folders (see the header), byte-stable."""
    source = _dot_source(view)
    resources, own = icon_dirs()
    source = source.replace(f'"{resources}/', '"').replace(f'"{own}/', '"')
    header = [
        f"// {view.title}: generated by archgen{f' from {origin}' if origin else ''}; do not edit.",
        "// Icon paths are relative: render with",
        '//   dot -Gimagepath="<site-packages>/resources:<site-packages>/generator/icons" -Tsvg',
    ]
    return "\n".join(header) + "\n" + source


_PROBE = b"digraph probe { a -> b }\n"
_probed: dict[str, bool] = {}


def dot_available() -> bool:
    """Whether graphviz ``dot`` is on PATH *and* draws (a probe graph, with a timeout; once per binary).

    A ``dot`` that fails (no layout plugins registered) or hangs counts as missing, so the drawings are
    skipped with a warning instead of failing the command.
    """
    path = shutil.which("dot")
    if path is None:
        return False
    if path not in _probed:
        from ..tools import run_tool, tool_timeout

        try:
            result = run_tool([path, "-Tsvg"], _PROBE, timeout=min(tool_timeout(), 20.0))
            _probed[path] = result.ok and b"<svg" in result.stdout
        except OSError:
            _probed[path] = False
    return _probed[path]


def skipped_note() -> str | None:
    """What `archgen new` skips on every machine: the drawings (the repository must not depend on graphviz).

    Graphviz is never run here: ``new`` and ``update`` start no program, and what they write and print is the
    same whether ``dot`` draws, fails, hangs or is missing (only the install hint follows PATH).
    """
    note = (
        "skipped docs/diagrams/*.png and *.svg: the repository holds the DOT and Mermaid diagrams on every machine "
        "(docs show the Mermaid ones); draw them with `archgen diagram .archgen/spec.yaml -o docs/diagrams`"
    )
    if shutil.which("dot") is not None:
        return note
    return f"{note}, which needs graphviz: {INSTALL_HINT}"


_VERSION_COMMENT = re.compile(r"<!-- Generated by graphviz version [^>]*-->\n")
_HREF = re.compile(r'xlink:href="([^"]+\.png)"')


class _Piped:
    """`dot` output by (source, format): the last 16 kept, and each drawn once even when threads ask together."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.done: dict[tuple[str, str], bytes] = {}
        self.pending: dict[tuple[str, str], threading.Lock] = {}

    def __call__(self, source: str, fmt: str) -> bytes:
        key = (source, fmt)
        with self.lock:
            if key in self.done:
                return self.done[key]
            drawing = self.pending.setdefault(key, threading.Lock())
        with drawing:  # a second caller waits for the first one's drawing
            with self.lock:
                if key in self.done:
                    return self.done[key]
            out = _draw(source, fmt)
            with self.lock:
                self.done[key] = out
                self.pending.pop(key, None)
                while len(self.done) > self.size:
                    del self.done[next(iter(self.done))]
            return out

    def cache_clear(self) -> None:
        with self.lock:
            self.done.clear()


def _draw(source: str, fmt: str) -> bytes:
    from ..tools import run_tool

    dot = shutil.which("dot")
    if dot is None or not dot_available():
        raise ArchgenError("graphviz `dot` is not on PATH or does not draw", exit_code=DEPENDENCY, hint=INSTALL_HINT)
    try:
        result = run_tool([dot, "-Kdot", f"-T{fmt}"], source.encode("utf-8"))
    except OSError as exc:
        raise ArchgenError(f"graphviz `dot` cannot be started: {exc.strerror}", exit_code=DEPENDENCY) from None
    if not result.ok:
        raise ArchgenError(f"graphviz `dot` failed: {result.reason()}", exit_code=DEPENDENCY, hint=INSTALL_HINT)
    out = result.stdout
    if fmt == "svg":  # self-contained and free of the graphviz version
        out = _inline_images(_VERSION_COMMENT.sub("", out.decode("utf-8"))).encode("utf-8")
    return out


_pipe = _Piped()


def _inline_images(svg: str) -> str:
    def data_uri(match: re.Match[str]) -> str:
        path = Path(match.group(1))
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'xlink:href="data:image/png;base64,{encoded}"'

    return _HREF.sub(data_uri, svg)


def render(view: View, fmt: str) -> bytes:
    """PNG or SVG bytes of a view (needs `dot`); the SVG is self-contained (icons as data URIs)."""
    if fmt not in IMAGE_FORMATS:
        raise ValueError(fmt)
    return _pipe(_dot_source(view), fmt)


def produce(view: View, fmt: str, *, origin: str = "") -> bytes:
    """The bytes of one diagram file in any format (png, svg, dot, mermaid)."""
    if fmt == "mermaid":
        return to_mermaid(view).encode("utf-8")
    if fmt == "dot":
        return to_dot(view, origin=origin).encode("utf-8")
    return render(view, fmt)
