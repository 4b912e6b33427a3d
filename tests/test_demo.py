"""`make demo` from a clean clone in a fresh directory: the reference system end to end, its predictions,
the Triton server stopped afterwards; and a failing step (a quality gate the model cannot meet) that
stops the demo with a clear message and a non-zero exit.

The clone is the files git would check out (tracked and untracked-but-not-ignored). archgen's own
virtualenvs stand in for the clone's: `make -o setup ...` skips the setup targets, so the shared
editable install is never re-pointed at the clone."""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from triton_harness import PRESETS, ROOT, have_triton, triton_venv

from generator.generate import decide
from requirements_spec.validate import load_spec
from tools.demo import predict_args, prediction_lines, sample_ids

SETUP_TARGETS = ("setup", "setup-triton", "system-deps", "services")
PREDICTION = re.compile(r"^\s+prediction driver_id=(\d+) score=(\S+) \| features: (.+)$", re.M)
READY = re.compile(r"ready: pid (\d+), http 127\.0\.0\.1:(\d+), grpc 127\.0\.0\.1:(\d+)")

NEEDS_TRITON = pytest.mark.skipif(not have_triton(), reason="no tritonserver in the Triton venv (ARCHGEN_TRITON_VENV)")
NEEDS_GIT = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="the clean clone needs git and a checkout"
)


def clean_clone(dest: Path) -> Path:
    """Copy what `git clone` would give (tracked + untracked-not-ignored files) into ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if not src.exists() and not src.is_symlink():  # deleted in the working tree, not committed yet
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    return dest


def make_demo(clone: Path, *demo_args: str) -> subprocess.CompletedProcess[str]:
    venv = Path(sys.executable).parent.parent
    command = ["make", "--no-print-directory"]
    for target in SETUP_TARGETS:  # the venvs and services exist: never reinstall into the shared venv
        command += ["-o", target]
    command += ["demo", f"VENV={venv}", f"TRITON_VENV={triton_venv()}", f"DEMO_ARGS={' '.join(demo_args)}"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ARCHGEN_VENV", "ARCHGEN_TRITON_VENV")}
    return subprocess.run(
        command, cwd=clone, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900
    )


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_clone(tmp_path_factory.mktemp("fresh") / "archgen")


@pytest.mark.slow
@pytest.mark.triton
@NEEDS_TRITON
@NEEDS_GIT
def test_make_demo_from_a_clean_clone_prints_predictions_and_stops_triton(clone: Path) -> None:
    assert not (clone / ".venv").exists() and not (clone / "demo").exists()
    result = make_demo(clone, "--entities", "4")
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    repo = clone / "demo" / "driver_ranking"  # the default output, inside the clone: the clone's code ran
    assert (repo / ".archgen" / "manifest.json").is_file()
    for step in range(1, 10):
        assert f"[{step}/9] " in out

    found = PREDICTION.findall(out)
    assert [int(entity) for entity, _, _ in found] == [1001, 1002, 1003, 1004], out[-3000:]
    for _, score, features in found:
        value = float(score)
        assert math.isfinite(value) and 0.0 <= value <= 1.0  # roc_auc gate: a classifier's probability
        names = {item.split("=")[0] for item in features.split()}
        assert names == {"trips_today", "rating", "acceptance_rate"}
    assert len({score for _, score, _ in found}) > 1  # the features reach the model: not one constant answer

    assert "gate roc_auc >= 0.6: passed" in out
    assert (repo / "model_repository" / "ranker" / "1" / "model.joblib").is_file()
    ready = READY.search(out)
    assert ready, out[-3000:]
    pid, http, grpc = (int(g) for g in ready.groups())
    assert f"Triton server stopped: pid {pid} gone" in out
    assert not pid_running(pid)
    assert not port_open(http) and not port_open(grpc)
    assert not (repo / ".run" / "triton.json").exists()
    for where in ("docs/architecture.md", "docs/adr", "docs/review.html"):
        assert str(repo / where) in out


@pytest.mark.slow
@pytest.mark.triton
@NEEDS_TRITON
@NEEDS_GIT
def test_make_demo_stops_at_a_failing_quality_gate_with_a_clear_message(clone: Path, tmp_path: Path) -> None:
    spec = tmp_path / "strict.yaml"
    text = (PRESETS / "reference.yaml").read_text()
    strict = text.replace("threshold: 0.6}", "threshold: 0.999}")
    assert strict != text
    spec.write_text(strict)
    out_dir = tmp_path / "strict_demo"
    result = make_demo(clone, str(out_dir), "--spec", str(spec))
    out = result.stdout
    assert result.returncode != 0, out[-4000:]
    assert "demo failed at step 5/9: `make train` exited 3" in out
    assert "gate roc_auc >= 0.999: FAILED" in out
    assert "quality gate failed: nothing shipped" in out
    assert "hint: a model below the spec's training.min_quality is not exported" in out
    log = re.search(r"full output: (\S+)", out)
    assert log and Path(log.group(1)).is_file()
    assert "[6/9]" not in out  # no server was started
    assert not list((out_dir / "model_repository").glob("ranker/*/model.joblib"))  # nothing was exported


# ------------------------------------------------------------------ the parts, without servers
def test_demo_asks_for_the_sample_entities_the_data_generator_writes() -> None:
    arch = decide(load_spec(PRESETS / "reference.yaml"))
    tokens, keys = predict_args(arch, 3)
    assert keys == ["driver_id"]
    assert tokens == ["--driver_id 1001", "--driver_id 1002", "--driver_id 1003"]
    assert sample_ids("merchant", "string", 2) == ["merchant_0001", "merchant_0002"]


def test_demo_prints_one_parseable_line_per_prediction_and_rejects_an_empty_answer() -> None:
    answer = (
        '{"model": "ranker", "predictions": [{"driver_id": 1001, "features": {"rating": 4.5, "trips_today": 3}, '
        '"score": [0.25]}, {"driver_id": 1002, "features": {"rating": 3.0, "trips_today": 1}, "score": [0.75]}]}'
    )
    lines = prediction_lines("/venv/bin/python -m serving.client\n" + answer, ["driver_id"])
    assert lines == [
        "model ranker: 2 prediction(s)",
        "prediction driver_id=1001 score=0.25 | features: rating=4.5 trips_today=3",
        "prediction driver_id=1002 score=0.75 | features: rating=3 trips_today=1",
    ]
    assert PREDICTION.findall("\n".join("      " + line for line in lines)) == [
        ("1001", "0.25", "rating=4.5 trips_today=3"),
        ("1002", "0.75", "rating=3 trips_today=1"),
    ]
    with pytest.raises(ValueError, match="no prediction"):
        prediction_lines('{"model": "ranker", "predictions": []}', ["driver_id"])
    with pytest.raises(ValueError, match="no JSON"):
        prediction_lines("error: no Triton server", ["driver_id"])
