"""Feature store rules (Feast): online and offline stores, registry, ingestion, materialization, views."""

from __future__ import annotations

import math

from requirements_spec.models import FeatureViewSpec, FileSourceSpec, Spec, StreamSourceSpec, TableSourceSpec
from requirements_spec.types import duration_seconds, format_seconds

from .context import Outcome, ReqPath, RuleContext
from .registry import rule
from .thresholds import THRESHOLDS
from .values import RuleValue

LATENCY: ReqPath = ("serving", "latency_p99_ms")
THROUGHPUT: ReqPath = ("serving", "throughput_rps")
WAREHOUSE: ReqPath = ("existing", "warehouse")
PLATFORM: ReqPath = ("existing", "platform")
BROKER: ReqPath = ("existing", "broker")
COMPUTATION: ReqPath = ("features", "computation")
FRESHNESS: ReqPath = ("features", "freshness")
SINGLE_MACHINE = ("local", "docker-compose")


def _no_features(ctx: RuleContext) -> str | None:
    """Feature store keys apply only when the spec declares features."""
    return None if ctx.spec.features is not None else "the spec declares no features: no feature store is built"


@rule(
    "online_store",
    title="Online store: where the serving path reads features",
    reads=(
        "existing.broker",
        "serving.latency_p99_ms",
        "serving.throughput_rps",
        "existing.warehouse",
        "autonomy",
        "existing.platform",
    ),
    alternatives=("sqlite", "redis", "postgres"),
    choices=("sqlite", "redis", "postgres"),
    thresholds=("redis_below_p99_ms", "redis_from_rps"),
    unless=_no_features,
    applies="the spec declares features",
)
def online_store(ctx: RuleContext) -> Outcome | None:
    """Pick the Feast online store from the latency budget, the throughput and what the company runs.

    In order: a Redis the company already runs is reused; online serving with a p99 below
    `redis_below_p99_ms`, or online/async serving from `redis_from_rps`, needs in-memory lookups
    (Redis) — batch scoring reads once per run and is not bound by them; a company PostgreSQL is reused
    when the budget allows; air-gapped sites and single machines get SQLite (embedded, nothing to
    run); a multi-node platform gets Redis, because a SQLite file lives on one machine.
    """
    spec = ctx.spec
    if spec.features is None:
        return None
    ex, sv = spec.existing, spec.serving
    fast_ms, busy_rps = THRESHOLDS["redis_below_p99_ms"], THRESHOLDS["redis_from_rps"]
    # a batch job reads features once per run: the request-path budget does not bind the store
    tight = sv.mode == "online" and sv.latency_p99_ms < fast_ms
    busy = sv.mode in ("online", "async") and sv.throughput_rps >= busy_rps
    reads: list[ReqPath] = [LATENCY, THROUGHPUT] if sv.mode != "batch" else [("serving", "mode")]
    sqlite_why = "a file on one machine, one writer at a time"
    postgres_why = "a network round trip and a query per lookup"
    if ex.broker == "redis":
        reads.insert(0, BROKER)
        return Outcome(
            "redis",
            "the company already runs Redis (existing.broker): reuse it as the online store; in-memory "
            "single-row reads stay well under a millisecond",
            reads,
            [("sqlite", f"{sqlite_why}; Redis is already there"), ("postgres", f"{postgres_why}; Redis is faster")],
        )
    if tight or busy:
        why = []
        if tight:
            why.append(f"p99 {sv.latency_p99_ms} ms is below {fast_ms} ms")
        if busy:
            why.append(f"{sv.throughput_rps} requests/s reach {busy_rps}")
        return Outcome(
            "redis",
            " and ".join(why)
            + ": features must come from memory; Redis single-row reads stay well under a millisecond",
            reads,
            [
                ("sqlite", f"{sqlite_why}: does not hold {'the latency' if tight else 'the throughput'}"),
                ("postgres", f"{postgres_why}: eats the budget"),
            ],
        )
    if ex.warehouse == "postgres":
        return Outcome(
            "postgres",
            "the company runs PostgreSQL and "
            + (
                f"a p99 of {sv.latency_p99_ms} ms at {sv.throughput_rps} requests/s leaves room for a query per lookup"
                if sv.mode != "batch"
                else "batch scoring reads features once per run"
            )
            + ": reuse the database instead of adding Redis",
            [WAREHOUSE, *reads],
            [("redis", "one more service to run for latency the budget does not need"), ("sqlite", sqlite_why)],
        )
    if spec.autonomy == "air_gapped" or ex.platform in SINGLE_MACHINE:
        where = "an air-gapped site" if spec.autonomy == "air_gapped" else f"one machine ({ex.platform})"
        return Outcome(
            "sqlite",
            f"{where} at {sv.throughput_rps} requests/s with a {sv.latency_p99_ms} ms budget: an embedded "
            "SQLite file is enough and there is nothing to run",
            [("autonomy",) if spec.autonomy == "air_gapped" else PLATFORM, *reads],
            [
                ("redis", "one more service to run and secure; the budget does not need it"),
                ("postgres", "no PostgreSQL is running to reuse"),
            ],
        )
    return Outcome(
        "redis",
        f"platform {ex.platform} runs several replicas that must share the online store over the network",
        [PLATFORM, *reads],
        [("sqlite", f"{sqlite_why}: replicas cannot share it"), ("postgres", "no PostgreSQL is running to reuse")],
    )


