"""`archgen check` runs kustomize and docker compose on a repository nobody vouches for (a pull request in CI).

Both run through :func:`generator.tools.run_tool` (no shell, a timeout, bounded output, every process
reaped) with an environment of their own (no CI secret of archgen's can reach an error message), and only
when nothing they would load leads outside the repository: a kustomize base outside it, a remote base, a
base symlinked out, a compose env_file, include or extends outside it are problems, and the tool is not
run. The real kustomize (``kubectl kustomize``) builds where it is installed; the tool that hangs, floods
or records its environment is a program planted first on PATH, as a broken or hostile install would be.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.checks import checks
from generator.cli import app
from generator.errors import FINDINGS

pytestmark = pytest.mark.slow  # generates a Kubernetes repository and runs the real checks

ROOT = Path(__file__).resolve().parent.parent
REALTIME = ROOT / "requirements_spec" / "presets" / "realtime.yaml"
SECRET = "TOP-SECRET-5e1d07"
OVERLAY = "deploy/k8s/overlays/dev/kustomization.yaml"
COMPOSE = "deploy/docker-compose.yaml"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, new_repository: Callable[[Path, Path], Path]) -> Path:
    """The realtime preset's repository (Kubernetes): `repo` (tests/conftest.py) copies it for each test."""
    return new_repository(tmp_path_factory.mktemp("k8s"), REALTIME)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the repository that kustomize would happily build: a secret in a ConfigMap."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "cm.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: stolen}}\ndata: {{k: {SECRET}}}\n")
    (d / "kustomization.yaml").write_text("resources:\n- cm.yaml\n")
    (d / "secret.env").write_text(f"PASSWORD={SECRET}\n")
    return d


