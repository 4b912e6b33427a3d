"""Serving-path benchmark of the reference system, in one run: the generated path against raw work, and
dynamic batching against none at equal p99, with the server's own view of the batches it formed.

1. Latency, one request at a time: the generated client (Feast online features for one driver, then
   Triton over HTTP) against raw work (one direct SQLite read of the online table plus one direct
   tritonclient call); p50, p99 and the overhead ratio (target: within 1.1x raw at p99).
2. Cost of one model execution, from the server's compute time of batch-1 and batch-32 executions: the
   per-call and per-row cost the `dynamic_batching` rule reads (thresholds `batch_call_cost_us`,
   `batch_row_cost_us`). `--cost` prints only this.
3. Throughput at equal p99: the generated model (its dynamic batching as decided) against the same model
   and code without a dynamic batcher, driven by a pool of load processes, each running asynchronous gRPC
   clients in a closed loop (the concurrency doubles until p99 passes the spec's budget; at each step the two
   models alternate in short rounds, so both see the same machine load). For each step the
   server's metrics endpoint gives requests per execution (the batch sizes Triton formed) and queue time,
   and the generator's own CPU use is printed, so it can be seen not to be the bottleneck. Targets: at
   least 2x the unbatched throughput at equal p99; at one client, a p50 within 1.2x the unbatched one.

Generates the reference system into a temporary folder, runs data/apply/materialize/train through its
Makefile, starts its Triton server, and always stops it. Bounded: about two minutes in all.
    .venv/bin/python bench/bench_serving.py [--seconds 2] [--processes N] [--cost | --latency]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from triton_harness import PRESETS, Server, generate, load_client, triton_venv  # noqa: E402


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def make(repo: Path, target: str) -> None:
    venv = os.environ.get("ARCHGEN_VENV", str(ROOT / ".venv"))
    subprocess.run(
        ["make", "--no-print-directory", target, f"VENV={venv}", f"TRITON_VENV={triton_venv()}"],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def add_unbatched_copy(repo: Path) -> None:
    """ranker_nobatch: the same model and code, without dynamic batching."""
    src, dst = repo / "model_repository" / "ranker", repo / "model_repository" / "ranker_nobatch"
    shutil.copytree(src, dst)
    text = (dst / "config.pbtxt").read_text().replace('name: "ranker"', 'name: "ranker_nobatch"')
    start = text.index("dynamic_batching {")
    end = text.index("}\n", start) + 2
    (dst / "config.pbtxt").write_text(text[:start] + text[end:])


def latency(repo: Path, url: str, seconds: float) -> dict[str, float]:
    import tritonclient.http as triton
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    client = load_client(repo)
    predictor = client.Predictor(url=url, repo_path=repo / "feature_repo")
    names = [n for n, _, _ in client.FEATURES]
    dtypes = {n: d for n, _, d in client.FEATURES}
    db = sqlite3.connect(repo / "feature_repo" / "data" / "online_store.db", check_same_thread=False)
    raw_client = triton.InferenceServerClient(url)
    ids = list(range(1001, 1051))

    def read(driver: int) -> dict[str, Any]:
        """The driver's features, read directly from the online table."""
        key = serialize_entity_key(
            EntityKey(join_keys=["driver_id"], entity_values=[Value(int64_val=driver)]),
            entity_key_serialization_version=3,
        )
        rows = db.execute(
            "SELECT feature_name, value FROM driver_ranking_driver_activity WHERE entity_key = ?", (key,)
        ).fetchall()
        values = {}
        for name, blob in rows:
            v = Value()
            v.ParseFromString(blob)
            values[name] = getattr(v, v.WhichOneof("val"))
        return values

    def raw(driver: int) -> float:
        values = read(driver)
        inputs = []
        for n in names:
            x = np.asarray([[values[n]]], dtype=dtypes[n])
            item = triton.InferInput(n, list(x.shape), triton.np_to_triton_dtype(x.dtype))
            item.set_data_from_numpy(x)
            inputs.append(item)
        return float(raw_client.infer("ranker", inputs).as_numpy("score")[0, 0])

    # both paths give the same answer
    for driver in ids[:5]:
        assert abs(predictor.predict([{"driver_id": driver}])[0]["score"][0] - raw(driver)) < 1e-6
    timings: dict[str, list[float]] = {"generated": [], "raw": []}
    cpu = {"generated": 0.0, "raw": 0.0}
    deadline = time.monotonic() + 2 * seconds
    i = 0
    while time.monotonic() < deadline:  # interleaved, so both see the same machine load
        driver = ids[i % len(ids)]
        c0, t0 = time.process_time(), time.perf_counter()
        predictor.predict([{"driver_id": driver}])
        c1, t1 = time.process_time(), time.perf_counter()
        raw(driver)
        c2, t2 = time.process_time(), time.perf_counter()
        timings["generated"].append(t1 - t0)
        timings["raw"].append(t2 - t1)
        cpu["generated"] += c1 - c0
        cpu["raw"] += c2 - c1
        i += 1
    # what the difference is made of: the features alone, through the client's Feast read and directly
    reads = {"feast": 0.0, "direct": 0.0}
    for k in range(1000):
        driver = ids[k % len(ids)]
        c0 = time.process_time()
        predictor.features([{"driver_id": driver}])
        c1 = time.process_time()
        read(driver)
        c2 = time.process_time()
        reads["feast"] += c1 - c0
        reads["direct"] += c2 - c1
    predictor.close()
    raw_client.close()
    out = {"requests": float(i)}
    for k, v in timings.items():
        out[f"{k}_p50_ms"] = pct(v, 50)
        out[f"{k}_p99_ms"] = pct(v, 99)
        out[f"{k}_cpu_us"] = cpu[k] / i * 1e6
    out["feast_read_cpu_us"] = reads["feast"] / 1000 * 1e6
    out["direct_read_cpu_us"] = reads["direct"] / 1000 * 1e6
    out["overhead_p50"] = out["generated_p50_ms"] / out["raw_p50_ms"]
    out["overhead_p99"] = out["generated_p99_ms"] / out["raw_p99_ms"]
    return out