OFFLINE = {"files": "file", "postgres": "postgres", "bigquery": "bigquery", "snowflake": "snowflake"}
OFFLINE |= {"redshift": "redshift", "spark": "spark"}


@rule(
    "offline_store",
    title="Offline store: where training reads historical features",
    reads=("existing.warehouse",),
    alternatives=("file", "duckdb", "postgres", "bigquery", "snowflake", "redshift", "spark"),
    choices=("file", "duckdb", "postgres", "bigquery", "snowflake", "redshift", "spark"),
    unless=_no_features,
    applies="the spec declares features",
)
def offline_store(ctx: RuleContext) -> Outcome | None:
    """Reuse the warehouse the company runs as Feast's offline store.

    Parquet files get the file offline store (embedded; dask does the point-in-time joins);
    PostgreSQL, BigQuery, Snowflake and Redshift get their Feast offline stores; Spark is the
    scale-out engine for a lake.
    """
    if ctx.spec.features is None:
        return None
    wh = ctx.spec.existing.warehouse
    choice = OFFLINE[wh]
    if choice == "file":
        return Outcome(
            "file",
            "the data are parquet files: the file offline store reads them in place, nothing to run",
            [WAREHOUSE],
            [
                ("duckdb", "faster scans of large files, but one more engine; the file store is enough here"),
                ("postgres", "would copy the files into a database nobody runs yet"),
            ],
        )
    return Outcome(
        choice,
        f"the company's warehouse is {wh}: point-in-time joins run where the data already are",
        [WAREHOUSE],
        [("file", f"would export {wh} tables to parquet and keep two copies in sync")],
    )


@rule(
    "registry",
    title="Feature registry: where Feast keeps its object definitions",
    reads=("existing.feature_registry", "existing.platform", "delivery.mlops_level"),
    alternatives=("file", "sql"),
    choices=("file", "sql"),
    unless=_no_features,
    applies="the spec declares features",
)
def registry(ctx: RuleContext) -> Outcome | None:
    """The catalog's registry when the spec joins one; else a file registry on one machine, a SQL registry
    (PostgreSQL) on Kubernetes or at MLOps level 2.

    A joined catalog (existing.feature_registry) keeps one definition of each shared view: the system adds its
    own views and services to the catalog's project and refers to the catalog's views by name. Many writers
    (CI applying definitions, jobs, several replicas of the feature server) need a registry with transactions;
    one machine does not.
    """
    spec = ctx.spec
    if spec.features is None:
        return None
    catalog = spec.existing.feature_registry
    if catalog is not None:
        kind = "file" if catalog.path else "sql"
        where = f"the file {catalog.path}" if catalog.path else "SQL ($FEAST_REGISTRY_URL)"
        names = ", ".join(v.name for v in catalog.views)
        return Outcome(
            kind,
            f"the company's feature catalog (Feast project {catalog.project}, registry in {where}) is joined: this "
            f"system applies only its own views and services there (scripts/apply.py, never deleting) and refers "
            f"to the catalog's {names}",
            [("existing", "feature_registry")],
            [
                ("sql" if kind == "file" else "file", "the catalog's registry is where its views are"),
                ("a registry of its own", f"would copy {names} and let the copies drift from the catalog"),
            ],
        )
    shared = spec.existing.platform in ("kubernetes", "openshift")
    level2 = spec.delivery.mlops_level == 2
    reads: list[ReqPath] = [PLATFORM, ("delivery", "mlops_level")]
    if shared or level2:
        why = f"platform {spec.existing.platform} runs replicas and jobs" if shared else "CI/CD applies definitions"
        return Outcome(
            "sql",
            f"{why}: many writers share the registry, so it lives in a SQL database (PostgreSQL)",
            reads,
            [("file", "a file written by several processes loses updates")],
        )
    return Outcome(
        "file",
        "one machine and one writer: a registry file next to the feature repo is enough",
        reads,
        [("sql", "a database to run for a single writer")],
    )


