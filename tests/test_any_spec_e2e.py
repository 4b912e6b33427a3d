"""Any valid spec, not only the presets: the generated repository runs its own `make demo` and `make test`.

A property-based end-to-end test: `tests.strategies.runnable_specs()` draws specs over the spec language
(entity dtypes and counts, file, stream and request sources, on-demand views, views that roll raw events up
over several windows on parquet files or PostgreSQL tables, ensembles and BLS pipelines, every serving mode
and protocol, PII handling, MLOps levels, orchestrators, platforms, a tensor-input model without a feature
store); each is generated with `archgen new`, then the repository's own `make demo` runs (sample data, feast
apply, materialize, train, the server, one prediction) and its own `make test` passes with the live latency,
throughput, freshness and quality tests run, not skipped.

Derandomized (a fixed seed per test), one example by default (ARCHGEN_PBT_EXAMPLES=N for more); a failing
spec is printed as YAML, shrunk as far as Hypothesis's shrink time allows. ARCHGEN_PBT_SEED=N explores other
specs than the default ones, without shrinking (each example takes minutes): the first failing spec is printed.
Besides the drawn specs, fixed ones run the same way: string join keys with several entities and
request-time features (tests/specs/kiosk_strings.yaml), a per-object pipeline (tests/specs/parcel_labels.yaml),
a batch scorer on PostgreSQL with a string and an int key and a rolled-up view (tests/specs/loyalty_batch.yaml),
features that are rollups of raw events at two grains (tests/specs/payment_rollups.yaml), an embedded library
with a string and an int key whose on-demand view reads request-time values (tests/specs/kiosk_embedded.yaml: the
bundle carries the transformation, predict takes the request values), a weekly rollup that counts a string column
beside a plain view of the same PostgreSQL events, served in process (tests/specs/ticket_rollups.yaml, found by the
drawn specs), and every preset, the design's two specs among them (the real-time example: PostgreSQL created by the
repository's own prerequisites script, Redis, a two-model pipeline, hashed personal data, 1-minute freshness).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, note, seed, settings
from triton_harness import ROOT, have_triton, make_argv

from requirements_spec.models import Spec
from tests.strategies import runnable_specs, spec_yaml

EXAMPLES = int(os.environ.get("ARCHGEN_PBT_EXAMPLES", "1"))
# ARCHGEN_PBT_SEED=N draws other specs than the fixed default (to explore; a failure prints the seed to rerun)
SEED = os.environ.get("ARCHGEN_PBT_SEED")
SPECS = ROOT / "tests" / "specs"
PRESETS = ROOT / "requirements_spec" / "presets"
ARCHGEN = [sys.executable, "-m", "generator.cli"]
# the live tests of a generated repository: each must run (pass), never skip
LIVE = ("test_fitness_latency.py", "test_fitness_freshness.py", "test_fitness_quality.py")
LIVE_TESTS = ("test_serving_latency_p99_ms", "test_serving_throughput_rps", "online_store_refreshed", "min_quality")
TAIL = 60

pytestmark = [
    pytest.mark.slow,
    pytest.mark.triton,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make"),
    pytest.mark.skipif(not have_triton(), reason="no tritonserver in the Triton venv (ARCHGEN_TRITON_VENV)"),
]


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-TAIL:])


def _env(workdir: Path, *pytest_args: str) -> dict[str, str]:
    """The generated Makefile's recipes run with archgen's venvs, a short load test and their own database."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["FITNESS_LOAD_SECONDS"] = env.get("FITNESS_LOAD_SECONDS", "4")
    database = f"archgen_e2e_{uuid.uuid4().hex[:10]}"  # created by the repository's own scripts/prerequisites.py
    env["POSTGRES_DB"] = database
    env["FEAST_REGISTRY_URL"] = f"postgresql+psycopg://postgres:@127.0.0.1:5432/{database}"
    env["PYTEST_ADDOPTS"] = shlex.join(["-p", "no:cacheprovider", f"--junitxml={workdir / 'junit.xml'}", *pytest_args])
    env.pop("FITNESS_SKIP_LIVE", None)
    # the generated `archgen check .` test runs this checkout's archgen, whatever checkout the venv's script serves
    shim = workdir / "bin" / "archgen"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(
        f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} -m generator.cli "$@"\n'
    )
    shim.chmod(0o755)
    env["PATH"] = f"{shim.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _make(repo: Path, env: dict[str, str], *targets: str) -> subprocess.CompletedProcess[str]:
    argv = make_argv(*targets)
    argv.insert(2, "-o")  # the virtualenvs exist: never reinstall into the shared one
    argv.insert(3, "setup")
    return subprocess.run(
        argv, cwd=repo, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1200
    )


