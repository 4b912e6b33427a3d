"""The reference spec end to end: sample data, feast apply, materialize, train (the generated scripts),
then the generated Triton runtime and serving client: features from Feast, prediction from Triton,
checked against the trained artefact itself."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from triton_harness import PRESETS, Server, generate, have_triton, make_generated, running

pytestmark = [
    pytest.mark.slow,
    pytest.mark.triton,
    pytest.mark.skipif(not have_triton(), reason="no tritonserver in the Triton venv (ARCHGEN_TRITON_VENV)"),
]


def _make(repo: Path, target: str) -> None:
    result = make_generated(repo, target)
    assert result.returncode == 0, f"make {target}:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    repo = tmp_path_factory.mktemp("driver_ranking")
    generate(PRESETS / "reference.yaml", repo)
    for target in ("data", "apply", "materialize", "train"):
        _make(repo, target)
    with running(repo) as server:
        yield server


def _client(repo: Path) -> ModuleType:
    if str(repo) not in sys.path:  # the client imports serving.system_data, as from the repository's root
        sys.path.insert(0, str(repo))
    spec = importlib.util.spec_from_file_location("generated_serving_client", repo / "serving" / "client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prediction_uses_feast_features_and_the_trained_model(served: Server) -> None:
    import joblib

    client = _client(served.repo)
    predictor = client.Predictor(url=served.http, repo_path=served.repo / "feature_repo")
    rows = [{"driver_id": 1001}, {"driver_id": 1002}, {"driver_id": 1003}]
    predictions = predictor.predict(rows)
    predictor.close()
    model = joblib.load(sorted((served.repo / "model_repository" / "ranker").glob("*/model.joblib"))[-1])
    names = [name for name, _, _ in client.FEATURES]
    assert names == ["trips_today", "rating", "acceptance_rate"]
    x = np.array([[p["features"][n] for n in names] for p in predictions], dtype=np.float64)
    expected = model.predict_proba(x)[:, 1]
    got = np.array([p["score"][0] for p in predictions])
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert [p["driver_id"] for p in predictions] == [1001, 1002, 1003]
    assert len(set(got.round(6))) > 1  # different drivers, different scores


def test_unknown_entity_is_a_clear_error(served: Server) -> None:
    client = _client(served.repo)
    predictor = client.Predictor(url=served.http, repo_path=served.repo / "feature_repo")
    with pytest.raises(client.MissingFeatures, match="driver_id"):
        predictor.predict([{"driver_id": 999_999}])
    predictor.close()


def test_cli_prints_json(served: Server) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "serving.client", "--driver_id", "1001"],
        cwd=served.repo,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["model"] == "ranker"
    assert 0.0 < out["predictions"][0]["score"][0] < 1.0
