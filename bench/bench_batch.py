"""Batch runtime benchmark: the generated scorer's rows per second against raw pandas + the model, one run.

Generates a batch system (file warehouse: partitioned parquet scores) into a temporary folder, runs data,
apply and train through its Makefile (real Feast), then replaces the feature source with --entities entities
(default 100,000) and, in this process:

1. `batch.score.score()`: the population, point-in-time features as of now read straight from the offline
   store's parquet source with Feast's rule (chunked; the generated tests/test_batch_score.py holds these reads
   to Feast's get_historical_features), the gated model loaded once, scores written as a parquet partition;
2. raw: pandas reads the same source, keeps each entity's latest row within the view's TTL, the same model
   predicts, pandas writes the same parquet.

Prints rows/s of each and the ratio (target: at least 0.8x raw), best of --repeat runs.

    .venv/bin/python bench/bench_batch.py [--entities 100000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    import numpy as np
    import pandas as pd
    from test_runtimes import EMBEDDED_SPEC
    from triton_harness import generate, make_generated

    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        tmp_path = Path(tmp)
        spec = tmp_path / "batch.yaml"
        spec.write_text(EMBEDDED_SPEC.format(name="kiosk_batch").replace("mode: embedded", "mode: batch"))
        repo = tmp_path / "kiosk"
        generate(spec, repo)
        built = make_generated(repo, "data", "apply", "train")
        if built.returncode != 0:
            print(built.stdout[-3000:], built.stderr[-3000:], file=sys.stderr)
            return 1
        source = repo / "feature_repo" / "data" / "visits.parquet"
        sample = pd.read_parquet(source)
        now = datetime.now(UTC)
        rng = np.random.default_rng(7)
        n = args.entities
        big = pd.DataFrame({c: sample[c].iloc[np.arange(n) % len(sample)].to_numpy() for c in sample.columns})
        big["visitor_id"] = [f"visitor_{i:07d}" for i in range(n)]
        big["event_timestamp"] = pd.Timestamp(now) - pd.to_timedelta(rng.integers(1, 24 * 20, n), unit="h")
        for column in ("visits_7d", "basket_eur_7d"):
            big[column] = (rng.random(n) * 20).astype(sample[column].dtype)
        big.to_parquet(source, index=False)

        sys.path.insert(0, str(repo))
        os.chdir(repo)
        score = importlib.import_module("batch.score")
        version, model, _task = score.latest_model()
        ttl = timedelta(days=30)

        def raw() -> int:
            frame = pd.read_parquet(source)
            frame = frame[(frame["event_timestamp"] <= now) & (frame["event_timestamp"] > now - ttl)]
            latest = frame.sort_values("event_timestamp", kind="mergesort").groupby("visitor_id", sort=True).tail(1)
            x = latest[score.FEATURES].to_numpy(dtype=np.float64)
            out = latest[["visitor_id"]].assign(score=model.predict_proba(x)[:, 1], model_version=version)
            out.to_parquet(tmp_path / "raw.parquet", index=False)
            return len(out)

        ours_s, raw_s = [], []
        scored = 0
        for i in range(args.repeat):
            t0 = time.perf_counter()
            result = score.score(f"bench-{i}", now=now)
            ours_s.append(time.perf_counter() - t0)
            scored = result["scored"]
            t0 = time.perf_counter()
            rows = raw()
            raw_s.append(time.perf_counter() - t0)
            assert rows == scored == n, (rows, scored, n)
    ours, base = n / min(ours_s), n / min(raw_s)
    print(f"batch.score (offline parquet, chunked, parquet partition): {ours:,.0f} rows/s ({min(ours_s):.2f} s)")
    print(f"raw pandas + model:                                       {base:,.0f} rows/s ({min(raw_s):.2f} s)")
    print(f"ratio {ours / base:.2f}x raw over {n:,} entities (target >= 0.8x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
