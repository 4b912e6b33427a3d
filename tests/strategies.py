"""Hypothesis strategies for the spec language.

``valid_specs()`` builds diverse, *valid* :class:`~requirements_spec.models.Spec` objects:
every cross-reference (view -> entity and source, service -> view field, model -> service,
pipeline -> model, label -> source) points at something declared, names are unique where
the language requires it, and values respect every constraint the validator checks.
Use it for any property that must hold for all valid specs (the decision engine decides,
plans have unique paths, rendering is deterministic, ...)::

    from hypothesis import given
    from tests.strategies import valid_specs

    @given(valid_specs())
    def test_every_valid_spec_decides(spec): ...

Knobs: ``valid_specs(features=True)`` always has a feature store (``False``: never; ``None``:
either), ``max_models`` bounds the model count. ``spec_yaml(spec)`` is the YAML text a user
could have written for it (what ``parse_spec`` reads back to an equal ``Spec``).
"""

from __future__ import annotations

import string
from typing import Any

import yaml
from hypothesis import strategies as st

from requirements_spec.models import (
    NUMERIC_DTYPES,
    Access,
    AggregationSpec,
    Delivery,
    Entity,
    Existing,
    FeatureField,
    Features,
    FeatureServiceSpec,
    FeatureViewSpec,
    FileSourceSpec,
    Label,
    MinQuality,
    ModelSpec,
    OnDemandViewSpec,
    Owners,
    Pipeline,
    Privacy,
    Project,
    RequestSourceSpec,
    Resources,
    Serving,
    Spec,
    StreamSourceSpec,
    TableSourceSpec,
    Tensor,
    Training,
    Waiver,
)
from requirements_spec.types import CRON_MACROS, check_name

__all__ = ["descriptions", "durations", "names", "runnable_specs", "spec_yaml", "valid_specs"]

_FIELD_DTYPES = ["int32", "int64", "float32", "float64", "string", "bool", "bytes", "unix_timestamp"]
_TENSOR_DTYPES = ["bool", "uint8", "int32", "int64", "fp16", "fp32", "fp64", "string"]
_CLASSIFIER_METRICS = ["roc_auc", "accuracy", "f1", "precision", "recall"]
_COLUMN_NAMES = ("event_timestamp", "event_ts", "created_ts")


def _is_name(text: str) -> bool:
    try:
        check_name(text)
    except ValueError:
        return False
    return True


_LOWER = string.ascii_lowercase
_ALNUM = _LOWER + string.digits


def _word(first: str, rest: str, max_rest: int) -> st.SearchStrategy[str]:
    return st.builds(lambda a, b: a + b, st.sampled_from(first), st.text(rest, max_size=max_rest))


#: valid names: lowercase letters, digits and single underscores, never a keyword or reserved word
names = st.builds(
    lambda head, parts: "_".join([head, *parts]),
    _word(_LOWER, _ALNUM, 6),
    st.lists(st.text(_ALNUM, min_size=1, max_size=5), max_size=2),
).filter(_is_name)
_tensor_names = _word(string.ascii_letters, string.ascii_letters + string.digits + "_", 10)
_topics = _word(_LOWER, _ALNUM + "._-", 20)
_finding_codes = _word(_LOWER, _ALNUM + "_.-", 20)

#: free text: printable, may contain quotes, YAML and Jinja syntax, non-ASCII; no control characters
descriptions = st.one_of(
    st.just(""),
    st.sampled_from(["{{ 7*7 }}", "{% raw %}", "a: b", "- x", "'quoted' \"double\"", "no", "1e3", "017", "#x"]),
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029\x85\ufeff"),
        max_size=60,
    ),
)

#: durations: 1s .. 9999999w
durations = st.builds(lambda n, unit: f"{n}{unit}", st.integers(1, 400), st.sampled_from("smhdw"))

crons = st.one_of(
    st.sampled_from(sorted(CRON_MACROS)),
    st.builds(lambda m, h: f"{m} {h} * * *", st.integers(0, 59), st.integers(0, 23)),
    st.builds(lambda m, d: f"{m} 3 * * {d}", st.integers(0, 59), st.integers(0, 6)),
    st.sampled_from(["*/15 * * * *", "0 */6 * * *", "30 2 1 * *", "0 0 * * mon-fri"]),
)

