"""The reference spec end to end: sample data, feast apply, materialize, train (the generated scripts),
then the generated Triton runtime and serving client: features from Feast, prediction from Triton,
checked against the trained artefact itself."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from triton_harness import PRESETS, Server, generate, have_triton, load_client, make_generated, running

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


def test_prediction_uses_feast_features_and_the_trained_model(served: Server) -> None:
    import joblib

    client = load_client(served.repo)
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


def test_predictors_of_one_process_share_one_feast_store(served: Server) -> None:
    """Clients of one process (the load test's sender threads, each with its own) share one Feast store: two
    stores would evict each other's feature views from Feast's registry caches at every request (parsed again
    each time); reads from two threads at once each get their own answer. Only the senders' parses count, and a
    registry refresh (its cache TTL passing, its file rewritten) may parse each view once: neither is an eviction."""
    import threading
    import traceback

    from feast.feature_view import FeatureView

    client = load_client(served.repo)
    rows = [[{"driver_id": 1001 + i}] for i in range(8)]
    first = client.Predictor(url=served.http, repo_path=served.repo / "feature_repo")
    alone = [first.predict(r)[0]["score"] for r in rows]  # warm: the registry's views parsed once
    parsed: list[str] = []
    real = FeatureView.from_proto.__func__  # type: ignore[attr-defined]
    senders: set[int] = set()

    def counted(cls: type, *args: object, **kwargs: object) -> object:
        if counting.is_set() and threading.get_ident() in senders:
            parsed.append("".join(traceback.format_stack(limit=12)))
        return real(cls, *args, **kwargs)

    registry = first.store.registry
    reads_registry = registry._registry_store.get_registry_proto
    refreshed: list[int] = []

    def read_registry() -> object:
        if counting.is_set():
            refreshed.append(1)
        return reads_registry()

    stores: list[object] = []
    answers: dict[int, list[float]] = {}
    made, counting = threading.Barrier(3), threading.Event()
    start = threading.Barrier(3)  # the requests start once counting is on

    def sender(k: int) -> None:  # an HTTP client serves the thread that made it: one predictor per thread
        senders.add(threading.get_ident())
        predictor = client.Predictor(url=served.http, repo_path=served.repo / "feature_repo")
        stores.append(predictor.store)
        made.wait()
        start.wait()
        for i in range(k, len(rows), 2):
            answers[i] = predictor.predict(rows[i])[0]["score"]
        predictor.close()

    FeatureView.from_proto = classmethod(counted)  # type: ignore[method-assign, assignment]
    registry._registry_store.get_registry_proto = read_registry
    try:
        threads = [threading.Thread(target=sender, args=(k,)) for k in range(2)]
        for thread in threads:
            thread.start()
        made.wait(timeout=60)  # both predictors made: from here on, only requests
        counting.set()
        start.wait(timeout=60)
        for thread in threads:
            thread.join(timeout=60)
    finally:
        FeatureView.from_proto = classmethod(real)  # type: ignore[method-assign, assignment]
        registry._registry_store.get_registry_proto = reads_registry
        first.close()
    assert [answers[i] for i in range(len(rows))] == alone
    views = len(first.store.list_feature_views())
    assert len(parsed) <= views * len(refreshed), (
        f"feature views parsed again {len(parsed)} times in {len(rows)} requests "
        f"({len(refreshed)} registry refreshes); first at:\n{parsed[0] if parsed else ''}"
    )
    assert len(stores) == 2 and all(store is first.store for store in stores)


def test_unknown_entity_is_a_clear_error(served: Server) -> None:
    client = load_client(served.repo)
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
