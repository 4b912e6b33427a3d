"""Rollup benchmark: the generated aggregation job on a local Spark session and in process (pandas), one run.

Generates the rollup job (scripts/aggregate.py) of one spec twice: on the embedded default (the local engine,
pandas) and with the compute engine on Spark over the same parquet files. For each size (default 100k, 1M, 3M and
10M events: 10,000 drivers over 30 days; sum, count and mean of a fare over 1d, 7d and 30d, count_distinct of
riders over 7d, at a daily grain) each engine runs in a fresh process, which reports its wall time and peak
memory (the Python process, and the Spark JVM it started). Spark's time includes starting its session: a scheduled
run starts one each time. Prints a table and the size from which Spark is faster on this machine (interpolated
between the sizes measured, extrapolated linearly past the largest), the figure `spark_from_events` in
generator/rules/thresholds.py should hold for this hardware. A benchmark, not a test: it asserts nothing.

    .venv/bin/python bench/bench_aggregation.py [--sizes 100000 1000000 3000000 10000000] [--spark-master local[2]]

On a machine shared with other work the figures are noisy: run it when the machine is quiet, and more than once.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPEC = """
version: 1
project: {{name: bench_rides, owners: {{data_engineering: "@acme/data", data_science: "@acme/ds"}}}}
existing: {{warehouse: files}}
entities: [{{name: driver, join_key: driver_id}}]
sources: [{{name: trips, kind: file, path: data/trips.parquet, events_per_day: {events_per_day}}}]
training: {{trigger: manual, resources: {{cpus: {cpus}, memory_gb: {memory_gb}}}}}
features:
  freshness: 1d
  views:
    - name: driver_trips
      entities: [driver]
      source: trips
      granularity: day
      ttl: 30d
      fields: [{{name: fare, dtype: float64}}, {{name: rider, dtype: int64}}]
      aggregations:
        - {{function: sum, column: fare, windows: [1d, 7d, 30d]}}
        - {{function: count, column: fare, windows: [1d, 7d, 30d]}}
        - {{function: mean, column: fare, windows: [7d]}}
        - {{function: count_distinct, column: rider, windows: [7d]}}
  services: [{{name: rollups, features: [driver_trips.fare_sum_7d]}}]
serving:
  latency_p99_ms: 100
  throughput_rps: 10
  models:
    - {{name: ranker, framework: sklearn, feature_service: rollups, outputs: [{{name: score, dtype: fp32, dims: [1]}}]}}
"""
DRIVERS = 10_000
DAYS = 30

# one measured run, in a fresh process: python bench_aggregation.py --child ENGINE SCRIPT REPO UNTIL
CHILD = "--child"


def child(engine: str, script: str, repo: str, until: str) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("aggregate", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    view = module.VIEWS[0]
    started = time.perf_counter()
    if engine == "spark":
        spark = module.spark_session()
        rows, _ = module.rollup_spark(spark, view, datetime.fromisoformat(until), Path(repo))
        seconds = time.perf_counter() - started
        jvm = _peak_mb(spark.sparkContext._gateway.proc.pid)  # the JVM pyspark started (spark-submit execs java)
        spark.stop()
    else:
        rows, _ = module.rollup_local(view, datetime.fromisoformat(until), Path(repo))
        seconds, jvm = time.perf_counter() - started, 0.0
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rows": rows, "python_mb": own, "jvm_mb": jvm}), flush=True)
    os._exit(0)  # no waiting on the JVM's shutdown


def _peak_mb(pid: int) -> float:
    """Peak resident memory of a process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def generate(spec_text: str, out: Path) -> None:
    from generator.decide import decide
    from generator.plan.plan import build_plan
    from generator.render.render import render_plan
    from requirements_spec.validate import parse_spec

    arch = decide(parse_spec(spec_text, "bench.yaml"))
    for path, data in render_plan(build_plan(arch), arch).items():
        if path == "scripts/aggregate.py":
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            (out / path).write_bytes(data)
    print(f"  {out.name}: compute_engine = {arch.decision('compute_engine').choice}", file=sys.stderr)


