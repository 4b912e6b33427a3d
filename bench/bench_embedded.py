"""Embedded runtime benchmark: the generated library's `predict` against the same work done raw, in one run.

Generates an embedded system (string entity keys) into a temporary folder, runs data, apply, materialize,
train and bundle through its Makefile (real Feast), installs the bundle, then in this process:

1. `predict(key)` for one key (a SQLite read from the bundle + the model's own predict_proba) against raw work
   (a dict lookup of the same feature row + the same model's predict_proba), interleaved; p50, p99 and the ratio
   (target: p99 within 1.2x raw and under the spec's 5 ms budget);
2. the package's import time in a fresh interpreter (target: under 0.3 s; no Feast, no tritonclient), and the
   time to the first prediction (numpy, joblib and the model loaded).

    .venv/bin/python bench/bench_embedded.py [--calls 5000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
VENV = Path(os.environ.get("ARCHGEN_VENV", ROOT / ".venv")).resolve()
BUDGET_MS = 5.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    from test_runtimes import embedded_spec
    from triton_harness import generate, make_generated

    with tempfile.TemporaryDirectory(prefix="bench_embedded_") as tmp:
        tmp_path = Path(tmp)
        repo = tmp_path / "kiosk"
        generate(embedded_spec(tmp_path, "kiosk_bench"), repo)
        os.environ["KIOSK_BENCH_BUNDLE_DIR"] = str(tmp_path / "bundles")
        built = make_generated(repo, "data", "apply", "materialize", "train", "bundle", "install-bundle")
        if built.returncode != 0:
            print(built.stdout[-3000:], built.stderr[-3000:], file=sys.stderr)
            return 1
        sys.path.insert(0, str(repo / "package"))
        import kiosk_bench as lib  # type: ignore[import-not-found]

        started = time.perf_counter()
        lib.predict("visitor_0001")
        first_ms = (time.perf_counter() - started) * 1000
        state = lib._loaded()
        (db,) = (tmp_path / "bundles").glob("kiosk_bench-*/features.sqlite")
        columns = ", ".join(f'"{c}"' for c in lib.FEATURES)
        table = {k: tuple(v) for k, *v in sqlite3.connect(db).execute(f"SELECT entity_key, {columns} FROM features")}
        keys = sorted(table)
        model, np = state.model, state.np

        def raw(key: str) -> float:
            x = np.asarray([table[key]], dtype=np.float64)
            return float(model.predict_proba(x)[:, 1][0])

        for key in keys[:200]:  # warm both paths
            lib.predict(key)
            raw(key)
        ours: list[float] = []
        base: list[float] = []
        for i in range(args.calls):
            key = keys[i % len(keys)]
            t0 = time.perf_counter_ns()
            a = lib.predict(key).buy_probability
            t1 = time.perf_counter_ns()
            b = raw(key)
            t2 = time.perf_counter_ns()
            assert abs(a - b) < 1e-9
            ours.append((t1 - t0) / 1e6)
            base.append((t2 - t1) / 1e6)

        env = {**os.environ, "PYTHONPATH": str(repo / "package")}
        code = "import time, sys; t = time.perf_counter(); import kiosk_bench; print(time.perf_counter() - t)"
        imports = []
        for _ in range(5):
            run = subprocess.run([str(VENV / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True)
            imports.append(float(run.stdout.strip()))
        heavy = subprocess.run(
            [
                str(VENV / "bin" / "python"),
                "-c",
                "import sys, kiosk_bench as k; k.predict('visitor_0001'); "
                "print(sorted({m.split('.')[0] for m in sys.modules} & {'feast', 'tritonclient'}))",
            ],
            env=env,
            capture_output=True,
            text=True,
        ).stdout.strip()

    p50, p99 = statistics.median(ours), _percentile(ours, 0.99)
    r50, r99 = statistics.median(base), _percentile(base, 0.99)
    print(
        f"predict (bundle SQLite + model)  p50 {p50:.3f} ms  p99 {p99:.3f} ms   ({args.calls} calls, {len(keys)} keys)"
    )
    print(f"raw (dict lookup + model)        p50 {r50:.3f} ms  p99 {r99:.3f} ms")
    print(
        f"ratio p50 {p50 / r50:.2f}x  p99 {p99 / r99:.2f}x  (target p99 <= 1.2x); p99 under the {BUDGET_MS} ms budget: "
        f"{p99 < BUDGET_MS}"
    )
    print(
        f"import {min(imports) * 1000:.1f} ms best / {statistics.median(imports) * 1000:.1f} ms median of 5 "
        f"(target < 300 ms); first prediction (model load) {first_ms:.1f} ms; heavy modules loaded: {heavy}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
