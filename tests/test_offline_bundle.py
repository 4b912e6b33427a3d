"""Air-gapped delivery: `make offline-bundle` on a connected machine, then `make setup` with no index at all.

The generated repository of the air-gapped preset downloads every package of its requirement files from
the site's mirror (here a PEP 503 index on disk, holding two small wheels, one needing the other) into
wheelhouse/ with SHA256SUMS and lists its images; then, with the mirror gone, pip's configuration ignored
and the index disabled, `make setup` installs everything from the wheelhouse, and refuses a tampered one.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from generator.decide import decide
from generator.plan.plan import build_plan
from generator.render.render import render_plan
from requirements_spec.validate import parse_spec

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def wheel(folder: Path, name: str, requires: list[str]) -> Path:
    """A minimal pure-Python wheel (what pip installs: the module, METADATA, WHEEL, RECORD)."""
    module, dist = name.replace("-", "_"), f"{name.replace('-', '_')}-1.0.dist-info"
    files = {
        f"{module}/__init__.py": f"NAME = {name!r}\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\n"
        f"Name: {name}\nVersion: 1.0\n" + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: archgen-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    target = folder / f"{module}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return target


def mirror(root: Path) -> str:
    """A PEP 503 simple index on disk, as the site's package mirror serves one."""
    files = root / "files"
    files.mkdir(parents=True)
    wheels = {"archgen-offline-a": ["archgen-offline-b==1.0"], "archgen-offline-b": []}
    for name, requires in wheels.items():
        built = wheel(files, name, requires)
        page = root / "simple" / name
        page.mkdir(parents=True)
        page.joinpath("index.html").write_text(
            f'<html><body><a href="../../files/{built.name}">{built.name}</a></body></html>'
        )
    (root / "simple" / "index.html").write_text("".join(f'<a href="{n}/">{n}</a>' for n in wheels))
    return (root / "simple").as_uri()


def make(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )


def test_offline_bundle_then_setup_with_no_index(tmp_path: Path) -> None:
    spec = (ROOT / "requirements_spec" / "presets" / "edge_airgapped.yaml").read_text()
    arch = decide(parse_spec(spec, "edge_airgapped.yaml"))
    files = render_plan(build_plan(arch), arch)
    repo = tmp_path / "repo"
    for path, data in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(data)
    # the small dependency set: one package needing another, and the scanners' file naming the second again
    (repo / "requirements.txt").write_text("archgen-offline-a==1.0\n")
    (repo / "requirements-security.txt").write_text("archgen-offline-b==1.0\n")
    index = mirror(tmp_path / "mirror")
    # pip sees neither this machine's configuration (its indexes, find-links) nor any cache: only what we give
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_CACHE_DIR": "1",
        "PYTHON": sys.executable,
    }
    bundle = make(repo, "offline-bundle", f"PACKAGE_MIRROR={index}", f"PYTHON={sys.executable}", env=env)
    assert bundle.returncode == 0, bundle.stdout + bundle.stderr
    house = repo / "wheelhouse"
    names = sorted(p.name for p in house.glob("*.whl"))
    assert names == ["archgen_offline_a-1.0-py3-none-any.whl", "archgen_offline_b-1.0-py3-none-any.whl"], names
    sums = dict(line.split("  ")[::-1] for line in (house / "SHA256SUMS").read_text().splitlines())
    assert sums == {n: hashlib.sha256((house / n).read_bytes()).hexdigest() for n in names}
    images = (house / "images.txt").read_text()
    site = yaml.safe_load(spec)["existing"]["image_registry"]
    assert images.startswith(f"{site}/library/python:3.11-slim  "), images
    assert "docker.io" not in images and "nvcr.io" not in images

    shutil.rmtree(tmp_path / "mirror")  # the site: nothing to download from
    offline = {**env, "PIP_NO_INDEX": "1"}
    setup = make(repo, "setup", f"VENV={tmp_path / 'venv'}", f"PYTHON={sys.executable}", env=offline)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    planned = make(repo, "-n", "setup", f"VENV={tmp_path / 'venv'}", f"PYTHON={sys.executable}", env=offline)
    assert "pip install --disable-pip-version-check -q --no-index --find-links wheelhouse" in planned.stdout
    check = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-c", "import archgen_offline_a, archgen_offline_b"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr

    # a wheelhouse that is not what offline-bundle wrote is refused before anything is installed
    tampered = house / names[0]
    tampered.write_bytes(tampered.read_bytes() + b"\0")
    refused = make(repo, "setup", f"VENV={tmp_path / 'venv2'}", f"PYTHON={sys.executable}", env=offline)
    assert refused.returncode != 0 and "does not match its SHA256SUMS" in refused.stdout + refused.stderr
    assert not (tmp_path / "venv2").exists()


@pytest.mark.unit
def test_air_gapped_images_and_packages_come_from_the_site() -> None:
    data = yaml.safe_load((ROOT / "requirements_spec" / "presets" / "realtime.yaml").read_text())
    site, mirror_url = "registry.bank.internal:5000/ml", "https://pypi.bank.internal/simple"
    data["autonomy"] = "air_gapped"  # Kubernetes, Triton, Redis, PostgreSQL, CI: every image it names
    data["existing"] |= {"image_registry": site, "package_mirror": mirror_url}
    arch = decide(parse_spec(yaml.safe_dump(data, sort_keys=False), "realtime.yaml"))
    files = render_plan(build_plan(arch), arch)
    public = ("nvcr.io", "python:3.11", "redis:7", "postgres:16", "registry.example.internal")
    for path, body in files.items():
        if path.endswith(("Dockerfile", ".yaml", ".yml", ".example", "Makefile", ".mk")):
            text = body.decode()
            for name in public:
                assert f"image: {name}" not in text and f"={name}" not in text, (path, name)
    assert f"ARG PIP_INDEX_URL={mirror_url}" in files["deploy/app.Dockerfile"].decode()
    assert f"ARG TRITON_IMAGE={site}/nvidia/tritonserver:" in files["deploy/triton.Dockerfile"].decode()
    assert f"newName: {site}/" in files["deploy/k8s/overlays/prod/kustomization.yaml"].decode()


@pytest.mark.unit
def test_air_gapped_without_a_site_registry_or_mirror_is_refused_at_its_line() -> None:
    from requirements_spec.errors import SpecError

    text = (ROOT / "requirements_spec" / "presets" / "edge_airgapped.yaml").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(("image_registry:", "package_mirror:"))]
    autonomy_line = next(i for i, line in enumerate(lines, 1) if line.startswith("autonomy:"))
    with pytest.raises(SpecError) as caught:
        parse_spec("\n".join(lines) + "\n", "edge.yaml")
    shown = str(caught.value)
    for name in ("existing.image_registry", "existing.package_mirror"):
        assert f"edge.yaml:{autonomy_line}:" in shown and name in shown, shown
