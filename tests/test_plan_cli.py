"""`archgen plan`, `diff`, `explain` and `rules-doc` from the command line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from generator.cli import app
from generator.commands import plan as plan_cmd

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"
REALTIME = ROOT / "requirements_spec" / "presets" / "realtime.yaml"
runner = CliRunner()


def _variant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = REFERENCE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_plan_text_shows_decisions_requirements_and_alternatives() -> None:
    result = runner.invoke(app, ["plan", str(REFERENCE)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "online_store = sqlite" in out
    assert "serving.latency_p99_ms=50 (line " in out
    assert "not redis:" in out
    assert "none: the requirements are consistent" in out
    assert "\033[" not in out  # not a terminal: no colour


def test_plan_json_is_stable_and_versioned() -> None:
    first = runner.invoke(app, ["plan", str(REALTIME), "--format", "json"])
    second = runner.invoke(app, ["plan", str(REALTIME), "--format", "json"])
    assert first.exit_code == 0 and first.stdout == second.stdout
    data = json.loads(first.stdout)
    assert data["schema_version"] == 1 and data["feasible"] is True
    assert first.stdout == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    decisions = {d["key"]: d for d in data["decisions"]}
    assert decisions["online_store"]["choice"] == "redis"
    assert {"key", "choice", "rule", "rationale", "requirements", "alternatives"} <= set(decisions["protocol"])
    req = decisions["protocol"]["requirements"][0]
    assert req["path"] == "serving.latency_p99_ms" and req["line"] > 0 and req["value"] == 15
    assert data["architecture"]["serving"]["runtime"] == "triton"
    assert data["summary"] == {"decisions": len(data["decisions"]), "errors": 0, "warnings": 0, "waived": 0}


def test_plan_markdown_is_a_review_document() -> None:
    result = runner.invoke(app, ["plan", str(REALTIME), "--format", "markdown"])
    assert result.exit_code == 0
    assert result.stdout.startswith("# Architecture decisions: card_fraud")
    assert "| `online_store` | **redis** |" in result.stdout
    assert "Alternatives rejected:" in result.stdout


def test_plan_with_error_findings_exits_65_and_still_prints(tmp_path: Path) -> None:
    spec = _variant(tmp_path, "fast.yaml", "latency_p99_ms: 50", "latency_p99_ms: 1")
    result = runner.invoke(app, ["plan", str(spec)])
    assert result.exit_code == 65
    assert "ERROR latency.infeasible" in result.stdout and "fix:" in result.stdout
    assert "online_store = redis" in result.stdout
    data = json.loads(runner.invoke(app, ["plan", str(spec), "--format", "json"]).stdout)
    assert data["feasible"] is False and data["findings"][0]["code"] == "latency.infeasible"


def test_plan_shows_waivers(tmp_path: Path) -> None:
    text = (
        REFERENCE.read_text(encoding="utf-8")
        .replace("threshold: 0.6}", "threshold: 0.6}\n")
        .replace("  min_quality: {metric: roc_auc, threshold: 0.6}", "")
    )
    text += (
        "waivers:\n  - finding: training.quality_gate_missing\n"
        "    justification: Rankings are A/B tested before rollout; the test is the gate.\n"
    )
    spec = tmp_path / "waived.yaml"
    spec.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["plan", str(spec)])
    assert result.exit_code == 0, result.output
    assert "waived training.quality_gate_missing" in result.stdout
    assert "Rankings are A/B tested" in result.stdout
    md = runner.invoke(app, ["plan", str(spec), "--format", "markdown"]).stdout
    assert "waived warning" in md and "Rankings are A/B tested" in md


def test_plan_of_an_invalid_spec_exits_65(tmp_path: Path) -> None:
    spec = _variant(tmp_path, "bad.yaml", "latency_p99_ms: 50", "latency_p99_ms: fast")
    result = runner.invoke(app, ["plan", str(spec)])
    assert result.exit_code == 65
    assert "bad.yaml:" in result.stderr and "serving.latency_p99_ms" in result.stderr


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty = _Tty()
    monkeypatch.setattr(sys, "stdout", tty)
    assert plan_cmd.run(REFERENCE, "text") == 0
    assert "\033[1m" in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    plain = _Tty()
    monkeypatch.setattr(sys, "stdout", plain)
    plan_cmd.run(REFERENCE, "text")
    assert "\033[" not in plain.getvalue()


def test_plan_imports_neither_feast_nor_tritonclient() -> None:
    code = (
        "import sys\n"
        "from generator.cli import app\n"
        f"sys.argv = ['archgen', 'plan', {str(REALTIME)!r}, '--format', 'json']\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('feast', 'tritonclient', 'diagrams'))\n"
        "assert not heavy, heavy\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["project"] == "card_fraud"


# ---------------------------------------------------------------- diff
def test_diff_tighter_p99_moves_online_store_and_protocol(tmp_path: Path) -> None:
    tight = _variant(tmp_path, "tight.yaml", "latency_p99_ms: 50", "latency_p99_ms: 8")
    result = runner.invoke(app, ["diff", str(REFERENCE), str(tight)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "changed  online_store: sqlite -> redis" in out
    assert "changed  protocol: rest -> grpc" in out
    assert "because serving.latency_p99_ms: 50 -> 8" in out
    data = json.loads(runner.invoke(app, ["diff", str(REFERENCE), str(tight), "--format", "json"]).stdout)
    changes = {c["key"]: c for c in data["decisions"]}
    assert (changes["online_store"]["old_choice"], changes["online_store"]["new_choice"]) == ("sqlite", "redis")
    assert (changes["protocol"]["old_choice"], changes["protocol"]["new_choice"]) == ("rest", "grpc")
    drivers = {d["path"]: (d["old"], d["new"]) for d in changes["protocol"]["drivers"]}
    assert drivers == {"serving.latency_p99_ms": (50, 8)}
    assert [r["path"] for r in data["requirements"]] == ["serving.latency_p99_ms"]
    md = runner.invoke(app, ["diff", str(REFERENCE), str(tight), "--format", "markdown"]).stdout
    assert "| `online_store` | changed | sqlite | **redis** |" in md


def test_diff_of_identical_specs_is_empty() -> None:
    result = runner.invoke(app, ["diff", str(REFERENCE), str(REFERENCE)])
    assert result.exit_code == 0 and "no decision or finding changes" in result.stdout


def test_diff_shows_added_decisions_and_new_findings(tmp_path: Path) -> None:
    data = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    data["privacy"]["pii_handling"] = "allow"
    new = tmp_path / "allow.yaml"
    new.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = runner.invoke(app, ["diff", str(REFERENCE), str(new)]).stdout
    assert "changed  pii: drop -> allow" in out
    assert "new      warning privacy.pii_allowed" in out


# ---------------------------------------------------------------- explain and rules-doc
def test_explain_a_rule_and_a_finding() -> None:
    result = runner.invoke(app, ["explain", "online_store"])
    assert result.exit_code == 0
    assert result.stdout.startswith("# `online_store` — Online store")
    assert "redis_below_p99_ms" in result.stdout
    finding = runner.invoke(app, ["explain", "privacy.pii_served_while_drop"])
    assert finding.exit_code == 0 and "cannot be waived" in finding.stdout


def test_explain_unknown_key_suggests() -> None:
    result = runner.invoke(app, ["explain", "online_stor"])
    assert result.exit_code == 2
    assert "did you mean `online_store`?" in result.stderr


def test_explain_list() -> None:
    from generator.decide import builtin_registry

    out = runner.invoke(app, ["explain", "--list"]).stdout
    reg = builtin_registry()
    for key in [*reg.rules, *reg.kinds]:
        assert key in out


def test_rules_doc_writes_the_committed_document(tmp_path: Path) -> None:
    target = tmp_path / "docs" / "rules.md"
    result = runner.invoke(app, ["rules-doc", "-o", str(target)])
    assert result.exit_code == 0
    assert target.read_text(encoding="utf-8") == (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
