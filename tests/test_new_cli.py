"""`archgen new`: the pipeline end to end from the command line, its refusals and its report."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.cli import app
from generator.generate import generate
from generator.write.manifest import MANIFEST, SPEC_COPY, parse_manifest

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "requirements_spec" / "presets"
REFERENCE = PRESETS / "reference.yaml"


def archgen(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_error_findings_stop_generation_with_65(tmp_path: Path) -> None:
    text = REFERENCE.read_text()
    text = text.replace("autonomy: self_hosted", "autonomy: air_gapped").replace(
        "  warehouse: files",
        "  image_registry: registry.site.internal/ml\n  package_mirror: https://pypi.site.internal/simple\n"
        "  warehouse: bigquery",
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    out = tmp_path / "out"
    code, output = archgen("new", str(spec), "-o", str(out))
    assert code == 65
    assert "autonomy.airgap_cloud_warehouse" in output and f"{spec}:" in output
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "code", "expect"),
    [
        ("version: 1\nproject: [\n", 65, "YAML syntax error"),
        ("version: 1\nproject: {name: x}\n", 65, "owners"),
        (None, 66, "cannot read"),
    ],
    ids=["yaml", "schema", "missing"],
)
def test_bad_specs_write_nothing(tmp_path: Path, text: str | None, code: int, expect: str) -> None:
    spec = tmp_path / "spec.yaml"
    if text is not None:
        spec.write_text(text)
    out = tmp_path / "out"
    got, output = archgen("new", str(spec), "-o", str(out))
    assert got == code, output
    assert expect in output and "Traceback" not in output
    assert not out.exists()


@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESETS.glob("*.yaml")))
def test_every_preset_generates_and_records_itself(tmp_path: Path, preset: str) -> None:
    out = tmp_path / preset
    code, output = archgen("new", str(PRESETS / f"{preset}.yaml"), "-o", str(out))
    assert code == 0, output
    manifest = parse_manifest((out / MANIFEST).read_bytes())
    assert (out / SPEC_COPY).read_bytes() == (PRESETS / f"{preset}.yaml").read_bytes()
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == {f.path for f in manifest.files} | {MANIFEST}
    for name in ("README.md", "Makefile", "pyproject.toml", "requirements.txt", "CODEOWNERS", ".gitignore"):
        assert (out / name).is_file(), name
    assert "Next:" in output and f"cd {out}" in output


def test_frame_follows_the_decisions() -> None:
    ref = generate(REFERENCE)
    rt = generate(PRESETS / "realtime.yaml")
    assert b"feast==0.67.0\n" in ref.files["requirements.txt"]  # SQLite + files: no extras
    # Redis online, PostgreSQL warehouse, and the kubernetes client of the feature server's Kubernetes authorization
    assert b"feast[k8s,postgres,redis]==0.67.0\n" in rt.files["requirements.txt"]
    for gen in (ref, rt):
        req = gen.files["requirements.txt"].decode()
        for pin in ("numpy>=2,<3", "scikit-learn==1.9.1", "tritonclient[grpc,http]==2.73.0", "protobuf>=6.33.5,<7"):
            assert pin in req.splitlines()
        triton = gen.files["requirements-triton.txt"].decode().splitlines()
        assert {"nvidia-pytriton==0.7.0", "numpy==1.26.4", "scikit-learn==1.9.1"} <= set(triton)
        owners = gen.arch.spec.project.owners
        codeowners = gen.files["CODEOWNERS"].decode().splitlines()
        assert f"/feature_repo/      {owners.data_engineering}" in codeowners
        assert f"/training/          {owners.data_science}" in codeowners
        assert f"/model_repository/  {owners.data_science}" in codeowners
        makefile = gen.files["Makefile"].decode()
        for target in ("setup", "data", "apply", "materialize", "train", "serve", "serve-start", "serve-stop"):
            assert f"\n{target}:" in makefile, target
        for target in ("predict", "demo", "test", "check"):
            assert f"\n{target}:" in makefile or f"\n{target} " in makefile, target
