"""Every architecture whose models Triton serves (online, batch scoring, async workers) gets what it
needs to run them: the Triton client in requirements.txt, the Triton runtime's own requirements and
the serve targets. (Batch scoring runs in process: tests/test_runtimes.py.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml
from triton_harness import PRESETS, generate, have_triton, make_argv, make_generated

from generator.generate import generate as generate_in_memory

PRESET_NAMES = sorted(p.stem for p in PRESETS.glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_triton_served_systems_get_the_client_and_the_runtime(preset: str) -> None:
    files = generate_in_memory(PRESETS / f"{preset}.yaml").files
    served = any(p.startswith("model_repository/") for p in files)
    requirements = files["requirements.txt"].decode()
    makefile = files["Makefile"].decode()
    assert ("tritonclient[" in requirements) is served, requirements
    assert ("requirements-triton.txt" in files) is served
    assert ("python -m serving.triton_runtime start" in makefile) is served
    if "serving/worker.py" in files:
        assert served, "the async worker calls Triton through serving/client.py"
    assert ("\nscore:" in makefile) is ("batch/score.py" in files)  # batch/: the in-process runtime


def _async_spec(tmp_path: Path, project: str) -> Path:
    data = yaml.safe_load((PRESETS / "reference.yaml").read_text())
    data["project"]["name"] = project  # queues of its own on the shared broker
    data["serving"]["mode"] = "async"
    data["existing"]["broker"] = "rabbitmq"
    spec = tmp_path / "async.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec


@pytest.mark.slow
@pytest.mark.triton
def test_async_worker_answers_requests_from_rabbitmq(tmp_path: Path) -> None:
    pika = pytest.importorskip("pika")
    if not have_triton() or shutil.which("make") is None:
        pytest.skip("needs make and the Triton virtualenv (make setup-triton)")
    try:
        connection = pika.BlockingConnection(pika.URLParameters("amqp://127.0.0.1:5672/"))
    except Exception as exc:
        pytest.skip(f"RabbitMQ does not answer on 127.0.0.1:5672: {exc}")
    project = f"async_{uuid.uuid4().hex[:8]}"
    repo = tmp_path / "repo"
    generate(_async_spec(tmp_path, project), repo)
    assert "pika==1.4.4" in (repo / "requirements.txt").read_text().splitlines()
    queue, results = f"{project}.requests", f"{project}.requests.results"
    channel = connection.channel()
    worker = None
    try:
        prepared = make_generated(repo, "data", "apply", "materialize", "train", "serve-start")
        assert prepared.returncode == 0, prepared.stdout[-3000:] + prepared.stderr[-3000:]
        env = {**os.environ, "BROKER_URL": "amqp://127.0.0.1:5672/"}
        worker = subprocess.Popen(
            make_argv("worker"),
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        channel.queue_declare(queue, durable=True)
        channel.queue_declare(results, durable=True)
        request = {"id": "r-1", "rows": [{"driver_id": 1001}, {"driver_id": 1002}]}
        channel.basic_publish("", queue, json.dumps(request).encode())
        deadline = time.monotonic() + 120
        reply = None
        while reply is None and time.monotonic() < deadline:
            method, _, body = channel.basic_get(results, auto_ack=True)
            if method is None:
                assert worker.poll() is None, worker.communicate()[0][-3000:]
                time.sleep(0.5)
            else:
                reply = json.loads(body)
        assert reply is not None, "no reply from the worker within 120 s"
        assert reply["id"] == "r-1" and "error" not in reply, reply
        assert [p["driver_id"] for p in reply["predictions"]] == [1001, 1002]
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        make_generated(repo, "serve-stop")
        channel.queue_delete(queue)
        channel.queue_delete(results)
        connection.close()


@pytest.mark.parametrize(
    ("broker", "online", "asynchronous", "expected"),
    [
        ("kafka", True, False, {"confluent-kafka==2.16.1"}),
        ("kafka", False, True, {"kafka-python==3.0.12"}),
        ("kafka", True, True, {"confluent-kafka==2.16.1", "kafka-python==3.0.12"}),
        ("rabbitmq", True, True, {"pika==1.4.4"}),
        ("redis", False, True, set()),  # the reference's feast[redis] already brings the redis client
        ("rabbitmq", False, False, set()),
    ],
)
def test_broker_clients_are_pinned_for_the_online_trainer_and_the_async_worker(
    tmp_path: Path, broker: str, online: bool, asynchronous: bool, expected: set[str]
) -> None:
    data = yaml.safe_load((PRESETS / "reference.yaml").read_text())
    data["existing"]["broker"] = broker
    if online:
        data["training"]["trigger"] = "online"
        data["training"].pop("schedule", None)
    if asynchronous:
        data["serving"]["mode"] = "async"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    files = generate_in_memory(spec).files
    pins = set(files["requirements.txt"].decode().splitlines())
    clients = {p for p in pins if p.startswith(("pika==", "redis==", "confluent-kafka==", "kafka-python=="))}
    assert clients == expected
    assert ("\nworker:" in files["Makefile"].decode()) is asynchronous
    modules = {"pika==1.4.4": "pika", "redis==7.4.1": "redis"}
    modules |= {"confluent-kafka==2.16.1": "confluent_kafka", "kafka-python==3.0.12": "kafka"}
    setup = next(line for line in files["Makefile"].decode().splitlines() if "ensure_venv,$(VENV)" in line)
    assert all(modules[p] in setup.rstrip(")").split(",")[-1].split() for p in expected), setup
