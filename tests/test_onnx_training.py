"""Models are trained in the format they are served in: a model declared `onnx` (served by onnxruntime) is
exported to model.onnx with its config's inputs and output, and agrees with the trained pipeline on held-out
rows (onnxruntime in process: the Triton build here ships only the python backend); a model whose weights come
from elsewhere (`training: external`) gets no training scaffold."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import yaml
from google.protobuf import text_format
from triton_harness import PRESETS, generate, have_triton, running

pytestmark = pytest.mark.slow  # runs the generated training code and archgen's generation several times

pytest.importorskip("skl2onnx")
onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ModuleType, ModuleType]]:
    repo = tmp_path_factory.mktemp("realtime")
    generate(PRESETS / "realtime.yaml", repo)
    sys.path.insert(0, str(repo))
    try:
        yield repo, importlib.import_module("training.onnx_export"), importlib.import_module("training.train")
    finally:
        sys.path.remove(str(repo))
        for name in [m for m in sys.modules if m == "training" or m.startswith("training.")]:
            del sys.modules[name]


def _fit(train: ModuleType, task: str, n_features: int) -> tuple[Any, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, n_features)) * [3.0, 100.0, 0.1, 1.0][:n_features]
    x[:, 0] = np.round(np.abs(x[:, 0]))  # an int64 feature: counts
    y = (x[:, 1] / 100 + x[:, 3] + rng.normal(scale=0.5, size=400) > 0).astype(np.int64)
    if task == "regression":
        y = x @ np.arange(1, n_features + 1) + rng.normal(size=400)
    return train.make_pipeline(task).fit(x[:300], y[:300]), x[300:], y[300:]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_onnx_export_agrees_with_the_trained_model_on_held_out_rows(
    generated: tuple[Path, ModuleType, ModuleType], task: str
) -> None:
    _, onnx_export, train = generated
    model = next(m for m in train.settings.MODELS if m["name"] == "fraud_gbm")
    assert model["format"] == "onnx"
    pipeline, held_out, _ = _fit(train, task, len(model["inputs"]))
    data = onnx_export.to_onnx(pipeline, task, model["inputs"], model["onnx_output"])
    diff = onnx_export.agreement(pipeline, task, data, model["inputs"], held_out)
    assert diff <= onnx_export.TOLERANCE
    expected = pipeline.predict_proba(held_out)[:, 1] if task == "classification" else pipeline.predict(held_out)
    assert np.allclose(onnx_export.run(data, model["inputs"], held_out), expected, atol=1e-4)


def test_the_onnx_graph_has_the_inputs_and_output_of_the_served_config(
    generated: tuple[Path, ModuleType, ModuleType],
) -> None:
    import tritonclient.grpc.model_config_pb2 as mc

    repo, onnx_export, train = generated
    model = next(m for m in train.settings.MODELS if m["name"] == "fraud_gbm")
    config = text_format.Parse((repo / "model_repository" / "fraud_gbm" / "config.pbtxt").read_text(), mc.ModelConfig())
    assert config.backend == "onnxruntime"
    pipeline, _, _ = _fit(train, "classification", len(model["inputs"]))
    session = onnxruntime.InferenceSession(
        onnx_export.to_onnx(pipeline, "classification", model["inputs"], model["onnx_output"]),
        providers=["CPUExecutionProvider"],
    )
    onnx_types = {"FLOAT": "tensor(float)", "DOUBLE": "tensor(double)", "INT64": "tensor(int64)"}
    graph_inputs = [(i.name, i.type) for i in session.get_inputs()]
    config_inputs = [
        (t.name, onnx_types[onnx_export.TYPES[mc.DataType.Name(t.data_type).removeprefix("TYPE_")][0]])
        for t in config.input
    ]
    assert graph_inputs == config_inputs
    assert all(len(i.shape) == 1 + len(t.dims) for i, t in zip(session.get_inputs(), config.input, strict=True))
    (out,) = session.get_outputs()
    assert (out.name, out.type) == (config.output[0].name, "tensor(float)")


def test_training_refuses_an_export_that_does_not_agree(
    generated: tuple[Path, ModuleType, ModuleType], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, onnx_export, train = generated
    model = next(m for m in train.settings.MODELS if m["name"] == "fraud_gbm")
    pipeline, held_out, _ = _fit(train, "classification", len(model["inputs"]))
    result = train.Result("fraud_gbm", "classification", {}, 300, 100, True, pipeline, held_out)
    record = train.served_format(result, tmp_path)
    assert record["served_artefact"] == "model.onnx" and (tmp_path / "model.onnx").is_file()
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)  # nothing can agree within it
    (tmp_path / "model.onnx").unlink()
    with pytest.raises(train.TrainingError, match="differs from the trained model"):
        train.served_format(result, tmp_path)
    assert not (tmp_path / "model.onnx").exists()


def test_external_weights_get_no_training_scaffold(tmp_path: Path) -> None:
    data = yaml.safe_load((PRESETS / "realtime.yaml").read_text())
    for m in data["serving"]["models"]:
        m["training"] = "external"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    arch = generate(spec, tmp_path / "repo")
    assert arch.training.trained_models == []
    assert not (tmp_path / "repo" / "training").exists()
    assert "skl2onnx" not in (tmp_path / "repo" / "requirements.txt").read_text()


# ------------------------------------------------------------------ pytorch: the team's seam and the export contract
def _torch_spec(tmp_path: Path, rectifier_out: str = "plate_features", name: str = "spec.yaml") -> Path:
    data = yaml.safe_load((PRESETS / "image_pipeline.yaml").read_text())
    rectifier = data["serving"]["models"][1]
    rectifier.pop("training")  # trained here
    rectifier["outputs"][0]["name"] = rectifier_out
    data["serving"]["models"][2]["inputs"][0]["name"] = rectifier_out
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_pytorch_model_trained_here_gets_a_seam_written_once(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from generator.cli import app

    repo = tmp_path / "repo"
    result = CliRunner().invoke(app, ["new", str(_torch_spec(tmp_path)), "-o", str(repo)])
    assert result.exit_code == 0, result.output
    seam = repo / "training" / "rectifier_torch.py"
    assert "YOURS" in seam.read_text() and "input  plates: fp32 [3, 24, 94]" in seam.read_text()
    assert (repo / "training" / "torch_export.py").is_file() and (repo / "tests" / "test_export_contract.py").is_file()
    assert not (repo / "training" / "detector_torch.py").exists()  # python and external models get none
    mine = seam.read_text().replace("return model\n", "return model  # our training loop\n")
    seam.write_text(mine)
    # a spec change that changes what archgen would write into the seam: the team's file stays as it is
    result = CliRunner().invoke(app, ["update", str(repo), "--spec", str(_torch_spec(tmp_path, "straight", "2.yaml"))])
    assert result.exit_code == 0, result.output
    assert seam.read_text() == mine
    assert "straight" in (repo / "training" / "torch_export.py").read_text()


def test_the_torchscript_export_contract_on_a_tiny_model(tmp_path: Path) -> None:
    """The seam's model goes through the generated export command into the model repository, and the artefact
    fits the model's config.pbtxt as Triton's own protobuf reads it: backend, file name, input names, and output
    shapes and data types at batch sizes 1 and max_batch_size. Triton's pytorch (libtorch) backend is not in the
    CPU tritonserver build here (it ships only the python backend), so Triton does not load model.pt in this
    test: what runs here is the export, TorchScript loading the artefact and the config check. A model that
    breaks the contract is refused and not shipped."""
    import subprocess

    import torch  # a pinned dev dependency (pyproject.toml): this test runs wherever `make test` does

    from generator.plan.triton_config import _pb

    repo = tmp_path / "repo"
    generate(_torch_spec(tmp_path), repo)
    run = subprocess.run(
        [sys.executable, "-m", "training.torch_export", "rectifier"], cwd=repo, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "rectifier: exported model_repository/rectifier/1/model.pt" in run.stdout
    cfg = text_format.Parse((repo / "model_repository/rectifier/config.pbtxt").read_text(), _pb().ModelConfig())
    assert cfg.backend == "pytorch" and cfg.default_model_filename in ("", "model.pt")
    loaded = torch.jit.load(str(repo / "model_repository/rectifier/1/model.pt"))
    dtypes = {"TYPE_FP32": torch.float32, "TYPE_FP16": torch.float16, "TYPE_INT64": torch.int64}
    names = {v.number: k for k, v in _pb().DataType.DESCRIPTOR.values_by_name.items()}
    assert [a.name for a in loaded.forward.schema.arguments[1:]] == [t.name for t in cfg.input]
    for batch in sorted({1, cfg.max_batch_size}):
        inputs = [torch.rand([batch, *t.dims], dtype=dtypes[names[t.data_type]]) for t in cfg.input]
        with torch.no_grad():
            result = loaded(*inputs)
        outputs = list(result) if isinstance(result, tuple | list) else [result]
        assert len(outputs) == len(cfg.output)
        for tensor, declared in zip(outputs, cfg.output, strict=True):
            assert list(tensor.shape) == [batch, *declared.dims], declared.name
            assert tensor.dtype == dtypes[names[declared.data_type]], declared.name
    # the team's seam builds a model whose output drops channels: refused, and no model.pt is left to serve
    seam = repo / "training" / "rectifier_torch.py"
    seam.write_text(seam.read_text() + WRONG_SEAM)  # a later build() replaces the stand-in's
    (repo / "model_repository/rectifier/1/model.pt").unlink()
    run = subprocess.run(
        [sys.executable, "-m", "training.torch_export", "rectifier"], cwd=repo, capture_output=True, text=True
    )
    assert run.returncode == 1 and "output plate_features has shape [1, 24, 94]" in run.stderr, run.stderr
    assert "nothing shipped" in run.stderr and not (repo / "model_repository/rectifier/1/model.pt").exists()


WRONG_SEAM = """

