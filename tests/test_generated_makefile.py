"""The generated repository's Makefile: every target of every preset parses and expands, the
environment the generated code reads is exported with local defaults (secrets are not), PREDICT_ARGS
reaches the serving client, and online training gets `make train-online` and its broker client."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from triton_harness import PRESETS, generate

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")

PRESET_NAMES = sorted(p.stem for p in PRESETS.glob("*.yaml"))
ENV_NAMES = ("REDIS_CONNECTION_STRING", "POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_PASSWORD", "PII_HASH_SALT")


def make(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ENV_NAMES and not k.startswith(("RABBITMQ", "TRAINING"))}
    res = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=repo,
        env={**base, **(env or {})},
        text=True,
        capture_output=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def environment(repo: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a recipe of the Makefile runs with."""
    out = make(repo, "-s", "--eval", "_env: ; @env", "_env", *args, env=env)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def online_spec(tmp_path: Path) -> Path:
    text = (PRESETS / "reference.yaml").read_text()
    spec = tmp_path / "online.yaml"
    spec.write_text(
        text.replace("trigger: schedule", "trigger: online")
        .replace("broker: none", "broker: rabbitmq")
        .replace('  schedule: "@daily"', "")
    )
    return spec


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_every_target_of_every_preset_expands(preset: str, tmp_path: Path) -> None:
    generate(PRESETS / f"{preset}.yaml", tmp_path, ("frame",))
    makefile = (tmp_path / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.+)$", makefile, re.M)
    assert phony
    assert "make demo" in make(tmp_path, "help")
    for target in phony.group(1).split():
        make(tmp_path, "-n", target, "VENV=/opt/venv")


def test_environment_is_exported_with_local_defaults_and_secrets_are_not(tmp_path: Path) -> None:
    generate(PRESETS / "realtime.yaml", tmp_path, ("frame", "feature_repo"))
    env = environment(tmp_path)
    assert env["REDIS_CONNECTION_STRING"] == "127.0.0.1:6379"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_SSLMODE"]) == ("127.0.0.1", "5432", "disable")
    assert "POSTGRES_PASSWORD" not in env and "PII_HASH_SALT" not in env  # secrets come from the environment
    assert env["TRITON_VENV"] == ".venv-triton"
    makefile = (tmp_path / "Makefile").read_text()
    assert "#   POSTGRES_PASSWORD" in makefile and "#   PII_HASH_SALT" in makefile
    # only the demo, over synthetic sample data, hashes with a salt of its own when none is set
    assert "\ndemo: export PII_HASH_SALT ?= demo-only-salt-for-sample-data\n" in makefile
    # every ${VAR} feature_store.yaml reads is exported or named as one to set
    yaml_text = (tmp_path / "feature_repo" / "feature_store.yaml").read_text()
    placeholders = set(re.findall(r"^[^#]*\$\{(\w+)\}", yaml_text, re.M))
    assert placeholders
    for name in placeholders:
        assert f"export {name} ?= " in makefile or f"#   {name}\n" in makefile, name
    # the shell and the command line win over the defaults
    overridden = environment(tmp_path, "POSTGRES_DB=test", env={"POSTGRES_HOST": "db.internal"})
    assert (overridden["POSTGRES_HOST"], overridden["POSTGRES_DB"]) == ("db.internal", "test")


def test_reference_has_no_environment_block_and_predict_takes_arguments(tmp_path: Path) -> None:
    generate(PRESETS / "reference.yaml", tmp_path, ("frame",))
    makefile = (tmp_path / "Makefile").read_text()
    assert "export POSTGRES" not in makefile and "train-online" not in makefile  # sqlite + files, scheduled
    assert "PII_HASH_SALT" not in makefile  # nothing hashed: no salt, not even the demo's
    assert 'PREDICT_ARGS="--driver_id 1001 --driver_id 1002"' in makefile
    out = make(tmp_path, "-n", "predict", "VENV=/opt/venv", "PREDICT_ARGS=--driver_id 1002 --driver_id 1003")
    assert "/opt/venv/bin/python -m serving.client --driver_id 1002 --driver_id 1003" in out
    assert "pika" not in (tmp_path / "requirements.txt").read_text()


def test_online_training_gets_train_online_and_the_broker_client(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    generate(online_spec(tmp_path), repo, ("frame",))
    assert "pika==1.4.4" in (repo / "requirements.txt").read_text().splitlines()
    assert "make train-online" in make(repo, "help")
    out = make(repo, "-n", "train-online", "VENV=/opt/venv", "TRAIN_ONLINE_ARGS=--idle-timeout 5")
    assert "/opt/venv/bin/python -m training.online --broker rabbitmq --idle-timeout 5" in out
    env = environment(repo)
    assert env["RABBITMQ_URL"] == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert env["TRAINING_TOPIC"] == "driver_ranking.training_events"


def test_demo_stops_the_server_unless_asked_to_keep_it(tmp_path: Path) -> None:
    generate(PRESETS / "reference.yaml", tmp_path, ("frame",))
    stopped = make(tmp_path, "-n", "-o", "setup", "demo", "VENV=/opt/venv")
    assert "/opt/venv/bin/python -m serving.triton_runtime stop" in stopped
    kept = make(tmp_path, "-n", "-o", "setup", "demo", "VENV=/opt/venv", "KEEP_SERVING=1")
    assert "/opt/venv/bin/python -m serving.triton_runtime start" in kept
    assert "serving.triton_runtime stop" not in kept  # make test's live tests use the running server
