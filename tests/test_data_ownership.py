"""No generated script deletes from a table the system does not own.

Every preset (and the variants that add a warehouse, hashed personal data and a PostgreSQL or SQLite
online store) is rendered; every generated Python file that can delete (DELETE, DROP, TRUNCATE, file
removal) is one of the three that are allowed to, and each of those touches only what the system
writes: the retention purge its OWNED list (protected copies, the online store's tables, the batch
predictions), the PII protection its protected copies, the sample loader only tables it marked as its
own. Then, on the real PostgreSQL, the purge deletes old rows from the system's tables and leaves
the source tables exactly as they were.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.decide import decide
from generator.decide.architecture import Architecture
from generator.plan.plan import build_plan
from generator.render.render import render_file, render_plan
from requirements_spec.models import FileSourceSpec, TableSourceSpec
from requirements_spec.validate import parse_spec

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "requirements_spec" / "presets"
# deleting stored data: SQL, Redis, Feast's teardown (a state file or staging folder of the program is no data)
DESTRUCTIVE = re.compile(r"DELETE\s+FROM|DROP\s+TABLE|TRUNCATE|flushdb|flushall|\.teardown\(", re.IGNORECASE)
# the generated files allowed to delete, and what each may delete (checked below)
ALLOWED = {"scripts/purge.py", "scripts/protect_pii.py", "scripts/generate_sample_data.py", "batch/score.py"}


def preset_data(name: str) -> dict[str, Any]:
    return yaml.safe_load((PRESETS / f"{name}.yaml").read_text())


def arch_of(data: dict[str, Any], **stores: str) -> Architecture:
    arch = decide(parse_spec(yaml.safe_dump(data, sort_keys=False), "spec.yaml"))
    if stores and arch.feature_store is not None:
        arch = arch.model_copy(update={"feature_store": arch.feature_store.model_copy(update=stores)})
    return arch


@functools.cache
def variants() -> dict[str, Architecture]:
    out = {p.stem: arch_of(preset_data(p.stem)) for p in sorted(PRESETS.glob("*.yaml"))}
    hashed = preset_data("reference")
    hashed["privacy"]["pii_handling"] = "hash"
    hashed["existing"]["warehouse"] = "postgres"
    out["reference_hash_postgres"] = arch_of(hashed, online_store="postgres", offline_store="postgres")
    hashed_files = preset_data("realtime")
    out["realtime_hash_sqlite_file"] = arch_of(hashed_files, online_store="sqlite", offline_store="file")
    scored = preset_data("reference")  # batch scoring into run partitions (the warehouse is files)
    scored["serving"]["mode"] = "batch"
    out["reference_batch_files"] = arch_of(scored)
    return out


@functools.cache
def python_files(name: str) -> dict[str, str]:
    """The generated Python files of a variant (only those: rendering docs and diagrams is not needed)."""
    arch = variants()[name]
    return {f.path: render_file(f, arch).decode() for f in build_plan(arch).files if f.path.endswith(".py")}


def source_locations(arch: Architecture) -> set[str]:
    """Where the spec's sources live: the data owners', never the system's to delete."""
    out: set[str] = set()
    for s in arch.spec.sources:
        if isinstance(s, FileSourceSpec):
            out |= {s.path, s.name, f"data/{s.name}.parquet"}
        elif isinstance(s, TableSourceSpec):
            out |= {s.table, s.table.rpartition(".")[2], f"data/{s.name}.parquet"}
    return out