def _push_sources(ctx: RuleContext) -> list[str]:
    f = ctx.spec.features
    if f is None:
        return []
    used = {v.source for v in f.views}
    return sorted(s.name for s in ctx.spec.sources if isinstance(s, StreamSourceSpec) and s.name in used)


@rule(
    "ingestion",
    title="Ingestion: how feature values reach the online store",
    reads=("features.computation", "sources[].kind", "existing.broker"),
    alternatives=("batch", "push", "batch+push"),
    choices=("batch", "push", "batch+push"),
    unless=_no_features,
    applies="the spec declares features",
)
def ingestion(ctx: RuleContext) -> Outcome | None:
    """Precomputed features are materialized in batches; realtime ones are pushed; hybrid does both.

    Push sources are made for the stream sources the views read (from the broker when the company
    runs one, else pushed by the application through the feature server); request-time transforms
    become on-demand feature views.
    """
    f = ctx.spec.features
    if f is None:
        return None
    push = _push_sources(ctx)
    reads: list[ReqPath] = [COMPUTATION]
    reads += [("sources", i, "kind") for i, s in enumerate(ctx.spec.sources) if s.name in push]
    broker = ctx.spec.existing.broker
    via = f"from the {broker} broker" if broker != "none" else "by the application through the feature server"
    if broker != "none" and push:
        reads.append(BROKER)
    if f.computation == "precomputed":
        return Outcome(
            "batch",
            "features are precomputed: batch sources, materialized into the online store on a schedule at the "
            "declared granularity",
            reads,
            [("push", "fresh values the requirement does not ask for, at the cost of a streaming path")],
            value=[],
        )
    if f.computation == "realtime":
        return Outcome(
            "push",
            f"features are computed as events happen: push sources ({', '.join(push) or 'none declared'}) fed {via}",
            reads,
            [("batch", f"values would be as old as the materialization interval, not {f.freshness}")],
            value=push,
        )
    return Outcome(
        "batch+push",
        f"hybrid: pre-aggregates are materialized in batches, fresh values are pushed {via} "
        f"({', '.join(push) or 'no stream source yet'})",
        reads,
        [
            ("batch", "the stream-fed views would lag by the materialization interval"),
            ("push", "the pre-aggregates of the batch sources would never be loaded"),
        ],
        value=push,
    )


# cron steps that divide an hour or a day: runs land on grain boundaries
LADDER_S = (
    *(60 * m for m in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)),
    *(3600 * h for h in (1, 2, 3, 4, 6, 8, 12, 24)),
)


def interval_cron(seconds: int) -> str:
    """The cron expression of a ladder interval."""
    minutes = seconds // 60
    if minutes < 60:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    hours = minutes // 60
    if hours < 24:
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    return "0 0 * * *"


@rule(
    "materialization",
    title="Materialization interval: how often the online store is refreshed from batch sources",
    reads=("features.freshness", "features.views[].granularity", "existing.warehouse"),
    after=("offline_store", "ingestion"),
    thresholds=("min_materialization_interval_s", "granularity_s", "max_materialization_interval_s"),
    unless=_no_features,
    applies="the spec declares features",
)
def materialization(ctx: RuleContext) -> Outcome | None:
    """Materialize at most every `freshness`, on a cron step that divides the hour or the day.

    The interval is the freshness, capped by the finest pre-aggregation grain of the views (a
    daily grain is never refreshed less than daily) and by `max_materialization_interval_s`, then
    rounded down to a step that divides the hour or the day so runs land on grain boundaries. It
    is never shorter than the offline store sustains (`min_materialization_interval_s`); when the
    freshness asks for less and no push path covers the views, a finding says so.
    """
    f = ctx.spec.features
    if f is None:
        return None
    fresh = duration_seconds(f.freshness)
    grains: dict[str, int] = THRESHOLDS["granularity_s"]
    reads: list[ReqPath] = [FRESHNESS]
    target = min(fresh, THRESHOLDS["max_materialization_interval_s"])
    finest = None
    for i, v in enumerate(f.views):
        if v.granularity is not None and grains[v.granularity] < target:
            target, finest = grains[v.granularity], v
            reads.append(("features", "views", i, "granularity"))
    offline = ctx.choice("offline_store") or "file"
    floor = THRESHOLDS["min_materialization_interval_s"].get(offline, 60)
    interval = max(s for s in LADDER_S if s <= max(target, 60))
    note = ""
    if interval < floor:
        interval = min(s for s in LADDER_S if s >= floor)
        reads.append(WAREHOUSE)
        note = f"; the {offline} offline store sustains no less than {format_seconds(floor)}"
        if ctx.choice("ingestion") in ("push", "batch+push"):
            note += ", and pushed values keep the stream-fed views fresh in between"
    cron = interval_cron(interval)
    cap = f", capped by the {finest.granularity} grain of {finest.name}" if finest is not None else ""
    return Outcome(
        f"every {format_seconds(interval)} ({cron})",
        f"freshness {f.freshness}{cap}: materialize every {format_seconds(interval)}, a step that divides the "
        f"hour or day so runs land on grain boundaries{note}",
        reads,
        [
            ("continuous materialization", "a stream job for values the freshness allows to be batched"),
            (f"every {format_seconds(fresh * 2)}", f"values would be older than the {f.freshness} freshness"),
        ],
        value={"interval_s": interval, "cron": cron},
    )


