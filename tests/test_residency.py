"""Residency becomes deployment configuration, and the generated fitness test holds the repository to it.

privacy.residency eu/us pins every pod by node affinity on topology.kubernetes.io/region to regions inside
it, gives every volume the resident storage class and the warehouse a location inside it; the generated
tests/test_fitness_residency.py passes on a fresh generation and fails, naming the file, when a hand edit
moves a pod, a volume or the warehouse out.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.decide import decide
from generator.plan import deploy
from generator.plan.plan import build_plan
from generator.render.render import render_plan
from requirements_spec.validate import parse_spec

ROOT = Path(__file__).resolve().parent.parent


def rendered(name: str, **changes: Any) -> dict[str, bytes]:
    data = yaml.safe_load((ROOT / "requirements_spec" / "presets" / f"{name}.yaml").read_text())
    for path, value in changes.items():
        area, _, key = path.partition("__")
        data.setdefault(area, {})[key] = value
    arch = decide(parse_spec(yaml.safe_dump(data, sort_keys=False), "spec.yaml"))
    return render_plan(build_plan(arch), arch)


def pod_specs(files: dict[str, bytes]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path, data in files.items():
        if not (path.startswith(("deploy/k8s/", "pipelines/", "batch/")) and path.endswith(".yaml")):
            continue
        for doc in yaml.safe_load_all(data):
            if not isinstance(doc, dict) or doc.get("kind") not in ("Deployment", "StatefulSet", "CronJob"):
                continue
            spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
            out.append((f"{path} {doc['metadata']['name']}", spec["template"]["spec"]))
    return out


@pytest.mark.unit
@pytest.mark.parametrize("residency", ["eu", "us"])
def test_every_pod_is_pinned_to_the_residency_regions(residency: str) -> None:
    files = rendered("realtime", privacy__residency=residency, existing__orchestrator="kubernetes")
    pods = pod_specs(files)
    assert len(pods) >= 4, [p for p, _ in pods]  # the servers, Redis and the scheduled jobs
    for where, pod in pods:
        (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        (expr,) = term["matchExpressions"]
        assert expr["key"] == "topology.kubernetes.io/region" and expr["operator"] == "In", where
        assert set(expr["values"]) == set(deploy.RESIDENCY_REGIONS[residency]), where
    assert (
        b"storageClassName: " + f"{residency}-resident".encode() in files["deploy/k8s/base/model-repository-pvc.yaml"]
    )


@pytest.mark.unit
def test_no_pinning_without_a_regional_residency() -> None:
    files = rendered("realtime", privacy__residency="any")
    assert all("affinity" not in pod for _, pod in pod_specs(files))
    assert "tests/test_fitness_residency.py" not in files


@pytest.mark.unit
def test_the_warehouse_location_follows_the_residency() -> None:
    files = rendered("realtime", existing__warehouse="bigquery", privacy__residency="eu")
    for env in deploy.ENVIRONMENTS:
        assert "BIGQUERY_LOCATION=EU" in files[f"deploy/env/{env}.env.example"].decode()


def run_fitness(files: dict[str, bytes], root: Path) -> subprocess.CompletedProcess[str]:
    for path, data in files.items():
        if path.startswith(("deploy/", "pipelines/", "batch/", "tests/")) or path == "Makefile":
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fitness_residency.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_generated_residency_fitness_test_passes_and_catches_each_edit(tmp_path: Path) -> None:
    files = rendered("realtime", existing__warehouse="bigquery", existing__orchestrator="kubernetes")
    fresh = run_fitness(files, tmp_path / "fresh")
    assert fresh.returncode == 0 and "3 passed" in fresh.stdout, fresh.stdout + fresh.stderr
    edits = {
        "deploy/k8s/base/triton-deployment.yaml": (b"- key: topology.kubernetes.io/region", b"- key: zone"),
        "deploy/k8s/base/model-repository-pvc.yaml": (b"storageClassName: eu-resident", b"storageClassName: standard"),
        "deploy/env/prod.env.example": (b"BIGQUERY_LOCATION=EU", b"BIGQUERY_LOCATION=US"),
    }
    for i, (path, (old, new)) in enumerate(edits.items()):
        assert old in files[path], (path, old)
        broken = run_fitness({**files, path: files[path].replace(old, new)}, tmp_path / f"broken{i}")
        assert broken.returncode == 1 and "1 failed, 2 passed" in broken.stdout, broken.stdout
        assert path.rsplit("/", 1)[1] in broken.stdout, broken.stdout
