"""Every architecture whose models Triton serves (online, batch scoring, async workers) gets what it
needs to run them: the Triton client in requirements.txt, the Triton runtime's own requirements and
the serve targets. The batch-scoring preset runs end to end against the real PostgreSQL and Triton,
scoring the sample entity rows that `make data` writes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from triton_harness import PRESETS, generate, have_triton, make_generated, scratch_database

from generator.generate import generate as generate_in_memory

PRESET_NAMES = sorted(p.stem for p in PRESETS.glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_triton_served_systems_get_the_client_and_the_runtime(preset: str) -> None:
    files = generate_in_memory(PRESETS / f"{preset}.yaml").files
    served = any(p.startswith("model_repository/") for p in files)
    requirements = files["requirements.txt"].decode()
    makefile = files["Makefile"].decode()
    assert ("tritonclient[" in requirements) is served, requirements
    assert ("requirements-triton.txt" in files) is served
    assert ("python -m serving.triton_runtime start" in makefile) is served
    if "serving/batch_score.py" in files or "serving/worker.py" in files:
        assert served, "batch scoring and the async worker call Triton through serving/client.py"
    batch = "serving/batch_score.py" in files
    assert ("\nscore:" in makefile) is batch
    sample = files.get("scripts/generate_sample_data.py", b"").decode()
    assert ("SCORE: dict[str, Any] = {" in sample) is batch  # sample rows for batch scoring


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.triton
def test_batch_scoring_preset_runs_its_demo(tmp_path: Path) -> None:
    if not have_triton() or shutil.which("make") is None:
        pytest.skip("needs make and the Triton virtualenv (make setup-triton)")
    with scratch_database("archgen_batch") as (db, user):
        repo = tmp_path / "churn"
        generate(PRESETS / "batch_warehouse.yaml", repo)
        env = {
            **os.environ,
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": "5432",
            "POSTGRES_DB": db,
            "POSTGRES_USER": user,
            "POSTGRES_SSLMODE": "disable",
        }
        result = make_generated(repo, "demo", env=env)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        assert "gate roc_auc >= 0.7: passed" in result.stdout
        answer = json.loads(next(line for line in result.stdout.splitlines() if line.startswith('{"model"')))
        (prediction,) = answer["predictions"]
        assert answer["model"] == "churn_model" and 0.0 <= prediction["churn_probability"][0] <= 1.0
        assert not (repo / ".run" / "triton.json").exists(), "make demo stops the server it started"
        # make demo ends with batch scoring: every sample entity row of make data gets its prediction
        import pandas as pd

        entities = pd.read_parquet(repo / "feature_repo" / "data" / "score_entities.parquet")
        scored = pd.read_parquet(repo / "feature_repo" / "data" / "predictions.parquet")
        assert len(entities) == len(scored) == 50
        assert scored["customer_id"].tolist() == entities["customer_id"].tolist()
        probabilities = [float(p[0]) for p in scored["churn_probability"]]
        assert all(0.0 <= p <= 1.0 for p in probabilities) and len(set(probabilities)) > 10
        # the scheduled job runs with the same defaults (pipelines/crontab calls it without arguments)
        crontab = (repo / "pipelines" / "crontab").read_text()
        assert "-m serving.batch_score >>" in crontab
