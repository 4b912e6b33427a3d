"""The generated python-backend model code is batch-aware: the requests of one `execute` call are stacked,
the model runs once, each request gets its own rows back, and a bad request gets its own error.

Runs the generated `model.py` files in process against a minimal stand-in of `triton_python_backend_utils`
(the module the python backend injects); tests/test_triton_serving.py runs the same code on a real server.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from triton_harness import PRESETS, generate

from generator.plan.triton_config import parse_config


class Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self.name, self.array = name, np.asarray(array)

    def as_numpy(self) -> np.ndarray:
        return self.array

    def name_(self) -> str:
        return self.name


class InferenceResponse:
    def __init__(self, output_tensors: list[Tensor] | None = None, error: Any = None) -> None:
        self.outputs = {t.name: t.array for t in output_tensors or []}
        self.error = error


class TritonError(Exception):
    pass


def _backend_utils() -> types.ModuleType:
    pb = types.ModuleType("triton_python_backend_utils")
    dtypes = {"TYPE_FP32": np.float32, "TYPE_FP64": np.float64, "TYPE_INT64": np.int64, "TYPE_STRING": np.object_}
    pb.Tensor = Tensor  # type: ignore[attr-defined]
    pb.InferenceResponse = InferenceResponse  # type: ignore[attr-defined]
    pb.TritonError = TritonError  # type: ignore[attr-defined]
    pb.TritonModelException = RuntimeError  # type: ignore[attr-defined]
    pb.triton_string_to_numpy = dtypes.__getitem__  # type: ignore[attr-defined]
    pb.get_input_tensor_by_name = lambda request, name: request.get(name)  # type: ignore[attr-defined]
    pb.get_output_config_by_name = lambda config, name: next(t for t in config["output"] if t["name"] == name)  # type: ignore[attr-defined]
    pb.Logger = types.SimpleNamespace(log_info=lambda message: None)  # type: ignore[attr-defined]
    return pb


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _backend_utils())


def load_model(model_dir: Path, code: Path) -> Any:
    """Import the generated `model.py` and initialize it with its config, as the python backend does."""
    from google.protobuf import json_format

    cfg, problems = parse_config(model_dir / "config.pbtxt")
    assert cfg is not None, problems
    config = json_format.MessageToDict(cfg, preserving_proto_field_name=True)
    spec = importlib.util.spec_from_file_location(f"model_{model_dir.name}", code)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    model.initialize({"model_config": json.dumps(config)})
    return model


class Counting:
    """Wraps a fitted scikit-learn model and counts its predictions."""

    def __init__(self, model: Any) -> None:
        self.model, self.calls = model, 0
        self.n_features_in_ = model.n_features_in_

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.model.predict_proba(x)


def ranker_request(rows: np.ndarray) -> dict[str, Tensor]:
    return {
        "trips_today": Tensor("trips_today", rows[:, :1].astype(np.int64)),
        "rating": Tensor("rating", rows[:, 1:2].astype(np.float32)),
        "acceptance_rate": Tensor("acceptance_rate", rows[:, 2:3].astype(np.float32)),
    }


@pytest.fixture
def ranker(tmp_path: Path, backend: None) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    generate(PRESETS / "reference.yaml", tmp_path, ("model_repository",))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) * [5, 1, 0.3] + [5, 4, 0.5]
    y = (x[:, 0] + rng.normal(size=200) > 5).astype(int)
    fitted = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(x, y)
    import joblib

    joblib.dump(fitted, tmp_path / "model_repository/ranker/1/model.joblib")
    model = load_model(tmp_path / "model_repository/ranker", tmp_path / "model_repository/ranker/1/model.py")
    model.model = Counting(model.model)
    return model


def test_trained_model_predicts_once_per_execute_and_splits_the_rows(ranker: Any) -> None:
    rng = np.random.default_rng(1)
    batches = [np.round(rng.normal(size=(n, 3)) * [5, 1, 0.3] + [5, 4, 0.5], 2) for n in (1, 3, 1, 2, 1)]
    responses = ranker.execute([ranker_request(b) for b in batches])
    assert ranker.model.calls == 1  # five requests, one prediction
    alone = [ranker.execute([ranker_request(b)])[0].outputs["score"] for b in batches]
    assert ranker.model.calls == 6
    for response, rows, expected in zip(responses, batches, alone, strict=True):
        assert response.error is None
        assert response.outputs["score"].shape == (len(rows), 1) and response.outputs["score"].dtype == np.float32
        np.testing.assert_array_equal(response.outputs["score"], expected)


def test_trained_model_isolates_a_bad_request(ranker: Any) -> None:
    good = [np.array([[3.0, 4.5, 0.5]]), np.array([[9.0, 3.0, 0.9], [1.0, 5.0, 0.1]])]
    nan = np.array([[2.0, np.nan, 0.5]])
    missing = ranker_request(good[0])
    del missing["rating"]
    responses = ranker.execute([ranker_request(good[0]), missing, ranker_request(nan), ranker_request(good[1])])
    assert "input rating is missing" in str(responses[1].error)
    assert responses[2].error is not None and "NaN" in str(responses[2].error)
    for response, rows in zip((responses[0], responses[3]), good, strict=True):
        assert response.error is None
        expected = ranker.model.model.predict_proba(rows)[:, 1].astype(np.float32)
        np.testing.assert_allclose(response.outputs["score"][:, 0], expected, rtol=1e-6)


def test_placeholder_answers_stacked_requests_once_each_with_its_own_rows(tmp_path: Path, backend: None) -> None:
    generate(PRESETS / "realtime.yaml", tmp_path, ("model_repository", "serving"))
    model_dir = tmp_path / "model_repository/fraud_calibrator"
    assert "dynamic_batching" in (model_dir / "config.pbtxt").read_text()
    model = load_model(model_dir, model_dir / "1/model.py")
    calls = []
    answer = model._answer
    model._answer = lambda arrays: calls.append(arrays[0].shape[0]) or answer(arrays)
    scores = [np.array([[0.5]], np.float32), np.array([[1.0], [-2.0]], np.float32), np.array([[3.0]], np.float32)]
    requests = [{"score": Tensor("score", s)} for s in scores]
    requests.insert(1, {})  # no input at all: its own error
    responses = model.execute(requests)
    assert calls == [4]  # the three readable requests, four rows, in one computation
    assert "input score is missing" in str(responses[1].error)
    for response, s in zip([responses[0], *responses[2:]], scores, strict=True):
        assert response.error is None
        np.testing.assert_allclose(response.outputs["probability"], 1 / (1 + np.exp(-s)), rtol=1e-6)
