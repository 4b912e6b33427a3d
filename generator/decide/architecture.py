"""The decided architecture: components plus the decisions (and findings) that shaped them.

Produced by :func:`generator.decide.decide` from a validated spec; read by the plan stage,
diagrams, docs and checks. Frozen: nothing downstream re-decides.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from requirements_spec.models import MinQuality, Spec


class ArchModel(BaseModel):
    """The base of the architecture's models: frozen, and no field that is not declared."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Requirement(ArchModel):
    """A spec value a decision read: its dotted path, line and the value itself."""

    path: str
    line: int = 0  # 0: not written in the spec file (a default)
    value: object = None
    column: int = 0


class Alternative(ArchModel):
    """A choice a decision turned down, and why."""

    choice: str
    reason: str


class Decision(ArchModel):
    """One decided key: the choice, the rule that made it, the requirements it read, why, and what it rejected."""

    key: str  # e.g. "online_store"
    choice: str  # e.g. "redis"
    rule: str  # the rule that made it
    requirements: list[Requirement]
    rationale: str
    alternatives: list[Alternative] = Field(default_factory=list)


class NotApplicable(ArchModel):
    """A decision key that does not apply to this system: not made, listed by `archgen plan` with the reason."""

    key: str
    rule: str
    reason: str


class Waived(ArchModel):
    """A spec's waiver of a warning: the justification, who accepted it, and its line in the spec."""

    justification: str
    accepted_by: str | None = None
    line: int = 0


class Finding(ArchModel):
    """A conflict or infeasibility: errors stop generation, warnings are shown and recorded."""

    code: str  # e.g. "airgap.cloud_warehouse"
    severity: Literal["error", "warning"]
    message: str
    requirements: list[Requirement]
    fix: str
    waiver: Waived | None = None


#: the field a personal field is written and served as, by privacy.pii_handling: `<field><suffix>`
PII_SUFFIX: dict[str, str] = {"hash": "_sha256", "encrypt": "_encrypted"}

#: runtimes whose model calls a Triton server answers. Batch scoring and the embedded runtime still run the
#: model in a local Triton until their in-process forms replace it; change this one tuple when they do.
TRITON_RUNTIMES: tuple[str, ...] = ("triton", "async_worker")


# ------------------------------------------------------------------ components
class FeatureStoreArch(ArchModel):
    """The Feast feature store as decided: stores, registry, ingestion, materialization and the pii handling."""

    project: str
    # None: nothing reads features online (batch scoring reads the offline store); Feast keeps its default
    # local SQLite configuration, never written
    online_store: Literal["sqlite", "redis", "postgres"] | None
    offline_store: Literal["file", "duckdb", "postgres", "bigquery", "snowflake", "redshift", "spark"]
    registry: Literal["file", "sql"]
    ingestion: Literal["batch", "push", "batch+push"]
    materialization_cron: str | None  # 5-field cron: at most the freshness interval; None: nothing is materialized
    materialization_interval_s: int | None
    # PII: "view.field" references per handling
    dropped_fields: list[str] = Field(default_factory=list)
    hashed_fields: list[str] = Field(default_factory=list)
    encrypted_fields: list[str] = Field(default_factory=list)
    allowed_pii_fields: list[str] = Field(default_factory=list)
    on_demand_views: list[str] = Field(default_factory=list)  # the spec's request-time views, by name
    push_sources: list[str] = Field(default_factory=list)  # stream sources a push source is made for
    # where the rollups of views with aggregations are computed, and Feast's engine for materialization
    compute_engine: Literal["local", "spark", "postgres"] = "local"
    batch_engine: Literal["local", "spark.engine"] = "local"
    aggregated_views: list[str] = Field(default_factory=list)
    spark_conf: dict[str, str] = Field(default_factory=dict)  # the spark_settings decision, when Spark runs
    # a joined feature catalog (existing.feature_registry): its views are referred to, never applied from here
    catalog_views: list[str] = Field(default_factory=list)
    registry_path: str | None = None  # a joined file registry's path; None: SQL ($FEAST_REGISTRY_URL) or our own


class TrainingArch(ArchModel):
    """Training as decided: mode, scheduler and schedule, resources, quality gate, trained models."""

    mode: Literal["scheduled", "online", "manual"]
    scheduler: Literal["none", "crontab", "airflow", "prefect", "dagster", "kubernetes_cronjob"]
    schedule_cron: str | None  # 5-field form
    accelerator: Literal["cpu", "gpu"]
    gpus: int
    cpus: float
    memory_gb: float
    quality_gate: MinQuality | None
    trained_models: list[str] = Field(default_factory=list)  # models trained from the feature store
    consumer_broker: str | None = None  # online training: the broker it consumes


class TensorArch(ArchModel):
    """A model's input or output tensor, with its Triton data type."""

    name: str
    dtype: str  # spec dtype: fp32, int64, string, ...
    triton_dtype: str  # TYPE_FP32, ...
    dims: list[int]
    per_object: bool = False  # one row per object found (crops, boxes): the leading -1 counts them
    pii: bool = False  # personal data: never logged