def write_events(path: Path, n: int, now: datetime) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(n)
    start = int(now.timestamp()) - DAYS * 86400
    frame = pd.DataFrame(
        {
            "driver_id": rng.integers(0, DRIVERS, n).astype("int64"),
            "event_timestamp": pd.to_datetime(start + rng.integers(0, DAYS * 86400, n), unit="s", utc=True),
            "fare": rng.gamma(2.0, 9.0, n),
            "rider": rng.integers(0, 50_000, n).astype("int64"),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)


def measure(engine: str, root: Path, repo: Path, until: str, master: str) -> dict[str, Any]:
    env = {**os.environ, "SPARK_MASTER": master, "PYSPARK_PYTHON": sys.executable}
    script = root / engine / "scripts" / "aggregate.py"
    done = subprocess.run(
        [sys.executable, __file__, CHILD, engine, str(script), str(repo), until],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def crossover(sizes: list[int], local: list[float], spark: list[float]) -> str:
    """The size from which Spark is faster: between two measured sizes, or extrapolated from the last two."""
    for i in range(1, len(sizes)):
        before, after = spark[i - 1] - local[i - 1], spark[i] - local[i]
        if before > 0 >= after:
            n = sizes[i - 1] + (sizes[i] - sizes[i - 1]) * before / (before - after)
            return f"{n:,.0f} events (between {sizes[i - 1]:,} and {sizes[i]:,})"
    if spark[0] <= local[0]:
        return f"at or below {sizes[0]:,} events (the smallest size measured)"
    if len(sizes) < 2:
        return "unknown: measure more than one size"
    slope_local = (local[-1] - local[-2]) / (sizes[-1] - sizes[-2])
    slope_spark = (spark[-1] - spark[-2]) / (sizes[-1] - sizes[-2])
    if slope_spark >= slope_local:
        return f"none up to {sizes[-1]:,} events, and Spark grows no slower here: not on this machine"
    n = sizes[-1] + (spark[-1] - local[-1]) / (slope_local - slope_spark)
    return f"about {n:,.0f} events (extrapolated linearly past {sizes[-1]:,})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="training.resources.cpus of the spec")
    parser.add_argument("--memory-gb", type=int, default=4, help="training.resources.memory_gb of the spec")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    until = now.isoformat()
    results: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="bench_aggregation_") as tmp:
        root = Path(tmp)
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; Spark master {args.spark_master}")
        for engine, per_day in (("local", 1), ("spark", 10**9)):  # events_per_day decides the engine
            text = SPEC.format(events_per_day=per_day, cpus=args.cpus, memory_gb=args.memory_gb)
            generate(text, root / engine)
        repo = root / "repo"
        for n in args.sizes:
            write_events(repo / "data" / "trips.parquet", n, now)
            local = measure("local", root, repo, until, args.spark_master)
            spark = measure("spark", root, repo, until, args.spark_master)
            results.append((n, local, spark))
            print(f"  {n:>11,} events: local {_fmt(local)} | spark {_fmt(spark)}", flush=True)
    print()
    print("| events | local s | local peak MB | spark s | spark peak MB (python + JVM) | rollup rows |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, local, spark in results:
        print(
            f"| {n:,} | {local.get('seconds', float('nan')):.1f} | {local.get('python_mb', 0):,.0f} | "
            f"{spark.get('seconds', float('nan')):.1f} | "
            f"{spark.get('python_mb', 0):,.0f} + {spark.get('jvm_mb', 0):,.0f} | {local.get('rows', '?')} |"
        )
    ok = [(n, lo["seconds"], sp["seconds"]) for n, lo, sp in results if "seconds" in lo and "seconds" in sp]
    if ok:
        sizes, local_s, spark_s = (list(x) for x in zip(*ok, strict=True))
        print(f"\nSpark starts to pay at: {crossover(sizes, local_s, spark_s)}")
    print("(a machine shared with other work gives noisy figures: compare runs before changing the threshold)")
    return 0


def _fmt(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"failed: {result['error']}"
    jvm = f" + JVM {result['jvm_mb']:,.0f} MB" if result.get("jvm_mb") else ""
    return f"{result['seconds']:.1f} s, {result['python_mb']:,.0f} MB{jvm}"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        child(*sys.argv[2:6])
    else:
        raise SystemExit(main())
