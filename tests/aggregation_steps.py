"""Runs a generated rollup job (scripts/aggregate.py) step by step: a subprocess of test_aggregation_incremental.py.

Not a test module by itself: ``python tests/aggregation_steps.py STEPS.json RESULTS.json``. Each step puts a set of
raw events in place (the parquet file the view reads, or for PostgreSQL the event table, replaced), runs
``aggregate_all`` of the repository's generated job (incremental unless the step says ``full``), then writes the
whole rollup as it stands to a parquet snapshot and records what the job printed and the rollup's files. One
process for every step: the Spark repositories share one Spark session, and each generated module is loaded once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

EVENT_COLUMNS = "driver_id bigint, event_timestamp timestamptz, fare double precision, trips bigint, rider bigint"


def _module(repo: Path, cache: dict[Path, Any]) -> Any:
    if repo not in cache:
        spec = importlib.util.spec_from_file_location(f"aggregate_{len(cache)}", repo / "scripts" / "aggregate.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cache[repo] = module
    return cache[repo]


def _connect() -> Any:
    import psycopg

    return psycopg.connect(
        host=os.environ["POSTGRES_HOST"], dbname=os.environ["POSTGRES_DB"], user=os.environ["POSTGRES_USER"]
    )


def _put_events(step: dict[str, Any], view: dict[str, Any]) -> None:
    import pandas as pd

    events = pd.read_parquet(step["events"])
    repo = Path(step["repo"]) / "feature_repo"
    if step["engine"] != "postgres":
        target = repo / view["events"]["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        events.to_parquet(target.with_suffix(".tmp"), index=False, coerce_timestamps="us")
        target.with_suffix(".tmp").replace(target)
        return
    with _connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {view['events']['table']}")
        cur.execute(f"CREATE TABLE {view['events']['table']} ({EVENT_COLUMNS})")
        cur.executemany(
            f"INSERT INTO {view['events']['table']} VALUES (%s, %s, %s, %s, %s)",
            [
                (int(r.driver_id), r.event_timestamp.to_pydatetime(), float(r.fare), int(r.trips), int(r.rider))
                for r in events.itertuples(index=False)
            ],
        )


def _snapshot(step: dict[str, Any], view: dict[str, Any]) -> tuple[Any, list[str], Any]:
    """The rollup as it stands, its files (file engines), and the job's state."""
    import pandas as pd

    repo = Path(step["repo"]) / "feature_repo"
    if step["engine"] != "postgres":
        folder = repo / view["path"]
        files = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        state_file = repo / view["state"]
        return pd.read_parquet(folder), files, json.loads(state_file.read_text())
    with _connect() as conn:
        cur = conn.execute(f"SELECT * FROM {view['table']}")
        frame = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])
        (state,) = conn.execute(f"SELECT state FROM {view['state']}").fetchone() or (None,)
    return frame, [], state


def main(steps_path: str, results_path: str) -> None:
    steps = json.loads(Path(steps_path).read_text())
    cache: dict[Path, Any] = {}
    results = []
    for step in steps:
        os.environ.update(step.get("env", {}))
        repo = Path(step["repo"])
        module = _module(repo, cache)
        (view,) = module.VIEWS
        _put_events(step, view)
        said = io.StringIO()
        with contextlib.redirect_stderr(said):
            module.aggregate_all(datetime.fromisoformat(step["until"]), repo=repo / "feature_repo", full=step["full"])
        frame, files, state = _snapshot(step, view)
        frame.to_parquet(step["snapshot"], index=False)
        results.append({"said": said.getvalue(), "files": files, "state": state})
        print(f"{step['engine']}: {said.getvalue().strip()}", file=sys.stderr)
    Path(results_path).write_text(json.dumps(results))
    for repo in cache:  # the rollups' staging folders are gone after every run
        staging = repo / "feature_repo" / "data" / "rollups" / "_staging"
        assert not staging.exists() or not any(staging.iterdir()), sorted(staging.rglob("*"))
        shutil.rmtree(staging, ignore_errors=True)
    os._exit(0)  # no waiting on the JVM's shutdown


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