class TritonModelArch(ArchModel):
    """A model (or an ensemble or BLS pipeline) as Triton serves it: backend, tensors, batching, instances."""

    name: str
    kind: Literal["model", "ensemble", "bls"]
    framework: str  # sklearn | onnx | pytorch | tensorflow | python | ensemble | bls
    backend: str  # python | onnxruntime | pytorch | tensorflow | "" for ensembles (platform "ensemble")
    platform: str = ""
    inputs: list[TensorArch]
    outputs: list[TensorArch]
    max_batch_size: int
    dynamic_batching: bool
    preferred_batch_sizes: list[int] = Field(default_factory=list)
    max_queue_delay_us: int = 0
    instance_kind: Literal["KIND_CPU", "KIND_GPU", ""] = "KIND_CPU"
    instance_count: int = 1
    sequence_batching: bool = False
    steps: list[str] = Field(default_factory=list)  # ensemble / BLS: the models it calls, in order
    feature_service: str | None = None
    placeholder: bool = False  # no trained artefact can exist here yet: a shape-honouring stand-in
    runs_here_as_python: bool = False  # framework cannot run on this machine; served as python stand-in
    per_object: bool = False  # a pipeline step whose batch dimension is the objects of earlier steps


class ServingArch(ArchModel):
    """Serving as decided: the runtime, the protocol, the pipeline form, the models and the budget."""

    mode: Literal["online", "batch", "async", "embedded"]
    runtime: Literal["triton", "python_rest", "batch_scoring", "async_worker", "embedded"]
    protocol: Literal["rest", "grpc"] | None  # None: no caller reaches the model over a network (embedded, batch)
    pipeline_form: Literal["none", "ensemble", "bls"]
    entrypoint: str  # the Triton model a request goes to (pipeline or single model)
    models: list[TritonModelArch]
    latency_p99_ms: float
    throughput_rps: float

    @property
    def wire(self) -> str:
        """How callers reach the model, in words: the decided protocol, or in process."""
        return self.protocol or "in process"


class PrivacyArch(ArchModel):
    """Privacy as decided: pii handling, residency, retention and its purge, access permissions."""

    pii_handling: Literal["drop", "hash", "encrypt", "allow"]
    residency: str
    retention_s: int | None
    purge_cron: str | None
    permissions: list[tuple[str, list[str]]] = Field(default_factory=list)  # (role, actions)
    local_mirror: bool = False  # air-gapped / on-prem: images and packages from a local mirror
    pii_salt_env: str | None = None  # hash: the environment variable holding the salt
    pii_key_env: str | None = None  # encrypt: the environment variable holding the encryption key

    @property
    def decrypt_roles(self) -> list[str]:
        """Roles of privacy.access allowed to decrypt encrypted personal fields (granted read_pii)."""
        return [role for role, can in self.permissions if "read_pii" in can]


class DeploymentArch(ArchModel):
    """Where the system is deployed: docker-compose or Kubernetes, on which platform, with GPU nodes or not."""

    target: Literal["docker_compose", "kubernetes"]
    platform: str
    gpu_nodes: bool


class Architecture(ArchModel):
    """The decided architecture of a spec: its components, every decision, the keys that do not apply, the findings."""

    spec: Spec
    spec_file: str = "spec.yaml"
    feature_store: FeatureStoreArch | None
    training: TrainingArch
    serving: ServingArch
    privacy: PrivacyArch
    deployment: DeploymentArch
    mlops_level: int
    decisions: list[Decision]
    # the team's own files (the customization decision): generated once, never rewritten by `archgen update`
    seams: list[str] = Field(default_factory=list)
    not_applicable: list[NotApplicable] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)

    def decision(self, key: str) -> Decision:
        """The decision of ``key`` (KeyError when it was not made)."""
        for d in self.decisions:
            if d.key == key:
                return d
        raise KeyError(key)

    def decided(self, key: str) -> bool:
        """Whether a decision of ``key`` was made."""
        return any(d.key == key for d in self.decisions)

    # ------------------------------------------------------------ facts, defined once (plan and render read these)
    @property
    def triton_serves(self) -> bool:
        """A Triton server answers the model calls (model repository, Triton image and Deployment)."""
        return self.serving.runtime in TRITON_RUNTIMES

    @property
    def rest_app_serves(self) -> bool:
        """The thin Python REST service predicts in process (runtime python_rest)."""
        return self.serving.runtime == "python_rest"

    @property
    def callers_over_network(self) -> bool:
        """Callers reach the model over a wire protocol (so the ``protocol`` decision applies)."""
        return self.serving.protocol is not None

    @property
    def reads_online_features(self) -> bool:
        """Something reads online features per request (a model's feature service, served online or async)."""
        return (
            self.feature_store is not None
            and self.serving.mode in ("online", "async")
            and any(m.feature_service for m in self.spec.serving.models)
        )

    @property
    def feature_server_runs(self) -> bool:
        """A Feast feature server runs: only when something reads online features over the network.

        An embedded library and batch scoring read features in process; nothing calls a feature server.
        """
        return self.reads_online_features

    @property
    def uses_redis(self) -> bool:
        """The online store is Redis."""
        return self.feature_store is not None and self.feature_store.online_store == "redis"

    @property
    def uses_postgres(self) -> bool:
        """PostgreSQL holds the online store, the offline store or the registry."""
        fs = self.feature_store
        return fs is not None and (
            fs.online_store == "postgres" or fs.offline_store == "postgres" or fs.registry == "sql"
        )

    @property
    def uses_spark(self) -> bool:
        """Spark runs: the offline store, or the engine that computes the rollups."""
        fs = self.feature_store
        return fs is not None and (fs.offline_store == "spark" or fs.compute_engine == "spark")

    @property
    def training_scheduled(self) -> bool:
        """A scheduler runs training: scheduled trigger, a schedule, trained models, and MLOps level >= 1."""
        tr = self.training
        return self.mlops_level >= 1 and tr.mode == "scheduled" and bool(tr.schedule_cron) and bool(tr.trained_models)

    @property
    def errors(self) -> list[Finding]:
        """The findings that stop generation."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings shown and recorded (waived or not)."""
        return [f for f in self.findings if f.severity == "warning"]
