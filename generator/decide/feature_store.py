"""Feature store (Feast): the rules (online and offline stores, registry, ingestion, materialization, views)
and their findings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from requirements_spec.models import FeatureViewSpec, FileSourceSpec, Spec, StreamSourceSpec, TableSourceSpec
from requirements_spec.types import duration_seconds, format_seconds

from .context import Conflict, Outcome, ReqPath, RuleContext
from .registry import finding, rule
from .table import Row, always, first_match
from .thresholds import THRESHOLDS
from .values import MATERIALIZATION, NAMES, RuleValue, typed

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
    reads the offline store as of each run.
    """
    if ctx.spec.features is None:
        return _no_features(ctx)
    if ctx.spec.serving.mode == "batch":
        return (
            "batch scoring reads point-in-time features from the offline store as of each run: nothing is "
            "materialized or read online (Feast's configuration keeps its default local SQLite file, never written)"
        )
    return None


@dataclass(frozen=True)
class _Load:
    """What the online store rule weighs: the serving load against the thresholds, and what it reads."""

    spec: Spec
    fast_ms: float  # threshold redis_below_p99_ms
    busy_rps: float  # threshold redis_from_rps
    tight: bool  # online serving with a p99 below fast_ms
    busy: bool  # online or async serving from busy_rps
    reads: tuple[ReqPath, ...]  # the serving requirements every outcome cites


def _load(spec: Spec) -> _Load:
    sv = spec.serving
    fast_ms, busy_rps = THRESHOLDS["redis_below_p99_ms"], THRESHOLDS["redis_from_rps"]
    return _Load(
        spec=spec,
        fast_ms=fast_ms,
        busy_rps=busy_rps,
        tight=sv.mode == "online" and sv.latency_p99_ms < fast_ms,
        busy=sv.mode in ("online", "async") and sv.throughput_rps >= busy_rps,
        reads=(LATENCY, THROUGHPUT),
    )


_SQLITE_WHY = "a file on one machine, one writer at a time"
_POSTGRES_WHY = "a network round trip and a query per lookup"


def _reuse_redis(f: _Load) -> Outcome:
    return Outcome(
        "redis",
        "the company already runs Redis (existing.broker): reuse it as the online store; in-memory "
        "single-row reads stay well under a millisecond",
        [BROKER, *f.reads],
        [("sqlite", f"{_SQLITE_WHY}; Redis is already there"), ("postgres", f"{_POSTGRES_WHY}; Redis is faster")],
    )


def _redis_for_load(f: _Load) -> Outcome:
    sv = f.spec.serving
    why = []
    if f.tight:
        why.append(f"p99 {sv.latency_p99_ms} ms is below {f.fast_ms} ms")
    if f.busy:
        why.append(f"{sv.throughput_rps} requests/s reach {f.busy_rps}")
    return Outcome(
        "redis",
        " and ".join(why) + ": features must come from memory; Redis single-row reads stay well under a millisecond",
        f.reads,
        [
            ("sqlite", f"{_SQLITE_WHY}: does not hold {'the latency' if f.tight else 'the throughput'}"),
            ("postgres", f"{_POSTGRES_WHY}: eats the budget"),
        ],
    )


def _reuse_postgres(f: _Load) -> Outcome:
    sv = f.spec.serving
    return Outcome(
        "postgres",
        f"the company runs PostgreSQL and a p99 of {sv.latency_p99_ms} ms at {sv.throughput_rps} requests/s "
        "leaves room for a query per lookup: reuse the database instead of adding Redis",
        [WAREHOUSE, *f.reads],
        [("redis", "one more service to run for latency the budget does not need"), ("sqlite", _SQLITE_WHY)],
    )


def _embedded_sqlite(f: _Load) -> Outcome:
    spec, sv = f.spec, f.spec.serving
    gapped = spec.autonomy == "air_gapped"
    where = "an air-gapped site" if gapped else f"one machine ({spec.existing.platform})"
    return Outcome(
        "sqlite",
        f"{where} at {sv.throughput_rps} requests/s with a {sv.latency_p99_ms} ms budget: an embedded "
        "SQLite file is enough and there is nothing to run",
        [("autonomy",) if gapped else PLATFORM, *f.reads],
        [
            ("redis", "one more service to run and secure; the budget does not need it"),
            ("postgres", "no PostgreSQL is running to reuse"),
        ],
    )


