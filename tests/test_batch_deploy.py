"""A batch system whose jobs run on Kubernetes is a deployable whole.

Where the train -> score job runs as pods (the platform is Kubernetes, or the company's orchestrator is), the
Kubernetes deployment is decided and generated: the app image, the model volume and one overlay per environment
with its namespace, the ConfigMap of exactly the variables the jobs read (feature_repo/feature_store.yaml's and
the score table's, DEPLOY_ENV; nothing of a server) and the example of its Secret. kubectl kustomize builds every
overlay and kubernetes-validate holds the result to Kubernetes 1.30 (--strict); the built pod specs give each
container its configuration, and the encryption key of personal fields, a Secret of its own, only to training
and scoring, which refresh the protected copies. The Airflow form's pods, loaded by Airflow's own DagBag
(slow), get the same.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_batch_rollups import loyalty
from test_deploy import KV, _kustomized, _manifests
from test_runtimes import batch_spec, load_dagbag

from generator.decide import decide
from generator.generate import generate as generate_in_memory
from generator.plan.deploy import ENVIRONMENTS
from requirements_spec import load_spec

APP = "store-loyalty"
KEY = "PII_ENCRYPTION_KEY"
# the containers that refresh the protected copies of personal fields (they encrypt): the only ones given the key
ENCRYPTING = {"train", "score"}
VAR = r"\$\{([A-Z0-9_]+)\}"  # a variable Feast expands in feature_store.yaml
SERVER_VARIABLES = ("TRITON_URL", "TRITON_ADMIN_KEY", "SERVING_URL", "FEATURE_SERVER_URL", "SPARK_IMAGE")


def encrypted_loyalty(tmp_path: Path, **existing: str) -> Path:
    """The loyalty batch scorer (PostgreSQL warehouse and score table, rollups) with an encrypted personal field."""
    path = loyalty(tmp_path, **existing)
    data = yaml.safe_load(path.read_text())
    data["privacy"]["pii_handling"] = "encrypt"
    view = next(v for v in data["features"]["views"] if v["name"] == "member_at_store")
    view["fields"].append({"name": "email", "dtype": "string", "pii": True})
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def written(spec: Path, root: Path) -> dict[str, bytes]:
    files = generate_in_memory(spec).files
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return files


def built(root: Path, env: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (kustomize) is not installed")
    run = subprocess.run(
        [kubectl, "kustomize", str(root / "deploy/k8s/overlays" / env)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, f"{env}: {run.stderr}"
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def secret_refs(container: dict[str, Any]) -> dict[str, str]:
    """Variable -> the Secret it comes from (secretKeyRef), for one container."""
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def documented_secrets(text: str) -> set[str]:
    return {line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


# ------------------------------------------------------------------ the decision
def test_batch_jobs_on_the_companys_kubernetes_are_deployed_there(tmp_path: Path) -> None:
    """orchestrator kubernetes on a platform that is not: the CronJobs run on the company's Kubernetes, so the
    Kubernetes deployment is decided, for the orchestrator; other schedulers off Kubernetes deploy nothing."""
    arch = decide(load_spec(batch_spec(tmp_path, orchestrator="kubernetes", platform="local")))
    assert arch.training.scheduler == "kubernetes_cronjob"
    decision = arch.decision("deployment")
    assert decision.choice == "kubernetes", decision
    assert "CronJobs on the company's Kubernetes" in decision.rationale, decision.rationale
    assert {r.path for r in decision.requirements} == {"existing.orchestrator", "serving.mode"}
    from generator.decide.delivery import deployment

    assert "existing.orchestrator" in deployment.reads
    for orchestrator in ("cron", "airflow"):
        off = decide(load_spec(batch_spec(tmp_path, orchestrator=orchestrator, platform="local")))
        skipped = {n.key: n.reason for n in off.not_applicable}
        assert "deployment" in skipped and "nothing is deployed" in skipped["deployment"], orchestrator


# ------------------------------------------------------------------ the overlays, built
@pytest.mark.parametrize("platform", ["kubernetes", "local"])
def test_every_batch_overlay_builds_with_the_jobs_configuration_and_the_key_where_it_is_needed(
    tmp_path: Path, platform: str
) -> None:
    root = tmp_path / "repo"
    files = written(encrypted_loyalty(tmp_path, orchestrator="kubernetes", platform=platform), root)
    assert not {p for p in files if "hpa" in p or "triton" in p or "feature-server" in p}
    # every manifest is deployed by the base or an overlay (the base loads pipelines/k8s/, the CronJobs)
    base = root / "deploy/k8s/base"
    reached = _kustomized(root, base, set())
    for env in ENVIRONMENTS:
        reached |= _kustomized(root, root / "deploy/k8s/overlays" / env, set())
    assert _manifests(root) <= reached, sorted(str(p) for p in _manifests(root) - reached)

    # what the jobs read: feature_store.yaml's ${VAR}s (the score table is the PostgreSQL warehouse), DEPLOY_ENV
    store = files["feature_repo/feature_store.yaml"].decode()
    read = {v for line in store.splitlines() if not line.lstrip().startswith("#") for v in re.findall(VAR, line)}
    assert {"POSTGRES_HOST", "POSTGRES_PASSWORD"} <= read, read
    validated = []
    for env in ENVIRONMENTS:
        example = files[f"deploy/k8s/overlays/{env}/secrets.env.example"].decode()
        secrets = documented_secrets(example)
        assert secrets == {"POSTGRES_PASSWORD"} and KEY not in secrets, secrets
        # the key is a Secret of its own, created apart, as in online systems
        assert f"create secret generic {APP}-pii-key" in example and f"--from-literal={KEY}=" in example
        assert f"-n {APP}-{env} create secret generic {APP}-secrets --from-env-file=secrets.env" in example

        docs = built(root, env)
        text = yaml.safe_dump_all(docs)
        assert not [v for v in SERVER_VARIABLES if v in text]
        kinds = sorted(d["kind"] for d in docs)
        assert kinds == ["ConfigMap", "CronJob", "CronJob", "Namespace", "PersistentVolumeClaim"], kinds
        assert all(d["metadata"].get("namespace") == f"{APP}-{env}" for d in docs if d["kind"] != "Namespace")
        (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
        assert config["metadata"]["name"] == f"{APP}-config"  # as the pods name it
        assert set(config["data"]) == {"DEPLOY_ENV"} | (read - secrets), sorted(config["data"])
        assert config["data"]["DEPLOY_ENV"] == env
        assert config["data"]["POSTGRES_SSLMODE"] == {"dev": "disable", "staging": "require"}.get(env, "verify-full")

        given: dict[str, set[str]] = {}
        for cronjob in (d for d in docs if d["kind"] == "CronJob"):
            for c in containers(cronjob):
                refs = secret_refs(c)
                given[c["name"]] = {n for n, s in refs.items() if n == KEY and s == f"{APP}-pii-key"}
                assert refs.get(KEY, f"{APP}-pii-key") == f"{APP}-pii-key", c["name"]
                if cronjob["metadata"]["name"] != f"{APP}-train-score":
                    continue
                # every container of the pipeline: the ConfigMap and each key of the Secret, all required
                assert c["envFrom"] == [{"configMapRef": {"name": f"{APP}-config"}}], c["name"]
                assert {n for n, s in refs.items() if s == f"{APP}-secrets"} == secrets, c["name"]
                assert read <= set(config["data"]) | set(refs), c["name"]
                image = c["image"]
                want = "local/store-loyalty-app:dev" if env == "dev" else "registry.example.internal/store-loyalty/"
                assert image.startswith(want), image
        assert {name for name, key in given.items() if key} == ENCRYPTING, given
        assert set(given) >= {"aggregate-before-train", "aggregate-before-score", "purge", *ENCRYPTING}
        path = tmp_path / f"built-{env}.yaml"
        path.write_text(text)
        validated.append(str(path))
    run = subprocess.run([str(KV), "--strict", "-k", "1.30", *validated], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_without_personal_fields_to_encrypt_no_container_gets_a_key(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    files = written(loyalty(tmp_path, orchestrator="kubernetes", platform="kubernetes"), root)
    assert KEY not in files["pipelines/k8s/train-score-cronjob.yaml"].decode()
    assert "pii-key" not in files["deploy/k8s/overlays/prod/secrets.env.example"].decode()
    docs = built(root, "prod")
    assert all(KEY not in secret_refs(c) for d in docs if d["kind"] == "CronJob" for c in containers(d))


# ------------------------------------------------------------------ Airflow's pods (slow: a real DagBag)
POD_ENV = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: v[-2000:] for k, v in bag.import_errors.items()}, "tasks": {}}
for dag in bag.dags.values():
    for t in dag.tasks:
        out["tasks"][t.task_id] = {
            "namespace": t.namespace,
            "config": [e.config_map_ref.name for e in t.env_from if e.config_map_ref],
            "secret_from": [e.secret_ref.name for e in t.env_from if e.secret_ref],
            "env": {v.name: v.value_from.secret_key_ref.name for v in t.env_vars if v.value_from},
        }
print(json.dumps(out))
"""