@rule(
    "feature_views",
    title="Feature views: how features are grouped",
    reads=(
        "features.views[].entities",
        "features.views[].granularity",
        "features.views[].ttl",
        "features.views[].fields",
    ),
    unless=_no_features,
    applies="the spec declares features",
)
def feature_views(ctx: RuleContext) -> Outcome | None:
    """One Feast feature view per declared view, grouped by entity and pre-aggregation grain.

    As the lecture advises, fields stay as atomic as possible and are pre-aggregated at the
    smallest grain needed (day/week/month), so datasets are rebuilt from shared pre-aggregates
    instead of one-off wide tables.
    """
    f = ctx.spec.features
    if f is None or not f.views:
        return None
    groups: dict[tuple[str, str], list[str]] = {}
    reads: list[ReqPath] = []
    for i, v in enumerate(f.views):
        groups.setdefault(("+".join(v.entities), v.granularity or "event"), []).append(v.name)
        reads += [("features", "views", i, "entities"), ("features", "views", i, "granularity")]
        reads.append(("features", "views", i, "ttl"))  # how long its values stay servable
    parts = [f"{ent}/{grain}: {', '.join(names)}" for (ent, grain), names in sorted(groups.items())]
    n = len(f.views)
    return Outcome(
        f"{n} view{'s' if n != 1 else ''} in {len(groups)} group{'s' if len(groups) != 1 else ''}",
        "one feature view per declared view, grouped by entity and grain (" + "; ".join(parts) + "): atomic "
        "fields over shared pre-aggregates",
        reads,
        [("one wide table per model", "one-off datasets that are rebuilt from scratch and documented nowhere")],
        value={f"{ent}/{grain}": names for (ent, grain), names in sorted(groups.items())},
    )


@rule(
    "on_demand_views",
    title="On-demand views: request-time transformations",
    reads=("features.on_demand[].inputs", "features.computation"),
    unless=_no_features,
    applies="the spec declares features",
)
def on_demand_views(ctx: RuleContext) -> Outcome | None:
    """Each declared on-demand view becomes a Feast on-demand feature view computed at request time.

    They combine stored features with values that only exist in the request (request sources);
    nothing is stored, so they are always fresh and cost a little CPU per lookup.
    """
    f = ctx.spec.features
    if f is None:
        return None
    names = [o.name for o in f.on_demand]
    reads: list[ReqPath] = [("features", "on_demand", i, "inputs") for i in range(len(names))] or [COMPUTATION]
    if not names:
        return Outcome(
            "none",
            "no request-time transformation is declared: every feature is read as stored",
            reads,
            value=[],
        )
    return Outcome(
        ", ".join(names),
        "computed at request time from stored features and request values; nothing to materialize",
        reads,
        [("precomputed views", "request values are not known in advance")],
        value=names,
    )


# ---------------------------------------------------------------- compute engine: rollups and materialization
def aggregated_views(spec: Spec) -> list[tuple[int, FeatureViewSpec]]:
    """The views that declare aggregations, with their index."""
    f = spec.features
    return [(i, v) for i, v in enumerate(f.views) if v.aggregations] if f is not None else []