owners = st.one_of(
    st.builds(lambda org, team: f"@{org}/{team}", _word(_LOWER, _ALNUM + "-", 8), _word(_LOWER, _ALNUM + "-", 8)),
    st.builds(lambda user, host: f"{user}@{host}.org", _word(_LOWER, _ALNUM, 8), _word(_LOWER, _LOWER, 8)),
)

positive_numbers = st.one_of(st.integers(1, 100_000), st.floats(0.5, 100_000, allow_nan=False, allow_infinity=False))


class _Names:
    """Hands out names unique within one spec (one namespace is simplest and always valid)."""

    def __init__(self, draw: Any) -> None:
        self._draw = draw
        self._used: set[str] = set(_COLUMN_NAMES)  # timestamp columns: never a field or a label

    def __call__(self) -> str:
        name: str = self._draw(names.filter(lambda n: n not in self._used))
        self._used.add(name)
        return name


def _fields(draw: Any, fresh: _Names, n_max: int = 4) -> list[FeatureField]:
    n = draw(st.integers(1, n_max))
    return [
        FeatureField(
            name=fresh(),
            dtype=draw(st.sampled_from(_FIELD_DTYPES)),
            pii=draw(st.booleans()),
            description=draw(descriptions),
        )
        for _ in range(n)
    ]


def _sources(draw: Any, fresh: _Names, need_batch: bool) -> list[Any]:
    batch: list[FileSourceSpec | TableSourceSpec] = []
    for _ in range(draw(st.integers(1 if need_batch else 0, 3))):
        if draw(st.booleans()):
            batch.append(
                FileSourceSpec(
                    name=(name := fresh()),
                    kind="file",
                    path=f"data/{name}.parquet",
                    timestamp_field=draw(st.sampled_from(["event_timestamp", "event_ts", fresh()])),
                    created_timestamp_field=draw(st.none() | st.just("created_ts")),
                )
            )
        else:
            batch.append(
                TableSourceSpec(
                    name=fresh(),
                    kind="table",
                    table=draw(st.sampled_from(["", "public.", "analytics."])) + fresh(),
                    timestamp_field=draw(st.sampled_from(["event_timestamp", "event_ts"])),
                )
            )
    streams = [
        StreamSourceSpec(
            name=fresh(),
            kind="stream",
            topic=draw(_topics),
            batch_source=draw(st.sampled_from(batch)).name,
            timestamp_field=draw(st.sampled_from(["event_timestamp", "event_ts"])),
        )
        for _ in range(draw(st.integers(0, 2)) if batch else 0)
    ]
    requests = [
        RequestSourceSpec(name=fresh(), kind="request", fields=_fields(draw, fresh, 3))
        for _ in range(draw(st.integers(0, 2)))
    ]
    everything: list[Any] = [*batch, *streams, *requests]
    return draw(st.permutations(everything))


#: each granularity's duration unit, and how many of them one grain is (a month is 30 days)
_GRAIN_UNITS = {"hour": ("h", 1), "day": ("d", 1), "week": ("w", 1), "month": ("d", 30)}


def _grain_multiples(draw: Any, grain: str, max_size: int) -> list[str]:
    """Distinct windows, each a whole number of grains, sometimes written in a finer unit (1d as 24h)."""
    unit, size = _GRAIN_UNITS[grain]
    counts = draw(st.lists(st.integers(1, 12), min_size=1, max_size=max_size, unique=True))
    finer = {"d": ("h", 24), "w": ("d", 7)}
    out = []
    for n in counts:
        if unit in finer and draw(st.booleans()):
            fine, per = finer[unit]
            out.append(f"{n * size * per}{fine}")
        else:
            out.append(f"{n * size}{unit}")
    return out


def _aggregations(draw: Any, fields: list[FeatureField], grain: str, windows: Any) -> list[AggregationSpec]:
    """1 to 3 rollups over the fields: numeric functions of numeric columns, counts of any; no output twice."""
    out: list[AggregationSpec] = []
    seen: set[tuple[str, str]] = set()
    for _ in range(draw(st.integers(1, 3))):
        column = draw(st.sampled_from(fields))
        numeric = column.dtype in NUMERIC_DTYPES
        functions = ["sum", "count", "mean", "min", "max", "count_distinct"] if numeric else ["count", "count_distinct"]
        function = draw(st.sampled_from(functions))
        if (column.name, function) in seen:
            continue
        seen.add((column.name, function))
        out.append(AggregationSpec(function=function, column=column.name, windows=windows(draw, grain)))
    return out


