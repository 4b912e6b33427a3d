"""Two checkouts of one system share its SQL registry, and each has its own SQLite online store.

MLOps level 2 puts the registry in PostgreSQL (many writers), while one machine keeps the online store in a file
of the checkout. A second checkout (a teammate's clone, a regenerated repository, ``data/`` removed) finds the
registry saying every online table exists and where the last materialization ended: ``feast apply`` changes no
infrastructure, and an incremental run would start where the other checkout's store ended. The generated
``scripts/materialize.py`` creates the tables this store lacks and loads those views from one ttl back, so the
second checkout reads the same online values as the first.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from triton_harness import PRESETS, generate, make_argv, scratch_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

READ = """
import json, sys
from feast import FeatureStore
store = FeatureStore(repo_path="feature_repo")
rows = [{"driver_id": d} for d in (1001, 1002, 1003)]
service = store.get_feature_service("ranking_v1")
print(json.dumps(store.get_online_features(features=service, entity_rows=rows).to_dict()))
"""


def _run(repo: Path, env: dict[str, str], *argv: str) -> str:
    result = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{argv}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_a_second_checkout_loads_its_own_online_store(tmp_path: Path) -> None:
    import os

    data = yaml.safe_load((PRESETS / "reference.yaml").read_text())
    data["delivery"]["mlops_level"] = 2  # the registry moves to PostgreSQL; the online store stays SQLite
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    checkouts = [tmp_path / "first", tmp_path / "second"]
    for repo in checkouts:
        arch = generate(spec, repo)
    fs = arch.feature_store
    assert fs is not None and (fs.registry, fs.online_store) == ("sql", "sqlite")
    assert "load_what_this_store_lacks" in (checkouts[0] / "scripts" / "materialize.py").read_text()
    with scratch_database("archgen_checkouts") as (db, user):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["FEAST_REGISTRY_URL"] = f"postgresql+psycopg://{user}:@127.0.0.1:5432/{db}"
        answers = []
        for repo in checkouts:
            _run(repo, env, *make_argv("data", "apply", "materialize"))
            python = make_argv()[-2].removeprefix("VENV=") + "/bin/python"
            answers.append(json.loads(_run(repo, env, python, "-c", READ)))
        first, second = answers
        assert all(v is not None for v in first["trips_today"]), first
        assert second == first  # the second checkout's own store holds what the first one's does
