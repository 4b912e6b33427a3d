"""Residency becomes deployment configuration, and the generated fitness test holds the repository to it.

privacy.residency eu/us pins every pod by node affinity on topology.kubernetes.io/region to regions inside
it, gives every volume the resident storage class, generated beside them on Kubernetes (allowed topologies
on the region label, bound once the pod is placed, retained), and the warehouse a location inside it; the
generated tests/test_fitness_residency.py passes on a fresh generation and fails, naming the file, when a
hand edit moves a pod, a volume, the storage class or the warehouse out.
"""

from __future__ import annotations

import shutil
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


def spec_data(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "requirements_spec" / "presets" / f"{name}.yaml").read_text())
    for path, value in changes.items():
        area, _, key = path.partition("__")
        data.setdefault(area, {})[key] = value
    return data


def rendered(name: str, **changes: Any) -> dict[str, bytes]:
    arch = decide(parse_spec(yaml.safe_dump(spec_data(name, **changes), sort_keys=False), "spec.yaml"))
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


def storage_classes(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    return {
        path: doc
        for path, data in files.items()
        if path.startswith("deploy/k8s/") and path.endswith(".yaml")
        for doc in yaml.safe_load_all(data)
        if isinstance(doc, dict) and doc.get("kind") == "StorageClass"
    }


@pytest.mark.unit
@pytest.mark.parametrize(
    ("preset", "changes", "provisioner"),
    [
        ("realtime", {}, "nfs.csi.k8s.io"),  # no cloud named: the Kubernetes NFS CSI driver
        ("realtime", {"existing__warehouse": "bigquery"}, "filestore.csi.storage.gke.io"),
        ("realtime", {"existing__warehouse": "redshift", "privacy__residency": "us"}, "efs.csi.aws.com"),
        ("batch_warehouse", {"existing__platform": "kubernetes"}, "nfs.csi.k8s.io"),  # a batch system's volume
    ],
)
def test_the_resident_storage_class_is_generated_and_kept_in_the_region(
    preset: str, changes: dict[str, str], provisioner: str
) -> None:
    files = rendered(preset, **changes)
    residency = changes.get("privacy__residency", "eu")
    (path, doc), *others = storage_classes(files).items()
    assert not others and path == "deploy/k8s/base/resident-storageclass.yaml"
    assert doc["metadata"]["name"] == f"{residency}-resident" and doc["provisioner"] == provisioner
    assert (doc["reclaimPolicy"], doc["volumeBindingMode"]) == ("Retain", "WaitForFirstConsumer")
    ((expr,),) = [t["matchLabelExpressions"] for t in doc["allowedTopologies"]]
    assert expr == {"key": deploy.REGION_LABEL, "values": list(deploy.RESIDENCY_REGIONS[residency])}
    assert "resident-storageclass.yaml" in yaml.safe_load(files["deploy/k8s/base/kustomization.yaml"])["resources"]
    # the plan says which provisioner and why
    arch = decide(parse_spec(yaml.safe_dump(spec_data(preset, **changes), sort_keys=False), "spec.yaml"))
    reason = next(d.rationale for d in arch.decisions if d.key == "residency")
    assert f"StorageClass {residency}-resident" in reason and f"provisioner {provisioner}" in reason, reason


def test_the_storage_classes_pass_kubernetes_validate_strict_and_build(tmp_path: Path) -> None:
    """The same check as every other manifest (tests/test_deploy.py): the real CLI, --strict, Kubernetes 1.30;
    the batch system's base, which holds the class beside its volume, builds with kustomize where installed."""
    paths = []
    for i, (preset, changes) in enumerate(
        [
            ("realtime", {"existing__warehouse": "bigquery"}),
            ("realtime", {"existing__warehouse": "redshift", "privacy__residency": "us"}),
            ("batch_warehouse", {"existing__platform": "kubernetes"}),
        ]
    ):
        files = rendered(preset, **changes)
        for path, data in files.items():
            if path.startswith("deploy/k8s/base/"):
                (tmp_path / str(i) / path).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / str(i) / path).write_bytes(data)
        paths += [str(tmp_path / str(i) / p) for p in storage_classes(files)]
    validate = Path(sys.executable).parent / "kubernetes-validate"
    run = subprocess.run([str(validate), "--strict", "-k", "1.30", *paths], capture_output=True, text=True, check=False)
    assert run.returncode == 0 and run.stdout.count("passed for resource storageclass/") == 3, run.stdout + run.stderr
    kubectl = shutil.which("kubectl")
    if kubectl:
        built = subprocess.run(
            [kubectl, "kustomize", str(tmp_path / "2" / "deploy/k8s/base")], capture_output=True, text=True, check=False
        )
        assert built.returncode == 0, built.stderr
        kinds = [d["kind"] for d in yaml.safe_load_all(built.stdout)]
        assert "StorageClass" in kinds and "PersistentVolumeClaim" in kinds, kinds


@pytest.mark.unit
def test_no_storage_class_off_kubernetes_or_without_a_region() -> None:
    assert not storage_classes(rendered("realtime", privacy__residency="any"))
    assert not storage_classes(rendered("batch_warehouse"))  # local platform: no manifests at all


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
    assert fresh.returncode == 0 and "4 passed" in fresh.stdout, fresh.stdout + fresh.stderr
    storage = "deploy/k8s/base/resident-storageclass.yaml"
    edits = [
        ("deploy/k8s/base/triton-deployment.yaml", b"- key: topology.kubernetes.io/region", b"- key: zone"),
        ("deploy/k8s/base/model-repository-pvc.yaml", b"storageClassName: eu-resident", b"storageClassName: standard"),
        ("deploy/env/prod.env.example", b"BIGQUERY_LOCATION=EU", b"BIGQUERY_LOCATION=US"),
        (storage, b"volumeBindingMode: WaitForFirstConsumer", b"volumeBindingMode: Immediate"),
        (storage, b'values: ["eu-central-1", ', b'values: ["us-east-1", "eu-central-1", '),
    ]
    for i, (path, old, new) in enumerate(edits):
        assert old in files[path], (path, old)
        broken = run_fitness({**files, path: files[path].replace(old, new)}, tmp_path / f"broken{i}")
        assert broken.returncode == 1 and "1 failed, 3 passed" in broken.stdout, broken.stdout
        assert path.rsplit("/", 1)[1] in broken.stdout, broken.stdout
