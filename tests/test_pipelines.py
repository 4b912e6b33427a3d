"""Detector-shaped pipelines: per-object outputs, returned tensors, the stop condition, configs that fit the
shapes, a BLS that scatters objects to per-object models, shape-honouring stand-ins and the vision preset's
`make demo`, end to end on the real Triton server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from triton_harness import PRESETS, ROOT, generate, have_triton, running

from generator.decide import decide
from requirements_spec.errors import SpecError
from requirements_spec.validate import load_spec

PRESET = PRESETS / "image_pipeline.yaml"
NEEDS_TRITON = pytest.mark.skipif(not have_triton(), reason="no tritonserver in the Triton venv (ARCHGEN_TRITON_VENV)")


def _variant(tmp_path: Path, change: Any) -> Path:
    data = yaml.safe_load(PRESET.read_text())
    change(data)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _models(arch: Any) -> dict[str, Any]:
    return {m.name: m for m in arch.serving.models}


# ------------------------------------------------------------------ decisions and configs
def test_frames_of_any_size_are_unbatched_and_per_object_steps_batch_over_objects() -> None:
    arch = decide(load_spec(PRESET))
    models = _models(arch)
    assert models["detector"].max_batch_size == 0 and not models["detector"].dynamic_batching
    for name in ("rectifier", "recognizer"):
        assert models[name].per_object and models[name].max_batch_size == 32 and models[name].dynamic_batching
        assert models[name].inputs[0].dims == [3, 24, 94]  # objects are the batch dimension, not a 5-D tensor
    pipe = models["plate_reader"]
    assert pipe.max_batch_size == 0
    assert [(t.name, t.dims, t.pii) for t in pipe.outputs] == [
        ("boxes", [-1, 4], False),
        ("scores", [-1], False),
        ("plate_text", [-1, 1], True),
    ]
    decision = arch.decision("pipeline_instances")
    assert pipe.instance_count == 2 and decision.choice == "plate_reader: KIND_CPU x2"
    assert "20 requests/s x chain latency 65 ms" in decision.rationale


def test_instances_follow_throughput_times_chain_latency(tmp_path: Path) -> None:
    def faster(data: dict[str, Any]) -> None:
        data["serving"]["throughput_rps"] = 200

    arch = decide(load_spec(_variant(tmp_path, faster)))
    assert _models(arch)["plate_reader"].instance_count == 13  # 200/s x 65 ms = 13 frames in flight


def test_dims_that_do_not_chain_are_an_error(tmp_path: Path) -> None:
    def wrong(data: dict[str, Any]) -> None:
        data["serving"]["models"][1]["inputs"][0]["dims"] = [-1, 3, 24, 94]  # a batch dim on top of the crops

    arch = decide(load_spec(_variant(tmp_path, wrong)))
    errors = [f for f in arch.errors if f.code == "pipeline.shapes_do_not_chain"]
    assert errors and "dims do not chain" in errors[0].message and "rectifier" in errors[0].message


def test_batching_frames_of_variable_size_is_a_warning(tmp_path: Path) -> None:
    def batched(data: dict[str, Any]) -> None:
        data["serving"]["models"][0]["max_batch_size"] = 8

    arch = decide(load_spec(_variant(tmp_path, batched)))
    assert any(f.code == "pipeline.variable_size_batching" and "detector" in f.message for f in arch.warnings)


def test_returned_tensors_and_the_stop_condition_must_name_step_outputs(tmp_path: Path) -> None:
    def unknown(data: dict[str, Any]) -> None:
        data["serving"]["pipeline"]["outputs"] = ["detector.boxes", "recognizer.txt"]
        data["serving"]["pipeline"]["stop_when"]["tensor"] = "detectr.scores"

    with pytest.raises(SpecError) as caught:
        load_spec(_variant(tmp_path, unknown))
    text = str(caught.value)
    assert "has no output 'txt'" in text and "'detectr' is not a step" in text


def test_the_bls_calls_asynchronously_and_never_logs_personal_data(tmp_path: Path) -> None:
    generate(PRESET, tmp_path, ("model_repository",))
    code = (tmp_path / "model_repository" / "plate_reader" / "1" / "model.py").read_text()
    assert "async def execute" in code and "await request.async_exec()" in code
    assert "Logger" not in code and "print(" not in code
    assert 'OUTPUTS = ["boxes", "scores", "plate_text"]' in code
    config = (tmp_path / "model_repository" / "plate_reader" / "config.pbtxt").read_text()
    assert "count: 2" in config and "max_batch_size" not in config


def _purge(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/purge.py", *args], cwd=repo, capture_output=True, text=True, timeout=120
    )


def test_personal_outputs_are_held_to_the_retention_by_the_scheduled_purge(tmp_path: Path) -> None:
    """A pipeline returning personal data (recognizer.plate_text) and no feature store still gets the purge: it
    runs daily and deletes the serving logs last written before the retention (30d); nothing else in .run/."""
    repo = tmp_path / "repo"
    generate(PRESET, repo)
    purge = (repo / "scripts" / "purge.py").read_text()
    assert "recognizer.plate_text" in purge and "RETENTION = timedelta(seconds=2592000)" in purge
    assert "the daily purge (`scripts/purge.py`)" in (repo / "serving" / "README.md").read_text()
    crontab = (repo / "pipelines" / "crontab").read_text()
    assert any(line.startswith("30 2 * * * ") and "scripts/purge.py" in line for line in crontab.splitlines())
    run = repo / ".run"
    run.mkdir()
    old = time.time() - 31 * 86400
    for name, when in (("triton-earlier.log", old), ("triton.log", time.time()), ("triton.json", old)):
        (run / name).write_text("I1130 09:43:57 server started\n")
        os.utime(run / name, (when, when))
    dry = _purge(repo, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "serving logs .run/*.log: 1 files older than" in dry.stdout and "to delete" in dry.stdout
    assert sorted(p.name for p in run.iterdir()) == ["triton-earlier.log", "triton.json", "triton.log"]
    done = _purge(repo)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in run.iterdir()) == ["triton.json", "triton.log"]  # state files are not logs


def test_without_personal_outputs_a_system_without_a_feature_store_has_nothing_to_purge(tmp_path: Path) -> None:
    spec = _variant(tmp_path, lambda d: d["serving"]["models"][2]["outputs"][0].update(pii=False))
    generate(spec, tmp_path / "repo")
    assert not (tmp_path / "repo" / "scripts" / "purge.py").exists()
    crontab = tmp_path / "repo" / "pipelines" / "crontab"
    assert not crontab.exists() or "purge" not in crontab.read_text()


# ------------------------------------------------------------------ end to end on Triton
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    repo = tmp_path_factory.mktemp("plates")

    def busy(data: dict[str, Any]) -> None:
        # a busy gate: 100 frames/s, a fast detector and a slower per-crop step, whose queue then holds the
        # crops of several frames at once (5 pipeline instances: 100/s x 50 ms)
        data["serving"]["throughput_rps"] = 100
        data["serving"]["models"][0]["latency_ms"] = 5
        data["serving"]["models"][1]["latency_ms"] = 30

    generate(_variant(repo, busy), repo)
    sys.path.insert(0, str(repo))
    try:
        from serving import pipeline_client, pipeline_samples

        with running(repo) as server:
            yield server, pipeline_client, pipeline_samples
    finally:
        sys.path.remove(str(repo))
        for name in [m for m in sys.modules if m == "serving" or m.startswith("serving.")]:
            del sys.modules[name]


def _stats(server: Any, model: str) -> tuple[int, int]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(server.grpc)
    try:
        stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    finally:
        client.close()
    return int(stats["inference_stats"]["success"].get("count", 0)), int(stats.get("execution_count", 0))


@pytest.mark.slow
@pytest.mark.triton
@NEEDS_TRITON
def test_two_objects_give_two_boxes_and_two_texts(served: Any) -> None:
    server, client, samples = served
    out = client.infer(samples.frame(2), server.grpc)
    assert out["boxes"].shape == (2, 4) and out["scores"].shape == (2,)
    assert [t.decode() for t in out["plate_text"].ravel()] == ["OBJ-150", "OBJ-170"]
    assert out["boxes"][0].tolist() == [30.0, 20.0, 210.0, 40.0]
    masked = client.objects(out)
    assert [row["plate_text"] for row in masked] == ["<personal data>"] * 2


@pytest.mark.slow
@pytest.mark.triton
@NEEDS_TRITON
def test_no_object_gives_empty_outputs_without_calling_later_steps(served: Any) -> None:
    server, client, samples = served
    before = _stats(server, "rectifier"), _stats(server, "recognizer")
    out = client.infer(samples.frame(0), server.grpc)
    assert out["boxes"].shape == (0, 4) and out["scores"].shape == (0,) and out["plate_text"].shape == (0, 1)
    assert (_stats(server, "rectifier"), _stats(server, "recognizer")) == before


@pytest.mark.slow
@pytest.mark.triton
@NEEDS_TRITON
def test_concurrent_frames_are_answered_per_frame_and_their_objects_batch_together(served: Any) -> None:
    server, client, samples = served
    counts = [1, 3, 2, 3, 1, 2, 3, 2] * 2
    answers: dict[int, Any] = {}
    errors: list[BaseException] = []

    def ask(i: int) -> None:
        try:
            answers[i] = client.infer(samples.frame(counts[i]), server.grpc)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    requests_before, executions_before = _stats(server, "rectifier")
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(counts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for i, n in enumerate(counts):
        texts = [t.decode() for t in answers[i]["plate_text"].ravel()]
        assert texts == [f"OBJ-{150 + 20 * j}" for j in range(n)], (i, n, texts)
        assert answers[i]["boxes"][:, 1].tolist() == [20.0 + 30 * j for j in range(n)]
    requests, executions = _stats(server, "rectifier")
    # fewer executions than requests: one execution took the crops of several frames as one batch
    assert requests - requests_before == len(counts)
    assert executions - executions_before < requests - requests_before


# ------------------------------------------------------------------ Model Analyzer
MA_VENV = Path(os.environ.get("ARCHGEN_MODEL_ANALYZER_VENV", str(ROOT / ".venv-model-analyzer")))
MA_PARSE = """
import sys
from model_analyzer.entrypoint import get_cli_and_config_options
sys.argv = ["model-analyzer", "profile", "-f", "model_analyzer/config.yaml"]
args, config = get_cli_and_config_options()
model = config.profile_models[0]
flags = model.perf_analyzer_flags()
print(model.model_name(), flags["shape"], flags["input-data"], config.constraints["perf_latency_p99"]["max"])
"""


@pytest.mark.slow
@pytest.mark.skipif(not (MA_VENV / "bin" / "python").is_file(), reason=f"no Model Analyzer in {MA_VENV}")
def test_model_analyzer_profiles_frames_with_objects_in_their_shape(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    generate(PRESET, repo)
    samples = subprocess.run(
        [sys.executable, "-m", "serving.pipeline_samples"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert samples.returncode == 0, samples.stderr
    data = json.loads((repo / "model_analyzer" / "input_data.json").read_text())["data"]
    assert [d["frame"]["shape"] for d in data] == [[160, 240, 3]] * 3  # frames that hold 1, 2 and 3 objects
    assert all(max(d["frame"]["content"]) > 127 for d in data)
    stub = tmp_path / "bin" / "perf_analyzer"  # Model Analyzer checks that perf_analyzer is on PATH
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(MA_VENV / "bin" / "python"), "-c", MA_PARSE],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split()[-4:] == ["plate_reader", "frame:160,240,3", "model_analyzer/input_data.json", "250"]
