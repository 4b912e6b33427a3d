"""Every number the rules compare a requirement with, in one table.

The values are starting points from the decision catalogue (docs/design decisions.md) and the
lecture; a company that knows its own hardware changes them here, not in the rules. Each entry
says what it means; ``archgen explain KEY`` and docs/rules.md show the ones a rule uses.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

_TABLE: dict[str, tuple[Any, str]] = {
    # ---------------------------------------------------------------- online store
    "redis_below_p99_ms": (10, "below this p99 (ms) the online store must be in memory: Redis"),
    "redis_from_rps": (500, "from this throughput (requests/s) the online store must be Redis"),
    # ---------------------------------------------------------------- materialization
    "min_materialization_interval_s": (
        {"file": 60, "duckdb": 60, "postgres": 60, "spark": 600, "bigquery": 300, "snowflake": 300, "redshift": 300},
        "the shortest materialization interval each offline store sustains (s); a cron job cannot run more "
        "often than once a minute",
    ),
    "granularity_s": (
        {"hour": 3600, "day": 86400, "week": 604800, "month": 2592000},
        "the period of each pre-aggregation grain (s)",
    ),
    "max_materialization_interval_s": (86400, "materialize at least daily, whatever the freshness"),
    # ---------------------------------------------------------------- compute engine (rollups of raw events)
    "spark_from_events": (
        20_000_000,
        "from this many events read per rollup run (events_per_day of the sources times the longest window, in "
        "days), parquet files are aggregated by Spark instead of in process. Measured with `python "
        "bench/bench_aggregation.py` on a 2-core VM shared with other work (load 3 to 9; part of it ran beside "
        "other tests): Spark (local[2], start-up included) never beat pandas up to 10 million events (100k: 2 s "
        "vs 61 s; 1M: 5 s vs 108 s; 3M: 22 s vs 167 s; 10M: 122 s vs 323 s), so on one small machine speed never "
        "calls for it; memory does: the in-process job held 3.5 GB at 10M events (about 0.35 GB per million), so "
        "20M events (about 7 GB) is where one process stops fitting a typical job's memory and Spark (1.1 GB "
        "Python + 3.6 GB JVM at 10M, and it spills and scales out) takes over. Measure yours and change it here",
    ),
    "spark_executor_cores": (
        4,
        "cores per Spark executor (Spark's guidance: a few, so executors stay many and GC short)",
    ),
    "spark_memory_overhead": (
        0.1,
        "the share of an executor's memory Spark keeps off-heap (spark.executor.memoryOverhead)",
    ),
    "spark_tasks_per_core": (3, "shuffle partitions per core: enough tasks to keep every core busy through skew"),
    "spark_rows_per_partition": (2_000_000, "the most events one shuffle partition should hold"),
    # ---------------------------------------------------------------- serving runtime
    "triton_from_rps": (100, "from this throughput an online model is served by Triton"),
    "triton_below_p99_ms": (50, "below this p99 (ms) an online model is served by Triton"),
    "grpc_below_p99_ms": (20, "below this p99 (ms) the protocol is gRPC"),
    "serving_floor_ms": (
        {"triton/grpc": 1.0, "triton/rest": 2.0, "python_rest/rest": 10.0, "embedded/in_process": 0.1},
        "the p99 (ms) a runtime/protocol pair adds at best on one hop, inference excluded",
    ),
    "online_read_floor_ms": (
        {"redis": 1.0, "sqlite": 2.0, "postgres": 4.0},
        "the p99 (ms) of one online feature read from each online store at best",
    ),
    "embedded_floor_ms": (
        {"snapshot_read": 0.05, "on_demand_view": 0.05, "model_call": 0.35},
        "the p99 (ms) an embedded predict spends at best, besides the in-process call (serving_floor_ms): one "
        "read of the bundle's SQLite feature snapshot (an indexed local lookup, 15 to 30 us), each python-mode "
        "on-demand transformation of the feature service (50 to 60 us), and one call of the trained scikit-learn "
        "model, whose input checks cost more than its arithmetic (390 to 470 us a call for the scaler and logistic "
        "regression training exports, measured in process on a 2-core VM; 8 us of numpy for the same arithmetic)",
    ),
    # ---------------------------------------------------------------- batching and instances
    "default_max_batch_size": (32, "max_batch_size of a stateless model when the spec does not set one"),
    "queue_delay_share": (0.1, "the share of the p99 budget dynamic batching may spend waiting for a batch"),
    "queue_delay_min_us": (100, "the shortest max_queue_delay_microseconds worth configuring"),
    "queue_delay_max_us": (5000, "the longest max_queue_delay_microseconds, whatever the budget"),
    "batch_call_cost_us": (
        {"sklearn": 450, "python": 1000, "onnx": 100, "pytorch": 150, "tensorflow": 200},
        "what one model execution costs (us) whatever its batch size, per framework: the backend call, input "
        "checks, the python backend's round trip to its stub. sklearn: measured on the reference model "
        "(StandardScaler + LogisticRegression in Triton 2.51's python backend) with `python "
        "bench/bench_serving.py --cost`, the server's compute time of interleaved batch-1 and batch-32 "
        "executions: 437 to 540 us a call in six runs on a 2-core VM shared with other work (load average 1.6 "
        "to 5; four earlier runs at load 9 to 13 gave 1416 to 3622 us), about the lowest kept; python: the same "
        "backend round trip with lighter code, an estimate; onnx, pytorch, tensorflow: estimates for small CPU "
        "models in their native backends, not measured here (measure yours the same way and change them here)",
    ),
    "batch_row_cost_us": (
        {"sklearn": 5, "python": 2, "onnx": 2, "pytorch": 10, "tensorflow": 10},
        "what each row of a batch adds to one execution (us), per framework. sklearn: 0 to 0.2 us a row in the "
        "same six runs, 0 to 10 in the earlier four (below the noise of a shared machine), 5 kept as a bound; "
        "the others: estimates, as for batch_call_cost_us",
    ),
    "cpu_instance_rps": (500, "requests/s one CPU model instance serves"),
    "gpu_instance_rps": (2000, "requests/s one GPU model instance serves"),
    "max_cpu_instances": (4, "most CPU instances of one model per server"),
    "max_pipeline_instances": (16, "most instances of a BLS pipeline model (each holds one frame in flight)"),
    "max_gpu_instances": (2, "most GPU instances of one model per GPU"),
    "single_machine_max_rps": (5000, "above this throughput one machine (docker-compose) is not enough"),
    # ---------------------------------------------------------------- privacy
    "purge_cron": ("30 2 * * *", "when the retention purge job runs (daily, off-peak)"),
}

#: the value of each threshold, read-only
THRESHOLDS: MappingProxyType[str, Any] = MappingProxyType({k: v for k, (v, _) in _TABLE.items()})
#: what each threshold means
THRESHOLD_DOCS: MappingProxyType[str, str] = MappingProxyType({k: d for k, (_, d) in _TABLE.items()})
