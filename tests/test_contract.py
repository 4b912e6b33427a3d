"""The decision-to-file contract and `archgen check` holding a repository to its spec.

Each contract rule has a test that edits a real generated repository the way a team might and shows the
probe `archgen check` runs catching it with the file, the line, the requirement it breaks (a line of
`.archgen/spec.yaml`) and the fix; edits that still satisfy the spec are information, not failures.
One slow test runs the real `archgen check` command (text and `--format json`) on such a repository.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from generator.checks.probes import PROBES, requirement_text, run_probes
from generator.decide import decide
from generator.decide.contract import ContractError, enforce, rows
from generator.errors import Diagnostic
from generator.generate import generate_loaded
from generator.plan.plan import build_plan
from requirements_spec import parse_spec
from requirements_spec.validate import load_spec

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "requirements_spec" / "presets"
ARCHGEN = [sys.executable, "-m", "generator.cli"]


def _write(spec_text: str, out: Path) -> Path:
    gen = generate_loaded(parse_spec(spec_text, "spec.yaml"))
    for rel, data in gen.files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write((PRESETS / "reference.yaml").read_text(), tmp_path_factory.mktemp("contract") / "reference")


@pytest.fixture
def repo(reference: Path, tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(reference, target)
    return target


def _edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` once; return the 1-based line where it was."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1))
    return line


def _spec_line(repo: Path, pattern: str) -> int:
    for number, line in enumerate((repo / ".archgen/spec.yaml").read_text().splitlines(), start=1):
        if re.search(pattern, line):
            return number
    raise AssertionError(pattern)


def _req(repo: Path, path: str, pattern: str) -> str:
    return f"{path} (.archgen/spec.yaml:{_spec_line(repo, pattern)})"


def _errors(repo: Path) -> list[Diagnostic]:
    drift, skipped = run_probes(repo)
    assert not skipped
    return [d for d in drift if d.severity == "error"]


def _one(repo: Path, probe: str) -> Diagnostic:
    errors = _errors(repo)
    assert [d.code for d in errors] == [f"probe.{probe}"], [str(d) for d in errors]
    return errors[0]


# ------------------------------------------------------------------ fresh repositories hold
@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESETS.glob("*.yaml")))
def test_every_fresh_preset_satisfies_its_probes(preset: str, tmp_path: Path) -> None:
    repo = _write((PRESETS / f"{preset}.yaml").read_text(), tmp_path / preset)
    drift, skipped = run_probes(repo)
    assert not skipped and drift == []


def test_probes_run_quickly_on_the_reference_repository(reference: Path) -> None:
    run_probes(reference)  # imports warm
    start = time.perf_counter()
    run_probes(reference)
    assert time.perf_counter() - start < 2.0


# ------------------------------------------------------------------ one test per contract rule
def test_training_schedule_changed_by_hand(repo: Path) -> None:
    line = _edit(repo / "pipelines/crontab", "0 0 * * * cd", "0 3 * * 1 cd")
    d = _one(repo, "schedules")
    assert (d.file, d.line) == ("pipelines/crontab", line)
    assert requirement_text(d.related) == _req(repo, "training.schedule", r"^\s+schedule:")
    assert "'0 0 * * *'" in d.hint


def test_a_scheduled_job_nothing_decided(repo: Path) -> None:
    with (repo / "pipelines/crontab").open("a") as fh:
        fh.write("15 * * * * cd /opt/x && .venv/bin/python scripts/export.py\n")
    lines = (repo / "pipelines/crontab").read_text().splitlines()
    d = _one(repo, "schedules")
    assert (d.file, d.line) == ("pipelines/crontab", len(lines))
    assert "no decision asks for" in d.message


def test_a_decided_job_missing_from_the_scheduler(repo: Path) -> None:
    crontab = repo / "pipelines/crontab"
    crontab.write_text("\n".join(x for x in crontab.read_text().splitlines() if "purge.lock" not in x) + "\n")
    d = _one(repo, "schedules")
    assert (d.file, d.line) == ("pipelines/crontab", 0)  # a removed entry has no line: the whole file lacks it
    assert "purge" in d.message and "missing from this scheduler config" in d.message
    assert requirement_text(d.related).startswith("privacy.retention (.archgen/spec.yaml:")


def test_materialization_more_often_still_satisfies_the_spec(repo: Path) -> None:
    line = _edit(repo / "pipelines/crontab", "0 * * * * cd", "*/15 * * * * cd")
    drift, _ = run_probes(repo)
    assert [(d.severity, d.file, d.line) for d in drift] == [("info", "pipelines/crontab", line)]


def test_materialization_less_often_than_the_freshness(repo: Path) -> None:
    line = _edit(repo / "pipelines/crontab", "0 * * * * cd", "0 */6 * * * cd")
    d = _one(repo, "schedules")
    assert (d.file, d.line) == ("pipelines/crontab", line)
    assert requirement_text(d.related) == _req(repo, "features.freshness", r"^\s+freshness:")


def test_ttl_beyond_the_retention(repo: Path) -> None:
    line = _edit(repo / "feature_repo/views.py", "ttl=timedelta(weeks=1)", "ttl=timedelta(days=400)")
    d = _one(repo, "ttl")
    assert (d.file, d.line) == ("feature_repo/views.py", line)
    assert requirement_text(d.related) == _req(repo, "privacy.retention", r"^\s+retention:")
    assert "604800" in d.hint


def test_ttl_changed_within_the_retention_is_information(repo: Path) -> None:
    line = _edit(repo / "feature_repo/views.py", "ttl=timedelta(weeks=1)", "ttl=timedelta(days=10)")
    drift, _ = run_probes(repo)
    assert [(d.severity, d.file, d.line) for d in drift] == [("info", "feature_repo/views.py", line)]


def test_feature_removed_from_a_service(repo: Path) -> None:
    _edit(repo / "feature_repo/services.py", '"rating", "acceptance_rate"', '"rating"')
    service_line = _edit(repo / "feature_repo/services.py", "FeatureService(", "FeatureService(")
    d = _one(repo, "services")
    assert (d.file, d.line) == ("feature_repo/services.py", service_line)  # the service that lacks it
    assert "lacks driver_activity.acceptance_rate" in d.message
    assert requirement_text(d.related).startswith("features.services[0].features (.archgen/spec.yaml:")


def test_feature_added_to_a_service(repo: Path) -> None:
    line = _edit(repo / "feature_repo/services.py", '"acceptance_rate"]]', '"acceptance_rate", "bonus"]]')
    d = _one(repo, "services")
    assert (d.file, d.line) == ("feature_repo/services.py", line)
    assert "driver_activity.bonus" in d.message


def test_a_dropped_pii_field_served(repo: Path) -> None:
    line = _edit(repo / "feature_repo/services.py", '"acceptance_rate"]]', '"acceptance_rate", "phone_number"]]')
    field_line = _edit(
        repo / "feature_repo/views.py",
        '        Field(name="rating"',
        '        Field(name="phone_number", dtype=String),\n        Field(name="rating"',
    )
    errors = _errors(repo)
    by_probe = {d.code.removeprefix("probe."): d for d in errors}
    assert set(by_probe) == {"services", "pii_fields"}
    served = by_probe["services"]
    assert (served.file, served.line) == ("feature_repo/services.py", line)
    assert "personal field driver_activity.phone_number" in served.message
    pii_line = _spec_line(repo, r"phone_number.*pii: true")
    cited = requirement_text(served.related)
    assert f".archgen/spec.yaml:{pii_line}" in cited and "privacy.pii_handling" in cited
    assert (by_probe["pii_fields"].file, by_probe["pii_fields"].line) == ("feature_repo/views.py", field_line)


def test_batching_edited(repo: Path) -> None:
    line = _edit(repo / "model_repository/ranker/config.pbtxt", "max_batch_size: 32", "max_batch_size: 64")
    d = _one(repo, "triton_configs")
    assert (d.file, d.line) == ("model_repository/ranker/config.pbtxt", line)
    assert "max_batch_size: 32" in d.hint


def test_queue_delay_edited(repo: Path) -> None:
    # the reference load fills no batch: the decided delay is 0 (an empty dynamic_batching block)
    line = _edit(
        repo / "model_repository/ranker/config.pbtxt",
        "dynamic_batching {\n}",
        "dynamic_batching {\n  max_queue_delay_microseconds: 90000\n}",
    )
    d = _one(repo, "triton_configs")
    assert d.file == "model_repository/ranker/config.pbtxt" and d.line in (line, line + 1), (d.file, d.line)
    assert requirement_text(d.related).startswith("serving.latency_p99_ms (.archgen/spec.yaml:")


def test_instances_edited(repo: Path) -> None:
    line = _edit(repo / "model_repository/ranker/config.pbtxt", "count: 1", "count: 4")
    d = _one(repo, "triton_configs")
    assert (d.file, d.line) == ("model_repository/ranker/config.pbtxt", line)
    assert "instance_group count 4, decided 1" in d.message


def test_image_changed(repo: Path) -> None:
    line = (
        _edit(repo / "deploy/docker-compose.yaml", "image: redis:", "image: my-redis:")
        if "image: redis:" in (repo / "deploy/docker-compose.yaml").read_text()
        else _edit(repo / "deploy/docker-compose.yaml", "driver-ranking-triton:", "other-triton:")
    )
    d = _one(repo, "images_and_ports")
    assert (d.file, d.line) == ("deploy/docker-compose.yaml", line)
    assert "image" in d.message and "decided" in d.message


def test_port_changed(repo: Path) -> None:
    line = _edit(repo / "deploy/docker-compose.yaml", "127.0.0.1:8000:8000", "127.0.0.1:9000:8000")
    d = _one(repo, "images_and_ports")
    assert (d.file, d.line) == ("deploy/docker-compose.yaml", line)
    assert "'127.0.0.1:8000:8000'" in d.hint


# ------------------------------------------------------------------ applicability and the file rule
def _variant(preset: str, old: str, new: str) -> str:
    text = (PRESETS / f"{preset}.yaml").read_text()
    assert old in text
    return text.replace(old, new, 1)


EMBEDDED = _variant("reference", "  mode: online ", "  mode: embedded #")


def test_embedded_makes_no_protocol_decision_and_runs_no_feature_server() -> None:
    arch = decide(parse_spec(EMBEDDED, "spec.yaml"))
    assert not arch.decided("protocol") and arch.serving.protocol is None
    (skipped,) = [n for n in arch.not_applicable if n.key == "protocol"]
    assert "in-process library" in skipped.reason
    assert not arch.feature_server_runs
    paths = build_plan(arch).paths()
    files = generate_loaded(parse_spec(EMBEDDED, "spec.yaml")).files
    assert "feature-server:" not in files.get("deploy/docker-compose.yaml", b"").decode()
    assert not any(p.startswith("model_repository/") for p in files), "an in-process library needs no Triton"
    assert not any("feature-server" in p for p in paths)
    assert all("protocol" not in f.decisions for f in build_plan(arch).files)


def test_batch_runs_no_feature_server_and_no_protocol() -> None:
    arch = decide(load_spec(PRESETS / "batch_warehouse.yaml"))
    assert not arch.decided("protocol") and not arch.feature_server_runs
    files = generate_loaded(load_spec(PRESETS / "batch_warehouse.yaml")).files
    assert not any("feature-server" in p for p in files)
    assert "feature-server:" not in files.get("deploy/docker-compose.yaml", b"").decode()
    assert not any(p.startswith("model_repository/") for p in files), "batch scoring runs the model in process"


def test_online_serving_keeps_the_feature_server() -> None:
    arch = decide(load_spec(PRESETS / "realtime.yaml"))
    assert arch.feature_server_runs and arch.decided("protocol")
    assert any("feature-server" in p for p in build_plan(arch).paths())


def test_a_file_may_name_only_decisions_that_were_made() -> None:
    arch = decide(parse_spec(EMBEDDED, "spec.yaml"))
    f = next(f for f in build_plan(arch).files if f.decisions)
    with pytest.raises(ContractError, match=r"shaped by 'protocol', which is not decided.*in-process library"):
        enforce(arch, [replace(f, decisions=(*f.decisions, "protocol"))])


def test_plan_lists_not_applicable_decisions_with_the_reason(tmp_path: Path) -> None:
    spec = tmp_path / "embedded.yaml"
    spec.write_text(EMBEDDED)
    text = subprocess.run([*ARCHGEN, "plan", str(spec)], capture_output=True, text=True, check=False)
    assert "Not applicable (not decided)" in text.stdout
    assert re.search(r"protocol .*: the model is an in-process library", text.stdout)
    data = json.loads(
        subprocess.run(
            [*ARCHGEN, "plan", str(spec), "--format", "json"], capture_output=True, text=True, check=False
        ).stdout
    )
    skipped = [n["key"] for n in data["not_applicable"]]
    assert {"protocol", "triton_backend", "dynamic_batching", "instance_group"} <= set(skipped)
    assert "protocol" not in {d["key"] for d in data["decisions"]}
    md = subprocess.run(
        [*ARCHGEN, "plan", str(spec), "--format", "markdown"], capture_output=True, text=True, check=False
    )
    assert "## Not applicable" in md.stdout and "| `protocol` |" in md.stdout


def test_no_features_means_no_feature_store_decisions() -> None:
    arch = decide(load_spec(PRESETS / "image_pipeline.yaml"))
    skipped = {n.key: n.reason for n in arch.not_applicable}
    assert {"online_store", "offline_store", "registry", "ingestion", "materialization"} <= set(skipped)
    assert all("declares no features" in skipped[k] for k in ("online_store", "materialization"))


def test_adr_file_lists_come_from_the_contract() -> None:
    gen = generate_loaded(load_spec(PRESETS / "reference.yaml"))
    plan = build_plan(gen.arch)
    adr = next(p for p in gen.files if p.startswith("docs/adr/") and p.endswith("-protocol.md"))
    text = gen.files[adr].decode()
    shaped = sorted(f.path for f in plan.files if "protocol" in f.decisions and not f.path.startswith("docs/"))
    assert shaped and all(p in text for p in shaped)


def test_every_probe_reads_back_decisions_the_registry_knows() -> None:
    keys = {r.key for r in rows()}
    for p in PROBES:
        assert p.decisions and set(p.decisions) <= keys, p.name
    probed = {r.key for r in rows() if r.probes}
    assert {"scheduler", "pii", "retention", "dynamic_batching", "instance_group", "deployment"} <= probed


# ------------------------------------------------------------------ the command itself
@pytest.mark.slow
def test_archgen_check_fails_with_file_line_requirement_and_fix(repo: Path) -> None:
    cron_line = _edit(repo / "pipelines/crontab", "0 0 * * * cd", "0 3 * * 1 cd")
    ttl_line = _edit(repo / "feature_repo/views.py", "ttl=timedelta(weeks=1)", "ttl=timedelta(days=400)")
    run = subprocess.run([*ARCHGEN, "check", str(repo)], capture_output=True, text=True, check=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"pipelines/crontab:{cron_line}: train is scheduled at '0 3 * * 1'" in run.stdout
    assert f"feature_repo/views.py:{ttl_line}: view driver_activity: ttl" in run.stdout
    assert "breaks: privacy.retention (.archgen/spec.yaml:" in run.stdout and "fix: " in run.stdout
    assert run.stdout.rstrip().endswith("FAILED")
    as_json = subprocess.run(
        [*ARCHGEN, "check", str(repo), "--format", "json"], capture_output=True, text=True, check=False
    )
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["ok"] is False
    drift = [d for d in data["diagnostics"] if d["code"].startswith("probe.")]
    got = {(d["location"]["file"], d["location"]["line"], d["severity"]) for d in drift}
    assert got == {("pipelines/crontab", cron_line, "error"), ("feature_repo/views.py", ttl_line, "error")}
    assert all(d["related"] and d["hint"] for d in drift)
    assert all(r["file"] == ".archgen/spec.yaml" and r["line"] > 0 for d in drift for r in d["related"])


@pytest.mark.parametrize("orchestrator", ["airflow", "prefect", "dagster", "kubernetes"])
def test_training_schedule_changed_in_every_scheduler_form(orchestrator: str, tmp_path: Path) -> None:
    text = _variant("reference", "  orchestrator: none", f"  orchestrator: {orchestrator}")
    repo = _write(text, tmp_path / orchestrator)
    assert run_probes(repo) == ([], [])
    arch = decide(parse_spec(text, "spec.yaml"))
    cron = arch.training.schedule_cron
    assert cron is not None
    edited = []
    for path in sorted(p for p in repo.rglob("*") if p.is_file() and not p.is_relative_to(repo / ".archgen")):
        rel = path.relative_to(repo).as_posix()
        if not rel.startswith(("pipelines/", "deploy/")) or "train" not in path.read_text(errors="replace"):
            continue
        body = path.read_text()
        for quoted in (f'"{cron}"', f"'{cron}'"):
            if quoted in body and ("train" in rel or rel.endswith(("prefect.yaml", "definitions.py", "scheduler.py"))):
                edited.append((rel, _edit(path, quoted, quoted.replace(cron, "0 3 * * 1"))))
                break
    assert edited, "no scheduler file holds the training schedule"
    errors = _errors(repo)
    assert {(d.file, d.line) for d in errors} >= set(edited), [str(d) for d in errors]
    assert all(d.code == "probe.schedules" and "training.schedule" in requirement_text(d.related) for d in errors)


def test_docs_contract_md_documents_every_probe_and_decision() -> None:
    text = (ROOT / "docs" / "contract.md").read_text()
    for p in PROBES:
        assert f"### `{p.name}`" in text, p.name
    for r in rows():
        assert f"| `{r.key}` |" in text, (
            f"{r.key}: regenerate with python -m generator.decide.contract > docs/contract.md"
        )


# ------------------------------------------------------------------ customization decides the team's seams
HIGH = (PRESETS / "reference.yaml").read_text().replace("customization: low", "customization: high")


def test_customization_decides_the_seams() -> None:
    low = decide(load_spec(PRESETS / "reference.yaml"))
    assert low.decision("customization").choice == "low" and low.seams == []
    high = decide(parse_spec(HIGH, "spec.yaml"))
    assert high.seams == ["model_repository/ranker/1/model.py", "training/train.py"]
    shaped = {
        f.path for f in build_plan(high).files if "customization" in f.decisions and not f.path.startswith("docs/")
    }
    assert shaped == set(high.seams)


@pytest.mark.parametrize(("text", "kept"), [(HIGH, True), ((PRESETS / "reference.yaml").read_text(), False)])
def test_update_never_rewrites_a_seam(text: str, kept: bool, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from generator.cli import app

    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    repo = tmp_path / "repo"
    assert CliRunner().invoke(app, ["new", str(spec), "-o", str(repo)]).exit_code == 0
    model = repo / "model_repository/ranker/1/model.py"
    ours = model.read_text().replace('"""', '"""Our ranker. ', 1)
    model.write_text(ours)
    spec.write_text(text.replace("name: score", "name: rank_score"))  # archgen's model.py changes too
    result = CliRunner().invoke(app, ["update", str(repo), "--spec", str(spec)])
    assert result.exit_code in (0, 1), result.output
    if kept:
        assert model.read_text() == ours
        assert "never rewritten" in result.output
    else:  # managed: archgen's change is merged into the team's edit
        assert model.read_text() != ours and "rank_score" in model.read_text()


def test_generated_paths_do_not_depend_on_graphviz(monkeypatch: pytest.MonkeyPatch) -> None:
    import generator.views.diagrams as dg

    loaded = load_spec(PRESETS / "reference.yaml")
    with_dot = build_plan(decide(loaded)).paths()
    monkeypatch.setattr(dg.shutil, "which", lambda name, *a, **k: None)
    without_dot = build_plan(decide(loaded)).paths()
    assert with_dot == without_dot
    assert not [p for p in with_dot if p.endswith((".png", ".svg"))]
    note = dg.skipped_note()
    assert note is not None and "skipped docs/diagrams/*.png and *.svg" in note and "archgen diagram" in note


def test_a_scheduler_config_removed_leaves_decided_jobs_unscheduled(repo: Path) -> None:
    (repo / "pipelines/crontab").unlink()
    (repo / "deploy/scheduler.py").unlink()
    errors = _errors(repo)
    assert {d.message.split(" (")[0] for d in errors} == {
        "the decided job materialize",
        "the decided job purge",
        "the decided job train",
    }
    assert all(d.file == "pipelines/" and "no scheduler config" in d.message for d in errors)
