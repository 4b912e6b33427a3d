"""A batch system with aggregated views recomputes the rollups before training and again before scoring.

The views with `aggregations` read rollups that scripts/aggregate.py writes; batch scoring reads them as of its
run. Every form of the train -> score pipeline runs the rollup job first: the crontab line, the Kubernetes
CronJob (init containers, in order), the Airflow DAG (BashOperator and KubernetesPodOperator, loaded into a real
DagBag: slow) and `make train` / `make score`. `archgen check` knows the pipeline as a decided job at its cron.
The spec is tests/specs/loyalty_batch.yaml (PostgreSQL, a string and an int key, one aggregated view).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_runtimes import batch_spec, load_dagbag

from generator.generate import generate as generate_in_memory

ROOT = Path(__file__).resolve().parent.parent
LOYALTY = ROOT / "tests" / "specs" / "loyalty_batch.yaml"
CHAIN = ["aggregate_before_train", "train", "aggregate_before_score", "score"]
AGGREGATE = "scripts/aggregate.py"


def loyalty(tmp_path: Path, name: str = "store_loyalty", mlops_level: int = 1, **existing: str) -> Path:
    data = yaml.safe_load(LOYALTY.read_text())
    data["project"]["name"] = name
    data["existing"].update(existing)
    data["delivery"]["mlops_level"] = mlops_level
    path = tmp_path / f"{name}_{'_'.join(existing.values()) or 'spec'}_{mlops_level}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _crontab_steps(text: str) -> list[str]:
    (line,) = [x for x in text.splitlines() if x and not x.startswith("#") and not re.match(r"^\w+=", x)]
    inner = line.split("bash -c '", 1)[1].split("'", 1)[0]
    names = {"scripts/aggregate.py": "aggregate", "-m training.train": "train", "-m batch.score": "score"}
    return [next(n for k, n in names.items() if k in step) for step in inner.split(" && ")]


def _recipe(makefile: str, target: str) -> list[str]:
    lines = makefile.split(f"\n{target}:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [x.strip() for x in lines if x.startswith("\t")]


def test_every_pipeline_form_refreshes_the_rollups_before_training_and_scoring(tmp_path: Path) -> None:
    import kubernetes_validate

    cron = generate_in_memory(loyalty(tmp_path, orchestrator="cron")).files
    assert _crontab_steps(cron["pipelines/batch.crontab"].decode()) == ["aggregate", "train", "aggregate", "score"]
    makefile = cron["Makefile"].decode()
    train, score = _recipe(makefile, "train"), _recipe(makefile, "score")
    assert AGGREGATE in train[0] and "training.train" in train[1], train
    assert AGGREGATE in score[0] and "batch.score" in score[1], score
    assert "make train` and `make score" in cron["batch/README.md"].decode()

    local = generate_in_memory(loyalty(tmp_path, orchestrator="airflow")).files
    dag = local["pipelines/airflow/dags/store_loyalty_train_score.py"].decode()
    compile(dag, "dag", "exec")
    assert "aggregate_before_train >> train >> aggregate_before_score >> score" in dag
    assert dag.count('bash_command=f"{PYTHON} scripts/aggregate.py"') == 2

    pods = generate_in_memory(loyalty(tmp_path, orchestrator="airflow", platform="kubernetes")).files
    dag = pods["pipelines/airflow/dags/store_loyalty_train_score.py"].decode()
    compile(dag, "dag", "exec")
    assert "aggregate_before_train >> train >> aggregate_before_score >> score" in dag
    # SQL inside PostgreSQL computes the rollups: a small pod, without the model repository
    assert 'pod("aggregate_before_score", ["scripts/aggregate.py"], "1", "1Gi", models=False)' in dag

    job = generate_in_memory(loyalty(tmp_path, orchestrator="kubernetes", platform="kubernetes")).files
    cronjob = yaml.safe_load(job["pipelines/k8s/train-score-cronjob.yaml"])
    kubernetes_validate.validate(cronjob, "1.30", strict=True)
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    # init containers run in order, each only after the one before succeeded; scoring is the main container
    assert [c["name"] for c in pod["initContainers"]] == ["aggregate-before-train", "train", "aggregate-before-score"]
    assert [c["args"] for c in pod["initContainers"]][0::2] == [["python", AGGREGATE]] * 2
    assert pod["containers"][0]["args"] == ["python", "-m", "batch.score"]
    assert all(c["securityContext"]["readOnlyRootFilesystem"] for c in pod["initContainers"])  # rollups in SQL

    # no scheduled training (MLOps level 0): the rollups still come before scoring
    manual = generate_in_memory(loyalty(tmp_path, orchestrator="cron", mlops_level=0)).files
    assert _crontab_steps(manual["pipelines/batch.crontab"].decode()) == ["aggregate", "score"]

    # no aggregated view: no rollup step anywhere
    plain = generate_in_memory(batch_spec(tmp_path, platform="kubernetes", orchestrator="kubernetes")).files
    assert AGGREGATE not in plain["pipelines/k8s/train-score-cronjob.yaml"].decode()
    assert AGGREGATE not in plain["Makefile"].decode()


def test_rollups_on_files_make_the_rollup_containers_writable(tmp_path: Path) -> None:
    """pandas writes the rollups as parquet inside the repository: those containers say why they write."""
    import kubernetes_validate

    files = generate_in_memory(loyalty(tmp_path, orchestrator="kubernetes", platform="kubernetes", warehouse="files"))
    cronjob = yaml.safe_load(files.files["pipelines/k8s/train-score-cronjob.yaml"])
    kubernetes_validate.validate(cronjob, "1.30", strict=True)
    skip = cronjob["metadata"]["annotations"]["checkov.io/skip1"]
    assert skip.startswith("CKV_K8S_22=aggregate writes the rollups under feature_repo/data/rollups/")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    writable = {c["name"]: not c["securityContext"]["readOnlyRootFilesystem"] for c in pod["initContainers"]}
    assert writable["aggregate-before-train"] and writable["aggregate-before-score"]


def test_archgen_check_holds_the_batch_pipeline_to_its_cron(tmp_path: Path) -> None:
    """The train -> score pipeline is a decided job: `archgen check` passes on a fresh repository of every
    scheduler form, and flags the pipeline once its schedule drifts from serving.schedule."""
    from generator.checks.checks import check_repository

    for existing, config in (
        ({"orchestrator": "cron"}, "pipelines/batch.crontab"),
        ({"orchestrator": "airflow"}, "pipelines/airflow/dags/store_loyalty_train_score.py"),
        ({"orchestrator": "kubernetes", "platform": "kubernetes"}, "pipelines/k8s/train-score-cronjob.yaml"),
    ):
        repo = tmp_path / "_".join(existing.values())
        spec = loyalty(tmp_path, **existing)
        made = subprocess.run(
            [sys.executable, "-m", "generator.cli", "new", str(spec), "-o", str(repo)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        report = check_repository(repo)
        assert report.ok, (existing, [str(p) for p in [*report.problems, *report.drift]])
        path = repo / config
        path.write_text(path.read_text().replace("30 4 * * 1", "30 4 * * 2"))
        drifted = check_repository(repo)
        found = [(d.location.file, d.message) for d in drifted.drift if d.severity == "error"]
        said = "train_score is scheduled at '30 4 * * 2', the decision is '30 4 * * 1' (the spec's scoring schedule)"
        assert not drifted.ok and found == [(config, said)], (existing, found)


# ------------------------------------------------------------------ Airflow's own DagBag (slow)
DAGBAG = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: v[-2000:] for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    tasks = {}
    for t in dag.tasks:
        task = {"type": type(t).__name__, "upstream": sorted(t.upstream_task_ids)}
        if type(t).__name__ == "BashOperator":
            task["command"] = t.bash_command
        else:
            task["arguments"] = t.arguments
            task["claims"] = [v.persistent_volume_claim.claim_name for v in t.volumes]
            task["requests"] = t.container_resources.requests
        tasks[t.task_id] = task
    out["dags"][dag_id] = {"schedule": str(dag.schedule), "order": [t.task_id for t in dag.topological_sort()],
                           "tasks": tasks}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_rollup_tasks_come_first_in_both_airflow_forms_loaded_by_a_real_dagbag(tmp_path: Path) -> None:
    dags = {}
    for name, existing in (("store_loyalty", {}), ("store_loyalty_k8s", {"platform": "kubernetes"})):
        files = generate_in_memory(loyalty(tmp_path, name=name, orchestrator="airflow", **existing)).files
        dags[f"{name}_train_score.py"] = files[f"pipelines/airflow/dags/{name}_train_score.py"]
    bag = load_dagbag(tmp_path, dags, DAGBAG, STORE_LOYALTY_HOME="/srv/loyalty")
    assert bag["errors"] == {}, bag["errors"]
    assert sorted(bag["dags"]) == ["store_loyalty_k8s_train_score", "store_loyalty_train_score"]
    for dag_id, dag in bag["dags"].items():
        assert dag["schedule"] == "30 4 * * 1", dag_id  # serving.schedule
        assert dag["order"] == CHAIN, (dag_id, dag["order"])
        tasks = dag["tasks"]
        assert [tasks[t]["upstream"] for t in CHAIN] == [[], [CHAIN[0]], [CHAIN[1]], [CHAIN[2]]], dag_id

    bash = bag["dags"]["store_loyalty_train_score"]["tasks"]
    assert {t["type"] for t in bash.values()} == {"BashOperator"}
    for step in ("aggregate_before_train", "aggregate_before_score"):
        assert bash[step]["command"] == "/srv/loyalty/.venv/bin/python scripts/aggregate.py"
    pods = bag["dags"]["store_loyalty_k8s_train_score"]["tasks"]
    assert {t["type"] for t in pods.values()} == {"KubernetesPodOperator"}
    for step in ("aggregate_before_train", "aggregate_before_score"):
        assert pods[step]["arguments"] == [AGGREGATE] and pods[step]["claims"] == []
        assert pods[step]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert pods["train"]["claims"] == pods["score"]["claims"] == ["store-loyalty-k8s-model-repository"]
