"""Batch scoring reads its population through the store the spec decides.

PostgreSQL is read with one query when it is the warehouse, parquet files in place on the embedded default, and
the warehouses Feast alone reads (Spark, BigQuery, Snowflake, Redshift) through Feast's own offline store: the
registry's source of the warehouse's type, read by the store's pull_latest_from_table_or_query (one row per key,
computed in the warehouse). BigQuery, Snowflake and Redshift cannot run here: their scorers are held statically
(they compile, import only what their warehouse needs, are ruff-clean with the repository's own settings and name
their source type). Spark runs for real (slow): a local session reads the lake's parquet files.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from test_runtimes import EMBEDDED_SPEC, batch_spec
from triton_harness import generate, make_generated

from generator.generate import generate as generate_in_memory

RUFF = Path(sys.executable).with_name("ruff")
BANDIT = Path(sys.executable).with_name("bandit")
RUFF_RULES = ["--select", "E,F,W,I,B,UP,C4,SIM,RUF", "--ignore", "RUF001,RUF002,RUF003,B008"]
# what every scorer imports: the standard library, numpy, pyarrow, joblib for the model
COMMON = {"__future__", "argparse", "json", "sys", "time", "collections", "datetime", "pathlib", "typing"}
COMMON |= {"numpy", "pyarrow", "joblib"}
PARQUET_OUT = {"tempfile", "shutil"}  # partitioned parquet scores: staging folder, swap
FEAST_READ = {"contextlib", "feast", "pandas", "os", "uuid"}  # Feast reads; env settings and staging names
# warehouse -> (what reads the population, the Feast source class it must be, extra modules it imports: the
# score writer's client for its warehouse alone)
STORES = {
    "files": ("file", None, PARQUET_OUT),
    "postgres": ("table", None, {"os", "psycopg"}),
    "bigquery": ("feast", ("feast", "BigQuerySource"), FEAST_READ | {"google", "io"}),
    "snowflake": ("feast", ("feast", "SnowflakeSource"), FEAST_READ | {"snowflake"}),
    "redshift": ("feast", ("feast", "RedshiftSource"), FEAST_READ | {"boto3", "io"}),
    "spark": (
        "feast",
        ("feast.infra.offline_stores.contrib.spark_offline_store.spark_source", "SparkSource"),
        FEAST_READ | {"pyspark"},
    ),
}
# the client each warehouse's scores are written with, in the generated requirements of that warehouse alone
SCORE_CLIENTS = {"bigquery": "google-cloud-bigquery", "snowflake": "snowflake-connector-python", "redshift": "boto3"}
OFFLINE_UTILS = "feast.infra.offline_stores.offline_utils"
SOURCE_CLASSES = {"BigQuerySource", "SnowflakeSource", "RedshiftSource", "SparkSource", "PostgreSQLSource"}


def _imports(tree: ast.Module) -> tuple[set[str], set[tuple[str, str]]]:
    """(top-level modules, (module, name) of every `from` import) anywhere in the module."""
    modules: set[str] = set()
    names: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
            names |= {(node.module, a.name) for a in node.names}
    return modules, names


@pytest.mark.parametrize("warehouse", list(STORES))
def test_population_is_read_through_the_decided_store(tmp_path: Path, warehouse: str) -> None:
    kind, source, extra = STORES[warehouse]
    files = generate_in_memory(batch_spec(tmp_path, warehouse=warehouse)).files
    text = files["batch/score.py"].decode()
    tree = ast.parse(text)
    compile(tree, "batch/score.py", "exec")
    modules, names = _imports(tree)
    assert modules == COMMON | extra, sorted(modules ^ (COMMON | extra))
    assert f'"kind": "{kind}"' in text
    assert {n for _, n in names} & SOURCE_CLASSES == ({source[1]} if source else set())
    if source is not None:  # Feast's offline store, on the registry's source of the warehouse's type
        assert source in names and (OFFLINE_UTILS, "get_offline_store_from_config") in names
        assert f"isinstance(source, {source[1]})" in text
        assert "pull_latest_from_table_or_query(" in text and "end_date=as_of" in text
        assert "get_historical_features(" in text  # the features: the path training uses
        assert "population(as_of, store)" in text
    else:
        assert "pull_latest_from_table_or_query" not in text
        assert ("psycopg.connect(" in text) is (warehouse == "postgres")
        assert ("ds.dataset(path" in text) is (warehouse == "files")

    # ruff-clean with the generated repository's own settings, and bandit-clean with its own (make security)
    if not RUFF.is_file():
        pytest.skip("ruff is not installed in this environment")
    repo = tmp_path / "repo"
    for path in ("batch/score.py", "batch/__init__.py", "pyproject.toml", ".security/bandit.yaml"):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(files[path])
    for argv in (["check", "--no-cache", *RUFF_RULES], ["format", "--check", "--no-cache"]):
        ruff = subprocess.run([str(RUFF), *argv, "batch"], cwd=repo, capture_output=True, text=True)
        assert ruff.returncode == 0, ruff.stdout
    if BANDIT.is_file():  # the SQL the writers build from the spec's names carries its reasoned nosec
        bandit = [str(BANDIT), "-q", "-c", ".security/bandit.yaml", "-r", "batch"]
        scanned = subprocess.run(bandit, cwd=repo, capture_output=True, text=True, timeout=120)
        assert scanned.returncode == 0, scanned.stdout[-3000:]


# ------------------------------------------------------------------ Spark, for real (slow)
def _score(repo: Path, env: dict[str, str], *args: str) -> dict[str, object]:
    ran = subprocess.run(
        [sys.executable, "-m", "batch.score", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    assert ran.returncode == 0, ran.stderr[-4000:]
    lines = ran.stdout.strip().splitlines()
    assert len(lines) == 1, ran.stdout  # Feast's progress goes to stderr: stdout is the result alone
    return dict(json.loads(lines[0]))


@pytest.mark.slow
def test_spark_warehouse_scores_its_population_read_by_feasts_spark_store(tmp_path: Path) -> None:
    """A Spark warehouse on a local session: the population comes from the lake's parquet files through Feast's
    Spark offline store, as of the run time. The lake lies outside the repository (SPARK_LAKE_ROOT) and holds the
    only copy of the population's source, with an entity the repository's sample data does not have (scored)
    and one whose only row lies after the run time (not in the population)."""
    pytest.importorskip("pyspark")
    pd = pytest.importorskip("pandas")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java")
    spec = tmp_path / "kiosk_spark.yaml"
    spec.write_text(
        EMBEDDED_SPEC.format(name="kiosk_spark")
        .replace("mode: embedded", "mode: batch")
        .replace("warehouse: files", "warehouse: spark")
    )
    repo = tmp_path / "kiosk"
    generate(spec, repo)
    assert 'POPULATION = {"name": "visits", "kind": "feast"' in (repo / "batch" / "score.py").read_text()
    env = {**os.environ, "SPARK_MASTER": "local[2]", "PYSPARK_PYTHON": sys.executable}
    made = make_generated(repo, "data", env=env)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]

    # the lake lives outside the repository: SPARK_LAKE_ROOT, read when `make apply` registers the sources
    lake = tmp_path / "lake"
    (lake / "data").mkdir(parents=True)
    data = repo / "feature_repo" / "data"
    for other in data.glob("*.parquet"):
        shutil.copy(other, lake / "data" / other.name)
    visits = pd.read_parquet(data / "visits.parquet")
    now = pd.Timestamp.now(tz="UTC")
    newcomer = visits.iloc[[0]].assign(visitor_id="visitor_lake_only", event_timestamp=now - pd.Timedelta(hours=2))
    future = visits.iloc[[0]].assign(visitor_id="visitor_from_tomorrow", event_timestamp=now + pd.Timedelta(days=1))
    moved = pd.concat([visits, newcomer, future], ignore_index=True)
    moved["event_timestamp"] = pd.to_datetime(moved["event_timestamp"], utc=True)
    moved.to_parquet(lake / "data" / "visits.parquet", index=False, coerce_timestamps="us")  # Spark reads micros
    (data / "visits.parquet").unlink()  # nothing to read in place: only the lake, through Spark
    env["SPARK_LAKE_ROOT"] = str(lake)
    built = make_generated(repo, "apply", "train", env=env)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]

    result = _score(repo, env, "--run-id", "spark1", "--chunk-rows", "17")
    population = sorted(set(visits["visitor_id"]) | {"visitor_lake_only"})
    assert result["population"] == len(population) and result["scored"] == len(population), result
    # the scores: a dataset in the lake partitioned by run_id, written by Spark (nothing under the repository)
    dataset = lake / "scores" / "kiosk_spark_scores"
    assert result["where"] == str(dataset) and not (repo / "scores").exists()
    assert sorted(p.name for p in dataset.glob("run_id=*")) == ["run_id=spark1"]
    scores = pd.read_parquet(dataset)
    assert sorted(scores["visitor_id"]) == population
    assert scores["score"].between(0, 1).all() and set(scores["run_id"].astype(str)) == {"spark1"}

    # another run (named as Airflow names its runs), then a rerun of the first: dynamic partition overwrite
    # replaces spark1 alone, no duplicates
    scheduled = "scheduled__2026-11-30T06:00:00+00:00"
    _score(repo, env, "--run-id", scheduled)
    again = _score(repo, env, "--run-id", "spark1", "--chunk-rows", "5")
    assert again["scored"] == len(population), again
    runs = pd.read_parquet(dataset)["run_id"].astype(str).value_counts().to_dict()
    assert runs == {"spark1": len(population), scheduled: len(population)}, runs
    assert not list((lake / "scores" / ".staging").glob("*/*")), "the staged chunks are removed"


# ------------------------------------------------------------------ the warehouses' score writers, statically
def _load_scorer(tmp_path: Path, warehouse: str) -> tuple[Any, str]:
    """(batch/score.py of a batch system on `warehouse`, imported; requirements.txt): its module level imports
    only the standard library, numpy and pyarrow, so the statements its writer sends can be built here."""
    files = generate_in_memory(batch_spec(tmp_path, warehouse=warehouse)).files
    path = tmp_path / "repo" / "batch" / "score.py"
    path.parent.mkdir(parents=True)
    path.write_bytes(files["batch/score.py"])
    module = types.ModuleType(f"score_{warehouse}")
    module.__file__ = str(path)
    exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
    return module, files["requirements.txt"].decode()


def _parses(statement: str, dialect: str) -> None:
    """The statement parses as `dialect` SQL where sqlglot is installed (else the asserts on its text stand): a
    statement sqlglot knows, not one it passes through unparsed (a Command)."""
    try:
        import sqlglot
        from sqlglot import exp
    except ImportError:
        return
    parsed = sqlglot.parse_one(statement.replace("%s", "'run'"), read=dialect)
    assert not isinstance(parsed, exp.Command), statement


@pytest.mark.parametrize("warehouse", list(SCORE_CLIENTS))
def test_warehouse_scores_replace_their_run_in_one_transaction(tmp_path: Path, warehouse: str) -> None:
    """BigQuery, Snowflake and Redshift cannot run here: the table each writer creates has the entity keys and the
    run's columns in the warehouse's types; its commit deletes the run's rows and inserts the staged ones in one
    transaction; a run id that could leave its partition or its SQL literal is refused; the warehouse's client is
    in the requirements of that warehouse alone."""
    score, requirements = _load_scorer(tmp_path, warehouse)
    for other, client in SCORE_CLIENTS.items():
        assert (client in requirements) is (other == warehouse), requirements
    names = ["customer_id", "score", "model_version", "run_id", "scored_at"]
    assert [c.split()[0] for c in score.TABLE_COLUMNS] == names
    assert all(c.endswith("NOT NULL") for c in score.TABLE_COLUMNS[1:])
    columns = ", ".join(names)
    if warehouse == "bigquery":
        table, staging = "p.d.churn_scoring_scores", "p.d._churn_scoring_scores_staging_1"
        sql = score.bigquery_sql(table, staging)
        assert sql["create"].startswith(f"CREATE TABLE IF NOT EXISTS `{table}` (customer_id INT64, score FLOAT64")
        assert sql["staging"].startswith(f"CREATE TABLE `{staging}` LIKE `{table}`")
        replace = [s.strip() for s in sql["replace"].split(";")]
        assert replace == [
            "BEGIN TRANSACTION",
            f"DELETE FROM `{table}` WHERE run_id = @run_id",
            f"INSERT INTO `{table}` ({columns}) SELECT {columns} FROM `{staging}`",
            "COMMIT TRANSACTION",
        ]
        statements, dialect = [sql["create"], sql["staging"], *replace[1:3], sql["drop"]], "bigquery"
    elif warehouse == "snowflake":
        sql = score.snowflake_sql("STAGING_1")
        assert sql["create"].startswith("CREATE TABLE IF NOT EXISTS churn_scoring_scores (customer_id BIGINT, score")
        assert [sql[k] for k in ("begin", "delete", "insert", "commit")] == [
            "BEGIN",
            "DELETE FROM churn_scoring_scores WHERE run_id = %s",
            f"INSERT INTO churn_scoring_scores ({columns}) SELECT {columns} FROM STAGING_1",
            "COMMIT",
        ]
        statements, dialect = [sql["create"], sql["staging"], sql["delete"], sql["insert"]], "snowflake"
    else:
        statements = score.redshift_sql("2026-11-30", "t_staging", "s3://b/p/x/", "arn:aws:iam::1:role/r", True)
        assert statements[0].startswith("CREATE TABLE IF NOT EXISTS churn_scoring_scores (customer_id BIGINT, score")
        assert statements[1:] == [
            "CREATE TEMP TABLE t_staging (LIKE churn_scoring_scores)",
            "COPY t_staging FROM 's3://b/p/x/' IAM_ROLE 'arn:aws:iam::1:role/r' FORMAT AS PARQUET",
            "DELETE FROM churn_scoring_scores WHERE run_id = '2026-11-30'",
            f"INSERT INTO churn_scoring_scores ({columns}) SELECT {columns} FROM t_staging",
        ]
        nothing = score.redshift_sql("r1", "t_staging", "s3://b/p/x/", "arn", False)  # nothing scored: no COPY
        assert not any(s.startswith("COPY") for s in nothing) and "run_id = 'r1'" in nothing[2]
        dialect = "redshift"
    for statement in statements:
        _parses(statement, dialect)
    score.check_run_id("scheduled__2026-11-30T06:00:00.123456+00:00")  # Airflow's run ids
    for bad in ("x'; DROP TABLE churn_scoring_scores; --", "../other", "", "r" * 129, "a b"):
        with pytest.raises(score.ScoringError, match="run id"):
            score.check_run_id(bad)


class _Recorder:
    """Stands in for a warehouse client: records each call, answers what the writer reads back."""

    def __init__(self, calls: list[tuple[Any, ...]], name: str) -> None:
        self.calls, self.name = calls, name

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            import pyarrow.parquet as pq

            for value in [*args, *kwargs.values()]:  # a staged chunk: the rows it holds
                if hasattr(value, "getvalue") or isinstance(value, bytes):
                    data = value if isinstance(value, bytes) else value.getvalue()
                    kwargs = {**kwargs, "rows": pq.read_table(pa.BufferReader(data)).num_rows}
            self.calls.append((self.name, method, args, kwargs))
            if method == "batch_execute_statement":
                return {"Id": "statement-1"}
            if method == "describe_statement":
                return {"Status": "FINISHED"}
            return self

        return call

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _fake_clients(monkeypatch: pytest.MonkeyPatch, calls: list[tuple[Any, ...]]) -> None:
    """google.cloud.bigquery, snowflake.connector (with pandas_tools) and boto3, recording every call."""
    bigquery = types.SimpleNamespace(
        Client=lambda **kw: _Recorder(calls, "bigquery"),
        LoadJobConfig=dict,
        QueryJobConfig=dict,
        ScalarQueryParameter=lambda *a: a,
        SourceFormat=types.SimpleNamespace(PARQUET="PARQUET"),
        WriteDisposition=types.SimpleNamespace(WRITE_APPEND="WRITE_APPEND"),
    )
    cloud = types.ModuleType("google.cloud")
    cloud.bigquery = bigquery  # type: ignore[attr-defined]
    connector = types.ModuleType("snowflake.connector")
    connector.connect = lambda **kw: _Recorder(calls, "snowflake")  # type: ignore[attr-defined]
    snowflake = types.ModuleType("snowflake")
    snowflake.connector = connector  # type: ignore[attr-defined]
    tools = types.ModuleType("snowflake.connector.pandas_tools")

    def write_pandas(conn: Any, frame: Any, table: str, **kw: Any) -> tuple[bool, int, int, list[Any]]:
        calls.append(("snowflake", "write_pandas", (table, list(frame.columns)), {"rows": len(frame), **kw}))
        return True, 1, len(frame), []

    tools.write_pandas = write_pandas  # type: ignore[attr-defined]
    boto3 = types.ModuleType("boto3")
    boto3.client = lambda name, **kw: _Recorder(calls, name)  # type: ignore[attr-defined]
    for name, module in {
        "google.cloud": cloud,
        "google.cloud.bigquery": bigquery,
        "snowflake": snowflake,
        "snowflake.connector": connector,
        "snowflake.connector.pandas_tools": tools,
        "boto3": boto3,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    env = {"BIGQUERY_PROJECT": "p", "BIGQUERY_DATASET": "d", "AWS_REGION": "eu-west-1", "REDSHIFT_USER": "u"}
    env |= {f"SNOWFLAKE_{k}": "x" for k in ("ACCOUNT", "USER", "PASSWORD", "WAREHOUSE", "DATABASE", "SCHEMA")}
    env |= {"REDSHIFT_S3_STAGING_LOCATION": "s3://bucket/stage", "REDSHIFT_IAM_ROLE": "arn:role"}
    env |= {"REDSHIFT_CLUSTER_ID": "c", "REDSHIFT_DATABASE": "db"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("warehouse", list(SCORE_CLIENTS))
def test_warehouse_writers_stage_chunks_then_replace_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse: str
) -> None:
    """Each writer driven through a run against recording stand-ins of its client: two chunks staged, then the
    run's rows replaced from the staging in one transaction, the staging dropped (what the real services would
    be sent; their own behaviour is not tested here)."""
    from datetime import UTC, datetime

    score, _ = _load_scorer(tmp_path, warehouse)
    calls: list[tuple[Any, ...]] = []
    _fake_clients(monkeypatch, calls)
    cls = {"bigquery": "BigQueryScores", "snowflake": "SnowflakeScores", "redshift": "RedshiftScores"}[warehouse]
    writer = getattr(score, cls)("run-1", 3, datetime(2026, 11, 30, tzinfo=UTC))
    for ids in ([1, 2, 3], [4, 5]):
        writer.write(pa.table({"customer_id": ids, "score": [0.5] * len(ids)}))
    writer.write(pa.table({"customer_id": pa.array([], pa.int64()), "score": pa.array([], pa.float64())}))
    where = writer.commit()
    assert writer.rows == 5 and "churn_scoring_scores" in where
    staged = [c[3]["rows"] for c in calls if "rows" in c[3]]
    assert staged == [3, 2], calls  # the empty chunk sends nothing
    sent = [str(c[2][0]) for c in calls if c[1] in ("query", "execute")]
    if warehouse == "bigquery":
        assert sent[0].startswith("CREATE TABLE IF NOT EXISTS `p.d.churn_scoring_scores`") and " LIKE " in sent[1]
        assert sent[2].startswith("BEGIN TRANSACTION; DELETE FROM `p.d.churn_scoring_scores` WHERE run_id = @run_id")
        assert sent[3].startswith("DROP TABLE IF EXISTS `p.d._churn_scoring_scores_staging_")
        (replace,) = [c for c in calls if c[1] == "query" and "job_config" in c[3]]
        assert replace[3]["job_config"] == {"query_parameters": [("run_id", "STRING", "run-1")]}
    elif warehouse == "snowflake":
        assert [s.split(" (")[0].split(" FROM")[0] for s in sent] == [
            "CREATE TABLE IF NOT EXISTS churn_scoring_scores",
            f"CREATE TEMPORARY TABLE {writer.staging} LIKE churn_scoring_scores",
            "BEGIN",
            "DELETE",
            "INSERT INTO churn_scoring_scores",
            "COMMIT",
        ]
        (delete,) = [c for c in calls if c[1] == "execute" and str(c[2][0]).startswith("DELETE")]
        assert delete[2][1] == ("run-1",)
        columns = next(c[2][1] for c in calls if c[1] == "write_pandas")
        assert columns == ["CUSTOMER_ID", "SCORE", "MODEL_VERSION", "RUN_ID", "SCORED_AT"]
    else:
        (batch,) = [c for c in calls if c[1] == "batch_execute_statement"]
        sqls = batch[3]["Sqls"]
        assert sqls[2].startswith(f"COPY churn_scoring_scores_staging FROM 's3://bucket/{writer.prefix}'")
        assert sqls[3] == "DELETE FROM churn_scoring_scores WHERE run_id = 'run-1'"
        puts = [c[3]["Key"] for c in calls if c[1] == "put_object"]
        assert puts == [f"{writer.prefix}part-00000.parquet", f"{writer.prefix}part-00001.parquet"]
        assert writer.prefix.startswith("stage/churn_scoring_scores/run-1-")
        (removed,) = [c for c in calls if c[1] == "delete_objects"]
        assert [o["Key"] for o in removed[3]["Delete"]["Objects"]] == puts
