"""Embedded runtime benchmark: the generated library's `predict` against the same work done raw, in one run.

Generates an embedded system (string entity keys) into a temporary folder, runs data, apply, materialize,
train and bundle through its Makefile (real Feast), installs the bundle, then in this process:

1. `predict(key)` for one key (a SQLite read from the bundle + the model's own predict_proba) against raw work
   (a dict lookup of the same feature row + the same model's predict_proba), interleaved; p50, p99 and the ratio
   (target: p99 within 1.2x raw and under the spec's budget, 5 ms);
2. the package's import time in a fresh interpreter (target: under 0.3 s; no Feast, no tritonclient), and the
   time to the first prediction (numpy, joblib and the model loaded).

With --on-demand, the system is tests/specs/kiosk_embedded.yaml (a string and an int key, an on-demand view over
request-time values): `predict(key, **request)` reads the stored features and runs the on-demand
transformation from the bundle (dill and pandas load at the first prediction, not at import); the raw work is
a dict lookup + the same transformation on a frame built directly + the model's predict_proba (budget 20 ms).

    .venv/bin/python bench/bench_embedded.py [--calls 5000] [--on-demand]
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
VENV = Path(os.environ.get("ARCHGEN_VENV", ROOT / ".venv")).resolve()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--on-demand", action="store_true", help="the system with request-time features")
    args = parser.parse_args()
    from test_runtimes import embedded_spec
    from triton_harness import generate, make_generated

    project = "kiosk_basket" if args.on_demand else "kiosk_bench"
    with tempfile.TemporaryDirectory(prefix="bench_embedded_") as tmp:
        tmp_path = Path(tmp)
        repo = tmp_path / "kiosk"
        spec = ROOT / "tests" / "specs" / "kiosk_embedded.yaml" if args.on_demand else embedded_spec(tmp_path, project)
        generate(spec, repo)
        budget_ms = float(yaml.safe_load(spec.read_text())["serving"]["latency_p99_ms"])  # the spec's p99 budget
        os.environ[f"{project.upper()}_BUNDLE_DIR"] = str(tmp_path / "bundles")
        built = make_generated(repo, "data", "apply", "materialize", "train", "bundle", "install-bundle")
        if built.returncode != 0:
            print(built.stdout[-3000:], built.stderr[-3000:], file=sys.stderr)
            return 1
        sys.path.insert(0, str(repo / "package"))
        lib = importlib.import_module(project)
        (db,) = (tmp_path / "bundles").glob(f"{project}-*/features.sqlite")
        columns = ", ".join(f'"{c}"' for c in lib.STORED)
        table = {k: tuple(v) for k, *v in sqlite3.connect(db).execute(f"SELECT entity_key, {columns} FROM features")}
        keys = sorted(table)
        typed = [tuple(t(v) for t, v in zip(KEY_TYPES[project], k.split(lib.KEY_SEPARATOR), strict=True)) for k in keys]
        request = {"basket_eur": 12.5, "items": 3, "payment": "card"} if args.on_demand else {}

        started = time.perf_counter()
        lib.predict(*typed[0], **request)
        first_ms = (time.perf_counter() - started) * 1000
        state = lib._loaded()
        model, np = state.model, state.np
        raw = _raw_on_demand(lib, state, table, request) if args.on_demand else _raw(table, model, np)
        output = lib.Prediction._fields[0]

        for i in range(min(200, len(keys))):  # warm both paths
            lib.predict(*typed[i], **request)
            raw(keys[i])
        ours: list[float] = []
        base: list[float] = []
        for i in range(args.calls):
            key = keys[i % len(keys)]
            t0 = time.perf_counter_ns()
            a = getattr(lib.predict(*typed[i % len(keys)], **request), output)
            t1 = time.perf_counter_ns()
            b = raw(key)
            t2 = time.perf_counter_ns()
            assert abs(a - b) < 1e-9
            ours.append((t1 - t0) / 1e6)
            base.append((t2 - t1) / 1e6)

        env = {**os.environ, "PYTHONPATH": str(repo / "package")}
        code = f"import time, sys; t = time.perf_counter(); import {project}; print(time.perf_counter() - t)"
        imports = []
        for _ in range(5):
            run = subprocess.run([str(VENV / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True)
            imports.append(float(run.stdout.strip()))
        heavy = subprocess.run(
            [
                str(VENV / "bin" / "python"),
                "-c",
                f"import sys, {project} as k; at_import = sorted(m for m in ('dill', 'pandas') if m in sys.modules); "
                f"k.predict(*{typed[0]!r}, **{request!r}); "
                "print(sorted({m.split('.')[0] for m in sys.modules} & {'feast', 'tritonclient'}), at_import)",
            ],
            env=env,
            capture_output=True,
            text=True,
        ).stdout.strip()

    p50, p99 = statistics.median(ours), _percentile(ours, 0.99)
    r50, r99 = statistics.median(base), _percentile(base, 0.99)
    what = "bundle SQLite + on-demand transformation + model" if args.on_demand else "bundle SQLite + model"
    print(f"predict ({what})  p50 {p50:.3f} ms  p99 {p99:.3f} ms   ({args.calls} calls, {len(keys)} keys)")
    raw_what = "dict lookup + transformation + model" if args.on_demand else "dict lookup + model"
    print(f"raw ({raw_what})  p50 {r50:.3f} ms  p99 {r99:.3f} ms")
    print(
        f"ratio p50 {p50 / r50:.2f}x  p99 {p99 / r99:.2f}x  (target p99 <= 1.2x); "
        f"p99 under the spec's {budget_ms:g} ms budget: {p99 < budget_ms}"
    )
    print(
        f"import {min(imports) * 1000:.1f} ms best / {statistics.median(imports) * 1000:.1f} ms median of 5 "
        f"(target < 300 ms); first prediction (model load) {first_ms:.1f} ms; heavy modules loaded "
        f"(feast, tritonclient; dill, pandas at import): {heavy}"
    )
    return 0


# the Python type of each join key of the two benchmarked systems
KEY_TYPES: dict[str, tuple[type, ...]] = {"kiosk_bench": (str,), "kiosk_basket": (str, int)}


def _raw(table: dict[str, tuple[Any, ...]], model: Any, np: Any) -> Any:
    """A dict lookup of the feature row + the model's own predict_proba."""

    def raw(key: str) -> float:
        x = np.asarray([table[key]], dtype=np.float64)
        return float(model.predict_proba(x)[:, 1][0])

    return raw


def _raw_on_demand(lib: Any, state: Any, table: dict[str, tuple[Any, ...]], request: dict[str, Any]) -> Any:
    """A dict lookup of the stored row + the same transformation on a frame built directly + predict_proba."""
    import pandas as pd

    np, model = state.np, state.model
    ((name, reads),) = lib.ON_DEMAND.items()
    udf = state.transforms[name][0]
    stored = list(lib.STORED)
    at = {c: stored.index(c) for c in stored}
    outputs = {f"{name}__{field}": field for field in reads["outputs"]}

    def raw(key: str) -> float:
        row = table[key]
        visitor, kiosk = key.split(lib.KEY_SEPARATOR)
        frame = {"visitor_id": [visitor], "kiosk_id": np.asarray([int(kiosk)], dtype="int32")}
        frame |= {f: [v] for f, v in request.items()}
        for column, field in reads["stored"].items():
            frame[column] = frame[field] = [row[at[column]]]
        out = udf(pd.DataFrame(frame))
        x = [row[at[c]] if c in at else out[outputs[c]].iloc[0] for c in lib.INPUTS]
        return float(model.predict_proba(np.asarray([x], dtype=np.float64))[:, 1][0])

    return raw


if __name__ == "__main__":
    raise SystemExit(main())
