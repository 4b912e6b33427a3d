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
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from generator.decide import decide
from generator.plan import deploy
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


# the package index the full bundle downloads from (the site's mirror in production); pip's HTTP cache stays on, so
# a machine that installed archgen downloads little
FULL_MIRROR = os.environ.get("ARCHGEN_TEST_PACKAGE_MIRROR", "https://pypi.org/simple")
NETWORK_ENV = {"PIP_CERT", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"}
NETWORK_ENV |= {p for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY") for p in (name, name.lower())}
FAKE_DOCKER = """#!/bin/sh
# docker image inspect --format '{{json .RepoDigests}}' IMAGE: as a docker that pulled IMAGE from the site answers
image="$5"; case "${image##*/}" in *:*) repo="${image%:*}";; *) repo="$image";; esac
printf '["%s@sha256:%s"]\\n' "$repo" "$(printf %s "$image" | sha256sum | cut -c1-64)"
"""


def reachable(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/pip/", timeout=15):
            return True
    except OSError:
        return False


def offline(command: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``command`` in a network namespace of its own (no interface but loopback) where this machine allows one."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True, check=False).returncode == 0:
        command = [unshare, "-n", *command]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_full_dependency_set_bundles_then_installs_with_no_index_and_no_network(tmp_path: Path) -> None:
    """The air-gapped preset's real requirement files: every package downloaded, then installed with the index
    disabled and (where the machine allows a network namespace) no network at all; the system's packages import."""
    if not reachable(FULL_MIRROR):
        pytest.skip(f"the package index {FULL_MIRROR} does not answer (ARCHGEN_TEST_PACKAGE_MIRROR names another)")
    spec = (ROOT / "requirements_spec" / "presets" / "edge_airgapped.yaml").read_text()
    arch = decide(parse_spec(spec, "edge_airgapped.yaml"))
    repo = tmp_path / "repo"
    for path, data in render_plan(build_plan(arch), arch).items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(data)
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "docker").write_text(FAKE_DOCKER)
    (stub / "docker").chmod(0o755)
    cache = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
    env = {
        "PATH": f"{stub}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PIP_CONFIG_FILE": os.devnull,  # none of this machine's indexes or find-links
        "PIP_CACHE_DIR": cache,
        # how this machine reaches the index: its proxy and the certificates that vouch for it
        **{k: v for k, v in os.environ.items() if k in NETWORK_ENV},
    }
    started = time.monotonic()
    bundle = make(repo, "offline-bundle", f"PACKAGE_MIRROR={FULL_MIRROR}", f"PYTHON={sys.executable}", env=env)
    bundled = time.monotonic() - started
    assert bundle.returncode == 0, (bundle.stdout + bundle.stderr)[-4000:]
    house = repo / "wheelhouse"
    sums = dict(line.split("  ")[::-1] for line in (house / "SHA256SUMS").read_text().splitlines())
    on_disk = {p.name for p in house.iterdir()} - {"SHA256SUMS", "images.txt"}
    assert set(sums) == on_disk and len(on_disk) > 50, sorted(on_disk)
    assert all(hashlib.sha256((house / n).read_bytes()).hexdigest() == h for n, h in sums.items())
    names = {n.split("-")[0].lower() for n in on_disk}
    assert {"feast", "scikit_learn", "checkov", "bandit", "pyarrow"} <= names, sorted(names)
    listed = dict(line.split("  ") for line in (house / "images.txt").read_text().splitlines())
    assert sorted(listed) == sorted(deploy.images(arch).values())
    for image, digest in listed.items():
        assert image.startswith(arch.spec.existing.image_registry + "/"), image
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), (image, digest)

    cut_off = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}
    cut_off |= {"PIP_NO_INDEX": "1", "PIP_NO_CACHE_DIR": "1"}
    venv = tmp_path / "venv"
    started = time.monotonic()
    setup = offline(
        ["make", "--no-print-directory", "setup", f"VENV={venv}", f"PYTHON={sys.executable}"], cut_off, repo
    )
    installed = time.monotonic() - started
    assert setup.returncode == 0, (setup.stdout + setup.stderr)[-4000:]
    modules = re.search(r"ensure_venv,\$\(VENV\),requirements.txt,([^)]*)\)", (repo / "Makefile").read_text())
    assert modules is not None and "feast" in modules.group(1).split()
    imports = f"import {', '.join(modules.group(1).split())}"
    # the venv alone: nothing of this process's environment (a PYTHONPATH to a checkout) on its path
    check = subprocess.run(
        [str(venv / "bin/python"), "-c", imports], env=cut_off, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    consistent = subprocess.run(
        [str(venv / "bin/pip"), "check"], env=cut_off, capture_output=True, text=True, check=False
    )
    assert consistent.returncode == 0, consistent.stdout
    # the scanners' environment (make security) resolves from the wheelhouse alone too
    pip = [str(venv / "bin/pip"), "install", "--dry-run", "-q", "--no-index", "--find-links", str(house)]
    scanners = offline([*pip, "-r", str(repo / "requirements-security.txt")], cut_off)
    assert scanners.returncode == 0, scanners.stderr[-3000:]
    print(f"offline-bundle {bundled:.0f} s ({len(on_disk)} files), setup with no index {installed:.0f} s")


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