def _shared_redis(f: _Load) -> Outcome:
    return Outcome(
        "redis",
        f"platform {f.spec.existing.platform} runs several replicas that must share the online store over the network",
        [PLATFORM, *f.reads],
        [("sqlite", f"{_SQLITE_WHY}: replicas cannot share it"), ("postgres", "no PostgreSQL is running to reuse")],
    )


ONLINE_STORE_TABLE: tuple[Row[_Load], ...] = (
    Row(
        "the company runs Redis (`existing.broker: redis`)",
        "redis",
        lambda f: f.spec.existing.broker == "redis",
        _reuse_redis,
    ),
    Row(
        "online serving with a p99 below `redis_below_p99_ms`, or online/async serving from `redis_from_rps`",
        "redis",
        lambda f: f.tight or f.busy,
        _redis_for_load,
    ),
    Row(
        "the company runs PostgreSQL (`existing.warehouse: postgres`)",
        "postgres",
        lambda f: f.spec.existing.warehouse == "postgres",
        _reuse_postgres,
    ),
    Row(
        "an air-gapped site, or one machine (`existing.platform` local or docker-compose)",
        "sqlite",
        lambda f: f.spec.autonomy == "air_gapped" or f.spec.existing.platform in SINGLE_MACHINE,
        _embedded_sqlite,
    ),
    Row("otherwise: a platform of several machines", "redis", always, _shared_redis),
)


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
    table=ONLINE_STORE_TABLE,
)
def online_store(ctx: RuleContext) -> Outcome | None:
    """Pick the Feast online store from the latency budget, the throughput and what the company runs.

    In order: a Redis the company already runs is reused; online serving with a p99 below
    `redis_below_p99_ms`, or online/async serving from `redis_from_rps`, needs in-memory lookups
    (Redis); a company PostgreSQL is reused when the budget allows; air-gapped sites and single
    machines get SQLite (embedded, nothing to run); a multi-node platform gets Redis, because a
    SQLite file lives on one machine. Batch scoring has no online store: it reads the offline store.
    """
    if ctx.spec.features is None:
        return None
    return first_match(ONLINE_STORE_TABLE, _load(ctx.spec))


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


def _joined_catalog(spec: Spec) -> Outcome | None:
    """The registry of a joined feature catalog (existing.feature_registry), or None when none is joined."""
    catalog = spec.existing.feature_registry
    if catalog is None:
        return None
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
    joined = _joined_catalog(spec)
    if joined is not None:
        return joined
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
    nothing is stored, so they are always fresh and cost a little CPU per lookup: they run in Feast's
    python mode (lists in, lists out), not its pandas mode, which builds data frames at every request.
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
        "computed at request time from stored features and request values; nothing to materialize; in "
        "Feast's python mode, a few Python operations a request",
        reads,
        [
            ("precomputed views", "request values are not known in advance"),
            (
                "Feast's pandas mode",
                "builds data frames at every request: 1.4 ms of CPU a request against 0.1 ms in python mode, "
                "measured on the realtime preset's client",
            ),
        ],
        value=names,
    )


# ---------------------------------------------------------------- findings
def _interval_s(ctx: RuleContext) -> int:
    """The decided materialization interval (0 when nothing is materialized)."""
    mat = typed(ctx, "materialization", MATERIALIZATION)
    return mat["interval_s"] if mat is not None else 0


def _pushed(ctx: RuleContext) -> set[str]:
    """The sources whose values are pushed (stream sources with a push path), as decided by ``ingestion``."""
    names: list[str] = typed(ctx, "ingestion", NAMES) or []
    return set(names)