def load(path: str, text: str, tmp: Path) -> Any:
    target = tmp / path.replace("/", "_")
    target.write_text(text)
    spec = importlib.util.spec_from_file_location(target.stem, target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # top level: constants and stdlib imports only
    return module


@pytest.mark.parametrize("name", sorted(variants()))
def test_no_generated_script_deletes_what_the_system_does_not_own(name: str, tmp_path: Path) -> None:
    arch = variants()[name]
    files = python_files(name)
    deleting = {p for p, text in files.items() if DESTRUCTIVE.search(text)}
    assert deleting <= ALLOWED, f"{name}: scripts that can delete: {sorted(deleting - ALLOWED)}"
    sources = source_locations(arch)
    project = arch.feature_store.project if arch.feature_store else ""
    if "scripts/purge.py" in files:
        purge = load("scripts/purge.py", files["scripts/purge.py"], tmp_path)
        # the sources the purge refuses are the spec's own (none where no feature store reads any)
        assert set(purge.SOURCES) <= sources and bool(purge.SOURCES) == bool(arch.feature_store), (name, purge.SOURCES)
        for what, kind, location, _ in purge.OWNED:
            assert location not in sources, f"{name}: the purge deletes from the source {location} ({what})"
            if kind == "logs":  # the serving logs that may hold personal outputs
                assert location == ".run", (name, location)
            elif kind == "online":
                assert location.startswith(f"{project}_"), (name, location)
            elif kind == "output":  # what batch scoring writes: its run partitions
                assert location.startswith("scores/"), (name, location)
            elif location.endswith("_scores"):  # the score table batch scoring writes
                assert kind == "table" and location == f"{arch.spec.project.name}_scores", (name, location)
            else:  # a protected copy the PII protection writes
                assert location.endswith(("_protected", ".parquet")) and "protected" in location, (name, location)
        # and the purge refuses a source even if someone adds one to OWNED
        assert "refusing to purge" in files["scripts/purge.py"]
    if "scripts/protect_pii.py" in files:
        protect = load("scripts/protect_pii.py", files["scripts/protect_pii.py"], tmp_path)
        for source, (_, raw, protected, _) in protect.PROTECTED.items():
            assert raw in sources and protected not in sources, (name, source, raw, protected)
            assert protected.rpartition(".")[2].endswith("_protected") or protected.startswith("data/protected/")
    if "scripts/generate_sample_data.py" in files and "DROP TABLE" in files["scripts/generate_sample_data.py"]:
        text = files["scripts/generate_sample_data.py"]
        # the sample loader replaces only tables it marked as its own sample data
        assert text.index("mark != SAMPLE_MARK") < text.index("DROP TABLE")
    if "batch/score.py" in files:  # a rerun replaces only its own run's rows in its own score table
        deletes = re.findall(r"DELETE\s+FROM[^\n]*", files["batch/score.py"])
        table = arch.spec.existing.warehouse == "postgres"  # else one partition per run, swapped in
        assert deletes == ['DELETE FROM {t} WHERE run_id = %s").format(t=self.table), (run_id,))'] * table, deletes


def test_the_variants_exercise_every_kind_of_owned_data() -> None:
    kinds: set[str] = set()
    for name in variants():
        text = python_files(name).get("scripts/purge.py", "")
        kinds |= set(re.findall(r'^    \([^,]+, "(\w+)",', text, flags=re.M))
    assert kinds == {"file", "table", "online", "output", "logs"}, kinds


# ------------------------------------------------------------------ on the real PostgreSQL
PURGE = """
import importlib.util, sys
from datetime import timedelta
spec = importlib.util.spec_from_file_location("purge", sys.argv[1])
purge = importlib.util.module_from_spec(spec)
spec.loader.exec_module(purge)
purge.RETENTION = timedelta(hours=float(sys.argv[2]))
raise SystemExit(purge.main([]))
"""


@pytest.mark.slow
@pytest.mark.postgres
def test_purge_deletes_old_rows_of_the_system_tables_and_never_a_source(tmp_path: Path) -> None:
    from test_feature_repo_e2e import NOW, make_variant, run_variants
    from triton_harness import postgres_env, scratch_database

    psycopg = pytest.importorskip("psycopg")
    data = preset_data("reference")
    data["existing"]["warehouse"] = "postgres"
    data["delivery"]["mlops_level"] = 2
    data["privacy"]["pii_handling"] = "hash"
    data["features"]["services"][0]["features"].append("driver_activity.phone_number")
    arch = arch_of(data)
    fs = arch.feature_store
    assert fs is not None and (fs.online_store, fs.offline_store) == ("postgres", "postgres")
    with scratch_database("archgen_purge") as (db, user):
        env = postgres_env(db, user)
        variant = make_variant("purge", arch, tmp_path, "--postgres", env=env)
        files = render_plan(build_plan(arch), arch)
        (variant.root / "scripts" / "purge.py").write_bytes(files["scripts/purge.py"])
        run_variants([variant], tmp_path)  # apply, protect + materialize: the system's tables exist
        online = f"{fs.project}_driver_activity"
        owned = {"driver_activity_protected": "event_timestamp", online: "event_ts"}
        sources = ["driver_activity", "ride_outcomes"]

        def snapshot() -> dict[str, Any]:
            with psycopg.connect(host="127.0.0.1", port=5432, dbname=db, user=user) as conn:
                out: dict[str, Any] = {
                    t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1, 2').fetchall() for t in sources
                }
                for table, ts in owned.items():
                    out[table] = conn.execute(f'SELECT "{ts}" FROM "{table}"').fetchall()
            return out

        before = snapshot()
        assert all(before[t] for t in [*sources, *owned]), {t: len(v) for t, v in before.items()}
        hours = 24.0
        proc = subprocess.run(
            [sys.executable, "-c", PURGE, str(variant.root / "scripts" / "purge.py"), str(hours)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **env, "PYTHONWARNINGS": "ignore"},
            cwd=variant.root,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        after = snapshot()
        for table in sources:  # the data owners' tables: not one row changed
            assert after[table] == before[table], f"the purge changed the source {table}"
        from datetime import UTC, timedelta

        cutoff = (NOW - timedelta(hours=hours)).replace(tzinfo=None)

        def naive(value: Any) -> Any:
            return value.astimezone(UTC).replace(tzinfo=None) if getattr(value, "tzinfo", None) else value

        protected_old = [r for (r,) in before["driver_activity_protected"] if naive(r) < cutoff]
        assert protected_old, "the sample data has no row older than the cutoff: the test proves nothing"
        assert all(naive(r) >= cutoff - timedelta(minutes=5) for (r,) in after["driver_activity_protected"])
        assert len(after["driver_activity_protected"]) < len(before["driver_activity_protected"])
        assert all(naive(r) >= cutoff - timedelta(minutes=5) for (r,) in after[online])
        assert "protected copy of driver_activity: " in proc.stdout and f"online table {online}: " in proc.stdout
