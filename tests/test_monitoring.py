"""Fitness and monitoring files of generated repositories, without running the system.

The Prometheus config and alert rules are checked with `promtool` (Debian package `prometheus`) when it
is installed, and by their YAML structure always; the alert rules' own unit tests run with `promtool test
rules`. The Model Analyzer config loads with Model Analyzer's own parser when its virtualenv exists
(ARCHGEN_MODEL_ANALYZER_VENV, default .venv-model-analyzer: `pip install triton-model-analyzer`), and is
checked against its documented keys always. The generated cron reader, scheduler readers, spec citations
and PSI are checked against what archgen decided.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from triton_harness import PRESETS, ROOT, generate

from generator.decide.architecture import Architecture
from generator.plan.fitness import humanize_duration, scheduler_forms, spec_lines

PROMTOOL = shutil.which("promtool")
MA_VENV = Path(os.environ.get("ARCHGEN_MODEL_ANALYZER_VENV", str(ROOT / ".venv-model-analyzer")))
COMPONENTS = ("frame", "feature_repo", "model_repository", "serving", "training", "pipelines", "deploy", "fitness")
ORCHESTRATORS = ("airflow", "prefect", "dagster", "kubernetes", "cron")
PRESET_NAMES = ("reference", "realtime", "starter", "image_pipeline", "batch_warehouse", "edge_airgapped")


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Architecture]]:
    """Every preset, and the reference with each orchestrator, generated (docs left out)."""
    base = tmp_path_factory.mktemp("monitoring")
    specs = {name: PRESETS / f"{name}.yaml" for name in PRESET_NAMES}
    reference = (PRESETS / "reference.yaml").read_text(encoding="utf-8")
    for orchestrator in ORCHESTRATORS:
        path = base / f"{orchestrator}.yaml"
        path.write_text(reference.replace("orchestrator: none ", f"orchestrator: {orchestrator} "), encoding="utf-8")
        specs[f"reference-{orchestrator}"] = path
    out = {}
    for name, spec in specs.items():
        out[name] = (base / name, generate(spec, base / name, COMPONENTS))
    return out


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"generated_{path.parent.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ which files, and their code
def test_fitness_files_follow_the_architecture(repos: dict[str, tuple[Path, Architecture]]) -> None:
    reference = {p.relative_to(repos["reference"][0]).as_posix() for p in repos["reference"][0].rglob("*")}
    assert {f"tests/test_fitness_{n}.py" for n in ("latency", "privacy", "freshness", "quality")} <= reference
    assert {"monitoring/prometheus.yml", "monitoring/alerts.yml", "monitoring/freshness_monitor.py"} <= reference
    assert {"monitoring/drift_check.py", "model_analyzer/config.yaml", "tests/loadgen.py"} <= reference
    image = repos["image_pipeline"][0]  # no feature store, no training: neither privacy, freshness nor quality
    assert not any((image / "tests" / f"test_fitness_{n}.py").exists() for n in ("privacy", "freshness", "quality"))
    assert (image / "tests" / "test_fitness_latency.py").is_file()
    starter = repos["starter"][0]  # in-process REST serving: no Triton to scrape or profile
    assert not (starter / "monitoring" / "prometheus.yml").exists()
    assert not (starter / "model_analyzer").exists()
    assert "serving.rest_app" in (starter / "tests" / "test_fitness_latency.py").read_text()


def test_generated_fitness_code_is_ruff_clean(repos: dict[str, tuple[Path, Architecture]]) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.is_file():
        pytest.skip("ruff is not installed in this environment")
    select = ["--select", "E,F,W,I,B,UP,C4,SIM,RUF", "--ignore", "RUF001,RUF002,RUF003,B008"]
    for name, (repo, _) in sorted(repos.items()):
        targets = [d for d in ("tests", "monitoring") if (repo / d).is_dir()]
        check = subprocess.run([str(ruff), "check", *select, *targets], cwd=repo, capture_output=True, text=True)
        assert check.returncode == 0, f"{name}:\n{check.stdout}"
        fmt = subprocess.run([str(ruff), "format", "--check", *targets], cwd=repo, capture_output=True, text=True)
        assert fmt.returncode == 0, f"{name}:\n{fmt.stdout}"


def test_requirements_cite_their_spec_lines(repos: dict[str, tuple[Path, Architecture]]) -> None:
    """Each Requirement in tests/fitness.py points at the line of the spec that holds its value."""
    for name in ("reference", "realtime"):
        repo, _ = repos[name]
        lines = (PRESETS / f"{name}.yaml").read_text(encoding="utf-8").splitlines()
        fitness = load(repo / "tests" / "fitness.py")
        cited = [v for v in vars(fitness).values() if isinstance(v, fitness.Requirement)]
        cited += [r for d in ("VIEW_TTLS", "FORBIDDEN_PII") for r in getattr(fitness, d).values()]
        assert len(cited) >= 8
        for req in cited:
            assert req.line > 0, f"{name}: {req.path} cites no line"
            key = req.path.rsplit(".", 1)[-1].split("[")[0]
            text = lines[req.line - 1]
            assert key in text or (key == "pii" and "pii: true" in text), f"{name}: {req} -> line {text!r}"
            if key not in ("pii", "metric", "threshold"):
                assert str(req.value) in text, f"{name}: {req} -> line {text!r}"


def test_spec_lines_cover_the_view_ttls() -> None:
    from generator.generate import generate as generate_all

    arch = generate_all(PRESETS / "reference.yaml").arch
    assert spec_lines(arch)["features.views[0].ttl"] == 41


# ------------------------------------------------------------------ cron and schedulers
CRON_GAPS = [
    ("* * * * *", 60),
    ("*/15 * * * *", 900),
    ("0 * * * *", 3600),
    ("@hourly", 3600),
    ("0 */2 * * *", 7200),
    ("30 2 * * *", 86400),
    ("0 0,12 * * *", 43200),
    ("0 9-17 * * 1-5", 64 * 3600),  # Friday 17:00 to Monday 09:00
    ("0 0 * * 0", 7 * 86400),
    ("0 0 * * SUN", 7 * 86400),
    ("0 0 1 * *", 31 * 86400),
    ("0 0 1,15 * 1", 7 * 86400),  # day 1, day 15 or any Monday: cron ORs restricted day fields
    ("0 0 29 2 *", 1461 * 86400),  # leap days only
]


@pytest.mark.parametrize(("expr", "gap"), CRON_GAPS)
def test_generated_cron_reader_finds_the_longest_gap(
    repos: dict[str, tuple[Path, Architecture]], expr: str, gap: int
) -> None:
    fitness = load(repos["reference"][0] / "tests" / "fitness.py")
    assert fitness.Cron.parse(expr).max_gap_s() == gap


@pytest.mark.parametrize("expr", ["* * * *", "61 * * * *", "0 0 31 2 *", "*/0 * * * *", "5-1 * * * *", "@reboot"])
def test_generated_cron_reader_rejects_what_cron_rejects(
    repos: dict[str, tuple[Path, Architecture]], expr: str
) -> None:
    fitness = load(repos["reference"][0] / "tests" / "fitness.py")
    with pytest.raises(ValueError):
        fitness.Cron.parse(expr)


def test_every_scheduler_form_is_read_back(repos: dict[str, tuple[Path, Architecture]]) -> None:
    """The materialization cron the generated tests read from each scheduler config is the decided one."""
    forms_seen = set()
    for name in [f"reference-{o}" for o in ORCHESTRATORS] + ["realtime"]:
        repo, arch = repos[name]
        assert arch.feature_store is not None
        fitness = load(repo / "tests" / "fitness.py")
        assert fitness.SCHEDULER_CONFIGS, name
        schedulers = {fitness.scheduler_of(rel, form) for rel, form in fitness.SCHEDULER_CONFIGS.items()}
        for scheduler in schedulers:
            jobs = fitness.schedules(scheduler)
            assert jobs.get("materialize") == arch.feature_store.materialization_cron, f"{name}: {scheduler} {jobs}"
            if arch.training.schedule_cron:
                assert jobs.get("train") == arch.training.schedule_cron, f"{name}: {scheduler} {jobs}"
        forms_seen |= set(fitness.SCHEDULER_CONFIGS.values())
    assert forms_seen == {"crontab", "jobs", "airflow", "prefect", "prefect_flows", "dagster", "cronjob"}


def test_scheduler_forms_recognise_the_generated_paths() -> None:
    paths = ["pipelines/crontab", "pipelines/airflow/dags/x_materialize.py", "pipelines/k8s/train-cronjob.yaml"]
    paths += ["pipelines/k8s/kustomization.yaml", "deploy/scheduler.py", "pipelines/README.md"]
    assert dict(scheduler_forms(paths)) == {
        "pipelines/crontab": "crontab",
        "pipelines/airflow/dags/x_materialize.py": "airflow",
        "pipelines/k8s/train-cronjob.yaml": "cronjob",
        "deploy/scheduler.py": "jobs",
    }


# ------------------------------------------------------------------ Prometheus
TRITON_PRESETS = ("reference", "realtime", "image_pipeline")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)")
@pytest.mark.parametrize("name", TRITON_PRESETS)
def test_promtool_accepts_config_rules_and_rule_tests(repos: dict[str, tuple[Path, Architecture]], name: str) -> None:
    monitoring = repos[name][0] / "monitoring"
    assert PROMTOOL is not None
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"]):
        result = subprocess.run([PROMTOOL, *args], cwd=monitoring, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{name}: promtool {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    tests = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=monitoring, capture_output=True, text=True
    )
    assert tests.returncode == 0 and "SUCCESS" in tests.stdout, f"{name}:\n{tests.stdout}\n{tests.stderr}"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)")
def test_alert_rule_tests_catch_a_threshold_off_the_spec(
    repos: dict[str, tuple[Path, Architecture]], tmp_path: Path
) -> None:
    """The rule unit tests have teeth: a p99 alert at ten times the spec fails them."""
    assert PROMTOOL is not None
    monitoring = shutil.copytree(repos["reference"][0] / "monitoring", tmp_path / "monitoring")
    alerts = monitoring / "alerts.yml"
    text = alerts.read_text(encoding="utf-8")
    assert text.count("/ 1000 > 50\n") == 2
    alerts.write_text(text.replace("/ 1000 > 50\n", "/ 1000 > 500\n"), encoding="utf-8")
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=monitoring, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "LatencyP99OverSpec" in result.stdout + result.stderr


@pytest.mark.parametrize("name", TRITON_PRESETS)
def test_prometheus_files_have_the_shape_prometheus_reads(
    repos: dict[str, tuple[Path, Architecture]], name: str
) -> None:
    """Without promtool: the structure promtool would check, and the spec's numbers in the alerts."""
    repo, arch = repos[name]
    config = yaml.safe_load((repo / "monitoring" / "prometheus.yml").read_text(encoding="utf-8"))
    assert set(config) == {"global", "rule_files", "scrape_configs"}
    assert all((repo / "monitoring" / f).is_file() for f in config["rule_files"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["triton"]["static_configs"][0]["targets"] == ["127.0.0.1:8002"]
    rules = yaml.safe_load((repo / "monitoring" / "alerts.yml").read_text(encoding="utf-8"))
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    for rule in alerts.values():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"} and re.fullmatch(r"\w+", rule["alert"])
        assert re.fullmatch(r"\d+[smh]", rule["for"])
    p99 = next(r for a, r in alerts.items() if a.endswith("LatencyP99OverSpec"))
    assert f"> {arch.serving.latency_p99_ms:g}" in p99["expr"] and 'quantile="0.99"' in p99["expr"]
    assert all(m.name in p99["expr"] for m in arch.serving.models)
    assert any(a.endswith("ErrorRate") for a in alerts)
    stale = [r for a, r in alerts.items() if a.endswith("FeaturesStale")]
    if arch.spec.features is not None and arch.feature_store is not None:
        assert stale and stale[0]["expr"].endswith(f"> {arch.feature_store.materialization_interval_s}")


def test_humanize_duration_matches_prometheus() -> None:
    assert [humanize_duration(s) for s in (30, 120, 7200, 90061)] == ["30s", "2m 0s", "2h 0m 0s", "1d 1h 1m 1s"]


# ------------------------------------------------------------------ Model Analyzer
# the top-level keys of Model Analyzer's profile config (docs/config.md of triton-model-analyzer 1.58)
MA_KEYS = {
    "model_repository", "output_model_repository_path", "override_output_model_repository", "export_path",
    "triton_launch_mode", "triton_docker_image", "client_protocol", "run_config_search_mode",
    "run_config_search_max_instance_count", "run_config_search_max_concurrency",
    "run_config_search_max_model_batch_size", "constraints", "objectives", "profile_models", "bls_composing_models",
}  # fmt: skip


@pytest.mark.parametrize("name", TRITON_PRESETS)
def test_model_analyzer_config_carries_the_spec(repos: dict[str, tuple[Path, Architecture]], name: str) -> None:
    repo, arch = repos[name]
    config = yaml.safe_load((repo / "model_analyzer" / "config.yaml").read_text(encoding="utf-8"))
    assert set(config) <= MA_KEYS, set(config) - MA_KEYS
    assert config["constraints"]["perf_latency_p99"]["max"] == int(arch.serving.latency_p99_ms)
    assert config["constraints"]["perf_throughput"]["min"] >= arch.serving.throughput_rps
    assert list(config["profile_models"]) == [arch.serving.entrypoint]
    assert (repo / config["model_repository"] / arch.serving.entrypoint / "config.pbtxt").is_file()


def _model_analyzer_python() -> Path | None:
    python = MA_VENV / "bin" / "python"
    if not python.is_file():
        return None
    found = subprocess.run([str(python), "-c", "import model_analyzer"], capture_output=True, check=False)
    return python if found.returncode == 0 else None


MA_PARSE = """
import sys
from model_analyzer.entrypoint import get_cli_and_config_options
sys.argv = ["model-analyzer", "profile", "-f", "model_analyzer/config.yaml"]
args, config = get_cli_and_config_options()
model = config.profile_models[0]
print(config.constraints["perf_latency_p99"]["max"], config.constraints["perf_throughput"]["min"], model.model_name())
"""


def _model_analyzer_parse(python: Path, repo: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Model Analyzer's CLI parsing model_analyzer/config.yaml in ``repo`` (a stub perf_analyzer on PATH)."""
    stub = tmp_path / "bin" / "perf_analyzer"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(python), "-c", MA_PARSE], cwd=repo, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(
    _model_analyzer_python() is None, reason=f"no Model Analyzer in {MA_VENV} (pip install triton-model-analyzer)"
)
@pytest.mark.parametrize("name", TRITON_PRESETS)
def test_model_analyzer_parses_the_config(
    repos: dict[str, tuple[Path, Architecture]], name: str, tmp_path: Path
) -> None:
    """Model Analyzer's own CLI and config parser read the file (a stub perf_analyzer satisfies its path check)."""
    repo, arch = repos[name]
    python = _model_analyzer_python()
    assert python is not None
    result = _model_analyzer_parse(python, repo, tmp_path)
    assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
    p99, rps, model = result.stdout.split()[-3:]
    assert (int(p99), model) == (int(arch.serving.latency_p99_ms), arch.serving.entrypoint)
    assert int(rps) >= arch.serving.throughput_rps


@pytest.mark.skipif(
    _model_analyzer_python() is None, reason=f"no Model Analyzer in {MA_VENV} (pip install triton-model-analyzer)"
)
def test_model_analyzer_rejects_a_misspelt_constraint(
    repos: dict[str, tuple[Path, Architecture]], tmp_path: Path
) -> None:
    """The parser is strict: the check above would see a broken config."""
    python = _model_analyzer_python()
    assert python is not None
    repo = shutil.copytree(repos["reference"][0] / "model_analyzer", tmp_path / "model_analyzer").parent
    shutil.copytree(repos["reference"][0] / "model_repository", repo / "model_repository")
    config = repo / "model_analyzer" / "config.yaml"
    config.write_text(config.read_text().replace("    max: 50", "    maximum: 50"))
    result = _model_analyzer_parse(python, repo, tmp_path)
    assert result.returncode != 0 and "maximum" in result.stdout + result.stderr


# ------------------------------------------------------------------ drift
PSI_PROBE = """
import sys
import numpy as np
sys.path.insert(0, "monitoring")
from drift_check import psi
rng = np.random.default_rng(7)
reference = rng.normal(size=2000)
print(psi(reference, rng.normal(size=500), 5), psi(reference, rng.normal(0.5, 1.0, size=500), 5))
categories = np.array([1.0, 2.0, 3.0])
print(psi(np.tile(categories, 300), np.tile(categories, 100)), psi(np.ones(300), np.full(100, 9.0)))
"""


def test_drift_check_psi_separates_stable_from_drifted(repos: dict[str, tuple[Path, Architecture]]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PSI_PROBE], cwd=repos["reference"][0], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    same, shifted, same_categories, new_category = (float(v) for v in result.stdout.split())
    assert same < 0.05 and shifted > 0.2  # half a standard deviation is drift, sampling noise is not
    assert same_categories < 1e-9 and new_category > 1.0  # values never seen in training count fully
