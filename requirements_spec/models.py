"""The spec language: frozen pydantic models of an ML system's requirements.

Every area of a requirements spec has a model here; unknown keys are errors
(``extra="forbid"``), values are never coerced from another type (``no`` is not ``False``,
``"5"`` is not ``5``), and names are safe as file names, Python identifiers, Feast and Triton
names. Cross-references between areas are checked by :mod:`requirements_spec.references`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from .types import (
    Cron,
    Duration,
    FiniteFloat,
    IndexUrl,
    Name,
    NotBool,
    Owner,
    Registry,
    RelativePath,
    TableName,
    TensorName,
    Text,
    Topic,
)

# bounded above too: a value like 1e308 is finite, but the arithmetic of later stages (ms to s, sizing) overflows
PositiveNumber = Annotated[StrictInt | FiniteFloat, Field(gt=0, le=1_000_000_000)]


class SpecModel(BaseModel):
    """The base of the spec's models: frozen, strict, and no field that is not declared."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=False)


# ------------------------------------------------------------------ project
class Owners(SpecModel):
    """Who owns what: data engineers run the feature store, data scientists ship models."""

    data_engineering: Owner = Field(description="Prepares features and keeps the feature store running.")
    data_science: Owner = Field(description="Consumes features, trains and ships models.")
    platform: Owner | None = Field(default=None, description="Runs serving and deployment (optional).")


class Project(SpecModel):
    """The system: its name, what it does, and who owns what."""

    name: Name = Field(description="System name: the Feast project, the package and the folder name.")
    description: Text = Field(default="", description="One or two sentences on what the system does.")
    owners: Owners


Warehouse = Literal["files", "postgres", "bigquery", "snowflake", "redshift", "spark"]
Orchestrator = Literal["none", "cron", "airflow", "prefect", "dagster", "kubernetes"]
Platform = Literal["local", "docker-compose", "kubernetes", "sagemaker", "openshift", "heroku"]
Broker = Literal["none", "kafka", "rabbitmq", "redis"]


class CatalogView(SpecModel):
    """A feature view of the shared catalog this system reads. The catalog owns it; the system refers to it."""

    name: Name
    entities: list[Name] = Field(min_length=1, description="Entities of this spec the view is keyed by.")
    fields: list[FeatureField] = Field(min_length=1, description="The fields of the view this system reads.")
    description: Text = ""


