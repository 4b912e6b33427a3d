"""The scanners teams use pass over every preset's generated repository.

checkov (Kubernetes manifests, Dockerfiles, GitHub workflow), actionlint (the workflow) and bandit (the
generated Python) run over a fresh generation of every preset with the skip files archgen writes in
`.security/`; each skipped check is listed with its reason in `.security/README.md`, and a spec waiver
(`checkov.<id>`, `bandit.<id>`) adds one with its justification. `make security` runs the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.decide import decide
from generator.plan.plan import build_plan
from generator.render.render import render_plan
from requirements_spec.validate import parse_spec

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted(p.stem for p in (ROOT / "requirements_spec" / "presets").glob("*.yaml"))
# beside the presets, the manifests no preset reaches: CronJobs of each scheduler form, REST serving and batch
# scoring on Kubernetes (hardened like the Deployments), the app image with Java for Spark on one machine and
# the Spark jobs' image on Kubernetes
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "compose_spark": ("reference", {"warehouse": "spark", "orchestrator": "none", "platform": "docker-compose"}),
    "k8s_own_cron": ("reference", {"orchestrator": "cron", "platform": "kubernetes"}),
    "k8s_cronjobs": ("reference", {"orchestrator": "kubernetes", "platform": "kubernetes"}),
    "k8s_python_rest": ("starter", {"platform": "kubernetes"}),
    "k8s_batch_scoring": ("batch_warehouse", {"orchestrator": "kubernetes", "platform": "kubernetes"}),
    # Spark on Kubernetes: the Spark jobs' own image (deploy/spark.Dockerfile)
    "k8s_spark": ("reference", {"warehouse": "spark", "orchestrator": "kubernetes", "platform": "kubernetes"}),
}
BIN = Path(sys.executable).parent


def preset_data(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "requirements_spec" / "presets" / f"{name}.yaml").read_text())


def rendered(data: dict[str, Any]) -> dict[str, bytes]:
    arch = decide(parse_spec(yaml.safe_dump(data, sort_keys=False), "spec.yaml"))
    return render_plan(build_plan(arch), arch)


def write(files: dict[str, bytes], root: Path) -> Path:
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


@pytest.mark.parametrize("name", PRESETS)
def test_every_repository_has_its_scanner_config_and_reasons(name: str) -> None:
    files = rendered(preset_data(name))
    for path in (".security/checkov.yaml", ".security/bandit.yaml", ".security/README.md", "requirements-security.txt"):
        assert path in files, path
    readme = files[".security/README.md"].decode()
    config = yaml.safe_load(files[".security/checkov.yaml"])
    bandit = yaml.safe_load(files[".security/bandit.yaml"])
    for check in [*config.get("skip-check", []), *bandit["skips"]]:
        row = next((line for line in readme.splitlines() if f"| {check} |" in line), None)
        assert row is not None and len(row.split("|")[3].strip()) > 30, f"{check}: skipped without a reason"
    assert "security:" in files["Makefile"].decode() and "checkov --config-file .security/checkov.yaml" in (
        files["Makefile"].decode()
    )
    workflow = files.get(".github/workflows/ml-pipeline.yml")
    if workflow is not None:
        assert b"make security" in workflow


def test_a_spec_waiver_skips_a_scanner_check_with_its_justification() -> None:
    data = preset_data("realtime")
    reason = "the cluster's admission controller enforces image pull policy"
    data["waivers"] = [*data.get("waivers", []), {"finding": "checkov.ckv_k8s_15", "justification": reason}]
    arch = decide(parse_spec(yaml.safe_dump(data, sort_keys=False), "spec.yaml"))
    assert not [f for f in arch.findings if f.code.startswith("waiver.")], arch.findings  # not an unknown code
    files = render_plan(build_plan(arch), arch)
    assert "CKV_K8S_15" in yaml.safe_load(files[".security/checkov.yaml"])["skip-check"]
    assert f"| checkov | CKV_K8S_15 | {reason} | spec waivers |" in files[".security/README.md"].decode()
    # an unknown code that is no scanner's is still refused
    data["waivers"][-1]["finding"] = "checkovv.ckv_k8s_15"
    arch = decide(parse_spec(yaml.safe_dump(data, sort_keys=False), "spec.yaml"))
    assert any(f.code == "waiver.unknown_finding" for f in arch.findings)


def _checkov() -> Path:
    venv = Path(os.environ.get("ARCHGEN_CHECKOV_VENV", ROOT / ".venv-checkov"))
    exe = venv / "bin" / "checkov"
    if not exe.exists():
        pytest.skip(f"checkov is not installed at {exe} (make setup-checkov, or set ARCHGEN_CHECKOV_VENV)")
    return exe


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scanned")
    repos = {name: write(rendered(preset_data(name)), root / name) for name in PRESETS}
    for name, (base, existing) in VARIANTS.items():
        data = preset_data(base)
        data["existing"].update(existing)
        repos[name] = write(rendered(data), root / name)
    return repos


@pytest.mark.slow
def test_bandit_passes_on_every_generated_repository(repos: dict[str, Path]) -> None:
    bandit = BIN / "bandit"
    if not bandit.exists():
        pytest.skip("bandit is not installed (the dev extra)")
    for name, repo in repos.items():
        proc = subprocess.run(
            [str(bandit), "-q", "-c", ".security/bandit.yaml", "-r", ".", "-f", "custom"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"{name}:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"


@pytest.mark.slow
def test_actionlint_passes_on_every_generated_workflow(repos: dict[str, Path]) -> None:
    actionlint = shutil.which("actionlint", path=str(BIN)) or shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (the dev extra)")
    workflows = [wf for repo in repos.values() for wf in sorted(repo.glob(".github/workflows/*.yml"))]
    assert workflows, "no preset generates a GitHub workflow: nothing to lint"
    for wf in workflows:
        proc = subprocess.run([actionlint, str(wf)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{wf}:\n{proc.stdout[-3000:]}"


@pytest.mark.slow
def test_checkov_passes_on_every_generated_repository(repos: dict[str, Path]) -> None:
    checkov = _checkov()
    configs = {name: yaml.safe_load((repo / ".security" / "checkov.yaml").read_text()) for name, repo in repos.items()}
    assert len({str(sorted(c.items())) for c in configs.values()}) == 1, "the presets skip different checks"
    root = next(iter(repos.values())).parent
    config = next(iter(repos.values())) / ".security" / "checkov.yaml"
    proc = subprocess.run(  # one run over all repositories: checkov's start-up dominates
        [str(checkov), "--config-file", str(config), "--directory", str(root), "--output", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = yaml.safe_load(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{r['check_id']} {r['file_path']} {r['resource']}"
        for rep in reports
        for r in rep.get("results", {}).get("failed_checks", [])
    ]
    passed = sum(int(rep.get("summary", {}).get("passed", 0)) for rep in reports)
    # per-resource skips are annotations that give their reason in the manifest: a job that writes inside its
    # image, the feature server that calls the Kubernetes API to authorize callers
    annotated = annotated_skips(repos)
    assert sum(int(rep.get("summary", {}).get("skipped", 0)) for rep in reports) == len(annotated), annotated
    assert {rep.get("check_type") for rep in reports} >= {"kubernetes", "dockerfile", "github_actions"}
    assert passed > 100 and not failed, "\n".join(failed)
    assert proc.returncode == 0, proc.stderr[-3000:]


def annotated_skips(repos: dict[str, Path]) -> list[str]:
    """Checkov skips in manifests' annotations; every writable root filesystem has one, each gives its reason."""
    out = []
    for repo in repos.values():
        for path in sorted(repo.rglob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if not isinstance(doc, dict) or doc.get("kind") not in ("Deployment", "StatefulSet", "CronJob"):
                    continue
                skips = {k: v for k, v in doc["metadata"].get("annotations", {}).items() if k.startswith("checkov.io")}
                for value in skips.values():
                    check, _, reason = value.partition("=")
                    assert check.startswith("CKV_") and len(reason) > 40, (path, value)
                    out.append(f"{path.relative_to(repo.parent)} {check}")
                spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
                pod = spec["template"]["spec"]
                containers = [*pod.get("initContainers", []), *pod["containers"]]
                if any(not c["securityContext"]["readOnlyRootFilesystem"] for c in containers):
                    assert any(v.startswith("CKV_K8S_22=") for v in skips.values()), path
    assert any(s.endswith("CKV_K8S_22") for s in out), "no job writes inside its image: the reasoned skip is untested"
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.triton
def test_triton_serves_only_inference_to_clients(tmp_path: Path) -> None:
    """The generated Kubernetes Triton arguments on the real tritonserver: repository and model control need the key."""
    import time
    import urllib.error
    import urllib.request

    from triton_harness import have_triton, triton_venv

    if not have_triton():
        pytest.skip("tritonserver (nvidia-pytriton) is not installed")
    files = rendered(preset_data("realtime"))
    manifest = yaml.safe_load(files["deploy/k8s/base/triton-deployment.yaml"])
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    restricted = [a for a in container["args"] if "restricted" in a]
    assert len(restricted) == 2 and all("model-repository" in a and "inference" not in a for a in restricted)
    assert any(e["name"] == "TRITON_ADMIN_KEY" and "secretKeyRef" in e["valueFrom"] for e in container["env"])
    key = "test-admin-key"
    args = [a.replace("$(TRITON_ADMIN_KEY)", key) for a in restricted]
    http, grpc, metrics = _free_port(), _free_port(), _free_port()
    base = triton_venv() / "lib" / "python3.11" / "site-packages" / "pytriton" / "tritonserver"
    env = {**os.environ, "LD_LIBRARY_PATH": f"{base / 'external_libs'}:{base / 'lib'}"}
    (tmp_path / "models").mkdir()
    server = subprocess.Popen(
        [
            str(base / "bin" / "tritonserver"),
            f"--model-repository={tmp_path / 'models'}",
            "--model-control-mode=explicit",
            "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1",
            f"--http-port={http}",
            f"--grpc-port={grpc}",
            f"--metrics-port={metrics}",
            *args,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def call(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> int:
        req = urllib.request.Request(f"http://127.0.0.1:{http}{path}", method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if call("/v2/health/ready") == 200:
                    break
            except OSError:
                time.sleep(0.5)
        assert call("/v2/health/ready") == 200 and call("/v2") == 200  # health and metadata stay open
        assert call("/v2/repository/index", "POST") == 403  # the repository API needs the key
        assert call("/v2/repository/models/anything/load", "POST") == 403  # so does model control
        assert call("/v2/repository/index", "POST", {"triton-admin-key": key}) == 200
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.mark.parametrize("name", PRESETS)
def test_threat_model_lists_every_flow_with_its_boundary_data_and_control(name: str) -> None:
    data = preset_data(name)
    arch = decide(parse_spec(yaml.safe_dump(data, sort_keys=False), "spec.yaml"))
    doc = render_plan(build_plan(arch), arch)["docs/threat-model.md"].decode()
    rows = [line for line in doc.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert rows, doc
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 6 and all(cells), row  # from, to, boundary, personal data, control: none empty
    fs = arch.feature_store
    if fs is not None and fs.hashed_fields:
        assert "as salted hashes only" in doc and "scripts/protect_pii.py" in doc
    if fs is not None and fs.dropped_fields:
        assert "dropped (never materialized)" in doc or "left out of every feature view" in doc
    if arch.serving.runtime == "triton":
        assert "TRITON_ADMIN_KEY" in doc
    for role, _ in arch.privacy.permissions:
        assert f"`{role}`" in doc
