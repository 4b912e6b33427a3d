"""Runtime python_rest end to end: the starter spec's generated repository, through its own Makefile (sample
data, feast apply, materialize, train), then its REST service (`make serve-start`: FastAPI on uvicorn, a free
loopback port) answering over HTTP with predictions computed in process from Feast's online features and the
exported model.joblib, checked against Feast and the artefact called directly. No Triton anywhere."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from triton_harness import make_generated

from generator.checks.checks import check_repository

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
STARTER = ROOT / "requirements_spec" / "presets" / "starter.yaml"
IDS = [1001, 1002, 1017, 1050]  # scripts/generate_sample_data.py writes ids 1001..1050


def _make(repo: Path, *targets: str, env: dict[str, str] | None = None) -> str:
    result = make_generated(repo, *targets, env=env)
    assert result.returncode == 0, f"make {' '.join(targets)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _call(url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Service:
    def __init__(self, repo: Path, state: dict[str, Any]) -> None:
        self.repo = repo
        self.state = state
        self.url = str(state["url"])
        settings = _module(repo / "training" / "settings.py", "starter_training_settings")
        (model,) = settings.MODELS
        self.model = model["name"]
        self.features = list(model["features"])
        self.feature_service = model["feature_service"]

    def predict(self, rows: list[dict[str, Any]]) -> tuple[int, Any]:
        return _call(f"{self.url}/predict", {"rows": rows})


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    repo = tmp_path_factory.mktemp("rest") / "customer_churn"
    new = subprocess.run(
        [sys.executable, "-m", "generator.cli", "new", str(STARTER), "-o", str(repo)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert new.returncode == 0, new.stderr
    _make(repo, "data", "apply", "materialize", "train")
    env = {**os.environ, "MODEL_RELOAD_S": "0.5"}  # the reload test need not wait the default 30 s
    _make(repo, "serve-start", env=env)
    state = json.loads((repo / ".run" / "rest_app.json").read_text())
    try:
        yield Service(repo, state)
    finally:
        _make(repo, "serve-stop")
        try:
            os.kill(int(state["pid"]), 0)
            alive = True
        except ProcessLookupError:
            alive = False
        assert not alive, "make serve-stop left the REST service running"


def test_the_python_rest_repository_has_no_triton_and_trains_into_model_repository(service: Service) -> None:
    repo = service.repo
    assert not (repo / "serving" / "triton_runtime.py").exists() and not (repo / "requirements-triton.txt").exists()
    version = repo / "model_repository" / service.model / "1"
    assert sorted(p.name for p in version.iterdir()) == ["metrics.json", "model.joblib"]
    assert not list((repo / "model_repository").rglob("config.pbtxt"))
    assert service.state["url"].startswith("http://127.0.0.1:")
    report = check_repository(repo)  # a model repository of trained versions only is not a broken Triton one
    assert report.ok, [str(p) for p in report.problems]


def test_health_endpoints(service: Service) -> None:
    assert _call(f"{service.url}/health/live") == (200, {"status": "ok"})
    assert _call(f"{service.url}/health") == (200, {"status": "ok", "model": service.model, "version": 1})


def test_predictions_match_feast_and_the_model_called_directly(service: Service) -> None:
    import joblib
    from feast import FeatureStore

    status, answer = service.predict([{"customer_id": i} for i in IDS])
    assert status == 200, answer
    assert answer["model"] == service.model and answer["version"] == 1
    predictions = answer["predictions"]
    assert [p["customer_id"] for p in predictions] == IDS
    values = [p["churn_probability"] for p in predictions]
    assert all(isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= 1.0 for v in values), values
    assert len(set(values)) > 1, "different customers, different risks"

    store = FeatureStore(repo_path=str(service.repo / "feature_repo"))
    online = store.get_online_features(
        features=store.get_feature_service(service.feature_service), entity_rows=[{"customer_id": i} for i in IDS]
    ).to_dict()
    for i, p in enumerate(predictions):
        assert p["features"] == {name: online[name][i] for name in service.features}
    x = np.array([[online[name][i] for name in service.features] for i in range(len(IDS))], dtype=np.float64)
    model = joblib.load(service.repo / "model_repository" / service.model / "1" / "model.joblib")
    expected = model.predict_proba(x)[:, 1]
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-12)


def test_the_generated_client_and_make_predict(service: Service) -> None:
    out = _make(service.repo, "predict")
    answer = json.loads(out.strip().splitlines()[-1])
    status, direct = service.predict([{"customer_id": 1001}])
    assert status == 200 and answer == direct


def test_bad_requests_get_clear_errors(service: Service) -> None:
    status, answer = service.predict([{"customer_id": 999_999}])
    assert status == 404 and "materialize" in answer["detail"]
    status, answer = service.predict([{"customer": 1001}])
    assert status == 422 and "customer_id" in answer["detail"]
    status, answer = service.predict([{"customer_id": "1001"}])
    assert status == 422 and "int64" in answer["detail"]
    status, answer = service.predict([])
    assert status == 422


def test_a_new_version_goes_live_without_a_restart(service: Service) -> None:
    """What training's export does (a new version folder, renamed into place) reaches the running service."""
    model_dir = service.repo / "model_repository" / service.model
    staged = model_dir.parent / ".staged-v2"
    shutil.copytree(model_dir / "1", staged)
    staged.rename(model_dir / "2")
    deadline = time.monotonic() + 30
    while _call(f"{service.url}/health")[1].get("version") != 2:
        assert time.monotonic() < deadline, "version 2 was not picked up"
        time.sleep(0.2)
    status, answer = service.predict([{"customer_id": 1001}])
    assert status == 200 and answer["version"] == 2
