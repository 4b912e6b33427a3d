"""`archgen check` catches a credential written in plain text and a Secret or variable nobody declares.

Real generated repositories (Kubernetes manifests and overlays, docker compose, feature_store.yaml, env
templates) are edited the way a hurried team might: each violation is reported as check.secrets at its
file and line with a fix, never echoing the value; fresh generations have none.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.checks.secrets import check_secrets
from generator.errors import Diagnostic
from generator.generate import generate_loaded
from requirements_spec import parse_spec

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "requirements_spec" / "presets"
SECRET = "Tr0ub4dor-3"  # what a team pasted; never shown back
pytestmark = pytest.mark.unit


def _spec(name: str, **changes: Any) -> str:
    data = yaml.safe_load((PRESETS / f"{name}.yaml").read_text())
    for path, value in changes.items():
        area, _, key = path.partition("__")
        data.setdefault(area, {})[key] = value
    return yaml.safe_dump(data, sort_keys=False)


def _write(spec_text: str, out: Path) -> Path:
    for rel, data in generate_loaded(parse_spec(spec_text, "spec.yaml")).files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("secrets")
    return {
        # Kubernetes + compose, Redis and PostgreSQL with passwords, the Triton admin key, a hashing salt
        "realtime": _write((PRESETS / "realtime.yaml").read_text(), base / "realtime"),
        # the encryption key: a Secret of its own, which the materialize CronJob reads
        "encrypt": _write(
            _spec(
                "reference",
                existing__orchestrator="cron",
                existing__platform="kubernetes",
                privacy__pii_handling="encrypt",
            ),
            base / "encrypt",
        ),
    }


@pytest.fixture
def repo(generated: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(generated["realtime"], tmp_path / "repo"))


def _edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` once; the 1-based line where it started."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))
    return text[: text.index(old)].count("\n") + 1


def _one(repo: Path) -> Diagnostic:
    found = check_secrets(repo)
    assert len(found) == 1, [str(d) for d in found]
    d = found[0]
    assert d.code == "check.secrets" and d.severity == "error" and d.hint
    assert SECRET not in d.message + d.hint  # names the place, never the value
    return d


@pytest.mark.parametrize("name", ["realtime", "encrypt"])
def test_fresh_generations_hold_no_credential_and_declare_every_secret(generated: dict[str, Path], name: str) -> None:
    assert check_secrets(generated[name]) == []


def test_a_literal_credential_in_a_manifest(repo: Path) -> None:
    manifest = repo / "deploy/k8s/base/triton-deployment.yaml"
    line = _edit(
        manifest,
        "              valueFrom:\n                secretKeyRef:\n                  name: card-fraud-secrets\n"
        "                  key: TRITON_ADMIN_KEY\n",
        f'              value: "{SECRET}"\n',
    )
    d = _one(repo)
    assert (d.file, d.line) == ("deploy/k8s/base/triton-deployment.yaml", line)
    assert "TRITON_ADMIN_KEY" in d.message and "secretKeyRef" in (d.hint or "")


def test_a_literal_credential_in_the_compose_file(repo: Path) -> None:
    line = _edit(
        repo / "deploy/docker-compose.yaml",
        "REDIS_PASSWORD: ${REDIS_PASSWORD:?set REDIS_PASSWORD in the env file}",
        f"REDIS_PASSWORD: {SECRET}",
    )
    d = _one(repo)
    assert (d.file, d.line) == ("deploy/docker-compose.yaml", line)
    assert "REDIS_PASSWORD" in d.message and "${REDIS_PASSWORD}" in (d.hint or "")


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ('password: "${POSTGRES_PASSWORD}"', f'password: "{SECRET}"', "password: a credential"),
        ("://${POSTGRES_USER}:${POSTGRES_PASSWORD}@", f"://feast:{SECRET}@", "password written into a URL"),
    ],
)
def test_a_literal_credential_in_feature_store_yaml(repo: Path, old: str, new: str, said: str) -> None:
    line = _edit(repo / "feature_repo/feature_store.yaml", old, new)
    d = _one(repo)
    assert (d.file, d.line) == ("feature_repo/feature_store.yaml", line) and said in d.message


def test_a_real_value_in_a_committed_env_template(repo: Path) -> None:
    line = _edit(
        repo / "deploy/env/prod.env.example", "POSTGRES_PASSWORD=change-me-postgres-prod", f"POSTGRES_PASSWORD={SECRET}"
    )
    d = _one(repo)
    assert (d.file, d.line) == ("deploy/env/prod.env.example", line)
    assert "deploy/env/prod.env," in (d.hint or "")  # where the value belongs


def test_an_env_file_git_would_commit(repo: Path) -> None:
    # the real file where the .gitignore expects it is the place for the value: no finding
    (repo / "deploy/env/prod.env").write_text(f"POSTGRES_PASSWORD={SECRET}\n")
    assert check_secrets(repo) == []
    (repo / "deploy/prod.env").write_text(f"# prod\nREDIS_HOST=redis\nREDIS_PASSWORD={SECRET}\n")
    d = _one(repo)
    assert (d.file, d.line) == ("deploy/prod.env", 3) and "git would commit" in d.message


def test_a_committed_secret_manifest(repo: Path) -> None:
    (repo / "deploy/k8s/base/secrets.yaml").write_text(
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: card-fraud-extra\nstringData:\n  API_TOKEN: {SECRET}\n"
    )
    d = _one(repo)
    assert (d.file, d.line) == ("deploy/k8s/base/secrets.yaml", 6) and "committed with its value" in d.message


def test_a_workload_reads_a_secret_key_nobody_declares(repo: Path) -> None:
    line = _edit(repo / "deploy/k8s/base/triton-deployment.yaml", "key: TRITON_ADMIN_KEY", "key: TRITON_ADMIN_TOKEN")
    d = _one(repo)
    assert (d.file, d.line) == ("deploy/k8s/base/triton-deployment.yaml", line - 1)  # the secretKeyRef
    assert "key TRITON_ADMIN_TOKEN of Secret card-fraud-secrets" in d.message
    for env in ("dev", "staging", "prod"):
        assert f"deploy/k8s/overlays/{env}/secrets.env.example" in d.message


def test_one_environment_lacks_a_key_its_workloads_read(repo: Path) -> None:
    _edit(repo / "deploy/k8s/overlays/prod/secrets.env.example", "REDIS_PASSWORD=change-me-redis-prod\n", "")
    found = check_secrets(repo)
    readers = {
        (path.relative_to(repo).as_posix(), n)
        for path in (repo / "deploy/k8s/base").glob("*.yaml")
        for n, text in enumerate(path.read_text().splitlines(), start=1)
        if text.strip() == "key: REDIS_PASSWORD"
    }
    assert len(readers) >= 2
    assert {(d.file, d.line + 1) for d in found} == readers, [str(d) for d in found]  # each secretKeyRef
    assert all("prod/secrets.env.example" in d.message and "staging" not in d.message for d in found)


def test_the_encryption_key_secret_is_declared_by_its_own_instruction(
    generated: dict[str, Path], tmp_path: Path
) -> None:
    repo = Path(shutil.copytree(generated["encrypt"], tmp_path / "repo"))
    template = repo / "deploy/k8s/overlays/staging/secrets.env.example"
    _edit(template, "--from-literal=PII_ENCRYPTION_KEY=", "--from-literal=PII_KEY=")
    d = _one(repo)
    assert d.file == "deploy/k8s/base/cronjob-materialize.yaml"
    assert "key PII_ENCRYPTION_KEY of Secret driver-ranking-pii-key" in d.message and "staging" in d.message


def test_a_compose_variable_an_environment_does_not_define(repo: Path) -> None:
    _edit(repo / "deploy/env/staging.env.example", "POSTGRES_PASSWORD=change-me-postgres-staging\n", "")
    compose = (repo / "deploy/docker-compose.yaml").read_text().splitlines()
    wanted = {n for n, text in enumerate(compose, start=1) if "${POSTGRES_PASSWORD" in text}
    found = check_secrets(repo)
    assert {(d.file, d.line) for d in found} == {("deploy/docker-compose.yaml", n) for n in wanted}
    assert all("${POSTGRES_PASSWORD}" in d.message and "staging.env.example" in d.message for d in found)