@finding("features.freshness_unreachable", "error", title="Freshness shorter than materialization can deliver")
def freshness_unreachable(ctx: RuleContext) -> Iterator[Conflict]:
    """Views fed only by batch sources are as old as the materialization interval; a freshness below the
    shortest interval the offline store sustains (threshold `min_materialization_interval_s`) cannot be met
    without a push path.
    """
    f = ctx.spec.features
    if f is None:
        return
    interval, pushed = _interval_s(ctx), _pushed(ctx)
    batch_only = [(i, v) for i, v in enumerate(f.views) if v.source not in pushed]
    if interval > duration_seconds(f.freshness) and batch_only:
        names = ", ".join(v.name for _, v in batch_only)
        yield Conflict(
            f"freshness {f.freshness} is shorter than the {format_seconds(interval)} the {ctx.choice('offline_store')} "
            f"offline store can materialize, and {names} {'is' if len(batch_only) == 1 else 'are'} fed by batch only",
            [FRESHNESS, WAREHOUSE, *(("features", "views", i, "source") for i, _ in batch_only)],
            f"relax features.freshness to {format_seconds(interval)} or more, or feed those views from a stream "
            "source with computation realtime/hybrid",
        )


@finding("features.realtime_without_push", "error", title="Realtime computation with no way to push")
def realtime_without_push(ctx: RuleContext) -> Iterator[Conflict]:
    """computation realtime/hybrid needs a stream source feeding a view or an on-demand view computed at
    request time; with neither, nothing is realtime.
    """
    f = ctx.spec.features
    if f is not None and f.computation != "precomputed" and not _pushed(ctx) and not f.on_demand:
        yield Conflict(
            f"computation is {f.computation} but no view reads a stream source and no on-demand view is declared",
            [COMPUTATION, ("features", "views")],
            "add a stream source (kind: stream) and read it from a view, declare an on-demand view, "
            "or set computation: precomputed",
        )


@finding("features.stream_without_broker", "warning", title="Stream source but no broker")
def stream_without_broker(ctx: RuleContext) -> Iterator[Conflict]:
    """A stream source names a topic, but existing.broker is none: no consumer is generated, the
    application must push events through the feature server's push API.
    """
    spec = ctx.spec
    if spec.features is None:
        return
    streams = {s.name for s in spec.sources if isinstance(s, StreamSourceSpec)}
    used_streams = sorted(streams & {v.source for v in spec.features.views})
    if used_streams and spec.existing.broker == "none":
        idx = [i for i, s in enumerate(spec.sources) if s.name in used_streams]
        yield Conflict(
            f"stream source(s) {', '.join(used_streams)} but existing.broker is none: the application must push "
            "events itself",
            [BROKER, *(("sources", i, "topic") for i in idx)],
            "set existing.broker to the broker carrying the topic, or waive: the application pushes through the "
            "feature server",
        )


