"""The CI of the level-2 pipeline: GitHub Actions (default) or GitLab CI (`existing.ci: gitlab`).

Every preset raised to MLOps level 2 is generated; each GitHub workflow passes actionlint; every
`make` a workflow step calls names targets of the generated Makefile (`make -n` accepts them with
the step's variables); jobs that run the feature steps get the services the feature store uses
(PostgreSQL for a PostgreSQL offline store or SQL registry, Redis for a Redis online store).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.generate import generate_text
from generator.plan import deploy
from requirements_spec.presets import names, text

ACTIONLINT = Path(sys.executable).parent / "actionlint"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
FEATURE_STEPS = ("apply", "materialize")


def level2(preset: str, ci: str = "github") -> str:
    spec = text(preset)
    spec = re.sub(r"(?m)^  mlops_level: [01]\b", "  mlops_level: 2", spec)
    if "mlops_level: 2" not in spec:
        spec = spec.rstrip("\n") + "\n\ndelivery:\n  mlops_level: 2\n" if "\ndelivery:" not in spec else spec
    if ci != "github":
        spec = re.sub(r"(?m)^existing:\n", f"existing:\n  ci: {ci}\n", spec, count=1)
        if f"ci: {ci}" not in spec:
            spec += f"\nexisting:\n  ci: {ci}\n"
    return spec


def generated(tmp_path: Path, spec: str) -> tuple[Path, Any]:
    gen = generate_text(spec, "spec.yaml")
    assert gen.arch.mlops_level == 2
    for rel, data in gen.files.items():
        dest = tmp_path / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    return tmp_path, gen.arch


MAKE = re.compile(r"(?:^|[;&|(]\s*|\$\()\s*make\s+([^;&|)\n#]*)", re.MULTILINE)


def make_calls(script: str) -> list[list[str]]:
    """Every `make ...` command of a step's script (also inside `$(...)`), as its arguments."""
    calls = []
    for m in MAKE.finditer(script):
        words = shlex.split(m.group(1))
        calls.append([w for w in words if not w.startswith("$")])  # drop optional ${X:+X=...}
    return calls


def assert_targets_exist(repo: Path, calls: list[list[str]]) -> None:
    assert calls, "no make target called"
    for args in calls:
        dry = subprocess.run(["make", "-n", *args], cwd=repo, capture_output=True, text=True, timeout=60, check=False)
        assert dry.returncode == 0, f"make {' '.join(args)}: {dry.stderr}"
        assert "No rule to make target" not in dry.stderr