def _plant(tmp_path: Path, name: str, script: str) -> Path:
    """A program `name` first on PATH (for this test only); it appends its pid to `pids` and its env to `env`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f'#!/bin/sh\necho $$ >> "{tmp_path}/pids"\nenv >> "{tmp_path}/env"\n{script}\n')
    tool.chmod(0o755)
    return bin_dir


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()


def _problems(report: checks.Report) -> list[str]:
    return [str(p) for p in report.problems]


def _add_resource(repo: Path, entry: str) -> None:
    path = repo / OVERLAY
    path.write_text(path.read_text().replace("  - ../../base\n", f"  - ../../base\n  - {entry}\n", 1))


# ------------------------------------------------------------------ kustomize: nothing outside is built
@pytest.mark.parametrize("where", ["relative", "absolute", "remote", "symlinked-base"])
def test_kustomize_never_builds_what_lies_outside_the_repository(repo: Path, outside: Path, where: str) -> None:
    if where == "relative":
        _add_resource(repo, os.path.relpath(outside, (repo / OVERLAY).parent))
    elif where == "absolute":
        _add_resource(repo, str(outside))
    elif where == "remote":  # kustomize would `git fetch` it
        _add_resource(repo, "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0")
    else:
        shutil.rmtree(repo / "deploy/k8s/base")
        (repo / "deploy/k8s/base").symlink_to(outside, target_is_directory=True)
    report = checks.Report()
    checks.check_kubernetes(repo, report)
    problems = _problems(report)
    assert any(p.startswith(OVERLAY) and "not built" in p for p in problems), problems
    assert not any(SECRET in p or "stolen" in p for p in problems), problems


@pytest.mark.skipif(not (shutil.which("kustomize") or shutil.which("kubectl")), reason="no kustomize here")
def test_the_generated_overlays_build_with_the_real_kustomize(repo: Path) -> None:
    report = checks.Report()
    checks.check_kubernetes(repo, report)
    assert report.problems == [] and report.checked["kustomize builds"] == 4, report


def test_a_hanging_kustomize_is_killed_with_its_children_and_reported(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = _plant(tmp_path, "kustomize", f'sleep 300 &\necho $! >> "{tmp_path}/pids"\nexec sleep 300')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ARCHGEN_TOOL_TIMEOUT", "1")
    monkeypatch.setenv("CI_DEPLOY_TOKEN", SECRET)
    started = time.monotonic()
    report = checks.Report()
    checks.check_kubernetes(repo, report)
    assert time.monotonic() - started < 60
    assert sum("kustomize build did not finish in time" in s for s in report.skipped) == 4, report.skipped
    pids = [int(x) for x in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 8 and not any(_alive(pid) for pid in pids)
    assert SECRET not in (tmp_path / "env").read_text()  # archgen's environment stays with archgen


def test_a_kustomize_that_floods_its_output_is_stopped(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = _plant(tmp_path, "kustomize", "exec yes 'kind: ConfigMap'")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(checks, "TOOL_OUTPUT_MAX", 1024 * 1024)
    report = checks.Report()
    checks.check_kubernetes(repo, report)
    assert sum("printed more than the output limit" in s for s in report.skipped) == 4, report.skipped


# ------------------------------------------------------------------ docker compose
@pytest.mark.parametrize(
    "edit",
    [
        lambda text, out: text.replace("services:\n", f"include:\n  - {out}/compose.yaml\nservices:\n", 1),
        lambda text, out: text.replace("    restart: unless-stopped\n", f"    env_file: {out}/secret.env\n", 1),
        lambda text, out: text.replace("    restart: unless-stopped\n", "    env_file: ../../outside/secret.env\n", 1),
        lambda text, out: text.replace(
            "    restart: unless-stopped\n", f"    extends: {{file: {out}/compose.yaml, service: x}}\n", 1
        ),
    ],
    ids=["include", "env_file-absolute", "env_file-relative", "extends"],
)
def test_compose_is_not_run_on_files_outside_the_repository(
    repo: Path, outside: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: object
) -> None:
    bin_dir = _plant(tmp_path, "docker", "exit 0")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    compose = repo / COMPOSE
    before = compose.read_text()
    compose.write_text(edit(before, outside))  # type: ignore[operator]
    assert compose.read_text() != before
    report = checks.Report()
    checks.check_compose(repo, report)
    problems = _problems(report)
    assert any(p.startswith(f"{COMPOSE}: `docker compose config` not run") for p in problems), problems
    assert not (tmp_path / "pids").exists()  # no compose ran, not even to say its version
    assert SECRET not in "\n".join(problems)


def test_compose_runs_with_a_timeout_and_an_environment_of_its_own(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `docker compose version` answers; `docker compose ... config` hangs with a child of its own
    script = f'case "$*" in *config*) sleep 300 & echo $! >> "{tmp_path}/pids"; exec sleep 300;; esac\nexit 0'
    bin_dir = _plant(tmp_path, "docker", script)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ARCHGEN_TOOL_TIMEOUT", "1")
    monkeypatch.setenv("CI_DEPLOY_TOKEN", SECRET)
    report = checks.Report()
    checks.check_compose(repo, report)
    assert any("`docker compose config` did not finish in time" in s for s in report.skipped), report.skipped
    pids = [int(x) for x in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 3 and not any(_alive(pid) for pid in pids)
    assert SECRET not in (tmp_path / "env").read_text()


def test_the_cli_names_the_refused_base_and_prints_nothing_of_it(repo: Path, outside: Path) -> None:
    _add_resource(repo, os.path.relpath(outside, (repo / OVERLAY).parent))
    result = CliRunner().invoke(app, ["check", str(repo)])
    assert result.exit_code == FINDINGS, result.output
    assert f"{OVERLAY}: not built:" in result.output and "leads outside the repository" in result.output
    assert SECRET not in result.output and "stolen" not in result.output


def test_a_relative_repository_path_reaches_the_tools_as_absolute_paths(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`archgen check .` in CI: the tools run in an empty folder of their own, so every path they get is absolute."""
    bin_dir = _plant(tmp_path, "docker", f'echo "$@" >> "{tmp_path}/args"\nexit 0')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (repo / "deploy/env/dev.env.example").rename(repo / "deploy/env/dev.env")
    monkeypatch.chdir(repo.parent)
    report = checks.Report()
    checks.check_compose(Path(repo.name), report)
    assert report.problems == [] and report.skipped == [], report
    config = next(line for line in (tmp_path / "args").read_text().splitlines() if line.endswith("config -q"))
    paths = [word for word in config.split() if "/" in word]
    assert len(paths) == 3 and all(Path(p).is_absolute() and Path(p).exists() for p in paths), config
    if shutil.which("kustomize") or shutil.which("kubectl"):
        report = checks.Report()
        checks.check_kubernetes(Path(repo.name), report)
        assert report.problems == [] and report.checked["kustomize builds"] == 4, report
