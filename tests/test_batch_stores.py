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
from pathlib import Path

import pytest
from test_runtimes import EMBEDDED_SPEC, batch_spec
from triton_harness import generate, make_generated

from generator.generate import generate as generate_in_memory

RUFF = Path(sys.executable).with_name("ruff")
RUFF_RULES = ["--select", "E,F,W,I,B,UP,C4,SIM,RUF", "--ignore", "RUF001,RUF002,RUF003,B008"]
# what every scorer imports: the standard library, numpy, pyarrow, joblib for the model
COMMON = {"__future__", "argparse", "json", "sys", "time", "collections", "datetime", "pathlib", "typing"}
COMMON |= {"numpy", "pyarrow", "joblib"}
PARQUET_OUT = {"tempfile", "shutil"}  # partitioned parquet scores: staging folder, swap
# warehouse -> (what reads the population, the Feast source class it must be, extra modules it imports)
STORES = {
    "files": ("file", None, PARQUET_OUT),
    "postgres": ("table", None, {"os", "psycopg"}),
    "bigquery": ("feast", ("feast", "BigQuerySource"), PARQUET_OUT | {"contextlib", "feast", "pandas"}),
    "snowflake": ("feast", ("feast", "SnowflakeSource"), PARQUET_OUT | {"contextlib", "feast", "pandas"}),
    "redshift": ("feast", ("feast", "RedshiftSource"), PARQUET_OUT | {"contextlib", "feast", "pandas"}),
    "spark": (
        "feast",
        ("feast.infra.offline_stores.contrib.spark_offline_store.spark_source", "SparkSource"),
        PARQUET_OUT | {"contextlib", "feast", "pandas"},
    ),
}
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

    # ruff-clean with the generated repository's own settings
    if not RUFF.is_file():
        pytest.skip("ruff is not installed in this environment")
    repo = tmp_path / "repo"
    for path in ("batch/score.py", "batch/__init__.py", "pyproject.toml"):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(files[path])
    for argv in (["check", "--no-cache", *RUFF_RULES], ["format", "--check", "--no-cache"]):
        ruff = subprocess.run([str(RUFF), *argv, "batch"], cwd=repo, capture_output=True, text=True)
        assert ruff.returncode == 0, ruff.stdout


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
    (partition,) = (repo / "scores" / "kiosk_spark_scores").iterdir()
    scores = pd.read_parquet(partition)
    assert sorted(scores["visitor_id"]) == population
    assert scores["score"].between(0, 1).all() and set(scores["run_id"]) == {"spark1"}