@pytest.mark.parametrize("preset", names())
def test_github_workflow_passes_actionlint_and_calls_existing_targets_with_its_services(
    tmp_path: Path, preset: str
) -> None:
    repo, arch = generated(tmp_path, level2(preset))
    workflow = repo / ".github" / "workflows" / "ml-pipeline.yml"
    assert workflow.is_file() and not (repo / ".gitlab-ci.yml").exists()
    if not ACTIONLINT.exists():
        pytest.skip("actionlint is not installed in the test environment (pip install -e .[dev])")
    linted = subprocess.run(
        [str(ACTIONLINT), "-no-color", str(workflow)], capture_output=True, text=True, timeout=120, check=False
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr

    doc = yaml.safe_load(workflow.read_text())
    calls = []
    for name, job in doc["jobs"].items():
        job_calls = [c for step in job["steps"] if "run" in step for c in make_calls(step["run"])]
        calls += job_calls
        if any(t in c for c in job_calls for t in FEATURE_STEPS):
            services = job.get("services", {})
            assert ("postgres" in services) == deploy.uses_postgres(arch), name
            assert ("redis" in services) == deploy.uses_redis(arch), name
            if "postgres" in services:
                assert services["postgres"]["image"] == deploy.site_image(arch, deploy.POSTGRES_IMAGE)
                assert services["postgres"]["ports"] == ["5432:5432"]
    assert_targets_exist(repo, calls)


@pytest.mark.parametrize("preset", ["batch_warehouse", "realtime"])
def test_gitlab_ci_is_chosen_in_the_spec_and_calls_existing_targets_with_its_services(
    tmp_path: Path, preset: str
) -> None:
    repo, arch = generated(tmp_path, level2(preset, "gitlab"))
    assert not (repo / ".github").exists()
    if CHECK_JSONSCHEMA.exists():  # GitLab CI's own schema, as check-jsonschema vendors it
        checked = subprocess.run(
            [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.gitlab-ci", str(repo / ".gitlab-ci.yml")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    doc = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    jobs = {k: v for k, v in doc.items() if isinstance(v, dict) and "script" in v and not k.startswith(".")}
    cd = (repo / "deploy" / "release.mk").is_file()
    assert cd == (arch.deployment.target == "kubernetes")
    if cd:  # build and push, staging with its fitness tests, then prod after a person starts it
        assert doc["stages"] == ["test", "train", "release", "staging", "production"]
        assert set(jobs) == {"test", "train", "release", "deploy-staging", "promote"}
        assert doc["release"]["artifacts"]["reports"]["dotenv"] == "release.env"
        assert doc["deploy-staging"]["environment"]["name"] == "staging"
        assert "make fitness-staging" in doc["deploy-staging"]["script"]
        promote = doc["promote"]
        assert promote["environment"]["name"] == "production" and promote["needs"] == ["release", "deploy-staging"]
        assert promote["rules"][0]["when"] == "manual" and promote["rules"][0]["allow_failure"] is False
    else:
        assert doc["stages"] == ["test", "train"]
        assert set(jobs) == {"test", "train"}
    for name, job in jobs.items():
        assert job["stage"] in doc["stages"], name
    services = {s["alias"]: s["name"] for s in doc["default"].get("services", [])}
    assert ("postgres" in services) == deploy.uses_postgres(arch)
    assert ("redis" in services) == deploy.uses_redis(arch)
    if "postgres" in services:
        assert doc["variables"]["POSTGRES_HOST"] == "postgres"
    scripts = [job["script"] for job in jobs.values()]
    lines = [str(x) for script in scripts for line in script for x in (line if isinstance(line, list) else [line])]
    assert_targets_exist(repo, [c for line in lines for c in make_calls(line)])


def test_the_spec_refuses_an_unknown_ci(tmp_path: Path) -> None:
    from requirements_spec.errors import SpecError

    with pytest.raises(SpecError, match=r"existing\.ci"):
        generate_text(level2("realtime", "jenkins"), "spec.yaml")


def test_make_calls_reads_chained_commands() -> None:
    assert make_calls("make setup VENV=.venv && make data apply # features") == [
        ["setup", "VENV=.venv"],
        ["data", "apply"],
    ]
    assert make_calls('r="$(make -s registry ${R:+R="$R"})"\necho "v=$(make -s model-version)"') == [
        ["-s", "registry"],
        ["-s", "model-version"],
    ]
    assert shutil.which("make") is not None


def test_level2_on_kubernetes_builds_deploys_to_staging_tests_it_and_promotes_behind_an_approval(
    tmp_path: Path,
) -> None:
    repo, arch = generated(tmp_path, level2("realtime"))
    assert arch.deployment.target == "kubernetes"
    jobs = yaml.safe_load((repo / ".github" / "workflows" / "ml-pipeline.yml").read_text())["jobs"]
    runs = {name: "\n".join(s.get("run", "") for s in job["steps"]) for name, job in jobs.items()}
    assert jobs["release"]["needs"] == "train" and "make images push" in runs["release"]
    assert "make -s model-version" in runs["release"]
    assert jobs["deploy-staging"]["environment"] == "staging"
    assert "make deploy-staging" in runs["deploy-staging"] and "make fitness-staging" in runs["deploy-staging"]
    promote = jobs["promote"]
    assert promote["environment"] == "production" and set(promote["needs"]) == {"release", "deploy-staging"}
    assert "needs.release.outputs.model-version" in str(promote) and "make promote" in runs["promote"]

    # the local ones run here: the gated model version, and the release overlays over the generated ones
    version = subprocess.run(["make", "-s", "model-version"], cwd=repo, capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"{arch.serving.entrypoint}:1"
    for env in ("staging", "prod"):
        subprocess.run(
            [
                "make",
                "-s",
                f".release/{env}/kustomization.yaml",
                "IMAGE_TAG=abc123",
                "REGISTRY=reg.acme.io/fraud",
                f"MODEL_VERSION={version.stdout.strip()}",
            ],
            cwd=repo,
            check=True,
            timeout=60,
        )
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            continue
        built = subprocess.run(
            [kubectl, "kustomize", f".release/{env}"], cwd=repo, capture_output=True, text=True, timeout=120, check=True
        )
        docs = [d for d in yaml.safe_load_all(built.stdout) if d]
        images = {
            c["image"]
            for d in docs
            if d["kind"] == "Deployment"
            for c in d["spec"]["template"]["spec"]["containers"]
            if "card-fraud" in c["image"]
        }
        assert images == {"reg.acme.io/fraud/card-fraud-triton:abc123", "reg.acme.io/fraud/card-fraud-app:abc123"}
        assert {d["metadata"]["namespace"] for d in docs if d["kind"] == "Deployment"} == {f"card-fraud-{env}"}
        assert all(d["metadata"]["annotations"]["card-fraud/model-version"] == version.stdout.strip() for d in docs)
    # a level-2 system on docker compose keeps CI without CD: no release targets it could not run
    repo2, _ = generated(tmp_path / "compose", level2("batch_warehouse"))
    assert "release" not in yaml.safe_load((repo2 / ".github" / "workflows" / "ml-pipeline.yml").read_text())["jobs"]
    assert not (repo2 / "deploy" / "release.mk").exists()
