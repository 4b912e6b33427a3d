"""Incremental rollups: a run after new and late events gives the rows a full rebuild gives, on every engine.

The spec of tests/test_aggregation_e2e.py (sum, count, mean, min, max and count_distinct over 1d, 7d and 30d at a
daily grain) generates its rollup job three times: pandas over parquet files, Spark (local[2]) over the lake, SQL
inside a scratch PostgreSQL database. tests/aggregation_steps.py runs each job through the same steps, replacing
the raw events before each:

1. the events up to 12 days ago, up to then: a first run, a full rebuild;
2. the events up to now, and late ones: timestamped 2 to 6 days before the first run's watermark (within the
   lookback, the longest window), among them the first events of a new driver: only the boundaries from the
   earliest late grain on are recomputed;
3. the same again: nothing to recompute;
4. the same with ``--full``: the reference the incremental run must equal;
5. one more event 45 days back, beyond the lookback: the job rebuilds in full and says why;
6. up to 12 days ago again, before the watermark: the rows after it go.

Every rollup is compared with a pandas oracle computed from the events directly (the rows that exist and every
value), and the engines with each other. Compaction of the segment files is checked on pandas, in process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_aggregation_e2e import DAY, FEATURES, INTEGER, arch_of, oracle, raw_events, same, write_repo
from triton_harness import postgres_env, scratch_database

pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")

pytestmark = pytest.mark.slow

STEPS = Path(__file__).with_name("aggregation_steps.py")
SPAN = 30  # the longest window, in grains (days)


def _events(now: datetime) -> dict[str, Any]:
    """The event sets of the steps: before the first run, with the late ones, with one beyond the lookback."""
    events = raw_events(now)
    first = now - timedelta(days=12)
    before = events[events["event_timestamp"] <= first]
    rng = np.random.default_rng(7)
    late_times = [first - timedelta(days=d, hours=h) for d, h in ((2, 3), (4, 0), (5, 7), (6, 1), (3, 11))]
    late = pd.DataFrame(
        {
            "driver_id": [1, 2, 4, 9, 9],  # driver 9 appears first among the late events
            "event_timestamp": pd.to_datetime(late_times, utc=True),
            "fare": np.round(rng.gamma(2.0, 9.0, size=5), 2),
            "trips": rng.integers(1, 4, size=5).astype("int64"),
            "rider": rng.integers(100, 112, size=5).astype("int64"),
        }
    )
    grown = pd.concat([events, late], ignore_index=True)
    old = late.iloc[[0]].assign(event_timestamp=pd.Timestamp(now - timedelta(days=45)), driver_id=3)
    return {
        "first": first,
        "before": before,
        "grown": grown,
        "late": late,
        "older": pd.concat([grown, old], ignore_index=True),
    }


def _expected(events: Any, until: datetime) -> Any:
    """The rollup straight from the events: a row at every boundary up to ``until`` that is at most one span
    after one of the driver's events, each feature as the oracle computes it."""
    last = int(until.timestamp()) // DAY
    rows = []
    for driver, mine in events.assign(_g=_grains(events)).groupby("driver_id"):
        for b in sorted({b for g in mine["_g"] for b in range(g, g + SPAN + 1) if b <= last}):
            at = pd.Timestamp(b * DAY, unit="s", tz="UTC")
            rows.append({"driver_id": driver, "event_timestamp": at, **(oracle(events, driver, at) or {})})
    return pd.DataFrame(rows)


