"""Serving-path benchmark: the generated path against the same work done raw, in one run.

1. Latency, one request at a time: the generated client (Feast online features for one driver, then
   Triton over HTTP) against raw work (one direct SQLite read of the online table plus one direct
   tritonclient call); p50, p99 and the overhead ratio (target: under 1.5x raw at p99).
2. Throughput at a fixed p99: the generated model with its dynamic batching against the same model
   without it, driven by several load-generator processes (closed loop, threads in each), raising the
   concurrency until p99 exceeds the spec's budget.

Generates the reference system into a temporary folder, runs data/apply/materialize/train through its
Makefile, starts its Triton server, and always stops it. Bounded: about a minute in all.
    .venv/bin/python bench/bench_serving.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from triton_harness import PRESETS, Server, generate, triton_venv  # noqa: E402


def pct(values: list[float], q: float) -> float:
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


def load_client(repo: Path) -> Any:
    spec = importlib.util.spec_from_file_location("bench_client", repo / "serving" / "client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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

    def raw(driver: int) -> float:
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
    deadline = time.monotonic() + 2 * seconds
    i = 0
    while time.monotonic() < deadline:  # interleaved, so both see the same machine load
        driver = ids[i % len(ids)]
        t0 = time.perf_counter()
        predictor.predict([{"driver_id": driver}])
        t1 = time.perf_counter()
        raw(driver)
        t2 = time.perf_counter()
        timings["generated"].append(t1 - t0)
        timings["raw"].append(t2 - t1)
        i += 1
    predictor.close()
    raw_client.close()
    out = {"requests": float(i)}
    for k, v in timings.items():
        out[f"{k}_p50_ms"] = pct(v, 50)
        out[f"{k}_p99_ms"] = pct(v, 99)
    out["overhead_p50"] = out["generated_p50_ms"] / out["raw_p50_ms"]
    out["overhead_p99"] = out["generated_p99_ms"] / out["raw_p99_ms"]
    return out


def _worker(url: str, model: str, threads: int, seconds: float, queue: Any) -> None:
    import threading

    import tritonclient.http as triton

    x = {"trips_today": np.array([[5]], np.int64), "rating": np.array([[4.5]], np.float32)}
    x["acceptance_rate"] = np.array([[0.5]], np.float32)
    lat: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def loop() -> None:
        client = triton.InferenceServerClient(url)
        inputs = []
        for name, array in x.items():
            item = triton.InferInput(name, list(array.shape), triton.np_to_triton_dtype(array.dtype))
            item.set_data_from_numpy(array)
            inputs.append(item)
        mine = []
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            client.infer(model, inputs)
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)
        client.close()

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    queue.put(lat)


def load(url: str, model: str, concurrency: int, seconds: float, processes: int = 2) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    per = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    procs = [ctx.Process(target=_worker, args=(url, model, n, seconds, queue)) for n in per if n]
    for p in procs:
        p.start()
    lat: list[float] = []
    for _ in procs:
        lat += queue.get()
    for p in procs:
        p.join()
    return len(lat) / seconds, pct(lat, 99)


def throughput(url: str, budget_ms: float, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in ("ranker", "ranker_nobatch"):
        best = (0.0, 0.0, 0)
        for concurrency in (1, 2, 4, 8, 16, 32):
            rps, p99 = load(url, model, concurrency, seconds)
            out[f"{model}@{concurrency}"] = f"{rps:.0f} rps, p99 {p99:.1f} ms"
            if p99 <= budget_ms and rps > best[0]:
                best = (rps, p99, concurrency)
            if p99 > budget_ms:
                break
        out[f"{model}_best"] = f"{best[0]:.0f} rps at p99 {best[1]:.1f} ms (concurrency {best[2]})"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        repo = Path(tmp) / "driver_ranking"
        arch = generate(PRESETS / "reference.yaml", repo)
        for target in ("data", "apply", "materialize", "train"):
            make(repo, target)
        add_unbatched_copy(repo)
        server = Server(repo)
        server.start()
        try:
            lat = latency(repo, server.http, args.seconds)
            print(f"latency, one request at a time ({lat['requests']:.0f} requests per path):")
            for path in ("generated", "raw"):
                print(f"  {path:9s}  p50 {lat[f'{path}_p50_ms']:7.2f} ms   p99 {lat[f'{path}_p99_ms']:7.2f} ms")
            verdict = "meets" if lat["overhead_p99"] < 1.5 else "MISSES"
            ratio = f"p50 {lat['overhead_p50']:.2f}x   p99 {lat['overhead_p99']:.2f}x"
            print(f"  overhead  {ratio} ({verdict} the 1.5x target)")
            budget = arch.serving.latency_p99_ms
            print(f"throughput at p99 <= {budget:.0f} ms (2 load processes, closed loop, batch-1 requests):")
            for key, value in throughput(server.http, budget, args.seconds).items():
                print(f"  {key:22s} {value}")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