def events_per_run(spec: Spec) -> tuple[int | None, list[ReqPath]]:
    """Events one rollup run reads: each aggregated view's events_per_day times its longest window, in days.

    None when no aggregated view's source states its events_per_day; the paths of those that do.
    """
    total, known, paths = 0, False, []
    index = {s.name: i for i, s in enumerate(spec.sources)}
    for _, view in aggregated_views(spec):
        src = spec.source(view.source)
        if not isinstance(src, FileSourceSpec | TableSourceSpec) or src.events_per_day is None:
            continue
        longest = max(duration_seconds(w) for a in view.aggregations for w in a.windows)
        total += math.ceil(src.events_per_day * longest / 86400)
        known = True
        paths.append(("sources", index[src.name], "events_per_day"))
    return (total if known else None), list(dict.fromkeys(paths))


@rule(
    "compute_engine",
    title="Compute engine: where the rollups of raw events are computed and materialization runs",
    reads=("existing.warehouse", "features.views[].aggregations", "sources[].events_per_day", "features.freshness"),
    after=("offline_store",),
    alternatives=("local", "spark", "postgres"),
    choices=("local", "spark", "postgres"),
    thresholds=("spark_from_events", "min_materialization_interval_s"),
    unless=_no_features,
    applies="the spec declares features",
)
def compute_engine(ctx: RuleContext) -> Outcome | None:
    """The engine that owns the data computes the rollups; Feast's matching engine materializes.

    Views with aggregations read raw events and serve rollups (`<column>_<function>_<window>` at every
    grain boundary). Feast 0.67 declares `BatchFeatureView(aggregations=...)` but computes none of it
    here: its registry returns the view without its aggregations, so materialization and historical
    retrieval look for the aggregated columns in the raw source and fail, on the local and the Spark
    engine alike, and the local engine refuses time windows outright. So archgen generates the rollup
    job itself (`scripts/aggregate.py`), run by the engine that owns the data, and the Feast view reads
    its output: Spark when the warehouse is Spark (and Feast's Spark engine materializes);
    SQL inside PostgreSQL when PostgreSQL is the warehouse; for parquet files, pandas in process unless
    the events one run reads (`events_per_day` times the longest window) reach `spark_from_events` and
    the freshness leaves a Spark run its time (`min_materialization_interval_s` of spark).
    """
    spec = ctx.spec
    f = spec.features
    if f is None:
        return None
    wh = spec.existing.warehouse
    agg = aggregated_views(spec)
    names = [v.name for _, v in agg]
    reads: list[ReqPath] = [WAREHOUSE, *(("features", "views", i, "aggregations") for i, _ in agg)]
    rollups = f"the rollups of {', '.join(names)}" if names else "no rollups (no view declares aggregations)"
    events, event_paths = events_per_run(spec)

    def decided(engine: str, why: str, rejected: list[tuple[str, str]], batch: str = "local") -> Outcome:
        value: dict[str, RuleValue] = {
            "engine": engine,
            "batch_engine": batch,
            "views": names,
            "events_per_run": events,
        }
        return Outcome(engine, why, reads, rejected, value=value)

    if wh == "spark":
        return decided(
            "spark",
            f"the events live in Spark: Spark computes {rollups} where the data are, and Feast's Spark engine "
            "(batch_engine spark.engine) materializes",
            [
                ("local", "would pull every event of the lake into one process"),
                ("postgres", "no PostgreSQL holds them"),
            ],
            batch="spark.engine",
        )
    if wh == "postgres":
        how = (
            f"SQL inside PostgreSQL computes {rollups} (window functions over the event table), no event "
            "leaves the database; Feast's local engine materializes the rollup tables"
            if names
            else "Feast's local engine copies the latest rows from PostgreSQL into the online store"
        )
        return decided(
            "postgres",
            f"PostgreSQL is the warehouse: {how}",
            [("spark", "a cluster to run for data the database already holds"), ("local", "would copy every event")],
        )
    spark_start = ("spark", "a Spark session's start-up and shuffle cost more than they save at this size")
    if not names:
        return decided(
            "local",
            "no view declares aggregations: materialization copies the latest rows, in process (Feast's local engine)",
            [spark_start],
        )
    if wh not in ("files", "duckdb"):
        return decided(
            "local",
            f"archgen computes no rollups in {wh} (see the finding features.aggregations_on_cloud_warehouse)",
            [spark_start],
        )
    threshold = THRESHOLDS["spark_from_events"]
    reads.extend(event_paths)
    size = f"{events:,} events a run" if events is not None else "no events_per_day is stated"
    if events is None or events < threshold:
        return decided(
            "local",
            f"{size}, below the {threshold:,} where Spark starts to pay: pandas computes {rollups} in process, "
            "nothing to start",
            [spark_start],
        )
    reads.append(FRESHNESS)
    floor = THRESHOLDS["min_materialization_interval_s"]["spark"]
    if duration_seconds(f.freshness) < floor:
        return decided(
            "local",
            f"{size} reach {threshold:,}, where Spark starts to pay, but the freshness {f.freshness} is "
            f"shorter than a Spark run sustains ({format_seconds(floor)}): pandas computes {rollups} in process; "
            "give the job the memory the events need",
            [("spark", f"start-up and scheduling of a Spark job every {f.freshness} do not fit")],
        )
    return decided(
        "spark",
        f"{size} (events_per_day times the longest window) reach {threshold:,}: a Spark session computes "
        f"{rollups} from the parquet files (SPARK_MASTER: local[*] on one machine, a cluster in production); "
        "the files stay the offline store",
        [("local", f"one process over {events:,} events: slower than Spark past {threshold:,} on this hardware")],
    )


