"""Embedded and batch serving as runtimes of their own.

Fast: their plans hold only the decisions their runtime uses; they get their own files and none of Triton's,
the feature server's or an autoscaler's; the batch system's Kubernetes manifests validate strictly.
Slow (real PostgreSQL, Feast, Airflow): a batch system trains then scores through Airflow itself into a
PostgreSQL table (a rerun keeps the row count, a failed gate writes no scores); an embedded system with string
entity keys builds a bundle from real Feast, builds its wheel, installs it into a clean virtualenv without
Feast and answers `predict`, and its own tests refuse damaged, truncated and stale bundles.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from triton_harness import PRESETS, generate, make_generated, scratch_database

from generator.decide import decide
from generator.generate import generate as generate_in_memory
from requirements_spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_VENV = Path(os.environ.get("ARCHGEN_AIRFLOW_VENV", ROOT / ".venv-airflow")).resolve()
TRITON_DECISIONS = {"protocol", "triton_backend", "dynamic_batching", "instance_group", "sequence_batching", "pipeline"}
TRITON_DECISIONS |= {"pipeline_instances"}  # frames a BLS pipeline of Triton holds in flight
ONLINE_DECISIONS = {"online_store", "materialization"}  # what reads features online, and how they get there
NOT_FOR_RUNTIMES = ("model_repository/", "serving/", "requirements-triton.txt", "model_analyzer/", "monitoring/alerts")
SYSTEM_DATA = "serving/system_data.py"  # the typed description of the system's data, read by every runtime

EMBEDDED_SPEC = """\
version: 1
project:
  name: {name}
  description: Offer a voucher at the kiosk when a visitor is likely to buy.
  owners: {{data_engineering: "@shop/data", data_science: "@shop/ds"}}
existing:
  warehouse: files
  orchestrator: cron
  platform: local
  broker: none
  image_registry: registry.site.internal/ml
  package_mirror: https://pypi.site.internal/simple
entities:
  - {{name: visitor, join_key: visitor_id, dtype: string}}
sources:
  - {{name: visits, kind: file, path: data/visits.parquet, timestamp_field: event_timestamp}}
  - {{name: purchases, kind: file, path: data/purchases.parquet, timestamp_field: event_timestamp}}
features:
  computation: precomputed
  freshness: 1d
  views:
    - name: visitor_stats
      entities: [visitor]
      source: visits
      granularity: day
      ttl: 30d
      fields:
        - {{name: visits_7d, dtype: int64}}
        - {{name: basket_eur_7d, dtype: float64}}
  services:
    - name: kiosk_v1
      features: [visitor_stats.visits_7d, visitor_stats.basket_eur_7d]
training:
  trigger: schedule
  schedule: "0 3 * * *"
  label: {{source: purchases, field: bought}}
  min_quality: {{metric: roc_auc, threshold: 0.6}}
serving:
  mode: embedded
  latency_p99_ms: 5
  throughput_rps: 10
  stale_bundle: refuse
  models:
    - name: offer_model
      framework: sklearn
      feature_service: kiosk_v1
      outputs: [{{name: buy_probability, dtype: fp32, dims: [1]}}]