FEATURES = {
    "trips_today": np.array([[5]], np.int64),
    "rating": np.array([[4.5]], np.float32),
    "acceptance_rate": np.array([[0.5]], np.float32),
}
COUNTERS = (
    "nv_inference_request_success",
    "nv_inference_exec_count",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_infer_duration_us",
)


def counters(metrics_url: str, model: str) -> dict[str, float]:
    """The model's cumulative counters from Triton's Prometheus endpoint."""
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    out = {}
    for name in COUNTERS:
        match = re.search(rf'^{name}{{[^}}]*model="{model}"[^}}]*}} (\S+)$', text, re.MULTILINE)
        out[name] = float(match.group(1)) if match else float("nan")
    return out


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in before}


def batch_sizes(http_url: str, model: str) -> dict[int, int]:
    """The model's cumulative executions per batch size, from Triton's statistics endpoint (the batches formed)."""
    with urllib.request.urlopen(f"http://{http_url}/v2/models/{model}/stats", timeout=10) as answer:
        stats = json.loads(answer.read())["model_stats"][0]
    return {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in stats.get("batch_stats", [])}


def size_summary(executions: dict[int, int]) -> str:
    """Executions by batch size, in powers-of-two buckets: `1:812 2:310 3-4:135 5-8:40`."""
    buckets: dict[str, int] = {}
    for size, count in sorted(executions.items()):
        if count <= 0:
            continue
        top = 1 << (size - 1).bit_length()
        label = str(size) if size <= 2 else f"{top // 2 + 1}-{top}"
        buckets[label] = buckets.get(label, 0) + count
    return " ".join(f"{label}:{count}" for label, count in buckets.items()) or "none"


