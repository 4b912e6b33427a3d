"""Rollups of a counted string column, and a plain view of the events a rollup reads (in process, quick).

tests/specs/ticket_rollups.yaml (found by the drawn specs of tests/test_any_spec_e2e.py): a weekly view counts a
string column (count, count_distinct) beside a mean and a max of a numeric one, and a daily view of the same
events with a 2-day ttl and a hashed personal field does not aggregate. The generated rollup job keeps per grain
only what each column's functions read (no sum of strings, in pandas, in PostgreSQL's SQL or in Spark) and reads
the raw events (the protected copy is written by materialization, after the first rollup run); the sample data
gives every id of the plain view an event within its ttl. Its generated system runs end to end in
tests/test_any_spec_e2e.py.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from generator.generate import generate

pd = pytest.importorskip("pandas")

TICKETS = Path(__file__).parent / "specs" / "ticket_rollups.yaml"
NOW = datetime(2025, 6, 4, 12, tzinfo=UTC)  # a Wednesday: the week boundaries fall on Thursdays (UTC epoch)


def _repo(tmp_path: Path, warehouse: str) -> Path:
    data = yaml.safe_load(TICKETS.read_text())
    data["existing"]["warehouse"] = warehouse
    if warehouse == "files":
        data["sources"] = [
            {"name": s["name"], "kind": "file", "path": f"data/{s['name']}.parquet"} for s in data["sources"]
        ]
    spec = tmp_path / f"{warehouse}.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    repo = tmp_path / warehouse
    for path, content in generate(spec).files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return repo


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_{path.parent.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _view(module: Any, name: str) -> dict[str, Any]:
    return next(v for v in module.VIEWS if v["view"] == name)


def test_a_counted_string_column_holds_no_sum_min_or_max(tmp_path: Path) -> None:
    aggregate = _load(_repo(tmp_path, "files") / "scripts" / "aggregate.py")
    view = _view(aggregate, "customer_weekly")
    assert view["partials"] == {"channel": ["count"], "wait_minutes": ["count", "sum", "max"]}
    assert view["events"]["path"] == "data/tickets.parquet"  # not data/protected/tickets.parquet
    week = timedelta(weeks=1)
    times = [NOW - 3 * week, NOW - 2 * week, NOW - week - timedelta(days=1), NOW - timedelta(days=1), NOW]
    events = pd.DataFrame(
        {
            "customer_ref": ["c1"] * 5,
            "event_timestamp": pd.to_datetime(times, utc=True),
            "channel": ["mail", "phone", "mail", "chat", "chat"],
            "wait_minutes": pd.array([10, 20, 30, 40, 50], dtype="int64"),
        }
    )
    out = aggregate.rollup_frame(events, view, NOW + timedelta(days=2))
    # the last boundary, Thursday after NOW: its week holds NOW and the day before, its 4 weeks every event
    last = out.sort_values("event_timestamp").iloc[-1]
    assert last["event_timestamp"] == pd.Timestamp("2025-06-05", tz="UTC")
    assert last["channel_count_1w"] == 2 and last["wait_minutes_mean_1w"] == 45.0
    assert last["channel_count_4w"] == 5 and last["channel_count_distinct_4w"] == 3
    assert last["wait_minutes_max_4w"] == 50


def test_the_rollup_sql_sums_no_string_column_and_reads_the_raw_events(tmp_path: Path) -> None:
    aggregate = _load(_repo(tmp_path, "postgres") / "scripts" / "aggregate.py")
    view = _view(aggregate, "customer_weekly")
    sql = aggregate.rollup_sql(view, "customer_weekly_rollup")
    assert view["events"]["table"] == "public.support_tickets" and "support_tickets_protected" not in sql
    assert 'count("channel")' in sql and 'sum("wait_minutes")' in sql
    assert 'sum("channel")' not in sql and 'min("channel")' not in sql and 'max("channel")' not in sql


def test_the_plain_view_of_rolled_up_events_has_a_value_within_its_ttl(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "files")
    sys.path.insert(0, str(repo))
    try:
        sample = _load(repo / "scripts" / "generate_sample_data.py")
        frames = sample.generate(seed=42, n_entities=20, n_labels=100, now=NOW)
    finally:
        sys.path.remove(str(repo))
        for name in [m for m in sys.modules if m == "serving" or m.startswith("serving.")]:
            del sys.modules[name]
    tickets = frames["tickets"]
    recent = tickets[tickets["event_timestamp"] > NOW - timedelta(days=2)]  # the ttl of customer_product_latest
    pairs = set(zip(recent["customer_ref"], recent["product_id"], strict=True))
    assert len(pairs) == 20, sorted(pairs)
