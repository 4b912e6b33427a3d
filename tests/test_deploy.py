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
from generator.plan import deploy, feature_repo, frame, pipelines
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
    "compose_spark": lambda: _variant("reference", {"warehouse": "spark", "orchestrator": "none"}),
}


def _arch(name: str) -> Architecture:
    if name in VARIANTS:
        return decide(parse_spec(VARIANTS[name](), f"{name}.yaml"))
    path = ROOT / "requirements_spec" / "presets" / f"{name}.yaml"
    return decide(parse_spec(path.read_text(), path.name))


def _render(arch: Architecture, root: Path) -> dict[str, bytes]:
    """The deploy files (returned), written with the pipelines' Kubernetes manifests the base kustomization loads."""
    out = {f.path: render_file(f, arch) for f in deploy.plan(arch)}
    loaded = {f.path: render_file(f, arch) for f in pipelines.plan(arch) if f.path.startswith("pipelines/k8s/")}
    for path, data in {**out, **loaded}.items():
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
            str(root / p)
            for p in files
            if p.startswith("deploy/k8s/") and p.endswith(".yaml") and not p.endswith("kustomization.yaml")
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
    (rbac_binding,) = [d for d in _yaml(files, "deploy/k8s/base/spark-rbac.yaml") if d["kind"] == "RoleBinding"]
    assert rbac_binding["subjects"] == [{"kind": "ServiceAccount", "name": "spark"}]
    assert "SPARK_MASTER" in files["deploy/k8s/overlays/prod/kustomization.yaml"].decode()