# ------------------------------------------------------------------ the load generator
def _load_process(url: str, conn: Any) -> None:
    """One load process: for each command, `concurrency` asynchronous gRPC calls in a closed loop on one
    connection; latencies are kept from `start_at` to `start_at + seconds` (before it: warm-up)."""
    import tritonclient.grpc.aio as aio
    from tritonclient.utils import np_to_triton_dtype

    def inputs(rows: int) -> list[Any]:
        out = []
        for name, array in FEATURES.items():
            x = np.repeat(array, rows, axis=0)
            item = aio.InferInput(name, list(x.shape), np_to_triton_dtype(x.dtype))
            item.set_data_from_numpy(x)
            out.append(item)
        return out

    async def run(model: str, concurrency: int, start_at: float, seconds: float) -> dict[str, Any]:
        client = aio.InferenceServerClient(url)
        request = inputs(1)
        end_at = start_at + seconds
        latencies: list[float] = []

        async def loop() -> None:
            while time.time() < end_at:
                t0 = time.perf_counter()
                sent = time.time()
                await client.infer(model, request)
                if sent >= start_at:
                    latencies.append(time.perf_counter() - t0)

        await asyncio.sleep(max(0.0, start_at - 0.3 - time.time()))  # 0.3 s of warm-up
        cpu = 0.0
        tasks = [asyncio.create_task(loop()) for _ in range(concurrency)]
        await asyncio.sleep(max(0.0, start_at - time.time()))
        cpu = time.process_time()
        await asyncio.gather(*tasks)
        cpu = time.process_time() - cpu
        await client.close()
        return {"latencies": latencies, "cpu": cpu}

    conn.send("ready")
    while True:
        command = conn.recv()
        if command is None:
            break
        conn.send(asyncio.run(run(*command)))


class LoadPool:
    """Load processes started once and reused for every step (no GIL shared between them)."""

    def __init__(self, url: str, processes: int, stats_url: str) -> None:
        self.stats_url = stats_url  # the server's HTTP address, for its statistics endpoint
        ctx = mp.get_context("spawn")  # never fork a process that holds gRPC threads
        self.pipes = []
        self.procs = []
        for _ in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_load_process, args=(url, child), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        for pipe in self.pipes:  # every process has imported its client before the first step
            if not pipe.poll(120) or pipe.recv() != "ready":
                raise RuntimeError("a load process did not start")

    def run(self, model: str, concurrency: int, seconds: float, metrics_url: str) -> dict[str, Any]:
        """One closed-loop measurement: the latencies, the generator's CPU and the server's counters."""
        n = len(self.pipes)
        per = [concurrency // n + (1 if i < concurrency % n else 0) for i in range(n)]
        start_at = time.time() + 0.5  # every process connects and warms up first
        busy = [pipe for pipe, c in zip(self.pipes, per, strict=True) if c]
        for pipe, c in zip(self.pipes, per, strict=True):
            if c:
                pipe.send((model, c, start_at, seconds))
        time.sleep(max(0.0, start_at - time.time()))
        before, sizes = counters(metrics_url, model), batch_sizes(self.stats_url, model)
        time.sleep(max(0.0, start_at + seconds - time.time()))
        after, sizes_after = counters(metrics_url, model), batch_sizes(self.stats_url, model)
        parts = [pipe.recv() for pipe in busy]
        return {
            "latencies": [x for part in parts for x in part["latencies"]],
            "cpu": sum(part["cpu"] for part in parts),
            "server": delta(before, after),
            "sizes": {k: v - sizes.get(k, 0) for k, v in sizes_after.items()},
            "seconds": seconds,
        }

    def step(self, models: list[str], concurrency: int, seconds: float, metrics_url: str) -> dict[str, Any]:
        """Each model for ``seconds`` at ``concurrency``, in alternating rounds (ABBA...) so that both see
        the same machine load, a shared machine's changing load included."""
        rounds = 4
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in models}
        for r in range(rounds):
            for model in models if r % 2 == 0 else models[::-1]:
                runs[model].append(self.run(model, concurrency, seconds / rounds, metrics_url))
        out = {}
        for model, parts in runs.items():
            lat = [x for part in parts for x in part["latencies"]]
            server = {k: sum(part["server"][k] for part in parts) for k in COUNTERS}
            requests = server["nv_inference_request_success"]
            executions = server["nv_inference_exec_count"]
            sizes: dict[int, int] = {}
            for part in parts:
                for size, count in part["sizes"].items():
                    sizes[size] = sizes.get(size, 0) + count
            out[model] = {
                "concurrency": concurrency,
                "rps": len(lat) / seconds,
                "p50": pct(lat, 50),
                "p99": pct(lat, 99),
                "batch": requests / executions if executions else float("nan"),
                "queue_ms": server["nv_inference_queue_duration_us"] / requests / 1000 if requests else float("nan"),
                "generator_cpus": sum(part["cpu"] for part in parts) / seconds,
                "sizes": sizes,
            }
        return out

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()


