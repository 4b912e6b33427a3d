"""End to end: rollups of raw events, computed by the generated jobs and served by Feast, against a pandas oracle.

One spec whose view declares aggregations (sum, count, mean, min, max and count_distinct over 1d, 7d and 30d at a
daily grain) is generated three times: with ``existing.warehouse: spark`` (the Spark offline store, the rollups
on Spark, Feast's Spark engine materializing), on the embedded default (parquet files, the rollups in pandas,
Feast's local engine) and with ``existing.warehouse: postgres`` (the rollups in SQL inside PostgreSQL). The same
random raw events go into each. A runner subprocess does what the generated Makefile does (scripts/aggregate.py,
``feast apply``, scripts/materialize.py, which recomputes the rollups and materializes), then reads historical
features for entity rows at many times and online features. The oracle computes every feature from the events
directly: at time t, ``function(column)`` over the events in ``(b - window, b]`` where ``b`` is the last day
boundary at or before t, nothing before an entity's first event.

The Spark and files variants share one runner process: one Spark session (local[2]) for the module.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from spec_parts import small_serving
from triton_harness import postgres_env, scratch_database

from generator.decide import decide
from generator.decide.architecture import Architecture
from generator.plan.plan import build_plan
from generator.render.render import render_plan
from requirements_spec.validate import parse_spec

pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).with_name("test_feature_repo_runner.py")
DAY = 86400
AGGREGATIONS = [
    {"function": "sum", "column": "fare", "windows": ["1d", "7d"]},
    {"function": "count", "column": "fare", "windows": ["1d", "7d", "30d"]},
    {"function": "mean", "column": "fare", "windows": ["7d"]},
    {"function": "min", "column": "fare", "windows": ["7d"]},
    {"function": "max", "column": "trips", "windows": ["7d"]},
    {"function": "sum", "column": "trips", "windows": ["30d"]},
    {"function": "count_distinct", "column": "rider", "windows": ["7d"]},
]
FEATURES = [f"{a['column']}_{a['function']}_{w}" for a in AGGREGATIONS for w in a["windows"]]
INTEGER = {
    "fare_count_1d",
    "fare_count_7d",
    "fare_count_30d",
    "trips_max_7d",
    "trips_sum_30d",
    "rider_count_distinct_7d",
}
DRIVERS = list(range(1, 9))


def spec_text(warehouse: str) -> str:
    data = {
        "version": 1,
        "project": {"name": "rides", "owners": {"data_engineering": "@acme/data", "data_science": "@acme/ds"}},
        "existing": {"warehouse": warehouse},
        "entities": [{"name": "driver", "join_key": "driver_id"}],
        "sources": [{"name": "trip_events", "kind": "file", "path": "data/trip_events.parquet"}],
        "features": {
            "freshness": "1d",
            "views": [
                {
                    "name": "driver_trips",
                    "entities": ["driver"],
                    "source": "trip_events",
                    "granularity": "day",
                    "ttl": "45d",
                    "fields": [
                        {"name": "fare", "dtype": "float64"},
                        {"name": "trips", "dtype": "int64"},
                        {"name": "rider", "dtype": "int64"},
                    ],
                    "aggregations": AGGREGATIONS,
                }
            ],
            "services": [{"name": "rollups", "features": [f"driver_trips.{f}" for f in FEATURES]}],
        },
        "serving": small_serving("rollups"),
    }
    return yaml.safe_dump(data, sort_keys=False)


def arch_of(warehouse: str) -> Architecture:
    return decide(parse_spec(spec_text(warehouse), "spec.yaml"))


def write_repo(arch: Architecture, root: Path) -> dict[str, bytes]:
    files = render_plan(build_plan(arch), arch)
    for path, data in files.items():
        if path.startswith(("feature_repo/", "scripts/")) or path == "serving/system_data.py":
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return files


# ------------------------------------------------------------------ the events and the oracle
def raw_events(now: datetime) -> Any:
    """Events over the last 50 days: busy and quiet drivers, a driver that stops for 12 days, events at midnight."""
    rng = np.random.default_rng(20)
    start = now - timedelta(days=50)
    rows = []
    for driver in DRIVERS:
        n = int(rng.integers(15, 80))
        offsets = rng.integers(0, 50 * DAY, size=n)
        if driver == 3:  # a gap: nothing between days 20 and 32, so windows empty out and refill
            offsets = offsets[(offsets < 20 * DAY) | (offsets > 32 * DAY)]
        if driver == 5:  # starts late
            offsets = offsets[offsets > 40 * DAY]
        for off in offsets:
            rows.append((driver, start + timedelta(seconds=int(off))))
    midnight = datetime.fromtimestamp(int(now.timestamp()) // DAY * DAY - 3 * DAY, tz=UTC)
    rows += [(2, midnight), (2, midnight), (7, midnight - timedelta(days=9))]  # exactly on a boundary
    frame = pd.DataFrame(rows, columns=["driver_id", "event_timestamp"])
    frame["fare"] = np.round(rng.gamma(2.0, 9.0, size=len(frame)), 2)
    frame["trips"] = rng.integers(1, 4, size=len(frame)).astype("int64")
    frame["rider"] = rng.integers(100, 112, size=len(frame)).astype("int64")
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame.sort_values("event_timestamp").reset_index(drop=True)


def oracle(events: Any, driver: int, at: Any) -> dict[str, Any] | None:
    """Every feature of ``driver`` as Feast must serve it at time ``at``, straight from the events."""
    at = pd.Timestamp(at)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    b = pd.Timestamp(int(at.timestamp()) // DAY * DAY, unit="s", tz="UTC")
    mine = events[events["driver_id"] == driver]
    if not (mine["event_timestamp"] <= b).any():
        return None
    out: dict[str, Any] = {}
    for agg in AGGREGATIONS:
        for w in agg["windows"]:
            days = int(w[:-1])
            inside = mine[(mine["event_timestamp"] > b - pd.Timedelta(days=days)) & (mine["event_timestamp"] <= b)]
            col = inside[agg["column"]]
            empty = col.empty
            out[f"{agg['column']}_{agg['function']}_{w}"] = {
                "sum": col.sum(),
                "count": len(col),
                "mean": None if empty else col.mean(),
                "min": None if empty else col.min(),
                "max": None if empty else col.max(),
                "count_distinct": col.nunique(),
            }[agg["function"]]
    return out


def missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def same(expected: Any, got: Any) -> bool:
    if missing(expected) or missing(got):
        return missing(expected) and missing(got)
    return math.isclose(float(expected), float(got), rel_tol=1e-9, abs_tol=1e-9)


def entity_rows(events: Any, now: datetime) -> Any:
    """Times to ask at: random ones, just before and after boundaries, before a driver's first event, in a gap."""
    rng = np.random.default_rng(21)
    rows = []
    for driver in DRIVERS:
        for off in rng.integers(0, 49 * DAY, size=6):
            rows.append((driver, now - timedelta(seconds=int(off))))
        rows.append((driver, now - timedelta(days=2, seconds=-1)))  # a second past a boundary
        rows.append((driver, now - timedelta(days=2, seconds=1)))
    rows += [(5, now - timedelta(days=45)), (3, now - timedelta(days=22)), (3, now - timedelta(days=25))]
    frame = pd.DataFrame(rows, columns=["driver_id", "event_timestamp"])
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame


# ------------------------------------------------------------------ the runs
class Variant:
    def __init__(self, warehouse: str, root: Path, now: datetime, events: Any, env: dict[str, str]) -> None:
        self.warehouse, self.root, self.now, self.events, self.env = warehouse, root, now, events, env
        self.arch = arch_of(warehouse)
        self.files = write_repo(self.arch, root)
        data = root / "feature_repo" / "data"
        data.mkdir(parents=True, exist_ok=True)
        # microseconds: Spark reads no nanosecond parquet timestamps
        events.to_parquet(data / "trip_events.parquet", index=False, coerce_timestamps="us")
        self.entity_df = entity_rows(events, now)
        self.entity_df.to_parquet(root / "entity_rows.parquet", index=False)

    def request(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "root": str(self.root),
            "end": self.now.isoformat(),
            "before_apply": ["aggregate.py"],
            "online": {"rollups": [{"driver_id": d} for d in DRIVERS]},
            "direct": [],
            "historical": {
                "rollups": {"entity_df": str(self.root / "entity_rows.parquet"), "out": str(self.root / "hist.parquet")}
            },
            "env": self.env,
        }
        if self.warehouse != "postgres":  # then late events, and materialization again a minute later
            self.late = late_events(self.events, self.now)
            self.late.to_parquet(self.root / "late_events.parquet", index=False, coerce_timestamps="us")
            out["late"] = {
                "events": str(self.root / "late_events.parquet"),
                "target": str(self.root / "feature_repo" / "data" / "trip_events.parquet"),
                "end": (self.now + timedelta(minutes=1)).isoformat(),
                "online": {"rollups": [{"driver_id": d} for d in DRIVERS]},
            }
        return out


