"""Deployment files: docker compose for one machine, Kubernetes (kustomize base + overlays) to scale out.

Every preset plus variants that reach the other branches (Spark + GPU + pipelines' CronJobs, deploy's own
CronJobs, compose with a GPU and PostgreSQL). Kubernetes manifests are validated with the real
kubernetes-validate CLI (--strict, 1.30), overlays are built with kustomize (kubectl) where installed,
compose files go through `docker compose config` where a compose client answers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.checks.checks import check_compose_structure, compose_command
from generator.decide import decide
from generator.decide.architecture import Architecture
from generator.plan import deploy, feature_repo
from generator.render.render import render_file
from requirements_spec.validate import parse_spec

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted(p.stem for p in (ROOT / "requirements_spec" / "presets").glob("*.yaml"))
KV = Path(sys.executable).parent / "kubernetes-validate"


def _variant(base: str, existing: dict[str, str], gpu_models: bool = False, freshness: str | None = None) -> str:
    data = yaml.safe_load((ROOT / "requirements_spec" / "presets" / f"{base}.yaml").read_text())
    data["existing"].update(existing)
    if gpu_models:
        for m in data["serving"]["models"]:
            m["accelerator"] = "gpu"
    if freshness:
        data["features"]["freshness"] = freshness
    return yaml.safe_dump(data, sort_keys=False)


VARIANTS = {
    "spark_k8s_gpu": lambda: _variant(
        "realtime", {"warehouse": "spark", "orchestrator": "none", "platform": "kubernetes"}, True, "1h"
    ),
    "k8s_own_cronjobs": lambda: _variant("reference", {"orchestrator": "cron", "platform": "kubernetes"}),
    "compose_gpu": lambda: _variant("realtime", {"orchestrator": "none", "platform": "docker-compose"}, True),
    "k8s_python_rest": lambda: _variant("starter", {"platform": "kubernetes"}),
}


def _arch(name: str) -> Architecture:
    if name in VARIANTS:
        return decide(parse_spec(VARIANTS[name](), f"{name}.yaml"))
    path = ROOT / "requirements_spec" / "presets" / f"{name}.yaml"
    return decide(parse_spec(path.read_text(), path.name))


def _render(arch: Architecture, root: Path) -> dict[str, bytes]:
    out = {f.path: render_file(f, arch) for f in deploy.plan(arch)}
    for path, data in out.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Architecture, Path, dict[str, bytes]]]:
    out = {}
    for name in [*PRESETS, *VARIANTS]:
        arch = _arch(name)
        if arch.serving.runtime in ("embedded", "batch_scoring"):
            assert deploy.plan(arch) == []  # no server: their runtimes bring their own (tests/test_runtimes.py)
            continue
        root = tmp_path_factory.mktemp(name)
        out[name] = (arch, root, _render(arch, root))
    return out


def _yaml(files: dict[str, bytes], path: str) -> list[Any]:
    return [d for d in yaml.safe_load_all(files[path]) if d is not None]


def _k8s_names(generated: dict[str, tuple[Architecture, Path, dict[str, bytes]]]) -> list[str]:
    return [n for n, (arch, _, _) in generated.items() if arch.deployment.target == "kubernetes"]


def _triton(arch: Architecture) -> bool:
    return arch.serving.runtime != "python_rest"


def test_kubernetes_target_gets_manifests_and_compose_target_does_not(generated: Any) -> None:
    for _name, (arch, _, files) in generated.items():
        has_k8s = any(p.startswith("deploy/k8s/") for p in files)
        assert has_k8s == (arch.deployment.target == "kubernetes")
        assert "deploy/docker-compose.yaml" in files
        for env in deploy.ENVIRONMENTS:
            assert f"deploy/env/{env}.env.example" in files
    assert len(_k8s_names(generated)) >= 3


def test_every_kubernetes_manifest_passes_kubernetes_validate_strict(generated: Any, tmp_path: Path) -> None:
    """The real CLI, --strict (misspelled keys fail), Kubernetes 1.30; kustomize-built overlays too."""
    paths: list[str] = []
    kustomize = shutil.which("kubectl")
    for name in _k8s_names(generated):
        _, root, files = generated[name]
        paths += [
            str(root / p) for p in files if p.startswith("deploy/k8s/base/") and not p.endswith("kustomization.yaml")
        ]
        if kustomize:
            for env in deploy.ENVIRONMENTS:
                built = subprocess.run(
                    [kustomize, "kustomize", str(root / "deploy/k8s/overlays" / env)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                assert built.returncode == 0, f"{name}/{env}: {built.stderr}"
                target = tmp_path / f"{name}-{env}.yaml"
                target.write_text(built.stdout)
                paths.append(str(target))
    run = subprocess.run([str(KV), "--strict", "-k", "1.30", *paths], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(paths) >= 30


def test_kubernetes_validate_catches_a_key_typo(generated: Any, tmp_path: Path) -> None:
    """Guards the test above: the same command fails on a misspelled key."""
    files = generated["realtime"][2]
    text = files["deploy/k8s/base/triton-deployment.yaml"].decode().replace("readinessProbe:", "readinesProbe:")
    broken = tmp_path / "triton-deployment.yaml"
    broken.write_text(text)
    run = subprocess.run([str(KV), "--strict", "-k", "1.30", str(broken)], capture_output=True, text=True, check=False)
    assert run.returncode != 0
    assert "readinesProbe" in run.stdout + run.stderr


def test_triton_deployment_probes_resources_hpa_and_gpus(generated: Any) -> None:
    for name in _k8s_names(generated):
        arch, _, files = generated[name]
        if not _triton(arch):
            continue
        (dep,) = _yaml(files, "deploy/k8s/base/triton-deployment.yaml")
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        resources = container["resources"]
        assert resources["requests"]["cpu"] and resources["limits"]["memory"]
        wants_gpu = any(m.instance_kind == "KIND_GPU" for m in arch.serving.models)
        assert ("nvidia.com/gpu" in resources["limits"]) == wants_gpu, name
        (hpa,) = _yaml(files, "deploy/k8s/base/triton-hpa.yaml")
        assert hpa["spec"]["scaleTargetRef"]["name"] == "triton"
    assert any(
        "nvidia.com/gpu" in files["deploy/k8s/base/triton-deployment.yaml"].decode()
        for _, (_, _, files) in generated.items()
        if "deploy/k8s/base/triton-deployment.yaml" in files
    )


def test_python_rest_deploys_the_rest_service_and_no_triton(generated: Any) -> None:
    """Runtime python_rest: the REST service from the app image, with the model volume; nothing of Triton."""
    rest = [n for n, (arch, _, _) in generated.items() if not _triton(arch)]
    assert {"starter", "edge_airgapped", "k8s_python_rest"} <= set(rest)
    for name in rest:
        _, _, files = generated[name]
        assert not [p for p in files if "triton" in p], name
        text = b"".join(files.values()).decode()
        assert "tritonserver" not in text and "TRITON_URL" not in text and "nv_inference" not in text, name
        (compose,) = _yaml(files, "deploy/docker-compose.yaml")
        service = compose["services"]["rest-app"]
        assert "triton" not in compose["services"]
        assert service["command"][:4] == ["python", "-m", "serving.rest_app", "run"]
        assert "/health'" in " ".join(service["healthcheck"]["test"])
        assert "../model_repository:/app/model_repository:ro" in service["volumes"]
        assert "SERVING_URL" in files["deploy/env/dev.env.example"].decode()
    _, _, files = generated["k8s_python_rest"]
    (dep,) = _yaml(files, "deploy/k8s/base/rest-app-deployment.yaml")
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"].endswith("-app:dev") and "serving.rest_app" in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert {"name": "model-repository", "mountPath": "/app/model_repository", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"].endswith("-model-repository")
    (svc,) = _yaml(files, "deploy/k8s/base/rest-app-service.yaml")
    assert svc["spec"]["ports"][0]["port"] == deploy.REST_PORT
    (hpa,) = _yaml(files, "deploy/k8s/base/rest-app-hpa.yaml")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "rest-app"
    prod = _yaml(files, "deploy/k8s/overlays/prod/kustomization.yaml")[0]
    assert [i["name"] for i in prod["images"]] == ["local/customer-churn-app"]
    assert any(p["target"].get("name") == "rest-app" for p in prod["patches"])


def test_secrets_are_referenced_never_inlined(generated: Any) -> None:
    for name in _k8s_names(generated):
        _, _, files = generated[name]
        for path, data in files.items():
            if not path.startswith("deploy/k8s/") or not path.endswith(".yaml"):
                continue
            for doc in _yaml(files, path):
                assert doc.get("kind") != "Secret", f"{path}: a Secret object would inline secrets"
                for match in re.finditer(
                    r"name: (\w*(PASSWORD|SALT|CONNECTION_STRING|REGISTRY_URL)\w*)\n\s+value:", data.decode()
                ):
                    pytest.fail(f"{path}: {match.group(1)} has a literal value")
        text = files["deploy/k8s/base/feature-server-deployment.yaml"].decode()
        if "REDIS_PASSWORD" in files["deploy/k8s/overlays/prod/secrets.env.example"].decode():
            assert "secretKeyRef" in text and "key: REDIS_CONNECTION_STRING" in text


def test_compose_has_health_checks_and_no_secrets(generated: Any) -> None:
    for name, (arch, _, files) in generated.items():
        (compose,) = _yaml(files, "deploy/docker-compose.yaml")
        assert check_compose_structure(compose) == [], name
        services = compose["services"]
        if _triton(arch):  # python_rest: see test_python_rest_deploys_the_rest_service_and_no_triton
            assert "/v2/health/ready" in " ".join(services["triton"]["healthcheck"]["test"])
            assert "24.10-py3" in files["deploy/triton.Dockerfile"].decode()  # Triton 2.51 = NGC 24.10
        else:
            assert "/health" in " ".join(services["rest-app"]["healthcheck"]["test"])
        # a feature server runs only when something reads online features over the network (not batch, embedded)
        assert ("feature-server" in services) == arch.feature_server_runs, name
        if arch.feature_server_runs:
            assert "serve" in services["feature-server"]["command"]
        assert ("redis" in services) == (arch.feature_store is not None and arch.feature_store.online_store == "redis")
        gpu = any(m.instance_kind == "KIND_GPU" for m in arch.serving.models)
        server = services["triton" if _triton(arch) else "rest-app"]
        assert ("deploy" in server) == (gpu and _triton(arch)), name
        if arch.training.scheduler in ("airflow", "prefect", "dagster"):
            assert "scheduler" not in services
        for env in deploy.ENVIRONMENTS:
            for line in files[f"deploy/env/{env}.env.example"].decode().splitlines():
                if re.match(r"\w*(PASSWORD|SALT)\w*=", line):
                    assert "change-me" in line, line


def test_env_files_define_every_variable_feature_store_yaml_reads(generated: Any) -> None:
    """feature_store.yaml (the Feast engineer's) and the deploy env files agree on variable names."""
    for name, (arch, _, files) in generated.items():
        if arch.feature_store is None:
            continue
        fs_file = next(f for f in feature_repo.plan(arch) if f.path == "feature_repo/feature_store.yaml")
        text = re.sub(r"#.*$", "", render_file(fs_file, arch).decode(), flags=re.M)  # not the comments
        used = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
        compose = files["deploy/docker-compose.yaml"].decode()
        for env in deploy.ENVIRONMENTS:
            defined = set(re.findall(r"^([A-Z0-9_]+)=", files[f"deploy/env/{env}.env.example"].decode(), re.M))
            derived = {v.name for v in deploy.environment_variables(arch) if v.derived}
            assert used <= defined | derived, f"{name}/{env}: {sorted(used - defined - derived)}"
        for var in used:
            assert f"{var}:" in compose, f"{name}: compose does not pass {var}"


def test_no_duplicate_cronjobs_with_the_pipelines_component(generated: Any) -> None:
    from generator.plan import pipelines

    for name in _k8s_names(generated):
        arch, _, files = generated[name]
        theirs = [f.path for f in pipelines.plan(arch) if f.path.startswith("pipelines/k8s/")]
        ours = [p for p in files if "/cronjob-" in p]
        assert not (theirs and ours), f"{name}: CronJobs in both {theirs} and {ours}"
        if arch.training.scheduler == "airflow":
            assert not ours
    _, _, own = generated["k8s_own_cronjobs"]
    assert any("/cronjob-" in p for p in own)
    (cron,) = _yaml(own, next(p for p in own if p.endswith("cronjob-train.yaml")))
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    prod = own["deploy/k8s/overlays/prod/kustomization.yaml"].decode()
    assert "/spec/suspend" in prod  # prod serves promoted models only


def test_spark_warehouse_gets_spark_driver_permissions(generated: Any) -> None:
    _, _, files = generated["spark_k8s_gpu"]
    kinds = {d["kind"] for d in _yaml(files, "deploy/k8s/base/spark-rbac.yaml")}
    assert kinds == {"ServiceAccount", "Role", "RoleBinding"}
    assert "spark-defaults.conf" in files["deploy/k8s/base/spark-defaults-configmap.yaml"].decode()
    assert "SPARK_MASTER" in files["deploy/k8s/overlays/prod/kustomization.yaml"].decode()


def test_overlays_differ_only_in_configuration(generated: Any) -> None:
    _, _, files = generated["realtime"]
    overlays = {env: _yaml(files, f"deploy/k8s/overlays/{env}/kustomization.yaml")[0] for env in deploy.ENVIRONMENTS}
    for env, k in overlays.items():
        assert k["namespace"].endswith(f"-{env}")
        assert k["resources"] == ["namespace.yaml", "../../base"]
        assert set(k) <= {
            "apiVersion",
            "kind",
            "namespace",
            "resources",
            "labels",
            "configMapGenerator",
            "images",
            "patches",
        }
    readme = files["deploy/README.md"].decode()
    assert "How the system grows" in readme and "promote" in readme.lower()


def test_deploy_files_are_deterministic(generated: Any) -> None:
    for name in ("reference", "realtime", "spark_k8s_gpu"):
        arch, _, files = generated[name]
        again = {f.path: render_file(f, arch) for f in deploy.plan(_arch(name))}
        assert again == files


def test_docker_compose_config_accepts_every_compose_file(generated: Any) -> None:
    command = compose_command()
    if command is None:
        pytest.skip("no docker client with compose here (`docker compose` / `docker-compose`)")
    for name, (_, root, _) in generated.items():
        for env in deploy.ENVIRONMENTS:
            run = subprocess.run(
                [*command, "--project-directory", str(root / "deploy"), "-f", str(root / "deploy/docker-compose.yaml"),
                 "--env-file", str(root / f"deploy/env/{env}.env.example"), "config", "-q"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert run.returncode == 0, f"{name}/{env}: {run.stderr}"


def test_compose_refuses_to_start_without_the_secrets(generated: Any, tmp_path: Path) -> None:
    command = compose_command()
    if command is None:
        pytest.skip("no docker client with compose here (`docker compose` / `docker-compose`)")
    _, root, files = generated["realtime"]
    env = tmp_path / "no-secrets.env"
    env.write_text(
        "\n".join(
            line
            for line in files["deploy/env/dev.env.example"].decode().splitlines()
            if not line.startswith("REDIS_PASSWORD")
        )
    )
    run = subprocess.run(
        [*command, "--project-directory", str(root / "deploy"), "-f", str(root / "deploy/docker-compose.yaml"),
         "--env-file", str(env), "config", "-q"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode != 0 and "REDIS_PASSWORD" in run.stderr