def sweep(pool: LoadPool, models: list[str], budget_ms: float, seconds: float, metrics_url: str) -> dict[str, Any]:
    """Closed-loop steps at doubling concurrency, the models interleaved at each step; a model leaves the
    sweep once its p99 passes the budget (at most 256 clients)."""
    steps: dict[str, list[dict[str, Any]]] = {m: [] for m in models}
    active = list(models)
    concurrency = 1
    while active and concurrency <= 256:
        for model, step in pool.step(active, concurrency, seconds, metrics_url).items():
            steps[model].append(step)
            print(
                f"  {model:15s} {concurrency:4d} clients  {step['rps']:7.0f} rps  p50 {step['p50']:6.2f} ms  "
                f"p99 {step['p99']:6.2f} ms | server: {step['batch']:5.2f} requests/execution, queue "
                f"{step['queue_ms']:5.2f} ms, batches {size_summary(step['sizes'])} | generator "
                f"{step['generator_cpus']:.2f} CPUs | load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if step["p99"] > budget_ms:
                active.remove(model)
        concurrency *= 2
    return steps


def best(steps: list[dict[str, Any]], p99_ms: float) -> dict[str, Any] | None:
    """The step with the highest throughput whose p99 is within ``p99_ms``."""
    within = [s for s in steps if s["p99"] <= p99_ms]
    return max(within, key=lambda s: s["rps"]) if within else None


def at_p99(steps: list[dict[str, Any]], p99_ms: float) -> float | None:
    """The throughput at a p99 of ``p99_ms``: linear between the last step within it and the next one (the
    closed loop's throughput and p99 both grow with the concurrency); None when even one client is over."""
    for previous, step in itertools.pairwise(steps):
        if previous["p99"] <= p99_ms < step["p99"]:
            share = (p99_ms - previous["p99"]) / (step["p99"] - previous["p99"])
            return float(previous["rps"] + share * (step["rps"] - previous["rps"]))
    within = best(steps, p99_ms)
    return float(within["rps"]) if within else None


def compare(batched: list[dict[str, Any]], unbatched: list[dict[str, Any]], budget_ms: float) -> bool:
    """Print the comparison at equal p99 and at one client; whether both targets hold."""
    plain = best(unbatched, budget_ms)
    if plain is None:
        print("  the unbatched model never met the budget")
        return False
    ok = True
    b = best(batched, budget_ms)
    if b is None:
        print(f"  at p99 <= {budget_ms:g} ms (the budget): no batched step within it")
        ok = False
    else:
        ratio = b["rps"] / plain["rps"]
        print(
            f"  at p99 <= {budget_ms:g} ms (the budget): batched {b['rps']:.0f} rps ({b['concurrency']} clients, "
            f"{b['batch']:.1f} requests/execution) vs unbatched {plain['rps']:.0f} rps ({plain['concurrency']} "
            f"clients): {ratio:.2f}x ({'meets' if ratio >= 2 else 'MISSES'} the 2x target)"
        )
        ok = ratio >= 2
    same = at_p99(batched, plain["p99"])
    if same is None:
        print(f"  at the unbatched best's p99 ({plain['p99']:.1f} ms): the batched model is over it at one client")
    else:
        ratio = same / plain["rps"]
        print(
            f"  at the unbatched best's p99 ({plain['p99']:.1f} ms): batched {same:.0f} rps (interpolated between "
            f"steps) vs unbatched {plain['rps']:.0f} rps: {ratio:.2f}x"
        )
    one_b, one_u = batched[0], unbatched[0]
    ratio = one_b["p50"] / one_u["p50"]
    verdict = "meets" if ratio <= 1.2 else "MISSES"
    print(
        f"  one client: batched p50 {one_b['p50']:.2f} ms vs unbatched {one_u['p50']:.2f} ms: {ratio:.2f}x "
        f"({verdict} the 1.2x target)"
    )
    return ok and ratio <= 1.2


def cost(grpc_url: str, metrics_url: str, pairs: int = 100) -> tuple[float, float]:
    """(per-call us, per-row us) of one execution of the model, from the server's compute time.

    Batch-1 requests to ranker and batch-32 requests to ranker_nobatch (the same code and artefact),
    interleaved so that both see the same machine load; the counters are read around every pair and the
    10th percentile of each size is kept, so busy neighbours on a shared machine do not inflate the figure.
    """
    import tritonclient.grpc as triton

    client = triton.InferenceServerClient(grpc_url)
    requests = {}
    for model, rows in (("ranker", 1), ("ranker_nobatch", 32)):
        inputs = []
        for name, array in FEATURES.items():
            x = np.repeat(array, rows, axis=0)
            item = triton.InferInput(name, list(x.shape), triton.np_to_triton_dtype(x.dtype))
            item.set_data_from_numpy(x)
            inputs.append(item)
        requests[model] = inputs
        for _ in range(10):  # warm-up
            client.infer(model, inputs)
    key = "nv_inference_compute_infer_duration_us"
    times: dict[str, list[float]] = {"ranker": [], "ranker_nobatch": []}
    for _ in range(pairs):
        before = {m: counters(metrics_url, m)[key] for m in times}
        for model, inputs in requests.items():
            client.infer(model, inputs)
        for m in times:
            times[m].append(counters(metrics_url, m)[key] - before[m])
    client.close()
    # the 10th percentile: the cost when the machine is not busy with other work
    one, many = (float(np.percentile(times[m], 10)) for m in ("ranker", "ranker_nobatch"))
    row = max(0.0, (many - one) / 31)
    return one - row, row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--processes", type=int, default=0, help="load processes (default: one per CPU, 2 to 8)")
    parser.add_argument("--cost", action="store_true", help="only the per-call and per-row cost of the model")
    parser.add_argument("--latency", action="store_true", help="only the cost and the latency sections (no sweep)")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    processes = args.processes or max(2, min(8, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        repo = Path(tmp) / "driver_ranking"
        arch = generate(PRESETS / "reference.yaml", repo)
        for target in ("data", "apply", "materialize", "train"):
            make(repo, target)
        add_unbatched_copy(repo)
        server = Server(repo)
        server.start()
        metrics_url = f"http://127.0.0.1:{server.state['metrics_port']}/metrics"
        ok = True
        try:
            call_us, row_us = cost(server.grpc, metrics_url)
            print(
                f"cost of one execution of ranker (python backend, scikit-learn), from the server's compute time: "
                f"{call_us:.0f} us a call + {row_us:.2f} us a row (load {os.getloadavg()[0]:.1f})"
            )
            if args.cost:
                return 0
            lat = latency(repo, server.http, args.seconds)
            print(
                f"latency, one request at a time ({lat['requests']:.0f} requests per path, interleaved; load "
                f"{os.getloadavg()[0]:.1f}):"
            )
            for path in ("generated", "raw"):
                print(
                    f"  {path:9s}  p50 {lat[f'{path}_p50_ms']:7.2f} ms   p99 {lat[f'{path}_p99_ms']:7.2f} ms   "
                    f"client CPU {lat[f'{path}_cpu_us']:4.0f} us a request"
                )
            print(
                f"  the features alone: the client's read through Feast {lat['feast_read_cpu_us']:.0f} us of CPU, a "
                f"direct SQLite read {lat['direct_read_cpu_us']:.0f} us (the generated path's extra work)"
            )
            verdict = "meets" if lat["overhead_p99"] <= 1.1 else "MISSES"
            ratio = f"p50 {lat['overhead_p50']:.3f}x   p99 {lat['overhead_p99']:.3f}x"
            print(f"  overhead  {ratio} ({verdict} the 1.1x target)")
            ok = lat["overhead_p99"] <= 1.1
            if args.latency:
                return 0 if ok else 1
            budget = arch.serving.latency_p99_ms
            decided = next(m for m in arch.serving.models if m.name == "ranker")
            print(
                f"throughput, closed loop, batch-1 requests over gRPC from {processes} load processes (asynchronous "
                f"clients); ranker as decided: max_batch_size {decided.max_batch_size}, preferred "
                f"{decided.preferred_batch_sizes}, max_queue_delay {decided.max_queue_delay_us} us; ranker_nobatch: "
                f"no dynamic batcher ({os.cpu_count()} CPUs on this machine, shared with the server):"
            )
            pool = LoadPool(server.grpc, processes, server.http)
            try:
                steps = sweep(pool, ["ranker", "ranker_nobatch"], budget, args.seconds, metrics_url)
            finally:
                pool.close()
            print("dynamic batching against none:")
            ok = compare(steps["ranker"], steps["ranker_nobatch"], budget) and ok
        finally:
            server.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