def build() -> Any:  # replaces the stand-in: a network that returns one channel of three
    import torch

    class Narrow(torch.nn.Module):
        def forward(self, plates: torch.Tensor) -> torch.Tensor:
            return plates[:, :1]

    return Narrow()
"""


@pytest.mark.skipif(not have_triton(), reason="no tritonserver in the Triton venv (ARCHGEN_TRITON_VENV)")
def test_triton_serves_the_exported_onnx_graph_and_it_agrees(generated: tuple[Path, ModuleType, ModuleType]) -> None:
    """Where the Triton build has no onnxruntime backend, the local stand-in serves the same model.onnx with
    onnxruntime in process: the served answers are the trained pipeline's, not a joblib's or a placeholder's."""
    import tritonclient.http as httpclient

    repo, onnx_export, train = generated
    model = next(m for m in train.settings.MODELS if m["name"] == "fraud_gbm")
    pipeline, held_out, _ = _fit(train, "classification", len(model["inputs"]))
    version = repo / "model_repository" / "fraud_gbm" / "1"
    version.mkdir(parents=True, exist_ok=True)
    (version / "model.onnx").write_bytes(
        onnx_export.to_onnx(pipeline, "classification", model["inputs"], model["onnx_output"])
    )
    try:
        with running(repo) as server:
            client = httpclient.InferenceServerClient(server.http)
            rows = held_out[:32]  # the config's max_batch_size
            requested = []
            for i, (name, dtype) in enumerate(model["inputs"]):
                tensor = httpclient.InferInput(name, [len(rows), 1], dtype)
                tensor.set_data_from_numpy(rows[:, [i]].astype(onnx_export.TYPES[dtype][1]))
                requested.append(tensor)
            served = client.infer("fraud_gbm", requested).as_numpy(model["onnx_output"][0]).reshape(-1)
        log = (repo / ".run" / "triton.log").read_text()
    finally:
        (version / "model.onnx").unlink()
    assert "serving the trained artefact" in log and "model.onnx with onnxruntime" in log
    assert np.allclose(served, pipeline.predict_proba(rows)[:, 1], atol=1e-4)