def late_events(events: Any, now: datetime) -> Any:
    """The events and three more, two hours before the last day boundary: the rollup row materialization loaded
    last changes after it was loaded."""
    boundary = pd.Timestamp(int(now.timestamp()) // DAY * DAY - 2 * 3600, unit="s", tz="UTC")
    more = pd.DataFrame(
        {
            "driver_id": [1, 4, 6],
            "event_timestamp": [boundary] * 3,
            "fare": [301.5, 7.25, 88.0],
            "trips": np.array([9, 1, 2], dtype="int64"),
            "rider": np.array([150, 151, 152], dtype="int64"),
        }
    )
    return pd.concat([events, more], ignore_index=True)


def run(variants: list[Variant], tmp: Path) -> list[dict[str, Any]]:
    requests, results = tmp / "requests.json", tmp / "results.json"
    requests.write_text(json.dumps([v.request() for v in variants]))
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(requests), str(results)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stderr[-6000:]
    return list(json.loads(results.read_text()))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Variant, dict[str, Any]]]:
    pytest.importorskip("pyspark")
    tmp = tmp_path_factory.mktemp("aggregations")
    now = datetime.now(UTC).replace(microsecond=0)  # Feast's incremental materialization starts one ttl before now
    events = raw_events(now)
    spark_env = {"SPARK_MASTER": "local[2]"}
    variants = [
        Variant("spark", tmp / "spark", now, events, spark_env),
        Variant("files", tmp / "files", now, events, {}),
    ]
    return {v.warehouse: (v, r) for v, r in zip(variants, run(variants, tmp), strict=True)}


def check_against_oracle(variant: Variant, result: dict[str, Any]) -> None:
    hist = pd.read_parquet(result["historical"]["rollups"])
    hist["event_timestamp"] = pd.to_datetime(hist["event_timestamp"], utc=True)
    # the file offline store leaves out entity rows no rollup covers; Spark and PostgreSQL return them empty
    rows = variant.entity_df.merge(hist, on=["driver_id", "event_timestamp"], how="left")
    assert len(rows) == len(variant.entity_df)
    wrong = []
    for row in rows.to_dict("records"):
        want = oracle(variant.events, row["driver_id"], row["event_timestamp"])
        for name in FEATURES:
            if not same(None if want is None else want[name], row[name]):
                wrong.append((row["driver_id"], str(row["event_timestamp"]), name, want and want[name], row[name]))
    assert wrong == [], f"{variant.warehouse}: {len(wrong)} historical values differ from the oracle: {wrong[:8]}"
    assert sum(oracle(variant.events, d, t) is None for d, t in variant.entity_df.itertuples(index=False)) >= 1
    online = result["online"]["rollups"]
    for i, driver in enumerate(online["driver_id"]):
        want = oracle(variant.events, driver, variant.now)
        assert want is not None
        for name in FEATURES:
            assert same(want[name], online[name][i]), (variant.warehouse, driver, name, want[name], online[name][i])