def _drop_database(env: dict[str, str]) -> None:
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        return
    try:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(env["POSTGRES_DB"])))
    except psycopg.Error:
        pass


def run_system(spec_file: Path, workdir: Path, shown: str, *, load_test: bool = True, max_rps: int = 0) -> str:
    """archgen new, then the repository's own `make demo` and `make test`; fails with the spec and the output.

    ``load_test=False`` leaves the generated load test (tests/test_fitness_latency.py) out of `make test`, for a
    spec whose scaled rate this machine cannot carry. Returns what `make demo` printed."""
    repo = workdir / "repo"
    new = subprocess.run(
        [*ARCHGEN, "new", str(spec_file), "-o", str(repo)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert new.returncode == 0, f"archgen new failed for\n{shown}\n{new.stdout}\n{new.stderr}"
    env = _env(workdir, *(() if load_test else ("--deselect", "tests/test_fitness_latency.py")))
    if max_rps:  # the rate one machine is asked for (the generated load test's FITNESS_MAX_RPS)
        env["FITNESS_MAX_RPS"] = str(max_rps)
    try:
        demo = _make(repo, env, "demo", "KEEP_SERVING=1")  # one server start for the demo and the live tests
        assert demo.returncode == 0, f"`make demo` failed for the spec\n{shown}\n--- output ---\n{_tail(demo.stdout)}"
        test = _make(repo, env, "test")
        assert test.returncode == 0, f"`make test` failed for the spec\n{shown}\n--- output ---\n{_tail(test.stdout)}"
    finally:
        _make(repo, env, "serve-stop")
        _drop_database(env)
    report = ET.parse(workdir / "junit.xml").getroot()
    skipped = []
    ran = []
    for case in report.iter("testcase"):
        name = case.get("name", "")
        module = case.get("classname", "").rsplit(".", 1)[-1] + ".py"
        if module not in LIVE:
            continue
        if any(child.tag == "skipped" for child in case):
            skipped.append(f"{module}::{name}")
        elif any(live in name for live in LIVE_TESTS):
            ran.append(name)
    assert not skipped, f"live tests skipped for the spec\n{shown}\n{skipped}"
    from generator.decide import decide
    from requirements_spec.validate import load_spec

    arch = decide(load_spec(spec_file))
    # a served system, and an embedded library, is held to its latency and throughput live
    if load_test and arch.serving.mode in ("online", "async", "embedded"):
        assert any("latency" in n for n in ran) and any("throughput" in n for n in ran), (ran, shown)
    tests = sum(1 for _ in report.iter("testcase"))
    assert tests >= 10, f"the generated `make test` ran only {tests} tests for the spec\n{shown}"
    return demo.stdout


@seed(int(SEED) if SEED else 0)
@settings(
    max_examples=EXAMPLES,
    derandomize=SEED is None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate] if SEED else list(Phase),
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(spec=runnable_specs())
def test_generated_system_of_any_spec_runs_its_demo_and_tests(
    spec: Spec, tmp_path_factory: pytest.TempPathFactory
) -> None:
    text = spec_yaml(spec)
    note(f"the spec, as YAML:\n{text}")
    workdir = tmp_path_factory.mktemp("pbt")
    spec_file = workdir / "spec.yaml"
    spec_file.write_text(text, encoding="utf-8")
    run_system(spec_file, workdir, f"--- spec.yaml ---\n{text}")


def _rollups_are_computed_once_and_served(repo: Path, demo: str) -> None:
    """make apply computed every rollup in full; materialization's run right after had nothing or only the newest
    boundaries to recompute; the online read serves windows holding several of the sample's raw events."""
    assert demo.count("full rebuild") == 2, demo  # merchant_daily and card_hourly, once each
    assert demo.count("up to date") + demo.count("recomputed") == 2, demo
    line = next(line for line in demo.splitlines() if line.startswith('{"model"'))
    features = json.loads(line)["predictions"][0]["features"]
    assert features["amount_count_28d"] > features["amount_count_1d"] >= 1, features
    assert features["amount_sum_7d"] > 0 and features["amount_sum_24h"] > 0 and features["items_max_7d"] >= 1
    assert features["amount_mean_24h"] > 0 and features["amount_count_6h"] >= 1, features
    for view in ("merchant_daily", "card_hourly"):
        state = json.loads((repo / "feature_repo" / "data" / "rollups" / "_state" / f"{view}.json").read_text())
        assert state["complete"] and state["counts"], state


# what else a fixed spec's run shows, checked on its repository and what its `make demo` printed
AFTER_THE_FIXED_RUN = {"payment_rollups": _rollups_are_computed_once_and_served}


@pytest.mark.parametrize(
    "spec_file",
    [
        SPECS / "kiosk_strings.yaml",
        SPECS / "parcel_labels.yaml",
        SPECS / "loyalty_batch.yaml",
        SPECS / "payment_rollups.yaml",
        SPECS / "kiosk_embedded.yaml",
        SPECS / "encrypted_batch.yaml",
        SPECS / "ticket_rollups.yaml",
        SPECS / "shelf_camera_embedded.yaml",
        SPECS / "slot_pricing_async.yaml",
    ],
    ids=[
        "string-keys-several-entities-request-features",
        "per-object-pipeline-onnx-step-personal-output",
        "batch-string-and-int-keys-rollups-postgres",
        "rollups-of-raw-events-at-two-grains",
        "embedded-string-and-int-keys-request-features",
        "batch-encrypted-personal-field",
        "embedded-weekly-rollups-of-strings-beside-a-plain-view-postgres",
        "embedded-tensor-model-reading-no-features",
        "async-prefect-openshift-monthly-rollup-of-the-label-source",
    ],
)
def test_fixed_specs_run_end_to_end(spec_file: Path, tmp_path: Path) -> None:
    demo = run_system(spec_file, tmp_path, str(spec_file))
    if spec_file.stem in AFTER_THE_FIXED_RUN:
        AFTER_THE_FIXED_RUN[spec_file.stem](tmp_path / "repo", demo)


# every preset, and so both specs of the design folder: spec-reference.yaml and spec-realtime-example.yaml are the
# reference and realtime presets byte for byte (tests/test_spec_validation.py holds them to it). The reference's
# `make demo` runs in tests/test_demo.py and its generated tests, live ones included, in tests/test_fitness.py.
PROVED_ELSEWHERE = ("reference",)


def _vision_demo_shows_masked_answers_and_purges_its_log(repo: Path, demo: str) -> None:
    """The vision pipeline's sample frame through the whole pipeline, its personal outputs masked (the recognised
    text, OBJ-..., never printed unasked nor logged by the server), and the server log purged after the retention."""
    assert "2 object(s) in frame_2_objects.npy" in demo
    assert '"boxes": [30.0, 20.0, 210.0, 40.0]' in demo
    assert demo.count('"plate_text": "<personal data>"') == 2
    assert "OBJ-1" not in demo
    log = repo / ".run" / "triton.log"
    assert log.is_file() and "OBJ-" not in log.read_text()
    os.utime(log, (time.time() - 31 * 86400,) * 2)  # the retention (30d) later, the purge deletes the log
    purge = subprocess.run(
        [sys.executable, "scripts/purge.py"], cwd=repo, capture_output=True, text=True, timeout=120, check=False
    )
    assert purge.returncode == 0 and not log.exists(), purge.stdout + purge.stderr


# what else a preset's run shows, checked on its repository and what its `make demo` printed
AFTER_THE_RUN = {"image_pipeline": _vision_demo_shows_masked_answers_and_purges_its_log}


# The real-time example's path (Feast's Python SDK with an on-demand view in python mode, one Feast store per load
# process, then an ensemble of two Python-backend models on Triton) costs about 3.5 ms of CPU a request under the
# load generator (1.5 to 2 in the client, 1.2 to 1.6 in Triton): at the generated test's default 200 rps (its 2000
# scaled down for one machine) that is 0.7 of this machine's 2 cores, and full runs of this suite measured p99 9 to
# 15.3 ms, at the edge of its 15 ms budget. The suite asks it for 100 rps (FITNESS_MAX_RPS), still held to the 15 ms
# p99: what it proves is the path's latency, not how many requests two shared cores carry.
MAX_RPS = {"realtime": 100}


@pytest.mark.parametrize("preset", [p.stem for p in sorted(PRESETS.glob("*.yaml")) if p.stem not in PROVED_ELSEWHERE])
def test_every_preset_runs_its_demo_and_tests(preset: str, tmp_path: Path) -> None:
    demo = run_system(PRESETS / f"{preset}.yaml", tmp_path, f"the preset {preset}", max_rps=MAX_RPS.get(preset, 0))
    if preset in AFTER_THE_RUN:
        AFTER_THE_RUN[preset](tmp_path / "repo", demo)
