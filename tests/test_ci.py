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

from generator.components import deploy
from generator.generate import generate_text
from requirements_spec.presets import names, text

ACTIONLINT = Path(sys.executable).parent / "actionlint"
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


def make_calls(script: str) -> list[list[str]]:
    """Every `make ...` command of a step's script, as its arguments."""
    calls = []
    for line in script.splitlines():
        for part in re.split(r"&&|\|\||;", line):
            words = shlex.split(part.strip(), comments=True) if part.strip() else []
            if words and words[0] == "make":
                calls.append(words[1:])
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
                assert services["postgres"]["image"] == deploy.POSTGRES_IMAGE
                assert services["postgres"]["ports"] == ["5432:5432"]
    assert_targets_exist(repo, calls)


@pytest.mark.parametrize("preset", ["batch_warehouse", "realtime"])
def test_gitlab_ci_is_chosen_in_the_spec_and_calls_existing_targets_with_its_services(
    tmp_path: Path, preset: str
) -> None:
    repo, arch = generated(tmp_path, level2(preset, "gitlab"))
    assert not (repo / ".github").exists()
    doc = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    assert doc["stages"] == ["test", "train"]
    jobs = {k: v for k, v in doc.items() if isinstance(v, dict) and "script" in v}
    assert set(jobs) == {"test", "train"}
    for name, job in jobs.items():
        assert job["stage"] in doc["stages"], name
    services = {s["alias"]: s["name"] for s in doc["default"].get("services", [])}
    assert ("postgres" in services) == deploy.uses_postgres(arch)
    assert ("redis" in services) == deploy.uses_redis(arch)
    if "postgres" in services:
        assert doc["variables"]["POSTGRES_HOST"] == "postgres"
    assert_targets_exist(repo, [c for job in jobs.values() for line in job["script"] for c in make_calls(line)])


def test_the_spec_refuses_an_unknown_ci(tmp_path: Path) -> None:
    from requirements_spec.errors import SpecError

    with pytest.raises(SpecError, match=r"existing\.ci"):
        generate_text(level2("realtime", "jenkins"), "spec.yaml")


def test_make_calls_reads_chained_commands() -> None:
    assert make_calls("make setup VENV=.venv && make data apply # features") == [
        ["setup", "VENV=.venv"],
        ["data", "apply"],
    ]
    assert shutil.which("make") is not None