privacy: {{retention: 90d}}
autonomy: air_gapped
"""


def embedded_spec(tmp_path: Path, name: str = "kiosk_offers") -> Path:
    path = tmp_path / "embedded.yaml"
    path.write_text(EMBEDDED_SPEC.format(name=name))
    return path


def batch_spec(tmp_path: Path, **existing: str) -> Path:
    data = yaml.safe_load((PRESETS / "batch_warehouse.yaml").read_text())
    data["existing"].update(existing)
    path = tmp_path / f"batch_{'_'.join(existing.values()) or 'preset'}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------ plans and files (fast)
@pytest.mark.parametrize("kind", ["embedded", "batch", "batch_k8s_airflow"])
def test_plans_hold_only_the_decisions_the_runtime_uses(tmp_path: Path, kind: str) -> None:
    spec = (
        embedded_spec(tmp_path)
        if kind == "embedded"
        else batch_spec(tmp_path, platform="kubernetes", orchestrator="airflow")
        if kind == "batch_k8s_airflow"
        else PRESETS / "batch_warehouse.yaml"
    )
    arch = decide(load_spec(spec))
    keys = {d.key for d in arch.decisions}
    skipped = {n.key: n.reason for n in arch.not_applicable}
    assert not keys & TRITON_DECISIONS, keys & TRITON_DECISIONS
    assert ("embedded_bundle" in keys) is (kind == "embedded")
    assert ("batch_scoring" in keys) is (kind != "embedded")
    # the embedded library materializes a snapshot into its bundle; batch scoring reads the offline store only
    assert (keys >= ONLINE_DECISIONS) is (kind == "embedded") and (not keys & ONLINE_DECISIONS) is (kind != "embedded")
    # deployed: only the batch pods on Kubernetes; an embedded library or batch jobs on the scheduler are not
    assert ("deployment" in keys) is (kind == "batch_k8s_airflow"), skipped.get("deployment")
    assert set(skipped) >= TRITON_DECISIONS and all(skipped.values())
    assert not arch.triton_serves and not arch.feature_server_runs
    for d in arch.decisions:
        said = f"{d.choice} {d.rationale}"
        assert d.key == "serving_runtime" or "triton" not in said.lower(), (d.key, said)
        assert "feature server" not in said, (d.key, said)  # neither runtime runs one
        if kind != "embedded" and d.key != "access":  # access lists the Feast actions the spec grants its roles
            assert "online store" not in said and "materializ" not in said, (d.key, said)

    # `archgen plan` shows the same: the decisions above, the others not applicable with their reason
    from typer.testing import CliRunner

    from generator.cli import app

    shown = CliRunner().invoke(app, ["plan", str(spec), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    plan = json.loads(shown.stdout)
    assert {d["key"] for d in plan["decisions"]} == keys
    assert {n["key"] for n in plan["not_applicable"]} == set(skipped)


def test_embedded_system_is_a_library_with_bundles_and_no_server(tmp_path: Path) -> None:
    files = generate_in_memory(embedded_spec(tmp_path)).files
    paths = sorted(files)
    assert not [p for p in paths if p.startswith((*NOT_FOR_RUNTIMES, "deploy/")) and p != SYSTEM_DATA], paths
    for path in (
        "package/pyproject.toml",
        "package/kiosk_offers/__init__.py",
        "package/kiosk_offers/bundle.py",
        "scripts/build_bundle.py",
        "tests/test_embedded.py",
    ):
        assert path in files, path
    pyproject = files["package/pyproject.toml"].decode()
    assert 'name = "kiosk_offers"' in pyproject and "feast" not in pyproject and "triton" not in pyproject
    assert "dill" not in pyproject and "pandas" not in pyproject  # no on-demand view: the model's libraries only
    library = files["package/kiosk_offers/__init__.py"].decode() + files["package/kiosk_offers/bundle.py"].decode()
    assert "import feast" not in library and "tritonclient" not in library
    assert "def predict(visitor_id: str) -> Prediction:" in library
    assert "def predict_many(keys: Iterable[str]) -> list[Prediction]:" in library
    assert "tritonclient" not in files["requirements.txt"].decode()
    makefile = files["Makefile"].decode()
    assert "\nbundle:" in makefile and "\npackage:" in makefile and "pip wheel" in makefile
    crontab = files["pipelines/crontab"].decode()  # training, materialization and bundles run centrally
    assert "training.train" in crontab and "scripts/materialize.py" in crontab and "scripts/build_bundle.py" in crontab


def test_embedded_predict_is_held_to_the_spec_budget_live(tmp_path: Path) -> None:
    """The embedded system's own load test calls predict in process at the spec's rate and holds it to the spec's
    p99 and throughput (no model server, no load generator of a server); its code is ruff-clean with the settings
    the fitness code of every system is held to (tests/test_monitoring.py)."""
    spec = ROOT / "tests" / "specs" / "kiosk_embedded.yaml"
    repo = tmp_path / "kiosk"
    generate(spec, repo)
    test = (repo / "tests" / "test_fitness_latency.py").read_text()
    assert not (repo / "tests" / "loadgen.py").exists()
    assert "def test_serving_latency_p99_ms(" in test and "def test_serving_throughput_rps(" in test
    assert "lib.predict(*key, **request)" in test and "tritonclient" not in test and "serving.client" not in test
    assert "serving.latency_p99_ms = 20 (.archgen/spec.yaml:64)" in test  # the budget and its line in the spec
    fitness = (repo / "tests" / "fitness.py").read_text()
    assert 'SERVING = "embedded"' in fitness
    ruff = Path(sys.executable).with_name("ruff")
    select = ["--select", "E,F,W,I,B,UP,C4,SIM,RUF", "--ignore", "RUF001,RUF002,RUF003,B008"]
    check = subprocess.run([str(ruff), "check", *select, "tests"], cwd=repo, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run([str(ruff), "format", "--check", "tests"], cwd=repo, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout


def test_embedded_model_that_reads_no_features_is_a_package_alone(tmp_path: Path) -> None:
    """A model whose inputs come with each call (a camera frame): the package checks them and answers the declared
    outputs; no bundle (embedded_bundle not applicable, with its reason), no feature store, no server. Its own
    tests run here (the live load test aside: tests/test_any_spec_e2e.py runs it)."""
    spec = ROOT / "tests" / "specs" / "shelf_camera_embedded.yaml"
    arch = decide(load_spec(spec))
    skipped = {n.key: n.reason for n in arch.not_applicable}
    assert "embedded_bundle" in skipped and "reads no features" in skipped["embedded_bundle"]
    repo = tmp_path / "shelf"
    generate(spec, repo)
    paths = {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()}
    assert {"package/shelf_camera/__init__.py", "scripts/predict.py", "tests/test_fitness_latency.py"} <= paths
    assert not [p for p in paths if "bundle" in p or p.startswith(("feature_repo/", "model_repository/", "deploy/"))]
    library = (repo / "package" / "shelf_camera" / "__init__.py").read_text()
    assert "def predict(*, frame: Any, zoom: Any) -> Prediction:" in library and "import feast" not in library
    makefile = (repo / "Makefile").read_text()
    assert "\npackage:" in makefile and "\nbundle:" not in makefile and "install-bundle" not in makefile
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    own = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_embedded.py"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert own.returncode == 0 and "4 passed" in own.stdout, own.stdout[-3000:] + own.stderr[-2000:]
    predicted = subprocess.run(
        [sys.executable, "scripts/predict.py"], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )
    assert predicted.returncode == 0, predicted.stderr
    answer = json.loads(predicted.stdout)
    assert len(answer["outputs"]["scores"]) == 4 and answer["outputs"]["label"] == ["placeholder"], answer
    ruff = Path(sys.executable).with_name("ruff")
    select = ["--select", "E,F,W,I,B,UP,C4,SIM,RUF", "--ignore", "RUF001,RUF002,RUF003,B008"]
    targets = ["tests", "scripts", "package/shelf_camera"]
    check = subprocess.run([str(ruff), "check", *select, *targets], cwd=repo, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_embedded_request_time_features_are_computed_by_the_library() -> None:
    """An on-demand view over request values: the bundle stores only what the online store keeps (the service's
    view features and the view field the on-demand view reads), its transformation travels in the bundle, and
    predict takes the request fields as typed keyword arguments; dill and pandas only then, and not at import."""
    import ast

    files = generate_in_memory(ROOT / "tests" / "specs" / "kiosk_embedded.yaml").files
    library = files["package/kiosk_basket/__init__.py"].decode()
    assert (
        "def predict(visitor_id: str, kiosk_id: int, *, basket_eur: float, items: int, payment: str) -> Prediction:"
        in library
    )
    assert "basket_eur: Sequence[float], items: Sequence[int], payment: Sequence[str]" in library
    namespace: dict[str, object] = {}
    for node in ast.parse(library).body:  # the module's data: what the bundle stores, what predict computes
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if isinstance(target, ast.Name) and target.id.isupper() and not target.id.startswith("_"):
                namespace[target.id] = ast.literal_eval(node.value)
    assert namespace["STORED"] == {
        "visitor_history__visits_30d": "int64",
        "visitor_at_kiosk__kiosk_visits_30d": "int32",
        "visitor_history__avg_basket_eur": "float64",  # read by the on-demand view only
    }
    assert namespace["INPUTS"] == [
        "visitor_history__visits_30d",
        "visitor_at_kiosk__kiosk_visits_30d",
        "basket_fit__basket_ratio",
        "basket_fit__big_basket",
    ]
    assert namespace["REQUEST"] == {"basket_eur": "float64", "items": "int64", "payment": "string"}
    # dill and pandas: imported inside the functions that run at the first prediction (or an install), never at
    # import
    bundle = files["package/kiosk_basket/bundle.py"].decode()
    for module in (library, bundle):
        top = [n for n in ast.parse(module).body if isinstance(n, ast.Import | ast.ImportFrom)]
        assert not {a.name for n in top for a in n.names} & {"dill", "pandas"}
    assert "        import pandas as pd" in library and "    import dill" in bundle
    pyproject = files["package/pyproject.toml"].decode()
    assert '"dill>=' in pyproject and '"pandas>=' in pyproject and "feast" not in pyproject
    assert 'REQUIRED = ("model.joblib", "features.sqlite", "on_demand.basket_fit.dill")' in bundle
    builder = files["scripts/build_bundle.py"].decode()
    assert "get_on_demand_feature_view(name)" in builder and "dill.dumps(transformation.udf, recurse=True)" in builder
    makefile = files["Makefile"].decode()
    assert "scripts/predict.py $(PREDICT_ARGS)" in makefile
    assert "--visitor_id visitor_0001 --kiosk_id 1001 --visitor_id visitor_0002 --kiosk_id 1002" in makefile


def test_batch_system_scores_in_process_with_no_server(tmp_path: Path) -> None:
    import kubernetes_validate

    for existing, pipeline in (
        ({}, "pipelines/batch.crontab"),
        ({"platform": "kubernetes", "orchestrator": "airflow"}, "pipelines/airflow/dags/churn_scoring_train_score.py"),
        ({"platform": "kubernetes", "orchestrator": "kubernetes"}, "pipelines/k8s/train-score-cronjob.yaml"),
    ):
        files = generate_in_memory(batch_spec(tmp_path, **existing)).files
        paths = sorted(files)
        assert not [p for p in paths if p.startswith(NOT_FOR_RUNTIMES) and p != SYSTEM_DATA], paths
        assert "batch/score.py" in files and pipeline in files, (existing, paths)
        assert "tritonclient" not in files["requirements.txt"].decode()
        assert "materialize.py" not in files.get("pipelines/crontab", b"").decode()  # scoring reads the offline store
        k8s = [p for p in paths if p.endswith(".yaml") and ("/k8s/" in p)]
        kinds = set()
        for path in k8s:
            for doc in yaml.safe_load_all(files[path]):
                if doc.get("kind") == "Kustomization":
                    continue
                kubernetes_validate.validate(doc, "1.30", strict=True)
                kinds.add(doc["kind"])
        freshness = " ".join(files["tests/test_fitness_freshness.py"].decode().split('"""')[1].split())
        assert "materializ" not in freshness, "the docstring of a batch system's freshness test"
        assert "point-in-time features from the offline store as of the run time" in freshness
        if existing.get("platform") == "kubernetes":
            assert "PersistentVolumeClaim" in kinds
            assert not kinds & {"Deployment", "HorizontalPodAutoscaler", "Service", "PodDisruptionBudget"}, kinds
            # the image the pods run is built here: deploy/app.Dockerfile, non-root, base image a build argument
            dockerfile = files["deploy/app.Dockerfile"].decode()
            image = "local/churn-scoring-app:dev"
            assert f"docker build -f deploy/app.Dockerfile -t {image} ." in dockerfile
            assert f"image: {image}" in files[pipeline].decode() or f'"{image}"' in files[pipeline].decode()
            lines = dockerfile.splitlines()
            assert lines[lines.index("FROM ${PYTHON_IMAGE}") - 1].startswith("ARG PYTHON_IMAGE=python:3.11-slim")
            assert "USER 10001" in lines and lines[-1] == 'CMD ["python", "-m", "batch.score"]'
            # every job starts through the image's guard: a placeholder secret never runs, a real value does
            assert lines[-2] == 'ENTRYPOINT ["python", "deploy/check_secrets.py"]'
            guard = tmp_path / "check_secrets.py"
            guard.write_bytes(files["deploy/check_secrets.py"])
            run = [sys.executable, str(guard), sys.executable, "-c", "print('scored')"]
            refused = subprocess.run(run, env={"DB_PASSWORD": "change-me-db"}, capture_output=True, text=True)
            assert refused.returncode != 0 and "DB_PASSWORD" in refused.stderr and "scored" not in refused.stdout
            started = subprocess.run(run, env={"DB_PASSWORD": "s3cret"}, capture_output=True, text=True)
            assert started.returncode == 0 and started.stdout.strip() == "scored", started.stderr
            assert "**/.venv*" in files["deploy/app.Dockerfile.dockerignore"].decode()
            assert "docker build -f deploy/app.Dockerfile" in files["batch/README.md"].decode()
        else:
            assert "deploy/app.Dockerfile" not in files  # nothing runs in a container
        if existing.get("orchestrator") == "airflow":
            dag = files[pipeline].decode()
            compile(dag, pipeline, "exec")
            assert "KubernetesPodOperator" in dag and "BashOperator" not in dag and "train >> score" in dag
            assert 'pod("train", ["-m", "training.train"], "4", "8Gi", 0)' in dag  # the spec's training resources
        if existing.get("orchestrator") == "kubernetes":
            job = yaml.safe_load(files[pipeline])["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            # args, not command: an image's entrypoint (none in the batch image) runs first
            assert [c["args"] for c in job["initContainers"]] == [["python", "-m", "training.train"]]
            assert job["containers"][0]["args"] == ["python", "-m", "batch.score"]
            assert all("command" not in c for c in [*job["initContainers"], *job["containers"]])


@pytest.mark.parametrize(
    ("warehouse", "reads"),
    [("files", "pc.field(ts) <= at(self.as_of)"), ("postgres", "SELECT DISTINCT ON"), ("bigquery", None)],
)
def test_batch_scoring_reads_the_offline_sources_itself_where_it_can(
    tmp_path: Path, warehouse: str, reads: str | None
) -> None:
    """Parquet and PostgreSQL sources are read by the scorer itself (fast, chunked), with a generated test
    holding the reads to Feast's get_historical_features; other warehouses are read through Feast."""
    files = generate_in_memory(batch_spec(tmp_path, warehouse=warehouse)).files
    scorer = files["batch/score.py"].decode()
    assert ("get_historical_features(" in scorer) is (reads is None)
    assert ("tests/test_batch_score.py" in files) is (reads is not None)
    if reads is not None:
        where = "public.support_tickets_daily" if warehouse == "postgres" else "data/support_tickets.parquet"
        assert reads in scorer and f'"location": "{where}"' in scorer and '"ttl_s": 7776000' in scorer
        compile(files["tests/test_batch_score.py"], "tests/test_batch_score.py", "exec")


def test_population_must_be_a_file_or_table_source(tmp_path: Path) -> None:
    from requirements_spec.errors import SpecError

    data = yaml.safe_load((PRESETS / "batch_warehouse.yaml").read_text())
    data["serving"]["population"] = "no_such_source"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SpecError, match=r"serving\.population"):
        load_spec(path)