@pytest.mark.parametrize("warehouse", ["spark", "files"])
def test_rollups_are_point_in_time_correct_and_served_latest(runs: Any, warehouse: str) -> None:
    """Historical rows equal the oracle at their own time; the online read equals it now."""
    variant, result = runs[warehouse]
    check_against_oracle(variant, result)


@pytest.mark.parametrize("warehouse", ["spark", "files"])
def test_late_events_reach_the_online_store(runs: Any, warehouse: str) -> None:
    """Late events change the rollup row materialization already loaded: the next materialization loads it again."""
    variant, result = runs[warehouse]
    online = result["late_online"]["rollups"]
    end = variant.now + timedelta(minutes=1)
    changed = 0
    for i, driver in enumerate(online["driver_id"]):
        want, before = oracle(variant.late, driver, end), oracle(variant.events, driver, end)
        assert want is not None and before is not None
        changed += want != before
        for name in FEATURES:
            assert same(want[name], online[name][i]), (warehouse, driver, name, want[name], online[name][i])
    assert changed == 3


def test_spark_and_the_embedded_default_compute_the_same_rollups(runs: Any) -> None:
    frames = {}
    for warehouse, (variant, _) in runs.items():
        rollup = pd.read_parquet(variant.root / "feature_repo" / "data" / "rollups" / "driver_trips")
        rollup["event_timestamp"] = pd.to_datetime(rollup["event_timestamp"], utc=True)
        frames[warehouse] = rollup.sort_values(["driver_id", "event_timestamp"]).reset_index(drop=True)
    spark, files = frames["spark"], frames["files"]
    assert list(spark["driver_id"]) == list(files["driver_id"])
    assert (spark["event_timestamp"] == files["event_timestamp"]).all()
    for name in FEATURES:
        pairs = zip(spark[name].tolist(), files[name].tolist(), strict=True)
        assert all(same(a, b) for a, b in pairs), name
    assert len(spark) > 8 * 30


def test_each_variant_names_its_engine(runs: Any) -> None:
    spark, _ = runs["spark"]
    conf = yaml.safe_load(spark.files["feature_repo/feature_store.yaml"])
    assert conf["batch_engine"]["type"] == "spark.engine"
    assert conf["batch_engine"]["spark_conf"] == conf["offline_store"]["spark_conf"]
    assert conf["offline_store"]["spark_conf"]["spark.sql.shuffle.partitions"] == "3"
    assert spark.arch.decision("compute_engine").choice == "spark"
    files, _ = runs["files"]
    assert yaml.safe_load(files.files["feature_repo/feature_store.yaml"])["batch_engine"] == {"type": "local"}
    assert files.arch.decision("compute_engine").choice == "local"


@pytest.mark.postgres
def test_postgres_computes_the_rollups_in_sql(runs: Any, tmp_path: Path) -> None:
    """The same spec on PostgreSQL: the rollups are SQL inside the database, served as the oracle says."""
    psycopg = pytest.importorskip("psycopg")
    files_variant, _ = runs["files"]
    with scratch_database("archgen_agg") as (db, user):
        env = postgres_env(db, user)
        variant = Variant("postgres", tmp_path / "postgres", files_variant.now, files_variant.events, env)
        with psycopg.connect(host="127.0.0.1", dbname=db, user=user, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE trip_events (driver_id bigint, event_timestamp timestamptz, fare double precision, "
                "trips bigint, rider bigint)"
            )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO trip_events VALUES (%s, %s, %s, %s, %s)",
                    [
                        (int(r.driver_id), r.event_timestamp.to_pydatetime(), float(r.fare), int(r.trips), int(r.rider))
                        for r in variant.events.itertuples(index=False)
                    ],
                )
        (result,) = run([variant], tmp_path)
        check_against_oracle(variant, result)
        assert variant.arch.decision("compute_engine").choice == "postgres"
