"""The generated model repositories on a real Triton server (tritonserver 2.51 from nvidia-pytriton):
the realtime example's two-model ensemble, served through python stand-ins. The image preset's BLS pipeline
(per-object steps, early exit, concurrent frames) is tested in test_pipelines.py."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from triton_harness import PRESETS, Server, generate, have_triton, running, runtime

pytestmark = [
    pytest.mark.slow,
    pytest.mark.triton,
    pytest.mark.skipif(not have_triton(), reason="no tritonserver in the Triton venv (ARCHGEN_TRITON_VENV)"),
]


def sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


@pytest.fixture(scope="module")
def realtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    repo = tmp_path_factory.mktemp("card_fraud")
    generate(PRESETS / "realtime.yaml", repo, ("model_repository", "serving"))
    with running(repo) as server:
        yield server


def _infer(client_module: object, address: str, model: str, tensors: dict[str, np.ndarray], output: str) -> np.ndarray:
    triton = client_module
    client = triton.InferenceServerClient(address)  # type: ignore[attr-defined]
    inputs = []
    for name, array in tensors.items():
        item = triton.InferInput(name, list(array.shape), triton.np_to_triton_dtype(array.dtype))  # type: ignore[attr-defined]
        item.set_data_from_numpy(array)
        inputs.append(item)
    result = client.infer(model, inputs).as_numpy(output)
    client.close()
    return result


def test_realtime_ensemble_runs_on_python_standins(realtime: Server) -> None:
    import tritonclient.grpc as triton

    repo = realtime.repo
    # production config unchanged, the local copy swaps in the python stand-in (and says so)
    assert 'backend: "onnxruntime"' in (repo / "model_repository/fraud_gbm/config.pbtxt").read_text()
    assert 'backend: "python"' in (repo / ".run/model_repository/fraud_gbm/config.pbtxt").read_text()
    assert "fraud_gbm" in (repo / "serving/README.md").read_text()
    features = {
        "txn_count_1h": np.array([[3], [0]], dtype=np.int64),
        "amount_sum_1h": np.array([[10.0], [0.0]]),
        "chargeback_rate_7d": np.array([[0.1], [0.0]], dtype=np.float32),
        "amount_ratio": np.array([[2.0], [0.0]]),
    }
    probability = _infer(triton, realtime.grpc, "fraud_scoring", features, "probability")
    assert probability.shape == (2, 1) and probability.dtype == np.float32
    # gbm stand-in: sigmoid(mean of the features); calibrator placeholder: sigmoid(score)
    expected = [sigmoid(sigmoid(float(np.mean([3, 10.0, np.float32(0.1), 2.0])))), sigmoid(sigmoid(0.0))]
    np.testing.assert_allclose(probability[:, 0], expected, rtol=1e-5)


def test_runtime_status_and_ports(realtime: Server) -> None:
    result = runtime(realtime.repo, "status")
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["ready"] is True
    assert len({state["http_port"], state["grpc_port"], state["metrics_port"]}) == 3
    os.kill(int(state["pid"]), 0)  # alive


def test_start_fails_cleanly_without_trained_artefact(tmp_path: Path) -> None:
    generate(PRESETS / "reference.yaml", tmp_path, ("model_repository", "serving"))
    # no trained artefact: the model fails to load, start reports why and leaves nothing running
    result = runtime(tmp_path, "start")
    assert result.returncode == 1
    assert "ranker" in result.stderr and "make train" in result.stderr
    assert not (tmp_path / ".run" / "triton.json").exists()
    assert runtime(tmp_path, "status").returncode == 1