def test_a_batch_service_reads_no_request_time_value(tmp_path: Path) -> None:
    """A batch run scores stored keys and has no request: a scored service with an on-demand feature computed from a
    request source is refused at its line; the same feature served online is valid."""
    from requirements_spec.errors import SpecError

    text = (ROOT / "tests" / "specs" / "kiosk_strings.yaml").read_text()
    path = tmp_path / "batch.yaml"
    path.write_text(text.replace("  mode: online", "  mode: batch"))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "basket_fit.price_ratio]" in row)
    assert f"batch.yaml:{line}:" in message and "features.services[0].features[3]" in message, message
    assert "'basket_fit.price_ratio' is computed from the request source visit" in message


# ------------------------------------------------------------------ batch, end to end (slow)
POD_DAGBAG = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: v[-2000:] for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    tasks = {}
    for t in dag.tasks:
        res = t.container_resources
        tasks[t.task_id] = {
            "type": type(t).__name__, "image": t.image, "cmds": t.cmds, "arguments": t.arguments,
            "requests": res.requests, "limits": res.limits, "downstream": sorted(t.downstream_task_ids),
            "claims": [v.persistent_volume_claim.claim_name for v in t.volumes],
        }
    out["dags"][dag_id] = {"schedule": str(dag.schedule), "catchup": dag.catchup, "tasks": tasks}
