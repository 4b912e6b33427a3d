"""`archgen check DIR`: passes on every fresh generation, fails naming the file and the problem once a
config is broken, and lists the team's edits without failing on them.

Repositories come from the real `archgen new`; the checks run real Feast (RepoConfig), Triton's
ModelConfig protobuf, kubernetes-validate, croniter and, where installed, kustomize and docker compose.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator.checks.checks import Report, check_repository, cron_problem, expand_placeholders
from generator.decide import decide
from requirements_spec.validate import load_spec

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted(p.stem for p in (ROOT / "requirements_spec" / "presets").glob("*.yaml"))
ARCHGEN = [sys.executable, "-m", "generator.cli"]

pytestmark = pytest.mark.slow


def _new(preset: str, out: Path) -> Path:
    spec = ROOT / "requirements_spec" / "presets" / f"{preset}.yaml"
    run = subprocess.run([*ARCHGEN, "new", str(spec), "-o", str(out)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return out


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("check")
    return {p: _new(p, base / p) for p in PRESETS}


def _copy(repo: Path, tmp_path: Path) -> Path:
    target = tmp_path / repo.name
    shutil.copytree(repo, target)
    return target


def _problems(report: Report) -> list[str]:
    return [str(p) for p in report.problems]


@pytest.mark.parametrize("preset", PRESETS)
def test_check_passes_on_every_fresh_generation(repos: dict[str, Path], preset: str) -> None:
    report = check_repository(repos[preset])
    assert report.ok, "\n".join(_problems(report))
    assert not report.changed and not report.deleted and not report.added
    assert report.checked.get("manifest") == 1
    arch = decide(load_spec(ROOT / "requirements_spec" / "presets" / f"{preset}.yaml"))
    if not arch.triton_serves:  # the model runs in process (REST app, library, batch scoring): no Triton configs
        assert "Triton configs" not in report.checked and not (repos[preset] / "model_repository").exists()
    else:
        assert report.checked.get("Triton configs", 0) >= 1


def test_cli_exit_codes_and_output(repos: dict[str, Path], tmp_path: Path) -> None:
    ok = subprocess.run([*ARCHGEN, "check", str(repos["reference"])], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.rstrip().endswith("OK")
    repo = _copy(repos["reference"], tmp_path)
    config = repo / "model_repository" / "ranker" / "config.pbtxt"
    config.write_text(config.read_text().replace("max_batch_size", "max_batch_sise", 1))
    bad = subprocess.run([*ARCHGEN, "check", str(repo)], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "model_repository/ranker/config.pbtxt" in bad.stdout and "max_batch_sise" in bad.stdout
    assert "changed since generation" in bad.stdout
    missing = subprocess.run([*ARCHGEN, "check", str(tmp_path / "nope")], capture_output=True, text=True, check=False)
    assert missing.returncode == 66


def test_triton_config_typo_fails(repos: dict[str, Path], tmp_path: Path) -> None:
    repo = _copy(repos["reference"], tmp_path)
    config = repo / "model_repository" / "ranker" / "config.pbtxt"
    config.write_text(config.read_text().replace("TYPE_FP32", "TYPE_FLOAT32", 1))
    report = check_repository(repo)
    assert any("model_repository/ranker/config.pbtxt" in p and "TYPE_FLOAT32" in p for p in _problems(report))
    assert report.changed == ["model_repository/ranker/config.pbtxt"]


def test_kubernetes_manifest_key_typo_fails(repos: dict[str, Path], tmp_path: Path) -> None:
    repo = _copy(repos["realtime"], tmp_path)
    manifest = repo / "deploy" / "k8s" / "base" / "triton-deployment.yaml"
    manifest.write_text(manifest.read_text().replace("readinessProbe:", "readinesProbe:", 1))
    problems = _problems(check_repository(repo))
    assert any(p.startswith("deploy/k8s/base/triton-deployment.yaml:") and "readinesProbe" in p for p in problems)


def test_feature_store_yaml_unknown_key_fails(repos: dict[str, Path], tmp_path: Path) -> None:
    repo = _copy(repos["reference"], tmp_path)
    fs = repo / "feature_repo" / "feature_store.yaml"
    fs.write_text(fs.read_text().replace("  type: sqlite\n", "  type: sqlite\n  pth: data/x.db\n", 1))
    problems = _problems(check_repository(repo))
    assert any(p.startswith("feature_repo/feature_store.yaml:") and "pth" in p for p in problems), problems


def test_scheduler_and_compose_breakage_fails(repos: dict[str, Path], tmp_path: Path) -> None:
    repo = _copy(repos["reference"], tmp_path)
    crontab = repo / "pipelines" / "crontab"
    lines = crontab.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line and not line.startswith("#") and "=" not in line.split()[0])
    lines[index] = "0 " + lines[index]  # a 6-field (seconds) cron: invalid for crontab
    crontab.write_text("\n".join(lines) + "\n")
    compose = repo / "deploy" / "docker-compose.yaml"
    compose.write_text(compose.read_text().replace("    restart: unless-stopped\n", "    restat: unless-stopped\n", 1))
    problems = _problems(check_repository(repo))
    assert any(p.startswith(f"pipelines/crontab:{index + 1}:") and "crontab takes exactly 5" in p for p in problems), (
        problems
    )
    assert any(p.startswith("deploy/docker-compose.yaml:") and "restat" in p for p in problems), problems


def test_a_plain_text_credential_fails_at_its_line_with_the_fix(repos: dict[str, Path], tmp_path: Path) -> None:
    """The command itself (tests/test_check_secrets.py has one test per kind of violation)."""
    repo = _copy(repos["realtime"], tmp_path)
    compose = repo / "deploy" / "docker-compose.yaml"
    old = "REDIS_PASSWORD: ${REDIS_PASSWORD:?set REDIS_PASSWORD in the env file}"
    text = compose.read_text()
    line = text[: text.index(old)].count("\n") + 1
    compose.write_text(text.replace(old, "REDIS_PASSWORD: Tr0ub4dor-3", 1))
    run = subprocess.run(
        [*ARCHGEN, "check", str(repo), "--format", "json"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 1 and "Tr0ub4dor-3" not in run.stdout, run.stdout + run.stderr
    shown = [d for d in json.loads(run.stdout)["diagnostics"] if d["code"] == "check.secrets"]
    assert [(d["location"]["file"], d["location"]["line"]) for d in shown] == [("deploy/docker-compose.yaml", line)]
    assert "REDIS_PASSWORD" in shown[0]["message"] and "${REDIS_PASSWORD}" in shown[0]["hint"]


def test_team_edits_are_information_not_failures(repos: dict[str, Path], tmp_path: Path) -> None:
    repo = _copy(repos["reference"], tmp_path)
    (repo / "README.md").write_text((repo / "README.md").read_text() + "\nOur notes.\n")
    (repo / "notes.md").write_text("ours\n")
    (repo / "deploy" / "README.md").unlink()
    report = check_repository(repo)
    assert report.ok, _problems(report)
    assert report.changed == ["README.md"]
    assert report.deleted == ["deploy/README.md"]
    assert report.added == ["notes.md"]


def test_missing_manifest_is_a_problem(repos: dict[str, Path], tmp_path: Path) -> None:
    repo = _copy(repos["reference"], tmp_path)
    (repo / ".archgen" / "manifest.json").unlink()
    assert any(p.startswith(".archgen/manifest.json:") for p in _problems(check_repository(repo)))


def test_cron_rules() -> None:
    assert cron_problem("*/15 * * * *") is None
    assert cron_problem("@daily") is None
    assert "5 fields" in (cron_problem("0 0 * * * *") or "")
    assert cron_problem("0 0 * * MON#2") is not None
    assert "never fires" in (cron_problem("0 0 31 2 *") or "")
    assert cron_problem("61 * * * *") is not None


def test_placeholders_expand_like_feast() -> None:
    assert expand_placeholders('port: ${POSTGRES_PORT}\nhost: "${POSTGRES_HOST}"') == 'port: 1\nhost: "placeholder"'
