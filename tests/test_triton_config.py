"""Static validation of generated Triton model repositories (no server): every preset's configs pass, and
broken configs are caught with a clear message naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from triton_harness import PRESETS, generate

from generator.decide import decide
from generator.decide.architecture import TRITON_RUNTIMES
from generator.plan.triton_config import validate_model_repository
from requirements_spec.validate import load_spec

PRESET_FILES = sorted(PRESETS.glob("*.yaml"))
RUNTIMES = {p.stem: decide(load_spec(p)).serving.runtime for p in PRESET_FILES}
TRITON_PRESETS = [p for p in PRESET_FILES if RUNTIMES[p.stem] in TRITON_RUNTIMES]
REST_PRESETS = [p for p in PRESET_FILES if RUNTIMES[p.stem] == "python_rest"]


@pytest.fixture(scope="module")
def realtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("realtime")
    generate(PRESETS / "realtime.yaml", repo, ("model_repository", "serving"))
    return repo / "model_repository"


def test_presets_cover_both_kinds_of_runtime() -> None:
    assert len(TRITON_PRESETS) >= 3 and len(REST_PRESETS) >= 2, RUNTIMES


@pytest.mark.parametrize("preset", TRITON_PRESETS, ids=[p.stem for p in TRITON_PRESETS])
def test_every_triton_preset_generates_valid_configs(preset: Path, tmp_path: Path) -> None:
    arch = generate(preset, tmp_path, ("model_repository", "serving"))
    repo = tmp_path / "model_repository"
    assert sorted(p.name for p in repo.iterdir()) == sorted(m.name for m in arch.serving.models)
    assert validate_model_repository(repo) == []
    local = tmp_path / "serving" / "local_models"
    for standin in sorted(local.glob("*/config.pbtxt")) if local.is_dir() else []:
        assert "KIND_GPU" not in standin.read_text()
        assert 'backend: "python"' in standin.read_text()


@pytest.mark.parametrize("preset", REST_PRESETS, ids=[p.stem for p in REST_PRESETS])
def test_python_rest_presets_generate_no_triton_pieces(preset: Path, tmp_path: Path) -> None:
    """Runtime python_rest serves the model in process: no Triton configs, model code, runtime or image."""
    generate(preset, tmp_path)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert not (tmp_path / "model_repository").exists()
    assert not [f for f in files if f.endswith(("config.pbtxt", "requirements-triton.txt"))]
    # docs/adr/ still records the Triton decisions "for when the model moves to it"
    assert not [f for f in files if "triton" in f.lower() and not f.startswith("docs/")], "no Triton runtime/image"
    assert {"serving/rest_app.py", "serving/predictor.py", "serving/client.py"} <= set(files)
    for path in ("serving/rest_app.py", "serving/predictor.py", "serving/client.py", "requirements.txt", "Makefile"):
        assert "tritonclient" not in (tmp_path / path).read_text(), path
    settings = (tmp_path / "training" / "settings.py").read_text()
    assert 'SERVING_RUNTIME = "python_rest"' in settings  # training exports without requiring config.pbtxt


def test_generation_is_deterministic(tmp_path: Path) -> None:
    generate(PRESETS / "image_pipeline.yaml", tmp_path / "a", ("model_repository", "serving"))
    generate(PRESETS / "image_pipeline.yaml", tmp_path / "b", ("model_repository", "serving"))
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def _broken(realtime: Path, tmp_path: Path, model: str, old: str, new: str) -> list[str]:
    repo = tmp_path / "model_repository"
    shutil.copytree(realtime, repo)
    config = repo / model / "config.pbtxt"
    text = config.read_text()
    assert old in text, f"{old!r} not in {config}"
    config.write_text(text.replace(old, new, 1))
    return [str(p) for p in validate_model_repository(repo, relative_to=tmp_path)]


@pytest.mark.parametrize(
    ("model", "old", "new", "expected"),
    [
        (
            "fraud_calibrator",
            "max_batch_size:",
            "max_batch_sise:",
            "model_repository/fraud_calibrator/config.pbtxt: does not parse as Triton ModelConfig: "
            '8:1 : Message type "inference.ModelConfig" has no field named "max_batch_sise"',
        ),
        (
            "fraud_gbm",
            "TYPE_FP32",
            "TYPE_FLOAT32",
            'Enum type "inference.DataType" has no value named TYPE_FLOAT32',
        ),
        (
            "fraud_scoring",
            'value: "score"\n    }\n  }\n  step',
            'value: "scores"\n    }\n  }\n  step',
            "model_repository/fraud_scoring/config.pbtxt: step 2 (fraud_calibrator): input_map value 'score' is "
            "neither an ensemble input nor an earlier output",
        ),
        (
            "fraud_scoring",
            "data_type: TYPE_FP64",
            "data_type: TYPE_FP32",
            "step 1 (fraud_gbm): tensor 'amount_sum_1h' is TYPE_FP32 but input 'amount_sum_1h' of fraud_gbm "
            "is TYPE_FP64",
        ),
        (
            "fraud_scoring",
            'key: "probability"',
            'key: "probabilty"',
            "step 2 (fraud_calibrator): output_map key 'probabilty' is not an output of fraud_calibrator",
        ),
        (
            "fraud_scoring",
            "max_batch_size: 32",
            "max_batch_size: 64",
            "ensemble fraud_scoring allows max_batch_size 64, but step 1 (fraud_gbm) allows only 32",
        ),
        (
            "fraud_scoring",
            "ensemble_scheduling {",
            "instance_group { kind: KIND_CPU }\nensemble_scheduling {",
            "an ensemble cannot have instance_group",
        ),
        (
            "fraud_scoring",
            "ensemble_scheduling {",
            "ensemble_scheduling {\n  max_inflight_requests: 8",
            "field 'ensemble_scheduling.max_inflight_requests' is not known to Triton server 2.51",
        ),
        (
            "fraud_gbm",
            'name: "fraud_gbm"',
            'name: "fraud_gbm_v2"',
            "name 'fraud_gbm_v2' differs from its directory 'fraud_gbm'",
        ),
    ],
    ids=[
        "field-typo",
        "dtype-enum",
        "ensemble-tensor-name",
        "ensemble-tensor-dtype",
        "ensemble-output-map",
        "ensemble-batch-size",
        "ensemble-instance-group",
        "unknown-to-2.51",
        "name-vs-dir",
    ],
)
def test_broken_config_is_caught(realtime: Path, tmp_path: Path, model: str, old: str, new: str, expected: str) -> None:
    problems = _broken(realtime, tmp_path, model, old, new)
    assert any(expected in p for p in problems), problems


def test_missing_version_dir_and_model_code(realtime: Path, tmp_path: Path) -> None:
    repo = tmp_path / "model_repository"
    shutil.copytree(realtime, repo)
    shutil.rmtree(repo / "fraud_scoring" / "1")
    (repo / "fraud_calibrator" / "1" / "model.py").unlink()
    problems = [str(p) for p in validate_model_repository(repo, relative_to=tmp_path)]
    assert problems == [
        "model_repository/fraud_calibrator/config.pbtxt: python backend: fraud_calibrator/1/model.py is missing",
        "model_repository/fraud_scoring/config.pbtxt: no version directory (e.g. fraud_scoring/1/): "
        "Triton loads no version",
    ]


def test_empty_or_missing_repository(tmp_path: Path) -> None:
    assert [p.message for p in validate_model_repository(tmp_path / "nope")] == [
        "model repository directory does not exist"
    ]
    (tmp_path / "model_repository").mkdir()
    assert [p.message for p in validate_model_repository(tmp_path / "model_repository")] == [
        "no models in the repository"
    ]