def _uses_spark(ctx: RuleContext) -> str | None:
    if ctx.spec.features is None:
        return "the spec declares no features: no feature store is built"
    if ctx.choice("compute_engine") != "spark" and ctx.choice("offline_store") != "spark":
        return "nothing runs on Spark (compute engine and offline store)"
    return None


@rule(
    "spark_settings",
    title="Spark settings: executors, memory and shuffle partitions of the Spark jobs",
    reads=("training.resources.cpus", "training.resources.memory_gb", "sources[].events_per_day"),
    after=("compute_engine", "offline_store"),
    thresholds=("spark_executor_cores", "spark_memory_overhead", "spark_tasks_per_core", "spark_rows_per_partition"),
    unless=_uses_spark,
    applies="the compute engine or the offline store is Spark",
)
def spark_settings(ctx: RuleContext) -> Outcome | None:
    """Size the Spark jobs (rollups, materialization, retrieval) from the spec's resources.

    The job's cores (training.resources.cpus) are split into executors of at most
    `spark_executor_cores`; its memory (memory_gb) is shared by the executors, less
    `spark_memory_overhead` off-heap; shuffle partitions are `spark_tasks_per_core` per core, or one
    per `spark_rows_per_partition` events a run when that is more. On one machine (local[*]) the
    driver does the work and gets an executor's memory.
    """
    res = ctx.spec.training.resources
    cores = max(1, math.floor(res.cpus))
    per = min(cores, THRESHOLDS["spark_executor_cores"])
    executors = max(1, cores // per)
    total_mb = int(res.memory_gb * 1024)
    memory_mb = max(512, int(total_mb / executors / (1 + THRESHOLDS["spark_memory_overhead"])))
    events, event_paths = events_per_run(ctx.spec)
    partitions = cores * THRESHOLDS["spark_tasks_per_core"]
    by_rows = math.ceil(events / THRESHOLDS["spark_rows_per_partition"]) if events else 0
    partitions = max(partitions, by_rows)
    conf = {
        "spark.executor.instances": str(executors),
        "spark.executor.cores": str(per),
        "spark.executor.memory": f"{memory_mb}m",
        "spark.driver.memory": f"{memory_mb}m",
        "spark.sql.shuffle.partitions": str(partitions),
        "spark.sql.session.timeZone": "UTC",
        # parquet timestamps every reader understands (Spark's default INT96 reads back without its time zone)
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    }
    if events and by_rows >= partitions:
        by = f"one per {THRESHOLDS['spark_rows_per_partition']:,} of {events:,} events a run"
    else:
        by = f"{THRESHOLDS['spark_tasks_per_core']} per core"
    return Outcome(
        f"{executors} executor{'s' if executors != 1 else ''} x {per} core{'s' if per != 1 else ''}, "
        f"{memory_mb}m each, {partitions} shuffle partitions",
        f"{res.cpus} CPUs and {res.memory_gb} GB (training.resources): {executors} executor(s) of {per} core(s) "
        f"and {memory_mb} MB heap each ({int(THRESHOLDS['spark_memory_overhead'] * 100)}% kept off-heap), "
        f"{partitions} shuffle partitions ({by}); on one machine the driver does the work with the same memory",
        [("training", "resources", "cpus"), ("training", "resources", "memory_gb"), *event_paths],
        [("Spark's defaults", "200 shuffle partitions and 1 GB executors, whatever the job")],
        value=conf,
    )