@pytest.mark.slow
def test_airflow_pods_read_the_environment_and_only_training_and_scoring_get_the_key(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    files = written(encrypted_loyalty(tmp_path, orchestrator="airflow", platform="kubernetes"), root)
    name = "store_loyalty_train_score.py"
    bag = load_dagbag(tmp_path, {name: files[f"pipelines/airflow/dags/{name}"]}, POD_ENV)
    assert bag["errors"] == {}, bag["errors"]
    tasks = bag["tasks"]
    assert set(tasks) == {"aggregate_before_train", "train", "aggregate_before_score", "score"}
    for task_id, task in tasks.items():
        assert task["namespace"] == f"{APP}-dev", task  # the dev overlay's namespace unless the workers say
        assert task["config"] == [f"{APP}-config"] and task["secret_from"] == [], task
        key = {KEY: f"{APP}-pii-key"} if task_id in ENCRYPTING else {}
        assert task["env"] == {"POSTGRES_PASSWORD": f"{APP}-secrets", **key}, (task_id, task["env"])
    # the overlays the pods' namespace, ConfigMap and volume come from build (no CronJob: Airflow runs the jobs)
    docs = built(root, "staging")
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "Namespace", "PersistentVolumeClaim"]
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert config["metadata"]["name"] == f"{APP}-config" and config["metadata"]["namespace"] == f"{APP}-staging"
