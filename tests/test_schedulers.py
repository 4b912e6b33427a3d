"""Scheduler configs, each checked by the tool that runs or validates it.

Every preset, plus variants of the presets with each orchestrator, MLOps level and trigger:
crontab lines have 5 fields and croniter accepts them; CronJobs pass kubernetes-validate --strict
(1.30) with a 52-character name, Etc/UTC, Forbid and GPU requests; Airflow DAGs import into a real
Airflow 3.3.2 DagBag (its own venv, created by scripts/ensure_airflow_venv.sh when missing) with the
expected task and schedule; Prefect and Dagster files parse.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from croniter import croniter

from generator.decide import decide
from generator.decide.architecture import Architecture
from generator.plan import pipelines
from generator.plan.plan import FilePlan
from generator.render.render import render_plan
from requirements_spec.models import Spec
from requirements_spec.validate import load_spec

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted((ROOT / "requirements_spec" / "presets").glob("*.yaml"))
AIRFLOW_VENV = Path(os.environ.get("ARCHGEN_AIRFLOW_VENV", ROOT / ".venv-airflow")).resolve()


def _variant(spec: Spec, orchestrator: str | None = None, level: int | None = None, trigger: str | None = None) -> Spec:
    existing = spec.existing.model_copy(update={"orchestrator": orchestrator}) if orchestrator else spec.existing
    delivery = spec.delivery.model_copy(update={"mlops_level": level}) if level is not None else spec.delivery
    training = spec.training
    if trigger == "online":
        training = training.model_copy(update={"trigger": "online"})
        existing = existing.model_copy(update={"broker": "rabbitmq"})
    return spec.model_copy(update={"existing": existing, "delivery": delivery, "training": training})


def _architectures() -> list[tuple[str, Architecture]]:
    out = []
    for preset in PRESETS:
        spec = load_spec(preset).spec
        out.append((preset.stem, decide(spec)))
        for orch in ("cron", "airflow", "kubernetes", "prefect", "dagster"):
            out.append((f"{preset.stem}+{orch}", decide(_variant(spec, orchestrator=orch))))
        out.append((f"{preset.stem}+level0", decide(_variant(spec, level=0))))
        out.append((f"{preset.stem}+level2+kubernetes", decide(_variant(spec, orchestrator="kubernetes", level=2))))
        out.append(
            (f"{preset.stem}+online+kubernetes", decide(_variant(spec, orchestrator="kubernetes", trigger="online")))
        )
    return out


ARCHS = _architectures()


def _render(arch: Architecture) -> dict[str, str]:
    files = render_plan(FilePlan(tuple(pipelines.plan(arch))), arch)
    return {path: data.decode() for path, data in files.items()}


RENDERED = {name: _render(arch) for name, arch in ARCHS}
ARCH = dict(ARCHS)


def _check_cron(expr: str) -> None:
    assert len(expr.split()) == 5, f"{expr!r} is not a 5-field cron expression"
    assert croniter.is_valid(expr), expr
    croniter(expr, datetime(2025, 1, 1, tzinfo=UTC)).get_next(datetime)  # impossible dates raise


def test_scheduler_follows_the_decision() -> None:
    kinds = {
        "crontab": "pipelines/crontab",
        "airflow": "pipelines/airflow/dags/",
        "kubernetes_cronjob": "pipelines/k8s/",
    }
    for name, files in RENDERED.items():
        arch = ARCH[name]
        if not pipelines.jobs(arch):
            continue
        expected = kinds.get(arch.training.scheduler, f"pipelines/{arch.training.scheduler}/")
        assert any(p.startswith(expected) for p in files), (name, sorted(files))
        others = [k for s, k in kinds.items() if s != arch.training.scheduler]
        assert not any(p.startswith(tuple(others)) for p in files), (name, sorted(files))


def test_jobs_follow_level_trigger_retention_and_serving_mode() -> None:
    for name, arch in ARCHS:
        names = [j.name for j in pipelines.jobs(arch)]
        trains = arch.training.mode == "scheduled" and arch.mlops_level >= 1 and bool(arch.training.trained_models)
        # batch systems train then score in one pipeline (components/batch.py) and read the offline store
        batch = arch.serving.runtime == "batch_scoring"
        assert ("train" in names) == (trains and not batch), name
        # the purge holds the feature store's data and the serving logs of personal answers to the retention
        personal = any(t.pii for m in arch.spec.serving.models for t in m.outputs)
        assert ("purge" in names) == bool(arch.privacy.retention_s and (arch.feature_store or personal)), name
        assert "materialize" not in names or not batch, name
        if batch and arch.spec.training.schedule:
            pipeline = ("pipelines/batch.crontab", "pipelines/k8s/train-score-cronjob.yaml", "_train_score.py")
            assert any(p.endswith(pipeline) for p in RENDERED[name]), (name, sorted(RENDERED[name]))
        if arch.feature_store is not None and arch.feature_store.ingestion != "push" and not batch:
            mat = next(j for j in pipelines.jobs(arch) if j.name == "materialize")
            assert mat.cron == arch.feature_store.materialization_cron
        assert (".github/workflows/ml-pipeline.yml" in RENDERED[name]) == (arch.mlops_level >= 2), name
    assert any("train" not in [j.name for j in pipelines.jobs(a)] for n, a in ARCHS if n.endswith("+level0"))


def test_every_crontab_line_parses() -> None:
    checked = 0
    for name, files in RENDERED.items():
        text = files.get("pipelines/crontab")
        if text is None:
            continue
        for line in text.splitlines():
            if not line.strip() or line.startswith("#") or "=" in line.split()[0]:
                continue
            fields = line.split()
            _check_cron(" ".join(fields[:5]))
            command = " ".join(fields[5:])
            assert "%" not in command, f"{name}: an unescaped % ends a crontab command"
            assert command.startswith("cd ") and ".venv/bin/python" in command
            checked += 1
    assert checked >= 10


def _k8s_docs() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (name, path, yaml.safe_load(text))
        for name, files in RENDERED.items()
        for path, text in files.items()
        if path.startswith("pipelines/k8s/") and not path.endswith("/kustomization.yaml")  # kustomize's, not an object
    ]


def test_every_cronjob_passes_kubernetes_validate_strict() -> None:
    import kubernetes_validate

    docs = _k8s_docs()
    cronjobs = [d for d in docs if d[2]["kind"] == "CronJob"]
    assert len(cronjobs) >= 10 and any(d[2]["kind"] == "Deployment" for d in docs)
    gpu_jobs = 0
    for name, path, doc in docs:
        kubernetes_validate.validate(doc, "1.30", strict=True)
        if doc["kind"] != "CronJob":
            continue
        spec = doc["spec"]
        assert doc["apiVersion"] == "batch/v1"
        assert len(doc["metadata"]["name"]) <= 52, (name, path)
        _check_cron(spec["schedule"])
        assert spec["timeZone"] == "Etc/UTC" and spec["concurrencyPolicy"] == "Forbid"
        container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
        if path.endswith("/train-score-cronjob.yaml"):  # batch: training (the gate) is an init container
            inits = spec["jobTemplate"]["spec"]["template"]["spec"].get("initContainers", [])
            trained = pipelines.scheduled_training(ARCH[name])
            fs = ARCH[name].feature_store
            rollups = [["python", "scripts/aggregate.py"]] if fs is not None and fs.aggregated_views else []
            # args, not command: the image's start guard (deploy/check_secrets.py) runs first; fresh rollups
            # before training and before scoring
            assert [i["args"] for i in inits] == (
                [*rollups, ["python", "-m", "training.train"], *rollups] if trained else rollups
            )
            assert container["args"] == ["python", "-m", "batch.score"] and "command" not in container
            continue
        job = next(j for j in pipelines.jobs(ARCH[name]) if path.endswith(f"/{j.dash}-cronjob.yaml"))
        assert container["args"] == ["python", *job.command] and "command" not in container
        if job.gpus:
            gpu_jobs += 1
            assert container["resources"]["limits"]["nvidia.com/gpu"] == job.gpus
            assert container["resources"]["requests"]["nvidia.com/gpu"] == job.gpus
    assert gpu_jobs, "the realtime preset's GPU training must request nvidia.com/gpu"


def test_kubernetes_validate_catches_a_misspelled_key() -> None:
    import kubernetes_validate

    _name, _path, doc = next(d for d in _k8s_docs() if d[2]["kind"] == "CronJob")
    doc["spec"]["concurencyPolicy"] = doc["spec"].pop("concurrencyPolicy")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, "1.30", strict=True)


def test_long_project_names_stay_within_52_characters() -> None:
    long = "a" * 63
    names = {pipelines.k8s_name(long, job) for job in ("materialize", "train", "purge", "bundle")}
    assert len(names) == 4 and all(len(n) <= 52 and not n.startswith("-") for n in names)
    assert pipelines.k8s_name(long, "train") != pipelines.k8s_name(long[:-1] + "b", "train")


def test_prefect_and_dagster_files_are_valid() -> None:
    seen = set()
    for name, files in RENDERED.items():
        for path, text in files.items():
            if path.endswith(".py"):
                ast.parse(text, filename=f"{name}:{path}")
            if path == "pipelines/prefect/prefect.yaml":
                data = yaml.safe_load(text)
                for d in data["deployments"]:
                    _check_cron(d["schedules"][0]["cron"])
                    assert d["entrypoint"].startswith("pipelines/prefect/flows.py:")
                seen.add("prefect")
            if path == "pipelines/dagster/definitions.py":
                seen.add("dagster")
    assert seen == {"prefect", "dagster"}


def test_generation_is_deterministic() -> None:
    for name, arch in ARCHS[:14]:
        assert _render(arch) == RENDERED[name]


# ------------------------------------------------------------------ real Airflow
DAGBAG_SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: v[-2000:] for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "tasks": sorted(t.task_id for t in dag.tasks),
        "schedule": str(dag.schedule),
        "catchup": dag.catchup,
        "commands": {t.task_id: t.bash_command for t in dag.tasks},
        "pool_slots": {t.task_id: t.pool_slots for t in dag.tasks},
    }
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    script = ROOT / "scripts" / "ensure_airflow_venv.sh"
    result = subprocess.run(["bash", str(script), str(AIRFLOW_VENV)], text=True, capture_output=True, timeout=900)
    assert result.returncode == 0, f"could not create {AIRFLOW_VENV}:\n{result.stderr[-3000:]}"
    return AIRFLOW_VENV / "bin" / "python"


@pytest.mark.slow
def test_every_airflow_dag_imports_into_a_real_dagbag(airflow_python: Path, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    expected: dict[str, tuple[str, str, str]] = {}
    texts: dict[str, str] = {}
    for name, files in RENDERED.items():
        arch = ARCH[name]
        for path, text in files.items():
            if not path.startswith("pipelines/airflow/dags/") or path.endswith("_train_score.py"):
                continue  # the batch pipeline (train -> score) runs through Airflow in tests/test_runtimes.py
            job = next(j for j in pipelines.jobs(arch) if path.endswith(f"_{j.name}.py"))
            dag_id = f"{arch.spec.project.name}_{job.name}"
            if dag_id in texts:  # the same project in several variants: the same DAG file
                assert texts[dag_id] == text, (name, path)
                continue
            texts[dag_id] = text
            expected[dag_id] = (job.name, job.cron, " ".join(job.command))
            (dags / f"{dag_id}.py").write_text(text)
    assert len(expected) >= 8
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    result = subprocess.run(
        [str(airflow_python), "-c", DAGBAG_SCRIPT, str(dags)], text=True, capture_output=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    bag = json.loads(result.stdout.strip().splitlines()[-1])
    assert bag["errors"] == {}
    assert sorted(bag["dags"]) == sorted(expected)
    for dag_id, (task, cron, command) in expected.items():
        dag = bag["dags"][dag_id]
        assert dag["tasks"] == [task]
        assert dag["schedule"] == cron and dag["catchup"] is False
        assert dag["commands"][task].endswith(f"/.venv/bin/python {command}")
    train = [d for d in bag["dags"].values() if d["tasks"] == ["train"]]
    assert train and any(d["pool_slots"]["train"] > 1 for d in train)  # resources reach the task


@pytest.mark.slow
def test_dagbag_reports_a_broken_dag(airflow_python: Path, tmp_path: Path) -> None:
    """The check can fail: an invalid schedule is an import error."""
    dags = tmp_path / "dags"
    dags.mkdir()
    files = next(f for f in RENDERED.values() if any("airflow/dags" in p for p in f))
    text = next(t for p, t in files.items() if "airflow/dags" in p)
    (dags / "broken.py").write_text(text.replace("schedule=", "schedule_interval="))
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    result = subprocess.run(
        [str(airflow_python), "-c", DAGBAG_SCRIPT, str(dags)], text=True, capture_output=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "schedule_interval" in json.dumps(json.loads(result.stdout.strip().splitlines()[-1])["errors"])
