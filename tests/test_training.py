"""Training pipeline of the generated repository, end to end with real Feast (and Triton, RabbitMQ).

One reference repository per module: sample data -> feast apply -> materialize -> `make train`
(archgen's .venv stands in for the generated repo's own). Then: the gate passes and writes version 1,
the real Triton server serves it, an unreachable threshold exits 3 and leaves the model repository
byte-identical, a second run writes version 2, and the online consumer learns from RabbitMQ.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from triton_harness import PRESETS, Server, generate, have_triton
from triton_harness import make_generated as _make

from generator.decide import decide
from generator.plan.training import training_settings
from requirements_spec.validate import load_spec, parse_spec

pytestmark = pytest.mark.slow
VENV = Path(os.environ.get("ARCHGEN_VENV", Path(sys.executable).parent.parent)).resolve()
REFERENCE = PRESETS / "reference.yaml"


def _python(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV / "bin" / "python"), *args], cwd=repo, text=True, capture_output=True, timeout=timeout, check=False
    )


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    repo = tmp_path_factory.mktemp("reference")
    generate(REFERENCE, repo)
    prep = _make(repo, "data", "apply", "materialize")
    assert prep.returncode == 0, prep.stdout[-3000:] + prep.stderr[-3000:]
    return repo, _make(repo, "train")


def test_make_train_passes_the_gate_and_writes_version_1(
    trained: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    repo, result = trained
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    version = repo / "model_repository" / "ranker" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["metrics.json", "model.joblib", "model.py"]
    metrics = json.loads((version / "metrics.json").read_text())
    assert metrics["passed"] is True and metrics["metric"] == "roc_auc"
    assert metrics["value"] >= 0.6  # the sample label is learnable
    assert metrics["features"] == ["trips_today", "rating", "acceptance_rate"]
    assert metrics["rows"]["train"] > metrics["rows"]["holdout"] > 0
    assert not list(repo.glob(".ranker-v*")), "staging directories must not be left behind"


def test_unreachable_threshold_fails_the_gate_and_ships_nothing(
    trained: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    repo, _ = trained
    text = REFERENCE.read_text().replace("threshold: 0.6", "threshold: 0.999")
    assert "threshold: 0.999" in text
    strict = tmp_path / "strict"
    spec = tmp_path / "strict.yaml"
    spec.write_text(text)
    generate(spec, strict)
    shutil.copytree(repo / "feature_repo" / "data", strict / "feature_repo" / "data", dirs_exist_ok=True)
    before = _tree_digest(strict / "model_repository")
    result = _python(strict, "-m", "training.train")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "quality gate failed" in result.stderr and "roc_auc >= 0.999: FAILED" in result.stdout
    assert _tree_digest(strict / "model_repository") == before
    assert not list(strict.glob(".ranker-v*"))


def test_triton_serves_the_trained_version(trained: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    if not have_triton():
        pytest.skip("the Triton venv (ARCHGEN_TRITON_VENV) has no tritonserver")
    import joblib
    import tritonclient.http as httpclient

    repo, result = trained
    assert result.returncode == 0
    rows = np.array([[3, 4.9, 0.95], [0, 3.1, 0.2]], dtype=np.float32)
    expected = joblib.load(repo / "model_repository" / "ranker" / "1" / "model.joblib").predict_proba(
        rows.astype(np.float64)
    )[:, 1]
    server = Server(repo)
    try:
        server.start()
        client = httpclient.InferenceServerClient(server.http)
        assert client.is_model_ready("ranker", "1")
        inputs = []
        for i, name in enumerate(["trips_today", "rating", "acceptance_rate"]):
            dtype = "INT64" if name == "trips_today" else "FP32"
            tensor = httpclient.InferInput(name, [2, 1], dtype)
            tensor.set_data_from_numpy(rows[:, i : i + 1].astype(np.int64 if dtype == "INT64" else np.float32))
            inputs.append(tensor)
        out = client.infer("ranker", inputs).as_numpy("score")
        np.testing.assert_allclose(out.ravel(), expected, rtol=1e-5)
        assert 0.0 < out.min() <= out.max() < 1.0 and abs(float(expected[0] - expected[1])) > 0.05  # not constant
    finally:
        server.stop()


def test_second_run_writes_the_next_version(trained: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    repo, first = trained
    assert first.returncode == 0
    result = _python(repo, "-m", "training.train")
    assert result.returncode == 0, result.stderr
    second = repo / "model_repository" / "ranker" / "2"
    assert sorted(p.name for p in second.iterdir()) == ["metrics.json", "model.joblib", "model.py"]
    assert (second / "model.py").read_bytes() == (repo / "model_repository" / "ranker" / "1" / "model.py").read_bytes()
    assert json.loads((second / "metrics.json").read_text())["version"] == 2


# ------------------------------------------------------------------ online training
def _rabbitmq_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


def test_online_consumer_learns_from_rabbitmq(tmp_path: Path) -> None:
    if not _rabbitmq_up():
        pytest.skip("RabbitMQ is not answering on 127.0.0.1:5672")
    import pika

    text = (
        REFERENCE.read_text()
        .replace("trigger: schedule", "trigger: online")
        .replace("broker: none", "broker: rabbitmq")
    )
    spec = tmp_path / "online.yaml"
    spec.write_text(text)
    online = tmp_path / "online"
    arch = generate(spec, online)
    assert arch.training.mode == "online" and (online / "training" / "online.py").is_file()
    queue = f"archgen-test-{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(0)
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    try:
        channel = connection.channel()
        channel.queue_declare(queue=queue, durable=True)
        for _ in range(600):
            trips, rating, rate = int(rng.integers(0, 20)), float(rng.uniform(3, 5)), float(rng.uniform(0, 1))
            accepted = int(rate + 0.2 * (rating - 4) + rng.normal(0, 0.15) > 0.5)
            event = {"trips_today": trips, "rating": rating, "acceptance_rate": rate, "accepted": accepted}
            channel.basic_publish("", queue, json.dumps(event).encode())
        channel.basic_publish("", queue, b"not json")  # a malformed event is skipped, not fatal
        before = _tree_digest(online / "model_repository")
        result = _python(
            online,
            "-m",
            "training.online",
            "--topic",
            queue,
            "--export-every",
            "300",
            "--idle-timeout",
            "2",
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "learnt from 600 events (1 skipped)" in result.stdout
        assert "exported 1 of ranker" in result.stdout and "exported 2 of ranker" in result.stdout
        assert _tree_digest(online / "model_repository") != before
        metrics = json.loads((online / "model_repository" / "ranker" / "2" / "metrics.json").read_text())
        assert metrics["metrics"]["roc_auc"] >= 0.6
        # the exported model has the batch pipeline's form, so the Triton python model loads it as is
        check = _python(
            online,
            "-c",
            "import joblib; p = joblib.load('model_repository/ranker/2/model.joblib');"
            "print(type(p[-1]).__name__, round(float(p.predict_proba([[5, 4.9, 0.95]])[0, 1]), 3))",
        )
        kind, proba = check.stdout.split()
        assert kind == "LogisticRegression" and float(proba) > 0.5, check.stderr
    finally:
        if connection.is_open:
            connection.channel().queue_delete(queue=queue)
            connection.close()


# ------------------------------------------------------------------ settings (fast)
def test_settings_follow_the_spec() -> None:
    ref = training_settings(decide(load_spec(REFERENCE)))
    assert ref["join_keys"] == ["driver_id"] and ref["request_fields"] == []
    assert ref["task"] == "classification" and ref["metric"] == "roc_auc" and not ref["lower_is_better"]
    assert [m["name"] for m in ref["models"]] == ["ranker"]
    realtime = training_settings(decide(load_spec(PRESETS / "realtime.yaml")))
    assert realtime["join_keys"] == ["card_id", "merchant_id"]
    # every field of the request source comes with the labels (Feast asks for them all, not only those a view reads)
    assert realtime["request_fields"] == ["amount", "currency"]
    assert realtime["label"]["kind"] == "table" and realtime["offline_store"] == "postgres"
    text = REFERENCE.read_text().replace("{metric: roc_auc, threshold: 0.6}", "{metric: rmse, threshold: 2.5}")
    reg = training_settings(decide(parse_spec(text, "spec.yaml")))
    assert reg["task"] == "regression" and reg["lower_is_better"]