@finding(
    "features.ttl_below_materialization", "warning", title="A view's TTL is shorter than the materialization interval"
)
def ttl_below_materialization(ctx: RuleContext) -> Iterator[Conflict]:
    """Values expire before the next materialization refreshes them, so lookups return nulls in between."""
    f = ctx.spec.features
    if f is None:
        return
    interval, pushed = _interval_s(ctx), _pushed(ctx)
    for i, v in enumerate(f.views):
        if interval and v.source not in pushed and duration_seconds(v.ttl) < interval:
            yield Conflict(
                f"view {v.name}: ttl {v.ttl} is shorter than the {format_seconds(interval)} materialization interval",
                [("features", "views", i, "ttl"), FRESHNESS],
                f"set the ttl of {v.name} to at least {format_seconds(interval)}",
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


@dataclass(frozen=True)
class _Rollups:
    """What the compute engine rule weighs: the warehouse, the aggregated views, their size and freshness."""

    warehouse: str
    names: list[str]  # the aggregated views
    events: int | None  # events a rollup run reads (events_per_run), None when no source states its rate
    threshold: int  # spark_from_events
    fresh_s: int  # features.freshness
    floor_s: int  # min_materialization_interval_s of spark: the shortest interval a Spark run sustains
    freshness: str
    reads: tuple[ReqPath, ...]  # what every outcome cites (the warehouse and the aggregations)
    event_reads: tuple[ReqPath, ...]  # the sources' events_per_day

    @property
    def rollups(self) -> str:
        return f"the rollups of {', '.join(self.names)}" if self.names else "no rollups (no view aggregates)"

    @property
    def size(self) -> str:
        return f"{self.events:,} events a run" if self.events is not None else "no events_per_day is stated"

    @property
    def large(self) -> bool:
        return self.events is not None and self.events >= self.threshold

    def outcome(
        self, engine: str, why: str, rejected: list[tuple[str, str]], *, batch: str = "local", sized: bool = False
    ) -> Outcome:
        value: dict[str, RuleValue] = {
            "engine": engine,
            "batch_engine": batch,
            "views": self.names,
            "events_per_run": self.events,
        }
        reads = [*self.reads, *(self.event_reads if sized else ()), *((FRESHNESS,) if sized and self.large else ())]
        return Outcome(engine, why, reads, rejected, value=value)


_SPARK_START = ("spark", "a Spark session's start-up and shuffle cost more than they save at this size")


def _rollups(spec: Spec) -> _Rollups:
    f = spec.features
    assert f is not None
    agg = aggregated_views(spec)
    events, event_paths = events_per_run(spec)
    return _Rollups(
        warehouse=spec.existing.warehouse,
        names=[v.name for _, v in agg],
        events=events,
        threshold=THRESHOLDS["spark_from_events"],
        fresh_s=duration_seconds(f.freshness),
        floor_s=THRESHOLDS["min_materialization_interval_s"]["spark"],
        freshness=f.freshness,
        reads=(WAREHOUSE, *(("features", "views", i, "aggregations") for i, _ in agg)),
        event_reads=tuple(event_paths),
    )


def _spark_warehouse(r: _Rollups) -> Outcome:
    return r.outcome(
        "spark",
        f"the events live in Spark: Spark computes {r.rollups} where the data are, and Feast's Spark engine "
        "(batch_engine spark.engine) materializes",
        [("local", "would pull every event of the lake into one process"), ("postgres", "no PostgreSQL holds them")],
        batch="spark.engine",
    )


def _postgres_warehouse(r: _Rollups) -> Outcome:
    how = (
        f"SQL inside PostgreSQL computes {r.rollups} (window functions over the event table), no event leaves "
        "the database; Feast's local engine materializes the rollup tables"
        if r.names
        else "Feast's local engine copies the latest rows from PostgreSQL into the online store"
    )
    return r.outcome(
        "postgres",
        f"PostgreSQL is the warehouse: {how}",
        [("spark", "a cluster to run for data the database already holds"), ("local", "would copy every event")],
    )


def _nothing_to_roll_up(r: _Rollups) -> Outcome:
    why = (
        "no view declares aggregations: materialization copies the latest rows, in process (Feast's local engine)"
        if not r.names
        else f"archgen computes no rollups in {r.warehouse} (see the finding features.aggregations_on_cloud_warehouse)"
    )
    return r.outcome("local", why, [_SPARK_START])


def _small_rollups(r: _Rollups) -> Outcome:
    return r.outcome(
        "local",
        f"{r.size}, below the {r.threshold:,} from which Spark takes over (spark_from_events): pandas computes "
        f"{r.rollups} in process, nothing to start",
        [_SPARK_START],
        sized=True,
    )


def _large_but_frequent(r: _Rollups) -> Outcome:
    return r.outcome(
        "local",
        f"{r.size} reach {r.threshold:,}, where Spark takes over, but the freshness {r.freshness} is shorter "
        f"than a Spark run sustains ({format_seconds(r.floor_s)}): pandas computes {r.rollups} in process; give the "
        "job the memory the events need",
        [("spark", f"start-up and scheduling of a Spark job every {r.freshness} do not fit")],
        sized=True,
    )


def _large_rollups(r: _Rollups) -> Outcome:
    return r.outcome(
        "spark",
        f"{r.size} (events_per_day times the longest window) reach {r.threshold:,}: a Spark session computes "
        f"{r.rollups} from the parquet files (SPARK_MASTER: local[*] on one machine, a cluster in production); the "
        "files stay the offline store",
        [("local", f"one process over {r.events:,} events: past {r.threshold:,} its memory outgrows a job's")],
        sized=True,
    )


COMPUTE_ENGINE_TABLE: tuple[Row[_Rollups], ...] = (
    Row("the warehouse is Spark", "spark", lambda r: r.warehouse == "spark", _spark_warehouse),
    Row("the warehouse is PostgreSQL", "postgres", lambda r: r.warehouse == "postgres", _postgres_warehouse),
    Row(
        "no view aggregates, or the warehouse is a cloud one (refused by a finding)",
        "local",
        lambda r: not r.names or r.warehouse not in ("files", "duckdb"),
        _nothing_to_roll_up,
    ),
    Row("parquet files, fewer events a run than `spark_from_events`", "local", lambda r: not r.large, _small_rollups),
    Row(
        "as many events or more, but a freshness below the `min_materialization_interval_s` of spark",
        "local",
        lambda r: r.fresh_s < r.floor_s,
        _large_but_frequent,
    ),
    Row("otherwise: many events and time for a Spark run", "spark", always, _large_rollups),
)


def _nothing_to_compute(ctx: RuleContext) -> str | None:
    """Why no compute engine applies: no features, or batch scoring with no view to roll up."""
    if ctx.spec.features is None:
        return _no_features(ctx)
    if ctx.spec.serving.mode == "batch" and not aggregated_views(ctx.spec):
        return (
            "batch scoring reads the offline store as of each run and no view aggregates: nothing to roll up and "
            "nothing to materialize"
        )
    return None


@rule(
    "compute_engine",
    title="Compute engine: where the rollups of raw events are computed and materialization runs",
    reads=("existing.warehouse", "features.views[].aggregations", "sources[].events_per_day", "features.freshness"),
    after=("offline_store",),
    alternatives=("local", "spark", "postgres"),
    choices=("local", "spark", "postgres"),
    thresholds=("spark_from_events", "min_materialization_interval_s"),
    unless=_nothing_to_compute,
    applies="the spec declares features, and something is rolled up or materialized (not batch scoring alone)",
    table=COMPUTE_ENGINE_TABLE,
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
    if ctx.spec.features is None:
        return None
    return first_match(COMPUTE_ENGINE_TABLE, _rollups(ctx.spec))


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
    memory_mb = max(512, int(res.memory_gb * 1024 / executors / (1 + THRESHOLDS["spark_memory_overhead"])))
    events, event_paths = events_per_run(ctx.spec)
    by_rows = math.ceil(events / THRESHOLDS["spark_rows_per_partition"]) if events else 0
    partitions = max(cores * THRESHOLDS["spark_tasks_per_core"], by_rows)
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


CLOUD_WAREHOUSES = ("bigquery", "snowflake", "redshift")


@finding(
    "features.aggregations_on_cloud_warehouse",
    "error",
    title="Aggregations over a warehouse archgen computes no rollups in",
)
def aggregations_on_cloud_warehouse(ctx: RuleContext) -> Iterator[Conflict]:
    """Rollups of raw events are computed in process (parquet files), on Spark or inside PostgreSQL; for
    BigQuery, Snowflake and Redshift archgen generates no rollup job, and Feast 0.67 computes none either.
    """
    wh = ctx.spec.existing.warehouse
    paths: list[ReqPath] = [("features", "views", i, "aggregations") for i, _ in aggregated_views(ctx.spec)]
    if wh in CLOUD_WAREHOUSES and paths:
        yield Conflict(
            f"views with aggregations need their rollups computed, and archgen computes none in {wh}",
            [*paths, WAREHOUSE],
            "compute the rollups in the warehouse and declare the result as a source of a view without "
            "aggregations, or keep the events in files, Spark or PostgreSQL",
        )


RULES = (
    online_store,
    offline_store,
    registry,
    ingestion,
    materialization,
    feature_views,
    on_demand_views,
    compute_engine,
    spark_settings,
)
FINDINGS = (
    freshness_unreachable,
    realtime_without_push,
    stream_without_broker,
    ttl_below_materialization,
    aggregations_on_cloud_warehouse,
)