def test_spark_settings_and_image_reach_the_spark_jobs(generated: Any, tmp_path: Path) -> None:
    """spark-defaults carries the spark_settings decision; the job and its executors run deploy/spark.Dockerfile."""
    arch, root, files = generated["spark_k8s_gpu"]
    assert arch.feature_store is not None and arch.feature_store.spark_conf
    (config,) = _yaml(files, "deploy/k8s/base/spark-defaults-configmap.yaml")
    lines = dict(line.split(" ", 1) for line in config["data"]["spark-defaults.conf"].splitlines())
    for key, value in arch.feature_store.spark_conf.items():
        assert lines[key] == value
    assert lines["spark.kubernetes.authenticate.driver.serviceAccountName"] == "spark"
    # no orchestrator on Kubernetes: the pipelines component's CronJobs (deploy/k8s includes them)
    cronjobs = {f.path: render_file(f, arch) for f in pipelines.plan(arch) if f.path.startswith("pipelines/k8s/")}
    (cron,) = _yaml(cronjobs, "pipelines/k8s/materialize-cronjob.yaml")
    manifests = [tmp_path / "materialize-cronjob.yaml", root / "deploy/k8s/base/spark-defaults-configmap.yaml"]
    manifests[0].write_bytes(cronjobs["pipelines/k8s/materialize-cronjob.yaml"])
    run = subprocess.run([str(KV), "--strict", "-k", "1.30", *map(str, manifests)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "spark"
    (container,) = pod["containers"]
    assert container["image"].endswith("-spark:dev")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert "spark.kubernetes.container.image=$(SPARK_IMAGE)" in env["PYSPARK_SUBMIT_ARGS"]
    for overlay in deploy.ENVIRONMENTS:
        (k,) = _yaml(files, f"deploy/k8s/overlays/{overlay}/kustomization.yaml")
        literals = dict(x.split("=", 1) for x in k["configMapGenerator"][0]["literals"])
        image = next(i for i in k["images"] if i["name"].endswith("-spark"))
        assert literals["SPARK_IMAGE"] == f"{image['newName']}:{image['newTag']}"
    dockerfile = files["deploy/spark.Dockerfile"].decode()
    assert f"ARG SPARK_IMAGE={deploy.SPARK_IMAGE}" in dockerfile and "requirements.txt" in dockerfile
    # the repository's code needs Python 3.11; the official Spark image has 3.10: Spark and Java are copied onto
    # the system's Python image, with the Kubernetes entrypoint the executors start through
    assert _stages(dockerfile) == []
    assert f"ARG PYTHON_IMAGE={deploy.PYTHON_IMAGE}" in dockerfile and "python3" not in deploy.SPARK_IMAGE
    assert "COPY --from=spark /opt/spark /opt/spark" in dockerfile and "/opt/entrypoint.sh" in dockerfile
    assert "COPY --from=java /opt/java/openjdk /opt/java/openjdk" in dockerfile


def _stages(dockerfile: str) -> list[str]:
    """What is wrong with a Dockerfile's stages: FROM arguments declared before the first FROM, COPY --from naming
    an earlier stage, the last stage running as a user (the checks docker build and checkov make of them)."""
    lines = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    out, args, stages, seen_from, user = [], set(), [], False, None
    for line in lines:
        word, _, rest = line.partition(" ")
        if word == "ARG" and not seen_from:
            args.add(rest.split("=", 1)[0])
        elif word == "FROM":
            seen_from, user = True, None
            image, _, alias = rest.partition(" AS ")
            for used in re.findall(r"\$\{(\w+)\}", image):
                if used not in args:
                    out.append(f"FROM uses {used}, declared after the first FROM or never")
            stages.append(alias.strip())
        elif word == "COPY" and rest.startswith("--from="):
            source = rest.split()[0].removeprefix("--from=")
            if source not in stages[:-1]:
                out.append(f"COPY --from={source}: no earlier stage of that name")
        elif word == "USER":
            user = rest
    if user in (None, "root", "0"):
        out.append("the last stage runs as root")
    return out


def test_compose_runs_the_spark_jobs_in_the_app_image_with_java(generated: Any) -> None:
    """On one machine no Spark image runs the jobs: the app image does, with a Java runtime for pyspark."""
    arch, _, files = generated["compose_spark"]
    assert arch.uses_spark and arch.deployment.target == "docker_compose"
    dockerfile = files["deploy/app.Dockerfile"].decode()
    assert _stages(dockerfile) == []
    assert f"ARG JAVA_IMAGE={deploy.JAVA_IMAGE}" in dockerfile and "FROM ${JAVA_IMAGE} AS java" in dockerfile
    assert "COPY --from=java /opt/java/openjdk /opt/java/openjdk" in dockerfile
    assert "ENV JAVA_HOME=/opt/java/openjdk PATH=/opt/java/openjdk/bin:$PATH" in dockerfile
    assert "deploy/spark.Dockerfile" not in files  # the Kubernetes executors' image: nothing runs it here
    requirements = render_file(next(f for f in frame.plan(arch) if f.path == "requirements.txt"), arch).decode()
    assert frame.PYSPARK in requirements.splitlines()  # the pyspark the image's Java runs
    (compose,) = _yaml(files, "deploy/docker-compose.yaml")
    assert check_compose_structure(compose) == []
    scheduler = compose["services"]["scheduler"]  # it runs materialization, and so Spark
    assert scheduler["build"]["dockerfile"] == "deploy/app.Dockerfile"
    assert "scripts/materialize.py" in files["deploy/scheduler.py"].decode()
    for env in deploy.ENVIRONMENTS:  # local mode in every environment: no Kubernetes master on one machine
        assert "SPARK_MASTER=local[*]" in files[f"deploy/env/{env}.env.example"].decode().splitlines()
    assert deploy.images(arch)["java"] == deploy.JAVA_IMAGE and "spark" not in deploy.images(arch)
    # elsewhere the app image stays without Java
    for name, (other, _, other_files) in generated.items():
        if name != "compose_spark" and "deploy/app.Dockerfile" in other_files:
            assert _stages(other_files["deploy/app.Dockerfile"].decode()) == [], name
            assert ("JAVA_HOME" in other_files["deploy/app.Dockerfile"].decode()) == deploy.app_runs_spark(other)
    _, _, k8s = generated["spark_k8s_gpu"]
    assert "JAVA_HOME" not in k8s["deploy/app.Dockerfile"].decode() and "deploy/spark.Dockerfile" in k8s


def test_a_broken_dockerfile_stage_is_found() -> None:
    broken = "FROM ${BASE}\nCOPY --from=java /opt /opt\nUSER 10001\n"
    assert _stages(broken) == [
        "FROM uses BASE, declared after the first FROM or never",
        "COPY --from=java: no earlier stage of that name",
    ]
    assert _stages("FROM python:3.11-slim\n") == ["the last stage runs as root"]


def test_overlays_differ_only_in_configuration(generated: Any) -> None:
    _, _, files = generated["realtime"]
    overlays = {env: _yaml(files, f"deploy/k8s/overlays/{env}/kustomization.yaml")[0] for env in deploy.ENVIRONMENTS}
    for env, k in overlays.items():
        assert k["namespace"].endswith(f"-{env}")
        # beside the base, only what names the environment: its namespace, its token-review binding
        assert k["resources"][:2] == ["namespace.yaml", "../../base"]
        assert k["resources"][2:] in ([], ["feature-server-tokenreview.yaml"])
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


def test_kubernetes_access_one_account_role_and_binding_per_declared_role(generated: Any) -> None:
    """Feast's Kubernetes authorization: auth type kubernetes, and per role a ServiceAccount, a Role named as the
    role (what Feast matches) and a RoleBinding; the feature server may read RoleBindings and review tokens."""
    checked = 0
    for name, (arch, _, files) in generated.items():
        roles = [role for role, _ in arch.privacy.permissions]
        access = files.get("deploy/k8s/base/feast-access.yaml")
        if arch.deployment.target != "kubernetes" or not roles:
            assert access is None, name
            assert feature_repo.feast_auth(arch) in ("no_auth", "oidc"), name
            continue
        assert feature_repo.feast_auth(arch) == "kubernetes"
        assert access is not None, f"{name}: roles {roles} declared but no access manifests"
        docs = [d for d in yaml.safe_load_all(access) if d]
        by_kind: dict[str, dict[str, Any]] = {}
        for d in docs:
            by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        for role in roles:
            assert role in by_kind["Role"], (name, role)
            binding = next(b for b in by_kind["RoleBinding"].values() if b["roleRef"]["name"] == role)
            (subject,) = binding["subjects"]
            assert subject["kind"] == "ServiceAccount" and subject["name"] in by_kind["ServiceAccount"]
        assert "feast-access.yaml" in _yaml(files, "deploy/k8s/base/kustomization.yaml")[0]["resources"]
        if arch.feature_server_runs:
            pod = _yaml(files, "deploy/k8s/base/feature-server-deployment.yaml")[0]["spec"]["template"]["spec"]
            assert pod["serviceAccountName"] == "feature-server" and pod["automountServiceAccountToken"] is True
            reader = by_kind["Role"]["feature-server-role-reader"]["rules"][0]
            assert "rolebindings" in reader["resources"] and "list" in reader["verbs"]
            for env in deploy.ENVIRONMENTS:
                (review,) = _yaml(files, f"deploy/k8s/overlays/{env}/feature-server-tokenreview.yaml")
                assert review["roleRef"]["name"] == "system:auth-delegator"
                assert review["subjects"][0]["namespace"] == f"{deploy.slug(arch.spec.project.name)}-{env}"
                overlay = _yaml(files, f"deploy/k8s/overlays/{env}/kustomization.yaml")[0]
                assert "feature-server-tokenreview.yaml" in overlay["resources"]
        checked += 1
    assert checked >= 1, "no generated system declares roles on Kubernetes"


def test_app_start_guard_refuses_placeholder_and_empty_secrets_outside_dev(generated: Any) -> None:
    """deploy/check_secrets.py (the app image's ENTRYPOINT): placeholders never start; empty secrets only in dev."""
    _, root, files = generated["realtime"]
    guard = root / "deploy" / "check_secrets.py"
    names = re.search(r"SECRETS = (\[.*?\])", files["deploy/check_secrets.py"].decode(), re.S)
    assert names is not None
    secrets = yaml.safe_load(names.group(1))
    assert {"REDIS_PASSWORD", "POSTGRES_PASSWORD", "TRITON_ADMIN_KEY"} <= set(secrets)

    def start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(guard), sys.executable, "-c", "print('started')"],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    real = {name: f"real-{name.lower()}-0123456789" for name in secrets}
    ok = start({**real, "DEPLOY_ENV": "prod"})
    assert ok.returncode == 0 and ok.stdout.strip() == "started", ok.stderr
    placeholder = start({**real, "DEPLOY_ENV": "prod", "REDIS_PASSWORD": "change-me-redis-prod"})
    assert placeholder.returncode != 0 and "REDIS_PASSWORD" in placeholder.stderr
    assert "change-me-redis-prod" not in placeholder.stderr + placeholder.stdout  # names only, never a value
    assert start({**real, "DEPLOY_ENV": "dev", "POSTGRES_PASSWORD": "change-me"}).returncode != 0
    empty = {**real, "POSTGRES_PASSWORD": ""}
    refused = start({**empty, "DEPLOY_ENV": "staging"})
    assert refused.returncode != 0 and "POSTGRES_PASSWORD" in refused.stderr
    assert start({**empty, "DEPLOY_ENV": "dev"}).returncode == 0  # local development: trust auth, no password


def test_every_app_container_starts_through_the_guard_and_redis_refuses_placeholders(generated: Any) -> None:
    """Manifests pass args (the image's ENTRYPOINT, the guard, runs first); Kubernetes Redis refuses a placeholder."""
    checked = 0
    for name, (_, _, files) in generated.items():
        for path, data in files.items():
            if not (path.startswith("deploy/k8s/") and path.endswith(".yaml")):
                continue
            for doc in yaml.safe_load_all(data):
                if not isinstance(doc, dict) or doc.get("kind") not in ("Deployment", "StatefulSet", "CronJob"):
                    continue
                spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
                for c in spec["template"]["spec"]["containers"]:
                    if c["image"].endswith("-app:dev"):
                        assert "command" not in c, (name, path, c["name"])
                        checked += 1
                    if c["name"] == "redis":
                        script = c["command"][2]
                        for password in ("", "change-me-redis-prod"):
                            run = subprocess.run(
                                ["sh", "-c", script],
                                env={"PATH": "/usr/bin:/bin", "REDIS_PASSWORD": password},
                                capture_output=True,
                                text=True,
                                timeout=30,
                                check=False,
                            )
                            assert run.returncode == 78 and "refusing to start" in run.stderr, (name, password)
    assert checked >= 3


# ------------------------------------------------------------------ every manifest is deployed
def _kustomized(root: Path, folder: Path, seen: set[Path]) -> set[Path]:
    """The files a kustomization loads as resources, following the folders it names (each with its own)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    out: set[Path] = set()
    for entry in kustomization.get("resources", []):
        target = (folder / entry).resolve()
        assert target.is_relative_to(root.resolve()), f"{folder}: {entry} lies outside the repository"
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), f"{folder}: {entry} has no kustomization.yaml"
            if target not in seen:
                seen.add(target)
                out |= _kustomized(root, target, seen)
        else:
            assert target.is_file(), f"{folder}: {entry} does not exist"
            out.add(target)
    return out


def _manifests(root: Path) -> set[Path]:
    """Every Kubernetes object file under deploy/ and pipelines/ (not kustomize's own, not compose or Prefect)."""
    out = set()
    for path in [*(root / "deploy").rglob("*.yaml"), *(root / "pipelines").rglob("*.yaml")]:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        if any("apiVersion" in d and d.get("kind") != "Kustomization" for d in docs):
            out.add(path.resolve())
    return out


@pytest.mark.parametrize("orchestrator", ["none", "kubernetes", "cron", "airflow"])
def test_every_generated_manifest_is_reachable_from_the_kustomizations(tmp_path: Path, orchestrator: str) -> None:
    """On Kubernetes, every manifest the whole generation writes under deploy/ and pipelines/ (a Deployment, a
    training CronJob of the pipelines, the batch train -> score CronJob) is loaded by the base kustomization or an
    overlay; kubectl kustomize builds each overlay where installed. An online system scheduled by CronJobs once
    left pipelines/k8s/ out of its base."""
    from generator.plan.plan import build_plan
    from generator.render.render import render_plan

    kubectl = shutil.which("kubectl")
    cronjobs = 0
    for name in PRESETS:
        arch = decide(parse_spec(_variant(name, {"orchestrator": orchestrator, "platform": "kubernetes"}), "s.yaml"))
        root = tmp_path / name
        for path, data in render_plan(build_plan(arch), arch).items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
        manifests = _manifests(root)
        if not manifests:
            continue
        base = root / "deploy" / "k8s" / "base"
        tops = [base, *sorted(p for p in (root / "deploy" / "k8s" / "overlays").glob("*") if p.is_dir())]
        reached: set[Path] = set()
        for top in tops:
            reached |= _kustomized(root, top, set())
        missing = sorted(str(p.relative_to(root.resolve())) for p in manifests - reached)
        assert not missing, f"{name} ({orchestrator}, scheduler {arch.training.scheduler}): not deployed {missing}"
        cronjobs += sum(1 for p in manifests if "CronJob" in p.read_text())
        if kubectl and (root / "pipelines" / "k8s").is_dir():
            built = subprocess.run([kubectl, "kustomize", str(base)], capture_output=True, text=True, timeout=120)
            assert built.returncode == 0, built.stderr
            kinds = [d["kind"] for d in yaml.safe_load_all(built.stdout) if d]
            assert kinds.count("CronJob") == sum(
                1 for p in (root / "pipelines" / "k8s").glob("*.yaml") if "kind: CronJob" in p.read_text()
            ), (name, kinds)
    assert cronjobs or orchestrator == "airflow"