def _grains(events: Any) -> Any:
    """The boundary each event counts at: the first at or after it."""
    return -(-pd.to_datetime(events["event_timestamp"], utc=True).dt.as_unit("ns").astype("int64") // (DAY * 10**9))


def _sorted(frame: Any) -> Any:
    frame = frame.copy()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame.sort_values(["driver_id", "event_timestamp"]).reset_index(drop=True)


def _differences(got: Any, want: Any) -> list[Any]:
    got, want = _sorted(got), _sorted(want)
    keys = ["driver_id", "event_timestamp"]
    if got[keys].values.tolist() != want[keys].values.tolist():
        extra = got.merge(want[keys], on=keys, how="left", indicator=True).query("_merge == 'left_only'")
        missing = want.merge(got[keys], on=keys, how="left", indicator=True).query("_merge == 'left_only'")
        return [
            ("rows", len(got), len(want), extra[keys].head(5).values.tolist(), missing[keys].head(5).values.tolist())
        ]
    wrong = []
    for name in FEATURES:
        for i, (a, b) in enumerate(zip(got[name].tolist(), want[name].tolist(), strict=True)):
            if not same(a, b):
                wrong.append((name, got.loc[i, "driver_id"], str(got.loc[i, "event_timestamp"]), a, b))
    return wrong[:8]


@pytest.fixture(scope="module")
def stepped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every engine through the steps; per engine, per step: the snapshot and what the job said."""
    tmp = tmp_path_factory.mktemp("incremental")
    now = datetime.now(UTC).replace(microsecond=0)
    sets = _events(now)
    for name in ("before", "grown", "older"):
        sets[name].to_parquet(tmp / f"{name}.parquet", index=False)
    plan = [
        ("before", sets["first"], False),
        ("grown", now, False),
        ("grown", now, False),
        ("grown", now, True),
        ("older", now, False),
        ("older", sets["first"], False),
    ]
    engines = {"files": {}, "spark": {"SPARK_MASTER": "local[2]"}}
    pytest.importorskip("pyspark")
    steps: list[dict[str, Any]] = []
    with scratch_database("archgen_incr") as (db, user):
        engines["postgres"] = postgres_env(db, user)
        for engine, env in engines.items():
            repo = tmp / engine
            write_repo(arch_of(engine), repo)
            for i, (events, until, full) in enumerate(plan):
                steps.append(
                    {
                        "engine": engine,
                        "repo": str(repo),
                        "events": str(tmp / f"{events}.parquet"),
                        "until": until.isoformat(),
                        "full": full,
                        "snapshot": str(tmp / f"{engine}-{i}.parquet"),
                        "env": env,
                    }
                )
        (tmp / "steps.json").write_text(json.dumps(steps))
        done = subprocess.run(
            [sys.executable, str(STEPS), str(tmp / "steps.json"), str(tmp / "results.json")],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "PYSPARK_PYTHON": sys.executable},
        )
    assert done.returncode == 0, done.stderr[-6000:]
    results = json.loads((tmp / "results.json").read_text())
    out: dict[str, Any] = {"now": now, "sets": sets}
    for step, result in zip(steps, results, strict=True):
        out.setdefault(step["engine"], []).append({**result, "rollup": pd.read_parquet(step["snapshot"])})
    return out


ENGINES = ["files", "spark", "postgres"]


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ENGINES)
def test_new_and_late_events_recompute_only_what_they_change(stepped: dict[str, Any], engine: str) -> None:
    first, grown, again, full = stepped[engine][:4]
    sets, now = stepped["sets"], stepped["now"]
    assert "full rebuild" in first["said"] and "no state" in first["said"], first["said"]
    assert _differences(first["rollup"], _expected(sets["before"], sets["first"])) == []
    # the earliest late event is 6 days and 1 hour before the first run's watermark: its grain is 6 boundaries
    # back, so the rows from there on are recomputed and the older ones kept
    watermark = int(sets["first"].timestamp()) // DAY
    earliest = int(_grains(sets["late"]).min())
    kept = pd.Timestamp((earliest - 1) * DAY, unit="s", tz="UTC").isoformat()
    assert f"the boundaries after {kept} recomputed" in grown["said"], grown["said"]
    assert earliest <= watermark - 5
    assert _differences(grown["rollup"], full["rollup"]) == []
    assert _differences(grown["rollup"], _expected(sets["grown"], now)) == []
    assert 9 in set(grown["rollup"]["driver_id"])  # the driver the late events brought
    assert "up to date" in again["said"] and "0 rollup rows written" in again["said"], again["said"]
    assert _differences(again["rollup"], full["rollup"]) == []
    assert "full rebuild" in full["said"] and "--full" in full["said"]
    # the state: the watermark, and every event that counts at or before it (the later ones wait for a boundary)
    counted = int((_grains(sets["grown"]) <= int(now.timestamp()) // DAY).sum())
    for result in (grown, again, full):
        assert result["state"]["watermark"] == int(now.timestamp()) // DAY and result["state"]["complete"]
        grains = sorted(int(g) for g in result["state"]["counts"])
        assert sum(result["state"]["counts"].values()) == counted
        assert grains[0] == result["state"]["watermark"] - SPAN and grains[-1] <= result["state"]["watermark"]
    # the run writes the recomputed rows, not the rollup
    rows = int(grown["said"].split(" rollup rows written")[0].rsplit(" ", 1)[1])
    assert 0 < rows < len(full["rollup"]) / 2


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ENGINES)
def test_events_beyond_the_lookback_rebuild_and_an_earlier_until_drops_rows(
    stepped: dict[str, Any], engine: str
) -> None:
    older, earlier = stepped[engine][4:6]
    sets, now = stepped["sets"], stepped["now"]
    assert "full rebuild" in older["said"] and "further back than the lookback" in older["said"], older["said"]
    assert _differences(older["rollup"], _expected(sets["older"], now)) == []
    assert "up to date" in earlier["said"], earlier["said"]
    assert _differences(earlier["rollup"], _expected(sets["older"], sets["first"])) == []
    assert earlier["state"]["watermark"] == int(sets["first"].timestamp()) // DAY


@pytest.mark.postgres
def test_engines_agree_row_for_row(stepped: dict[str, Any]) -> None:
    for i in range(6):
        files = stepped["files"][i]["rollup"]
        for engine in ("spark", "postgres"):
            assert _differences(stepped[engine][i]["rollup"], files) == [], (engine, i)
        assert {c for c in files.columns if str(files[c].dtype).lower().startswith("int")} >= INTEGER


@pytest.mark.postgres
def test_file_rollups_grow_by_segments(stepped: dict[str, Any]) -> None:
    """An incremental run adds a segment for its boundaries and cuts the one the late events reached into."""
    for engine in ("files", "spark"):
        first, grown = stepped[engine][:2]
        assert all(name.startswith("seg-") for name in first["files"] + grown["files"]), first["files"]
        assert len({name.rsplit("-", 1)[0] if engine == "spark" else name for name in grown["files"]}) == 2


def test_pandas_merges_segments_past_the_limit(tmp_path: Path) -> None:
    """Day after day, each run adds a segment; past MAX_SEGMENTS they are merged, and the rollup stays exact."""
    repo = tmp_path / "files"
    write_repo(arch_of("files"), repo)
    spec = importlib.util.spec_from_file_location("aggregate_compaction", repo / "scripts" / "aggregate.py")
    assert spec is not None and spec.loader is not None
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    now = datetime.now(UTC).replace(microsecond=0)
    events = raw_events(now)
    (repo / "feature_repo" / "data").mkdir(parents=True)
    events.to_parquet(repo / "feature_repo" / "data" / "trip_events.parquet", index=False)
    folder = repo / "feature_repo" / "data" / "rollups" / "driver_trips"
    counts = []
    for back in range(job.MAX_SEGMENTS + 3, -1, -1):
        job.aggregate_all(now - timedelta(days=back), repo=repo / "feature_repo")
        counts.append(len(list(folder.glob("seg-*.parquet"))))
    assert max(counts) == job.MAX_SEGMENTS and counts[job.MAX_SEGMENTS] == 1  # the run past the limit merged them
    assert _differences(pd.read_parquet(folder), _expected(events, now)) == []


def test_a_rollup_with_no_complete_grain_yet_is_an_empty_typed_file(tmp_path: Path) -> None:
    """Events that all lie after the last grain boundary (a new source, or a long grain) roll up to no rows: the job
    writes one empty segment with the rollup's columns and types, so the feature view's file source reads as no rows
    (an empty folder broke Feast's materialization), and the next run, with complete grains, replaces it."""
    repo = tmp_path / "repo"
    write_repo(arch_of("files"), repo)
    now = datetime(2026, 5, 20, 12, tzinfo=UTC)
    events = raw_events(now)
    data = repo / "feature_repo" / "data"
    data.mkdir(parents=True, exist_ok=True)
    events.to_parquet(data / "trip_events.parquet", index=False, coerce_timestamps="us")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    script = str(repo / "scripts" / "aggregate.py")
    before = (events["event_timestamp"].min() - timedelta(hours=1)).isoformat()
    run = subprocess.run([sys.executable, script, "--until", before], cwd=repo, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    folder = data / "rollups" / "driver_trips"
    (segment,) = folder.glob("*.parquet")
    empty = pd.read_parquet(segment)
    assert empty.empty and {"driver_id", "event_timestamp", *FEATURES} <= set(empty.columns)
    assert isinstance(empty["event_timestamp"].dtype, pd.DatetimeTZDtype), empty.dtypes
    run = subprocess.run(
        [sys.executable, script, "--until", now.isoformat()], cwd=repo, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(pd.read_parquet(folder)) > 0