class FeatureRegistry(SpecModel):
    """An existing Feast registry to join: the company's feature catalog, shared by every system."""

    project: Name = Field(description="The catalog's Feast project: this system's views and services join it.")
    path: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[^\s$`]+$", strict=True)] | None = Field(
        default=None,
        description="A file registry (relative to the feature repo, or a gs:// or s3:// URI); without it the "
        "registry is SQL and its SQLAlchemy URL is the secret FEAST_REGISTRY_URL.",
    )
    views: list[CatalogView] = Field(min_length=1, description="The catalog's views this system reads.")


class Existing(SpecModel):
    """What the company already runs: reused before anything new is added."""

    warehouse: Warehouse = "files"
    orchestrator: Orchestrator = "none"
    platform: Platform = "local"
    broker: Broker = "none"
    ci: Literal["github", "gitlab"] = Field(
        default="github", description="The CI the level-2 pipeline runs on: GitHub Actions or GitLab CI."
    )
    feature_registry: FeatureRegistry | None = Field(
        default=None,
        description="A shared feature catalog to join instead of defining every view again: the system declares "
        "only its own views and services and refers to the catalog's views.",
    )
    image_registry: Registry | None = Field(
        default=None,
        description="The site's container registry, e.g. registry.plant.internal/ml: every base image comes from "
        "it, under its public path (nvidia/tritonserver, library/python, ...). Required when autonomy is air_gapped.",
    )
    package_mirror: IndexUrl | None = Field(
        default=None,
        description="The site's Python package index (a PEP 503 simple URL), e.g. https://pypi.plant.internal/simple: "
        "`make offline-bundle` downloads from it. Required when autonomy is air_gapped.",
    )


# ------------------------------------------------------------------ data
EntityDtype = Literal["int64", "int32", "string"]
FieldDtype = Literal["int32", "int64", "float32", "float64", "string", "bool", "bytes", "unix_timestamp"]


class Entity(SpecModel):
    """A business entity features are keyed by (a driver, a card): its name and join key."""

    name: Name
    join_key: Name
    dtype: EntityDtype = "int64"
    description: Text = ""


class FeatureField(SpecModel):
    """A field of a feature view, on-demand view or request source."""

    name: Name
    dtype: FieldDtype
    pii: StrictBool = Field(default=False, description="Personal data: handled by privacy.pii_handling.")
    description: Text = ""


EventsPerDay = Annotated[StrictInt, NotBool, Field(gt=0, le=1_000_000_000_000)]
EVENTS_PER_DAY_DOC = "How many rows arrive a day (optional): sizes the engine that aggregates them."


class FileSourceSpec(SpecModel):
    """A Parquet file source."""

    name: Name
    kind: Literal["file"]
    path: RelativePath = Field(description="Parquet file, relative to the feature repo.")
    timestamp_field: Name = "event_timestamp"
    created_timestamp_field: Name | None = None
    events_per_day: EventsPerDay | None = Field(default=None, description=EVENTS_PER_DAY_DOC)
    description: Text = ""


class TableSourceSpec(SpecModel):
    """A table of the warehouse."""

    name: Name
    kind: Literal["table"]
    table: TableName = Field(description="Table in the warehouse, optionally schema-qualified.")
    timestamp_field: Name = "event_timestamp"
    created_timestamp_field: Name | None = None
    events_per_day: EventsPerDay | None = Field(default=None, description=EVENTS_PER_DAY_DOC)
    description: Text = ""


class StreamSourceSpec(SpecModel):
    """A stream (a broker topic), backed by a batch source for history."""

    name: Name
    kind: Literal["stream"]
    topic: Topic = Field(description="Broker topic the events arrive on.")
    batch_source: Name = Field(description="The file or table source the stream lands in.")
    timestamp_field: Name = "event_timestamp"
    description: Text = ""


class RequestSourceSpec(SpecModel):
    """Values that exist only in the request, for on-demand views."""

    name: Name
    kind: Literal["request"]
    fields: list[FeatureField] = Field(min_length=1)
    description: Text = ""


Source = Annotated[
    FileSourceSpec | TableSourceSpec | StreamSourceSpec | RequestSourceSpec,
    Field(discriminator="kind"),
]

Granularity = Literal["hour", "day", "week", "month"]
AggregationFunction = Literal["sum", "count", "mean", "min", "max", "count_distinct"]
#: the period of each granularity, in seconds (a month is 30 days)
GRANULARITY_SECONDS = {"hour": 3600, "day": 86400, "week": 604800, "month": 2592000}
#: what each function gives for a column of each dtype (count and count_distinct: any column)
NUMERIC_DTYPES = ("int32", "int64", "float32", "float64")


class AggregationSpec(SpecModel):
    """A rollup of raw events: ``function(column)`` over each window, recomputed at every grain boundary.

    Each window gives one feature, ``<column>_<function>_<window>`` (``fare_sum_7d``): at a boundary ``b``
    of the view's granularity, the function over the events with ``b - window < timestamp <= b``.
    """

    function: AggregationFunction = Field(description="sum, count, mean, min, max or count_distinct.")
    column: Name = Field(description="The field of the view (a raw event column) the function reads.")
    windows: list[Duration] = Field(
        min_length=1,
        max_length=16,
        description="Windows such as 1d, 7d, 30d: each a multiple of the view's granularity.",
    )

    def outputs(self) -> list[tuple[str, str]]:
        """``(feature name, window)`` of each window, in order."""
        return [(f"{self.column}_{self.function}_{w}", w) for w in self.windows]


class FeatureViewSpec(SpecModel):
    """A group of features read from one source, keyed by entities."""

    name: Name
    entities: list[Name] = Field(min_length=1)
    source: Name
    granularity: Granularity | None = Field(default=None, description="Pre-aggregation grain.")
    ttl: Duration = Field(description="How long a value stays servable.")
    fields: list[FeatureField] = Field(
        min_length=1,
        description="The view's features; with aggregations, the raw event columns they read.",
    )
    aggregations: list[AggregationSpec] = Field(
        default_factory=list,
        description="Rollups over raw events computed at the view's granularity (the view then serves "
        "`<column>_<function>_<window>` features, not its fields).",
    )
    description: Text = ""

    @property
    def served_fields(self) -> list[FeatureField]:
        """The features the view serves: its fields, or the output of each aggregation window."""
        if not self.aggregations:
            return list(self.fields)
        dtypes = {f.name: f.dtype for f in self.fields}
        return [
            FeatureField(name=name, dtype=aggregated_dtype(a.function, dtypes.get(a.column, "float64")))
            for a in self.aggregations
            for name, _ in a.outputs()
        ]


def aggregated_dtype(function: str, column_dtype: str) -> FieldDtype:
    """The dtype of ``function`` over a column: counts are int64, a mean float64, sum/min/max widen the column."""
    if function in ("count", "count_distinct"):
        return "int64"
    if function == "mean" or column_dtype in ("float32", "float64"):
        return "float64"
    return "int64"


FeatureRef = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", strict=True)]


class OnDemandViewSpec(SpecModel):
    """Request-time transformation over view fields and request values."""

    name: Name
    inputs: list[FeatureRef] = Field(min_length=1, description="`view.field` or `request_source.field`.")
    fields: list[FeatureField] = Field(min_length=1)
    description: Text = ""


class FeatureServiceSpec(SpecModel):
    """The features a model reads, as ``view.field`` references."""

    name: Name
    features: list[FeatureRef] = Field(min_length=1, description="`view.field` references.")
    description: Text = ""


Computation = Literal["precomputed", "realtime", "hybrid"]


class Features(SpecModel):
    """How features are computed and how fresh they must be: views, on-demand views, services."""

    computation: Computation = "precomputed"
    freshness: Duration = Field(description="The oldest value the online path may serve.")
    views: list[FeatureViewSpec] = Field(default_factory=list)
    on_demand: list[OnDemandViewSpec] = Field(default_factory=list)
    services: list[FeatureServiceSpec] = Field(default_factory=list)


# ------------------------------------------------------------------ training
Accelerator = Literal["cpu", "gpu"]
Metric = Literal["roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "rmse", "mae", "r2"]


class Label(SpecModel):
    """Where the training label comes from: a source and its column."""

    source: Name
    field: Name


class Resources(SpecModel):
    """What a training run needs: accelerator, GPUs, CPUs, memory."""

    accelerator: Accelerator = "cpu"
    gpus: StrictInt = Field(default=0, ge=0, le=64)
    cpus: PositiveNumber = 1
    memory_gb: PositiveNumber = 2


class MinQuality(SpecModel):
    """The minimum quality a trained model must reach to be shipped."""

    metric: Metric
    threshold: StrictInt | FiniteFloat = Field(
        description="The least acceptable value (the most, for the error metrics log_loss, rmse and mae)."
    )


class Training(SpecModel):
    """How and when models are trained."""

    trigger: Literal["schedule", "online", "manual"] = "schedule"
    schedule: Cron | None = Field(default=None, description="Cron expression or @hourly/@daily/@weekly/@monthly.")
    label: Label | None = None
    resources: Resources = Field(default_factory=Resources)
    min_quality: MinQuality | None = None


# ------------------------------------------------------------------ serving
TensorDtype = Literal[
    "bool",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "int8",
    "int16",
    "int32",
    "int64",
    "fp16",
    "fp32",
    "fp64",
    "bf16",
    "string",
]
Framework = Literal["sklearn", "onnx", "pytorch", "tensorflow", "python"]


class Tensor(SpecModel):
    """An input or output tensor of a model."""

    name: TensorName
    dtype: TensorDtype
    dims: list[Annotated[StrictInt, Field(ge=-1, le=1_000_000)]] = Field(
        min_length=1, max_length=8, description="Shape without the batch dimension; -1 for variable."
    )
    per_object: StrictBool = Field(
        default=False,
        description="A variable number of objects per input (crops, boxes): the leading -1 counts them; a later "
        "step with max_batch_size > 0 takes the objects as its batch dimension.",
    )
    pii: StrictBool = Field(
        default=False,
        description="An output that is personal data (a recognised name, address, plate): never logged; "
        "privacy.retention applies to anything stored.",
    )


class ModelSpec(SpecModel):
    """A model: its framework, what it reads and returns, and how it runs."""

    name: Name
    framework: Framework
    accelerator: Accelerator = "cpu"
    feature_service: Name | None = Field(default=None, description="Its inputs are this service's features.")
    inputs: list[Tensor] = Field(default_factory=list)
    outputs: list[Tensor] = Field(min_length=1)
    stateful: StrictBool = Field(default=False, description="Keeps state across a sequence of requests.")
    max_batch_size: StrictInt | None = Field(default=None, ge=0, le=4096)
    latency_ms: PositiveNumber | None = Field(
        default=None, description="Expected time of one call (sizes a pipeline's instances; default: a share of p99)."
    )
    training: Literal["trained", "external"] = Field(
        default="trained",
        description="external: the weights come from elsewhere and are dropped in; no training scaffold.",
    )
    description: Text = ""


StepTensorRef = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.[A-Za-z][A-Za-z0-9_]{0,62}$", strict=True)]


class StopWhen(SpecModel):
    """When a pipeline stops early: the tensor is empty, or (per object) every score is below a threshold."""

    tensor: StepTensorRef = Field(description="`step.output` the condition reads.")
    score_below: StrictInt | FiniteFloat | None = Field(
        default=None,
        description="Objects scoring below this are dropped; the pipeline stops when none is left. "
        "Without it the pipeline stops when the tensor is empty.",
    )


class Pipeline(SpecModel):
    """Models chained into one request: a fixed line, or conditional with a stop condition."""

    name: Name
    steps: list[Name] = Field(min_length=2)
    conditional: StrictBool = Field(
        default=False, description="Steps depend on earlier outputs (skip the rest when nothing is found)."
    )
    outputs: list[StepTensorRef] = Field(
        default_factory=list,
        description="`step.output` tensors the pipeline returns (default: the last step's outputs).",
    )
    stop_when: StopWhen | None = Field(
        default=None, description="The condition that stops a conditional pipeline (default: any empty output)."
    )


class Serving(SpecModel):
    """How predictions are served: mode, budget, throughput, protocol and the models."""

    mode: Literal["online", "batch", "async", "embedded"] = "online"
    protocol: Literal["rest", "grpc"] = "rest"
    latency_p99_ms: PositiveNumber = Field(description="End to end: features + inference.")
    throughput_rps: PositiveNumber
    models: list[ModelSpec] = Field(min_length=1)
    pipeline: Pipeline | None = None
    population: Name | None = Field(
        default=None,
        description="Batch serving: the file or table source whose rows hold the entity keys to score "
        "(default: the source of the scored feature service's first view).",
    )
    schedule: Cron | None = Field(
        default=None,
        description="Batch serving: when scoring runs, right after training and its gate (default: training.schedule).",
    )
    stale_bundle: Literal["refuse", "warn"] = Field(
        default="refuse",
        description="Embedded serving: a bundle whose features are older than features.freshness is refused "
        "(the previous bundle keeps serving) or served with a warning.",
    )


# ------------------------------------------------------------------ privacy, delivery
AccessAction = Literal["online_read", "offline_read", "write", "materialize", "describe", "read_pii"]


class Access(SpecModel):
    """A role and what it may read."""

    role: Name
    can: list[AccessAction] = Field(
        min_length=1,
        description="Feast actions the role is granted; read_pii (with online_read or offline_read) also lets it "
        "decrypt the personal fields privacy.pii_handling encrypt writes encrypted.",
    )


class Privacy(SpecModel):
    """Personal data: how it is handled, where it may live, how long it is kept, who reads it."""

    pii_handling: Literal["drop", "hash", "encrypt", "allow"] = "drop"
    residency: Literal["on_prem", "eu", "us", "any"] = "any"
    retention: Duration | None = None
    access: list[Access] = Field(default_factory=list)


class Delivery(SpecModel):
    """How the system is delivered: MLOps level and the team's priority."""

    priority: Literal["speed", "reliability"] = "speed"
    mlops_level: Annotated[Literal[0, 1, 2], NotBool] = 1


class Waiver(SpecModel):
    """An accepted warning: the finding's code and why the team accepts the risk."""

    finding: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]*$", strict=True)]
    justification: Annotated[Text, Field(min_length=20)]
    accepted_by: Owner | None = None


class OverlaySpec(SpecModel):
    """A company's cookiecutter template rendered over the generated repository (``archgen new --overlay``)."""

    path: Annotated[str, Field(min_length=1, max_length=4096, strict=True)] = Field(
        description="A cookiecutter template folder or zip, relative to this spec file."
    )
    wins: Literal["refuse", "overlay", "archgen"] = Field(
        default="refuse",
        description="Where an overlay file and an archgen file share a path: refuse (name both), or keep one.",
    )


class Spec(SpecModel):
    """An ML system's requirements: one YAML file."""

    version: Annotated[Literal[1], NotBool]
    project: Project
    existing: Existing = Field(default_factory=Existing)
    entities: list[Entity] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    features: Features | None = None
    training: Training = Field(default_factory=lambda: Training(trigger="manual"))
    serving: Serving
    privacy: Privacy = Field(default_factory=Privacy)
    autonomy: Literal["air_gapped", "self_hosted", "cloud"] = "self_hosted"
    customization: Literal["low", "medium", "high"] = Field(
        default="low",
        description="How much custom code the team plugs in: decides which files are its own seams, generated "
        "once and never rewritten by `archgen update` (low: none; medium: stubbed model code; high: also python "
        "models, BLS pipelines and training/train.py).",
    )
    delivery: Delivery = Field(default_factory=Delivery)
    waivers: list[Waiver] = Field(default_factory=list)
    overlays: list[OverlaySpec] = Field(default_factory=list)

    # -------------------------------------------------------------- lookups
    def source(self, name: str) -> FileSourceSpec | TableSourceSpec | StreamSourceSpec | RequestSourceSpec | None:
        """The source named ``name``, or None."""
        return next((s for s in self.sources if s.name == name), None)

    def stored_source(self, name: str) -> FileSourceSpec | TableSourceSpec | None:
        """The file or table holding what source ``name`` delivers: itself, or the batch source a stream lands in."""
        source = self.source(name)
        if isinstance(source, StreamSourceSpec):
            source = self.source(source.batch_source)
        return source if isinstance(source, FileSourceSpec | TableSourceSpec) else None

    def requests_read_by(self, ref: str) -> list[str]:
        """The request sources a served feature ``view.field`` is computed from (an on-demand view's inputs)."""
        if self.features is None:
            return []
        odv = next((o for o in self.features.on_demand if o.name == ref.partition(".")[0]), None)
        requests = {s.name for s in self.sources if isinstance(s, RequestSourceSpec)}
        return sorted({i.partition(".")[0] for i in odv.inputs} & requests) if odv is not None else []

    def entity(self, name: str) -> Entity | None:
        """The entity named ``name``, or None."""
        return next((e for e in self.entities if e.name == name), None)

    def catalog_view(self, name: str) -> CatalogView | None:
        """A view of the shared catalog this system reads (existing.feature_registry)."""
        registry = self.existing.feature_registry
        return next((v for v in registry.views if v.name == name), None) if registry else None

    def view(self, name: str) -> FeatureViewSpec | None:
        """The feature view named ``name``, or None."""
        if self.features is None:
            return None
        return next((v for v in self.features.views if v.name == name), None)

    def service(self, name: str) -> FeatureServiceSpec | None:
        """The feature service named ``name``, or None."""
        if self.features is None:
            return None
        return next((s for s in self.features.services if s.name == name), None)

    def on_demand_views_of(self, service: str) -> list[OnDemandViewSpec]:
        """The on-demand views whose features the feature service ``service`` serves, in the order it names them."""
        svc = self.service(service)
        if svc is None or self.features is None:
            return []
        odfvs = {o.name: o for o in self.features.on_demand}
        return [odfvs[name] for name in dict.fromkeys(ref.partition(".")[0] for ref in svc.features) if name in odfvs]

    def model(self, name: str) -> ModelSpec | None:
        """The model named ``name``, or None."""
        return next((m for m in self.serving.models if m.name == name), None)
