"""Feature store rules (Feast): online and offline stores, registry, ingestion, materialization, views."""

from __future__ import annotations

from requirements_spec.models import StreamSourceSpec
from requirements_spec.types import duration_seconds, format_seconds

from .context import Outcome, ReqPath, RuleContext
from .registry import rule
from .thresholds import THRESHOLDS

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


def _nothing_online(ctx: RuleContext) -> str | None:
    """The online store and its materialization apply only where something reads features online: batch scoring
    reads the offline store as of each run."""
    if ctx.spec.features is None:
        return _no_features(ctx)
    if ctx.spec.serving.mode == "batch":
        return (
            "batch scoring reads point-in-time features from the offline store as of each run: nothing is "
            "materialized or read online (Feast's configuration keeps its default local SQLite file, never written)"
        )
    return None


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
    unless=_nothing_online,
    applies="the spec declares features and something reads them online (every runtime but batch scoring)",
)
def online_store(ctx: RuleContext) -> Outcome | None:
    """Pick the Feast online store from the latency budget, the throughput and what the company runs.

    In order: a Redis the company already runs is reused; online serving with a p99 below
    `redis_below_p99_ms`, or online/async serving from `redis_from_rps`, needs in-memory lookups
    (Redis); a company PostgreSQL is reused when the budget allows; air-gapped sites and single
    machines get SQLite (embedded, nothing to run); a multi-node platform gets Redis, because a
    SQLite file lives on one machine. Batch scoring has no online store: it reads the offline store.
    """
    spec = ctx.spec
    if spec.features is None:
        return None
    ex, sv = spec.existing, spec.serving
    fast_ms, busy_rps = THRESHOLDS["redis_below_p99_ms"], THRESHOLDS["redis_from_rps"]
    tight = sv.mode == "online" and sv.latency_p99_ms < fast_ms
    busy = sv.mode in ("online", "async") and sv.throughput_rps >= busy_rps
    reads: list[ReqPath] = [LATENCY, THROUGHPUT]
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
            f"the company runs PostgreSQL and a p99 of {sv.latency_p99_ms} ms at {sv.throughput_rps} requests/s "
            "leaves room for a query per lookup: reuse the database instead of adding Redis",
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
    reads=("existing.platform", "delivery.mlops_level"),
    alternatives=("file", "sql"),
    choices=("file", "sql"),
    unless=_no_features,
    applies="the spec declares features",
)
def registry(ctx: RuleContext) -> Outcome | None:
    """A file registry on one machine; a SQL registry (PostgreSQL) on Kubernetes or at MLOps level 2.

    Many writers (CI applying definitions, jobs, several replicas of the feature server) need a
    registry with transactions; one machine does not.
    """
    spec = ctx.spec
    if spec.features is None:
        return None
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
        where = (
            "read from the offline store as of each scoring run"
            if ctx.spec.serving.mode == "batch"
            else "materialized into the online store on a schedule"
        )
        return Outcome(
            "batch",
            f"features are precomputed: batch sources, {where} at the declared granularity",
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
    unless=_nothing_online,
    applies="the spec declares features and something reads them online (every runtime but batch scoring)",
)
def materialization(ctx: RuleContext) -> Outcome | None:
    """Materialize at most every `freshness`, on a cron step that divides the hour or the day.

    The interval is the freshness, capped by the finest pre-aggregation grain of the views (a
    daily grain is never refreshed less than daily) and by `max_materialization_interval_s`, then
    rounded down to a step that divides the hour or the day so runs land on grain boundaries. It
    is never shorter than the offline store sustains (`min_materialization_interval_s`); when the
    freshness asks for less and no push path covers the views, a finding says so. Batch scoring
    materializes nothing: it reads the offline store as of each run.
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