def _aggregated_view(draw: Any, fresh: _Names, entities: list[str], source: str) -> FeatureViewSpec:
    """A view that rolls raw events up: a grain, a ttl of at least one grain, no personal field."""
    grain = draw(st.sampled_from(["hour", "day", "week", "month"]))
    fields = [f.model_copy(update={"pii": False}) for f in _fields(draw, fresh)]
    unit, size = _GRAIN_UNITS[grain]
    return FeatureViewSpec(
        name=fresh(),
        entities=entities,
        source=source,
        granularity=grain,
        ttl=f"{draw(st.integers(1, 30)) * size}{unit}",
        fields=fields,
        aggregations=_aggregations(draw, fields, grain, lambda d, g: _grain_multiples(d, g, 4)),
        description=draw(descriptions),
    )


def _features(draw: Any, fresh: _Names, entities: list[Entity], sources: list[Any]) -> Features:
    viewable = [s for s in sources if s.kind != "request"]
    views = []
    for _ in range(draw(st.integers(1, 3))):
        source = draw(st.sampled_from(viewable))
        ents = draw(st.lists(st.sampled_from(entities), min_size=1, max_size=len(entities), unique_by=lambda e: e.name))
        if source.kind != "stream" and draw(st.booleans()):  # rollups read raw events of a file or table source
            views.append(_aggregated_view(draw, fresh, [e.name for e in ents], source.name))
            continue
        views.append(
            FeatureViewSpec(
                name=fresh(),
                entities=[e.name for e in ents],
                source=source.name,
                granularity=draw(st.none() | st.sampled_from(["hour", "day", "week", "month"])),
                ttl=draw(durations),
                fields=_fields(draw, fresh),
                description=draw(descriptions),
            )
        )
    view_refs = [f"{v.name}.{f.name}" for v in views for f in v.served_fields]
    request_refs = [f"{s.name}.{f.name}" for s in sources if s.kind == "request" for f in s.fields]
    on_demand = [
        OnDemandViewSpec(
            name=fresh(),
            inputs=draw(st.lists(st.sampled_from(view_refs + request_refs), min_size=1, max_size=3, unique=True)),
            fields=_fields(draw, fresh, 2),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    servable = view_refs + [f"{o.name}.{f.name}" for o in on_demand for f in o.fields]
    services = [
        FeatureServiceSpec(
            name=fresh(), features=draw(st.lists(st.sampled_from(servable), min_size=1, max_size=5, unique=True))
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    return Features(
        computation=draw(st.sampled_from(["precomputed", "realtime", "hybrid"])),
        freshness=draw(durations),
        views=views,
        on_demand=on_demand,
        services=services,
    )


def _training(draw: Any, fresh: _Names, entities: list[Entity], sources: list[Any]) -> Training:
    trigger = draw(st.sampled_from(["schedule", "online", "manual"]))
    labelable = [s for s in sources if s.kind != "request"]
    label = None
    if labelable and draw(st.booleans()):
        label = Label(source=draw(st.sampled_from(labelable)).name, field=fresh())
    accelerator = draw(st.sampled_from(["cpu", "gpu"]))
    quality = None
    if draw(st.booleans()):
        metric = draw(st.sampled_from([*_CLASSIFIER_METRICS, "log_loss", "rmse", "mae", "r2"]))
        if metric in _CLASSIFIER_METRICS:
            threshold = draw(st.floats(0, 1) | st.sampled_from([0, 1]))
        elif metric == "r2":
            threshold = draw(st.floats(-10, 1))
        else:
            threshold = draw(st.floats(0, 1000))
        quality = MinQuality(metric=metric, threshold=threshold)
    return Training(
        trigger=trigger,
        schedule=draw(crons) if trigger == "schedule" else draw(st.none() | crons),
        label=label,
        resources=Resources(
            accelerator=accelerator,
            gpus=draw(st.integers(1, 8)) if accelerator == "gpu" else 0,
            cpus=draw(positive_numbers),
            memory_gb=draw(positive_numbers),
        ),
        min_quality=quality,
    )


def _tensors(draw: Any, n_max: int) -> list[Tensor]:
    tensor_names = draw(st.lists(_tensor_names, min_size=1, max_size=n_max, unique=True))
    return [
        Tensor(
            name=name,
            dtype=draw(st.sampled_from(_TENSOR_DTYPES)),
            dims=draw(st.lists(st.integers(-1, 512), min_size=1, max_size=4)),
        )
        for name in tensor_names
    ]


def _serving(draw: Any, fresh: _Names, services: list[str], max_models: int) -> Serving:
    models = []
    for _ in range(draw(st.integers(1, max_models))):
        service = draw(st.sampled_from(services)) if services and draw(st.booleans()) else None
        models.append(
            ModelSpec(
                name=fresh(),
                framework=draw(st.sampled_from(["sklearn", "onnx", "pytorch", "tensorflow", "python"])),
                accelerator=draw(st.sampled_from(["cpu", "gpu"])),
                feature_service=service,
                inputs=_tensors(draw, 3) if service is None else [],
                outputs=_tensors(draw, 2),
                stateful=draw(st.booleans()),
                max_batch_size=draw(st.none() | st.integers(0, 4096)),
                description=draw(descriptions),
            )
        )
    pipeline = None
    if len(models) >= 2 and draw(st.booleans()):
        conditional = draw(st.booleans())
        model_names = [m.name for m in models]
        if conditional:
            steps = draw(st.lists(st.sampled_from(model_names), min_size=2, max_size=5))
        else:
            steps = draw(st.lists(st.sampled_from(model_names), min_size=2, max_size=len(models), unique=True))
        pipeline = Pipeline(name=fresh(), steps=steps, conditional=conditional)
    return Serving(
        mode=draw(st.sampled_from(["online", "batch", "async", "embedded"])),
        protocol=draw(st.sampled_from(["rest", "grpc"])),
        latency_p99_ms=draw(positive_numbers),
        throughput_rps=draw(positive_numbers),
        models=models,
        pipeline=pipeline,
    )


@st.composite
def valid_specs(draw: Any, *, features: bool | None = None, max_models: int = 3) -> Spec:
    """A valid :class:`Spec`, varied in every area; see the module docstring."""
    fresh = _Names(draw)
    with_features = draw(st.booleans()) if features is None else features
    entities = [
        Entity(name=fresh(), join_key=fresh(), dtype=draw(st.sampled_from(["int64", "int32", "string"])))
        for _ in range(draw(st.integers(1 if with_features else 0, 3)))
    ]
    sources = _sources(draw, fresh, need_batch=with_features)
    feats = _features(draw, fresh, entities, sources) if with_features else None
    services = [s.name for s in feats.services] if feats else []
    roles = draw(st.lists(names, max_size=3, unique=True))
    autonomy = draw(st.sampled_from(["air_gapped", "self_hosted", "cloud"]))
    # air-gapped: the site's registry and package mirror are required; elsewhere they may be set or not
    site = autonomy == "air_gapped" or draw(st.booleans())
    spec = Spec(
        version=1,
        project=Project(
            name=fresh(),
            description=draw(descriptions),
            owners=Owners(data_engineering=draw(owners), data_science=draw(owners), platform=draw(st.none() | owners)),
        ),
        existing=Existing(
            warehouse=draw(st.sampled_from(["files", "postgres", "bigquery", "snowflake", "redshift", "spark"])),
            orchestrator=draw(st.sampled_from(["none", "cron", "airflow", "prefect", "dagster", "kubernetes"])),
            platform=draw(
                st.sampled_from(["local", "docker-compose", "kubernetes", "sagemaker", "openshift", "heroku"])
            ),
            broker=draw(st.sampled_from(["none", "kafka", "rabbitmq", "redis"])),
            image_registry="registry.site.internal/ml" if site else None,
            package_mirror="https://pypi.site.internal/simple" if site else None,
        ),
        entities=entities,
        sources=sources,
        features=feats,
        training=_training(draw, fresh, entities, sources),
        serving=_serving(draw, fresh, services, max_models),
        privacy=Privacy(
            pii_handling=draw(st.sampled_from(["drop", "hash", "encrypt", "allow"])),
            residency=draw(st.sampled_from(["on_prem", "eu", "us", "any"])),
            retention=draw(st.none() | durations),
            access=[
                Access(
                    role=role,
                    can=draw(
                        st.lists(
                            st.sampled_from(["online_read", "offline_read", "write", "materialize", "describe"]),
                            min_size=1,
                            max_size=3,
                            unique=True,
                        )
                    ),
                )
                for role in roles
            ],
        ),
        autonomy=autonomy,
        customization=draw(st.sampled_from(["low", "medium", "high"])),
        delivery=Delivery(
            priority=draw(st.sampled_from(["speed", "reliability"])), mlops_level=draw(st.sampled_from([0, 1, 2]))
        ),
        waivers=[
            Waiver(
                finding=draw(_finding_codes),
                justification="accepted for the pilot: " + draw(st.text(string.ascii_letters + " ", max_size=30)),
            )
            for _ in range(draw(st.integers(0, 1)))
        ],
    )
    return _no_request_in_batch(spec)


def _no_request_in_batch(spec: Spec) -> Spec:
    """A batch run has no request: a batch spec whose scored services read request-time values is served online."""
    scored = {m.feature_service for m in spec.serving.models if m.feature_service}
    services = spec.features.services if spec.features else []
    reads = any(spec.requests_read_by(ref) for svc in services if svc.name in scored for ref in svc.features)
    if spec.serving.mode != "batch" or not reads:
        return spec
    return spec.model_copy(update={"serving": spec.serving.model_copy(update={"mode": "online"})})


def spec_yaml(spec: Spec, *, exclude_defaults: bool = True) -> str:
    """The spec as YAML a user could have written (what ``parse_spec`` reads back)."""
    data = spec.model_dump(mode="json", exclude_defaults=exclude_defaults)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# ------------------------------------------------------------------ specs whose generated system runs here
_RUN_KEY_DTYPES = ["int64", "int32", "string"]
_RUN_NUMERIC = ["int64", "int32", "float32", "float64"]
_RUN_REQUEST_DTYPES = ["float64", "int64", "string"]


def _run_fields(draw: Any, fresh: _Names, n_max: int) -> list[FeatureField]:
    """Numeric fields (what a model can be trained on), sometimes one PII string beside them."""
    fields = [
        FeatureField(name=fresh(), dtype=draw(st.sampled_from(_RUN_NUMERIC)))
        for _ in range(draw(st.integers(1, n_max)))
    ]
    if draw(st.booleans()):
        fields.append(FeatureField(name=fresh() + "_email", dtype="string", pii=True))
    return fields


#: the windows a rolled-up view of a runnable spec draws from, by granularity (several: short and long ones)
_RUN_WINDOWS = {"hour": ["1h", "3h", "6h", "24h", "2d"], "day": ["1d", "2d", "7d", "2w", "28d"], "week": ["1w", "4w"]}
_RUN_TTLS = {"hour": ["6h", "2d", "7d"], "day": ["2d", "7d", "30d"], "week": ["7d", "30d"]}


def _run_rollup_view(draw: Any, fresh: _Names, entities: list[Entity], sources: list[Any]) -> FeatureViewSpec:
    """A view that rolls a file or table source's raw events up over several windows, keyed by one or two
    entities: numeric columns, sometimes a string one beside them (counted), no personal field."""
    grain = draw(st.sampled_from(["hour", "day", "day", "week"]))
    fields = [
        FeatureField(name=fresh(), dtype=draw(st.sampled_from(_RUN_NUMERIC))) for _ in range(draw(st.integers(1, 2)))
    ]
    if draw(st.booleans()):
        fields.append(FeatureField(name=fresh(), dtype="string"))
    ents = draw(st.lists(st.sampled_from(entities), min_size=1, max_size=2, unique_by=lambda e: e.name))
    pool = _RUN_WINDOWS[grain]
    return FeatureViewSpec(
        name=fresh(),
        entities=[e.name for e in ents],
        source=draw(st.sampled_from(sources)).name,
        granularity=grain,
        ttl=draw(st.sampled_from(_RUN_TTLS[grain])),
        fields=fields,
        aggregations=_aggregations(
            draw, fields, grain, lambda d, _: d(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        ),
    )


@st.composite
def runnable_specs(draw: Any) -> Spec:
    """A valid spec whose generated repository runs its own `make demo` and `make test` on this machine.

    It varies what the generated system must handle: entity dtypes (string, int32, int64) and counts, views
    keyed by several entities, file, stream and request sources, on-demand views over request-time values,
    a pipeline after the trained model (an ensemble, or a BLS pipeline when conditional), every serving mode
    and protocol, PII handling, MLOps levels, orchestrators and platforms; in about half the specs with a
    feature store, views that roll raw events up (sum, count, mean, min, max, count_distinct over several
    windows at an hour, day or week grain) over parquet files or PostgreSQL tables, keyed by one or two
    entities, served beside plain views and read by on-demand views; or no feature store at all and a
    model that takes a tensor (a small image). It stays within what runs here: file sources or the local
    PostgreSQL's tables (the online store: SQLite, or the local Redis where the platform has several
    nodes), rollups in pandas or in PostgreSQL (never Spark), CPU, budgets one loaded machine can meet.
    """
    fresh = _Names(draw)
    existing = Existing(
        warehouse="files",
        orchestrator=draw(st.sampled_from(["none", "cron", "airflow", "prefect", "dagster", "kubernetes"])),
        platform=draw(st.sampled_from(["local", "docker-compose", "kubernetes", "openshift"])),
        broker="none",
    )
    mode = draw(st.sampled_from(["online", "batch", "async", "embedded"]))
    serving_common = {
        "mode": mode,
        "protocol": draw(st.sampled_from(["rest", "grpc"])),
        "latency_p99_ms": draw(st.sampled_from([500, 1000, 2000])),
        "throughput_rps": draw(st.integers(5, 20)),
    }
    privacy = Privacy(
        pii_handling=draw(st.sampled_from(["drop", "hash", "encrypt", "allow"])),
        residency=draw(st.sampled_from(["on_prem", "eu", "us", "any"])),
        retention=draw(st.none() | st.sampled_from(["30d", "90d", "365d"])),
    )
    delivery = Delivery(
        priority=draw(st.sampled_from(["speed", "reliability"])), mlops_level=draw(st.sampled_from([0, 1, 2]))
    )
    project = Project(name=fresh(), owners=Owners(data_engineering="@acme/data", data_science="@acme/ds"))
    common = {"version": 1, "project": project, "existing": existing, "privacy": privacy, "delivery": delivery}
    if draw(st.integers(0, 3)) == 3:  # no feature store: a model that takes a small image
        if mode == "batch":  # batch scoring needs entities and features to score (serving.nothing_to_score)
            serving_common["mode"] = draw(st.sampled_from(["online", "async", "embedded"]))
        image = Tensor(name="image", dtype="uint8", dims=[3, draw(st.sampled_from([8, 16, 32])), 16])
        model = ModelSpec(
            name=fresh(),
            framework="python",
            inputs=[image],
            outputs=[Tensor(name="scores", dtype="fp32", dims=[draw(st.sampled_from([1, 4, 8]))])],
            max_batch_size=draw(st.sampled_from([None, 0, 8])),
        )
        return Spec(
            **common,
            training=Training(trigger="manual"),
            serving=Serving(**serving_common, models=[model]),
        )
    entities = [
        Entity(name=fresh(), join_key=fresh(), dtype=draw(st.sampled_from(_RUN_KEY_DTYPES)))
        for _ in range(draw(st.integers(1, 3)))
    ]
    # PostgreSQL tables or parquet files hold the events; the rollups of aggregated views run where they live
    # (SQL inside PostgreSQL, pandas over the files). Spark, the third compute engine, is left out: it takes a
    # warehouse of Spark or an events_per_day past spark_from_events, and a Spark session's start costs minutes
    # per run (tests/test_batch_stores.py and tests/test_aggregation_e2e.py run it).
    rollups = draw(st.booleans())
    warehouse = draw(st.sampled_from(["files", "postgres"])) if rollups else "files"
    common["existing"] = existing.model_copy(update={"warehouse": warehouse})

    def batch_source() -> FileSourceSpec | TableSourceSpec:
        name = fresh()
        if warehouse == "postgres":
            table = draw(st.sampled_from(["", "public."])) + name
            return TableSourceSpec(name=name, kind="table", table=table, timestamp_field="event_timestamp")
        return FileSourceSpec(name=name, kind="file", path=f"data/{name}.parquet", timestamp_field="event_timestamp")

    files = [batch_source() for _ in range(draw(st.integers(1, 2)))]
    label_source = batch_source()
    streams = []
    if draw(st.booleans()):
        streams.append(
            StreamSourceSpec(
                name=fresh(),
                kind="stream",
                topic=fresh(),
                batch_source=files[0].name,
                timestamp_field="event_timestamp",
            )
        )
    request = None
    if draw(st.booleans()) and mode != "batch":  # a batch run has no request (drawn either way: stable examples)
        request = RequestSourceSpec(
            name=fresh(),
            kind="request",
            fields=[
                FeatureField(name=fresh(), dtype=draw(st.sampled_from(_RUN_REQUEST_DTYPES)))
                for _ in range(draw(st.integers(1, 3)))
            ],
        )
    viewable = [*files, *streams]
    views = []
    for i in range(draw(st.integers(0 if rollups else 1, 2 if rollups else 3))):
        ents = draw(st.lists(st.sampled_from(entities), min_size=1, max_size=2, unique_by=lambda e: e.name))
        views.append(
            FeatureViewSpec(
                name=fresh(),
                entities=[e.name for e in ents],
                source=viewable[i % len(viewable)].name if i else draw(st.sampled_from(viewable)).name,
                granularity=draw(st.sampled_from(["hour", "day"])),
                ttl=draw(st.sampled_from(["2d", "7d", "30d"])),
                fields=_run_fields(draw, fresh, 3),
            )
        )
    rolled = [_run_rollup_view(draw, fresh, entities, files) for _ in range(draw(st.integers(1, 2)) if rollups else 0)]
    views += rolled
    numeric = [f"{v.name}.{f.name}" for v in views for f in v.served_fields if not f.pii and f.dtype != "string"]
    on_demand = []
    if request is not None:
        numeric_request = [f"{request.name}.{f.name}" for f in request.fields if f.dtype != "string"]
        inputs = draw(st.lists(st.sampled_from(numeric), min_size=1, max_size=2, unique=True))
        inputs += numeric_request[:1] or [f"{request.name}.{request.fields[0].name}"]
        on_demand.append(
            OnDemandViewSpec(name=fresh(), inputs=inputs, fields=[FeatureField(name=fresh(), dtype="float64")])
        )
    # each rolled-up view serves one or two of its windows, beside up to four other features
    served = [
        ref
        for v in rolled
        for ref in draw(
            st.lists(
                st.sampled_from([f"{v.name}.{f.name}" for f in v.served_fields]), min_size=1, max_size=2, unique=True
            )
        )
    ]
    served += draw(
        st.lists(
            st.sampled_from(numeric).filter(lambda r: r not in served),
            min_size=0 if served else 1,
            max_size=4,
            unique=True,
        )
    )
    served += [f"{o.name}.{f.name}" for o in on_demand for f in o.fields]
    service = FeatureServiceSpec(name=fresh(), features=served)
    stream_names = {s.name for s in streams}
    features = Features(
        computation="hybrid" if on_demand or any(v.source in stream_names for v in views) else "precomputed",
        freshness=draw(st.sampled_from(["1h", "1d"])),
        views=views,
        on_demand=on_demand,
        services=[service],
    )
    classify = draw(st.booleans())
    quality = MinQuality(metric="roc_auc", threshold=0.5) if classify else MinQuality(metric="r2", threshold=-1.0)
    trigger = draw(st.sampled_from(["schedule", "manual"]))
    training = Training(
        trigger=trigger,
        schedule="@daily" if trigger == "schedule" else None,
        label=Label(source=label_source.name, field=fresh()),
        resources=Resources(accelerator="cpu", cpus=2, memory_gb=4),
        min_quality=quality,
    )
    trained = ModelSpec(
        name=fresh(),
        framework=draw(st.sampled_from(["sklearn", "sklearn", "onnx"])),
        feature_service=service.name,
        outputs=[Tensor(name="score", dtype="fp32", dims=[1])],
    )
    models = [trained]
    pipeline = None
    if draw(st.booleans()):
        after = ModelSpec(
            name=fresh(),
            framework="python",
            inputs=[Tensor(name="score", dtype="fp32", dims=[1])],
            outputs=[Tensor(name="probability", dtype="fp32", dims=[1])],
        )
        models.append(after)
        pipeline = Pipeline(name=fresh(), steps=[trained.name, after.name], conditional=draw(st.booleans()))
    sources: list[Any] = [*files, label_source, *streams, *([request] if request else [])]
    return Spec(
        **common,
        entities=entities,
        sources=sources,
        features=features,
        training=training,
        serving=Serving(**serving_common, models=models, pipeline=pipeline),
    )
