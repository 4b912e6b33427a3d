"""Dynamic batching on the real Triton server: under concurrent load the reference model's generated
python-backend code runs once for several requests (the server's execution count is below its request
count) and every request still gets its own rows back."""

from __future__ import annotations

import importlib.util
import re
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from triton_harness import PRESETS, generate, have_triton, running

pytestmark = [
    pytest.mark.slow,
    pytest.mark.triton,
    pytest.mark.skipif(not have_triton(), reason="no tritonserver in the Triton venv (ARCHGEN_TRITON_VENV)"),
]

FEATURES = (("trips_today", np.int64), ("rating", np.float32), ("acceptance_rate", np.float32))


def counters(metrics_port: int, model: str) -> dict[str, float]:
    """The model's counters from the server's Prometheus endpoint: requests, executions, queue time."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for name in ("nv_inference_request_success", "nv_inference_exec_count", "nv_inference_queue_duration_us"):
        match = re.search(rf'^{name}{{[^}}]*model="{model}"[^}}]*}} (\S+)$', text, re.MULTILINE)
        assert match, f"{name} of {model} is not in the metrics"
        out[name] = float(match.group(1))
    return out


def load_module(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    name = f"generated_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def train(repo: Path) -> object:
    """A StandardScaler + LogisticRegression on three features, exported as training would export it."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)) * [5, 1, 0.3] + [5, 4, 0.5]
    y = (x[:, 0] + 2 * x[:, 2] + rng.normal(size=300) > 6).astype(int)
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(x, y)
    joblib.dump(model, repo / "model_repository" / "ranker" / "1" / "model.joblib")
    return model


def test_concurrent_requests_run_in_batches_and_each_gets_its_own_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tritonclient.grpc as triton

    repo = tmp_path / "driver_ranking"
    generate(PRESETS / "reference.yaml", repo, ("model_repository", "serving", "fitness"))
    loadgen = load_module(repo / "tests" / "loadgen.py", monkeypatch)  # the generated load test reads the same endpoint
    assert "dynamic_batching {" in (repo / "model_repository/ranker/config.pbtxt").read_text()
    model = train(repo)
    rng = np.random.default_rng(7)
    # 240 requests of 1 to 3 rows each, all different, sent 60 at a time without waiting for answers
    batches = [np.round(rng.normal(size=(1 + i % 3, 3)) * [5, 1, 0.3] + [5, 4, 0.5], 3) for i in range(240)]
    with running(repo) as server:
        port = int(server.state["metrics_port"])
        client = triton.InferenceServerClient(server.grpc)
        before = counters(port, "ranker")
        seen_before = loadgen.server_counters(loadgen.metrics_url())  # via .run/triton.json, as make serve-start
        answers: dict[int, np.ndarray] = {}
        errors: list[str] = []

        def done(index: int) -> Callable[[object, object], None]:
            def callback(result: object, error: object) -> None:
                if error is not None:
                    errors.append(str(error))
                else:
                    answers[index] = result.as_numpy("score")  # type: ignore[attr-defined]

            return callback

        for start in range(0, len(batches), 60):
            for i in range(start, start + 60):
                inputs = []
                for column, (name, dtype) in enumerate(FEATURES):
                    array = batches[i][:, column : column + 1].astype(dtype)
                    item = triton.InferInput(name, list(array.shape), triton.np_to_triton_dtype(array.dtype))
                    item.set_data_from_numpy(array)
                    inputs.append(item)
                client.async_infer("ranker", inputs, done(i))
            deadline = time.monotonic() + 30
            while len(answers) + len(errors) < start + 60 and time.monotonic() < deadline:
                time.sleep(0.02)
        client.close()
        after = counters(port, "ranker")
        seen = loadgen.server_view(seen_before, loadgen.server_counters(loadgen.metrics_url()))
    assert not errors, errors[:3]
    assert len(answers) == len(batches)
    for i, rows in enumerate(batches):  # each request its own rows, in its own order
        x = np.hstack([rows[:, c : c + 1].astype(d).astype(np.float64) for c, (_, d) in enumerate(FEATURES)])
        expected = model.predict_proba(x)[:, 1].astype(np.float32)  # type: ignore[attr-defined]
        assert answers[i].shape == (len(rows), 1)
        np.testing.assert_allclose(answers[i][:, 0], expected, rtol=1e-5)
    requests = after["nv_inference_request_success"] - before["nv_inference_request_success"]
    executions = after["nv_inference_exec_count"] - before["nv_inference_exec_count"]
    assert requests == len(batches)
    print(f"\n{requests:.0f} requests in {executions:.0f} executions: {requests / executions:.1f} requests a batch")
    assert executions < requests / 2, f"{requests:.0f} requests ran in {executions:.0f} executions: no batching"
    assert seen["ranker"]["requests"] == requests and seen["ranker"]["executions"] == executions
    assert seen["ranker"]["requests_per_execution"] == pytest.approx(requests / executions)