print(json.dumps(out))
"""


def load_dagbag(tmp_path: Path, dags: dict[str, bytes], script: str, **env: str) -> dict[str, Any]:
    """The DAG files (name -> text) loaded by Airflow's own DagBag in the Airflow virtualenv; `script` prints JSON."""
    made = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure_airflow_venv.sh"), str(AIRFLOW_VENV)],
        text=True,
        capture_output=True,
        timeout=900,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    folder = tmp_path / "dags"
    folder.mkdir()
    for name, text in dags.items():
        (folder / name).write_bytes(text)
    home = {"AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    loaded = subprocess.run(
        [str(AIRFLOW_VENV / "bin" / "python"), "-c", script, str(folder)],
        text=True,
        capture_output=True,
        env={**os.environ, **home, **env},
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    return dict(json.loads(loaded.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_batch_dag_on_kubernetes_loads_into_a_real_dagbag(tmp_path: Path) -> None:
    """Airflow on Kubernetes: the train -> score DAG of KubernetesPodOperator tasks imports into Airflow's own
    DagBag (with the cncf.kubernetes provider), each pod runs the app image with the spec's resources."""
    files = generate_in_memory(batch_spec(tmp_path, platform="kubernetes", orchestrator="airflow")).files
    name = "churn_scoring_train_score.py"
    bag = load_dagbag(tmp_path, {name: files[f"pipelines/airflow/dags/{name}"]}, POD_DAGBAG)
    assert bag["errors"] == {} and list(bag["dags"]) == ["churn_scoring_train_score"], bag["errors"]
    dag = bag["dags"]["churn_scoring_train_score"]
    assert dag["schedule"] == "0 2 * * 0" and dag["catchup"] is False  # the training schedule (no serving.schedule)
    train, score = dag["tasks"]["train"], dag["tasks"]["score"]
    assert train["downstream"] == ["score"] and score["downstream"] == []  # scores only after the gate passed
    for task, args in ((train, ["-m", "training.train"]), (score, ["-m", "batch.score", "--run-id", "{{ run_id }}"])):
        assert task["type"] == "KubernetesPodOperator" and task["image"] == "local/churn-scoring-app:dev"
        assert task["cmds"] == ["python", "deploy/check_secrets.py", "python"] and task["arguments"] == args
        assert task["claims"] == ["churn-scoring-model-repository"]
    assert train["requests"] == {"cpu": "4", "memory": "8Gi"} and train["limits"] == {"memory": "8Gi"}
    assert files["deploy/k8s/base/model-repository-pvc.yaml"].decode().count("churn-scoring-model-repository") == 1


def _rows(dsn: dict[str, Any], query: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(**dsn) as conn:
        return conn.execute(query).fetchall()


def _dags_test(repo: Path, home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AIRFLOW_VENV / "bin" / "airflow"), "dags", "test", "churn_scoring_train_score"],
        cwd=repo,
        env=env,
        text=True,
        capture_output=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_batch_pipeline_runs_through_airflow_into_postgres(tmp_path: Path) -> None:
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        pytest.skip(f"needs the Airflow virtualenv ({AIRFLOW_VENV})")
    with scratch_database("archgen_batchrt") as (db, user):
        repo = tmp_path / "churn"
        generate(batch_spec(tmp_path, orchestrator="airflow"), repo)
        (repo / ".venv").symlink_to(Path(os.environ.get("ARCHGEN_VENV", ROOT / ".venv")).resolve())
        pg = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_DB": db, "POSTGRES_USER": user}
        env = {**os.environ, **pg, "POSTGRES_SSLMODE": "disable"}
        prepared = make_generated(repo, "data", "apply", env=env)
        assert prepared.returncode == 0, prepared.stdout[-3000:] + prepared.stderr[-3000:]
        # the scorer's own point-in-time query in PostgreSQL equals Feast's get_historical_features
        _generated_pit_tests_pass(repo, env)
        home = tmp_path / "airflow"
        af = {
            **env,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "pipelines" / "airflow" / "dags"),
            "CHURN_SCORING_HOME": str(repo),
        }
        migrated = subprocess.run(
            [str(AIRFLOW_VENV / "bin" / "airflow"), "db", "migrate"],
            env=af,
            text=True,
            capture_output=True,
            timeout=300,
        )
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        first = _dags_test(repo, home, af)
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
        dsn = {"host": "127.0.0.1", "port": 5432, "dbname": db, "user": user}
        population = _rows(dsn, "SELECT count(DISTINCT customer_id) FROM public.customer_orders_daily")[0][0]
        ((rows, keys, runs, low, high, version),) = _rows(
            dsn,
            "SELECT count(*), count(DISTINCT customer_id), count(DISTINCT run_id), min(score), max(score), "
            "max(model_version) FROM churn_scoring_scores",
        )
        assert rows == keys == population > 10 and runs == 1 and version == 1
        assert 0.0 <= low < high <= 1.0
        (run_id,) = _rows(dsn, "SELECT DISTINCT run_id FROM churn_scoring_scores")[0]
        assert run_id.startswith("manual__")  # Airflow's run id, passed to the scorer

        # a rerun of the same run replaces its rows
        again = subprocess.run(
            [str(repo / ".venv" / "bin" / "python"), "-m", "batch.score", "--run-id", run_id],
            cwd=repo,
            env=env,
            text=True,
            capture_output=True,
            timeout=300,
        )
        assert again.returncode == 0, again.stderr[-3000:]
        assert json.loads(again.stdout.strip().splitlines()[-1])["scored"] == population
        assert _rows(dsn, "SELECT count(*), count(DISTINCT run_id) FROM churn_scoring_scores") == [(population, 1)]

        # a model that fails its gate: training fails in Airflow and scoring never runs
        settings = repo / "training" / "settings.py"
        settings.write_text(settings.read_text().replace("THRESHOLD = 0.7", "THRESHOLD = 0.99999"))
        failed = _dags_test(repo, home, af)
        out = failed.stdout + failed.stderr
        assert "quality gate failed" in out, out[-4000:]
        assert _rows(dsn, "SELECT count(*), count(DISTINCT run_id) FROM churn_scoring_scores") == [(population, 1)]
        assert not (repo / "model_repository" / "churn_model" / "2").exists()


def _own_tests_pass(repo: Path, env: dict[str, str], test: str, passed: int) -> None:
    """One test file of the generated repository, run with archgen's virtualenv: every test passes."""
    main = Path(os.environ.get("ARCHGEN_VENV", ROOT / ".venv")).resolve()
    own = subprocess.run(
        [str(main / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert own.returncode == 0 and f"{passed} passed" in own.stdout, own.stdout[-4000:] + own.stderr[-2000:]


def _generated_pit_tests_pass(repo: Path, env: dict[str, str]) -> None:
    """The generated repository's tests/test_batch_score.py: its reads equal Feast's at four run times."""
    _own_tests_pass(repo, env, "tests/test_batch_score.py", 4)


@pytest.mark.slow
def test_batch_scoring_on_files_reads_as_feast_does_into_parquet_runs(tmp_path: Path) -> None:
    """File warehouse: the scorer scans the parquet sources itself (Feast's rule, held to Feast by the
    generated test) and writes one parquet partition per run; a rerun replaces its partition."""
    import pyarrow.parquet as pq

    spec = tmp_path / "batch_files.yaml"
    spec.write_text(EMBEDDED_SPEC.format(name="kiosk_batch").replace("mode: embedded", "mode: batch"))
    repo = tmp_path / "kiosk"
    generate(spec, repo)
    assert "pc.field(ts) <= at(self.as_of)" in (repo / "batch" / "score.py").read_text()  # no Feast in the loop
    built = make_generated(repo, "data", "apply", "train")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    _generated_pit_tests_pass(repo, dict(os.environ))
    population = pq.read_table(repo / "feature_repo" / "data" / "visits.parquet")["visitor_id"].unique()
    for _ in range(2):  # the second run of the same id replaces the first's partition
        ran = subprocess.run(
            [sys.executable, "-m", "batch.score", "--run-id", "r1", "--chunk-rows", "7"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert json.loads(ran.stdout.strip().splitlines()[-1])["scored"] == len(population)
    (partition,) = (repo / "scores" / "kiosk_batch_scores").iterdir()
    assert partition.name == "run_id=r1"
    scores = pq.read_table(partition).to_pandas()
    assert list(scores.columns) == ["visitor_id", "score", "model_version", "run_id", "scored_at"]
    assert sorted(scores["visitor_id"]) == sorted(population.to_pylist()) and scores["score"].between(0, 1).all()
    assert set(scores["run_id"]) == {"r1"} and set(scores["model_version"]) == {1}


# ------------------------------------------------------------------ embedded, end to end (slow)
def _closure(*names: str) -> set[str]:
    """The distributions these need, with everything they need in turn (extras left out)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("-", "_")
        if name in seen:
            continue
        seen.add(name)
        for req in metadata.requires(name) or []:
            parsed = Requirement(req)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                todo.append(parsed.name)
    return seen


def _clean_venv(where: Path, *requirements: str) -> Path:
    """A virtualenv with no Feast: only the wheel's dependencies (and theirs), linked from archgen's."""
    from importlib import metadata

    from packaging.requirements import Requirement

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    deps = where / "deps"
    deps.mkdir()
    for dist in sorted(_closure(*(Requirement(r).name for r in requirements))):
        found = metadata.distribution(dist)
        for file in found.files or []:
            top = file.parts[0]
            source = Path(str(found.locate_file(top)))
            if top.endswith(".dist-info") or top == ".." or (deps / top).exists() or not source.exists():
                continue
            (deps / top).symlink_to(source)
    assert not (deps / "feast").exists()
    (clean_site,) = where.glob("lib/python3*/site-packages")
    (clean_site / "deps.pth").write_text(str(deps) + "\n")
    return clean_site


def _wheel_requirements(wheel: Path) -> list[str]:
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        (meta,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        text = zf.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


# the two embedded systems proved end to end: string keys and stored features only; a string and an int key
# with an on-demand view over request-time values (its transformation travels in the bundle)
EMBEDDED_CASES = {
    "stored-features": (
        "kiosk_offers",
        "one = k.predict('visitor_0001'); many = k.predict_many(['visitor_0001', 'visitor_0002'])",
        "buy_probability",
        6,
    ),
    "request-time-features": (
        "kiosk_basket",
        "one = k.predict('visitor_0001', 1001, basket_eur=12.5, items=3, payment='card'); many = k.predict_many("
        "[('visitor_0001', 1001), ('visitor_0002', 1002)], basket_eur=[12.5, 80.0], items=[3, 9], payment=['a', 'b'])",
        "redeem_probability",
        11,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(EMBEDDED_CASES))
def test_embedded_bundle_wheel_and_predict_in_a_clean_venv(tmp_path: Path, case: str) -> None:
    project, call, output, own_tests = EMBEDDED_CASES[case]
    repo = tmp_path / "kiosk"
    spec = embedded_spec(tmp_path) if project == "kiosk_offers" else ROOT / "tests" / "specs" / "kiosk_embedded.yaml"
    generate(spec, repo)
    env = {**os.environ, f"{project.upper()}_BUNDLE_DIR": str(tmp_path / "device" / "bundles")}
    built = make_generated(repo, "data", "apply", "materialize", "train", "bundle", "package", env=env)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    (archive,) = (repo / "dist" / "bundles").glob("*.tar.gz")
    (wheel,) = (repo / "dist").glob(f"{project}-*.whl")
    requirements = _wheel_requirements(wheel)
    # dill and pandas only where an on-demand transformation runs at prediction time
    assert {"dill", "pandas"} & {r.split(">")[0].split("=")[0] for r in requirements} == (
        {"dill", "pandas"} if case == "request-time-features" else set()
    ), requirements

    clean = tmp_path / "clean"
    site = _clean_venv(clean, *requirements)
    main = Path(os.environ.get("ARCHGEN_VENV", ROOT / ".venv")).resolve()
    installed = subprocess.run(
        [str(main / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        text=True,
        capture_output=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    python = str(clean / "bin" / "python")
    device = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    probe = subprocess.run([python, "-c", "import feast"], env=device, capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "No module named 'feast'" in probe.stderr
    put = subprocess.run(
        [python, "-m", project, "install", str(archive)], env=device, capture_output=True, text=True, timeout=120
    )
    assert put.returncode == 0, put.stderr
    code = (
        f"import sys, json, {project} as k; loaded = sorted(m for m in ('dill', 'pandas') if m in sys.modules); "
        f"{call}; print(json.dumps([one.{output}, [m.{output} for m in many], "
        "sorted({m.split('.')[0] for m in sys.modules} & {'feast', 'tritonclient'}), k.__file__, loaded]))"
    )
    answer = subprocess.run([python, "-c", code], env=device, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    one, many, heavy, where, at_import = json.loads(answer.stdout)
    assert 0.0 <= one <= 1.0 and many[0] == pytest.approx(one) and len(many) == 2
    assert heavy == [] and where.startswith(str(site))
    assert at_import == []  # dill and pandas load with the first prediction, not with the package

    # the generated repository's own tests: predict on the real bundle; damaged, truncated, stale refused (and
    # with request-time features: request values per key, a missing one, the on-demand features Feast's own, a
    # damaged or unloadable transformation refused)
    _own_tests_pass(repo, env, "tests/test_embedded.py", own_tests)
