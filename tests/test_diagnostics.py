"""One diagnostic, one error type, one error boundary, one JSON shape (docs/json-output.md).

Every command that reports problems prints, with ``--format json``, one document that the JSON Schema in
docs/json-output.md accepts, whether it succeeds or fails; the schema is read from the page itself, so the
page cannot drift from the output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from generator.boundary import run_command
from generator.cli import app
from generator.decide import InfeasibleSpec, RuleError
from generator.decide.contract import ContractError
from generator.errors import CANT_CREATE, INTERNAL, INTERRUPTED, ArchgenError, Diagnostic, Location
from requirements_spec.errors import SpecError, SpecUnreadable

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "json-output.md"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    found: dict[str, Any] = json.loads(blocks[-1])
    jsonschema.Draft202012Validator.check_schema(found)
    return found


def _json(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.stdout.endswith("}\n"), result.output
    data: dict[str, Any] = json.loads(result.stdout)
    assert result.stdout == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return result.exit_code, data


def _holds(schema: dict[str, Any], code: int, data: dict[str, Any], command: str) -> list[dict[str, Any]]:
    jsonschema.validate(data, schema)
    assert (data["command"], data["exit_code"], data["ok"]) == (command, code, code == 0)
    diagnostics: list[dict[str, Any]] = data["diagnostics"]
    return diagnostics


# ---------------------------------------------------------------- every command, success and failure
def test_validate(schema: dict[str, Any], spec: Path, spec_variant: Callable[..., Path]) -> None:
    code, data = _json("validate", str(spec))
    assert _holds(schema, code, data, "validate") == [] and code == 0 and data["project"] == "driver_ranking"
    bad = spec_variant(("entities: [driver]", "entities: [drivr]"), ("latency_p99_ms: 50", "latency_p99_ms: x"))
    code, data = _json("validate", str(bad))
    found = _holds(schema, code, data, "validate")
    assert code == 65 and "project" not in data
    assert {(d["code"], d["location"]["path"]) for d in found} == {
        ("spec.invalid_value", "serving.latency_p99_ms"),
    }  # schema errors come first: references are checked on a schema-valid spec
    assert found[0]["location"] == {"file": str(bad), "line": 61, "column": 19, "path": "serving.latency_p99_ms"}


def test_validate_reference_problems_are_coded_and_related(
    schema: dict[str, Any], spec_variant: Callable[..., Path]
) -> None:
    bad = spec_variant(("entities: [driver]", "entities: [drivr]"), ("{name: rating,", "{name: trips_today,"))
    code, data = _json("validate", str(bad))
    found = {d["location"]["path"]: d for d in _holds(schema, code, data, "validate")}
    assert {d["code"] for d in found.values()} == {"spec.unknown_reference", "spec.duplicate_name"}
    entity = found["features.views[0].entities[0]"]
    assert (entity["code"], entity["hint"]) == ("spec.unknown_reference", "did you mean `driver`?")
    duplicate = found["features.views[0].fields[1].name"]
    (first,) = duplicate["related"]  # the first declaration of the duplicated name
    assert duplicate["code"] == "spec.duplicate_name" and first["path"] == "features.views[0].fields[0].name"
    assert 0 < first["line"] < duplicate["location"]["line"]


def test_plan(schema: dict[str, Any], spec: Path, spec_variant: Callable[..., Path]) -> None:
    code, data = _json("plan", str(spec))
    assert code == 0 and data["feasible"] and _holds(schema, code, data, "plan") == []
    infeasible = spec_variant(("latency_p99_ms: 50", "latency_p99_ms: 1"))
    code, data = _json("plan", str(infeasible))
    found = _holds(schema, code, data, "plan")
    assert code == 65 and data["feasible"] is False
    assert [d["code"] for d in found] == [f["code"] for f in data["findings"]]
    latency = found[0]
    assert latency["code"] == "latency.infeasible" and latency["severity"] == "error"
    assert latency["location"]["path"] == "serving.latency_p99_ms" and latency["location"]["line"] == 61
    assert latency["related"] and latency["hint"] == data["findings"][0]["fix"]
    code, data = _json("plan", str(spec_variant(("latency_p99_ms: 50", "latency_p99_ms: x"), name="bad.yaml")))
    assert code == 65 and "decisions" not in data and _holds(schema, code, data, "plan")


def test_diff(schema: dict[str, Any], spec: Path, spec_variant: Callable[..., Path]) -> None:
    tight = spec_variant(("latency_p99_ms: 50", "latency_p99_ms: 1"), name="tight.yaml")
    code, data = _json("diff", str(spec), str(tight))
    added = _holds(schema, code, data, "diff")
    assert code == 0 and [d["code"] for d in added] == [f["code"] for f in data["findings_added"]]
    assert "latency.infeasible" in {d["code"] for d in added}
    missing = spec.parent / "missing.yaml"
    code, data = _json("diff", str(spec), str(missing))
    (unreadable,) = _holds(schema, code, data, "diff")
    assert code == 66 and unreadable["code"] == "spec.unreadable" and unreadable["location"]["file"] == str(missing)


def test_check(schema: dict[str, Any], tmp_path: Path) -> None:
    code, data = _json("check", str(tmp_path))
    (manifest,) = _holds(schema, code, data, "check")
    assert code == 1 and manifest["code"] == "check.manifest"
    assert manifest["location"] == {"file": ".archgen/manifest.json", "line": 0, "column": 0, "path": ""}
    code, data = _json("check", str(tmp_path / "nope"))
    (error,) = _holds(schema, code, data, "check")
    assert code == 66 and error["code"] == "error.unreadable" and error["location"] is None and error["hint"]


def test_new_and_update(
    schema: dict[str, Any], spec: Path, spec_variant: Callable[..., Path], tmp_path: Path, frame_only: None
) -> None:
    repo = tmp_path / "repo"
    code, data = _json("new", str(spec), "-o", str(repo), "--dry-run")
    assert code == 0 and _holds(schema, code, data, "new") == [] and data["dry_run"] is True
    assert not repo.exists() and ".archgen/manifest.json" in {f["path"] for f in data["files"]}
    code, data = _json("new", str(spec), "-o", str(repo))
    assert code == 0 and _holds(schema, code, data, "new") == []
    assert data["written"]["new"] is True and len(data["written"]["created"]) == len(data["files"])
    code, data = _json("new", str(spec), "-o", str(repo))
    (exists,) = _holds(schema, code, data, "new")
    assert code == CANT_CREATE and exists["code"] == "error.cant_create" and "--force" in (exists["hint"] or "")

    readme = repo / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\nOur own notes.\n", encoding="utf-8")
    renamed = spec_variant(("name: driver_ranking", "name: driver_rank"), name="renamed.yaml")
    code, data = _json("update", str(repo), "--spec", str(renamed), "--dry-run")
    assert _holds(schema, code, data, "update") == [] and code == 0
    assert data["decisions"] is not None and data["dry_run"] is True
    assert {"path": "README.md", "action": "merge", "note": "your changes and archgen's"} in data["files"]

    code, data = _json("update", str(tmp_path))
    (error,) = _holds(schema, code, data, "update")
    assert code == 66 and error["code"] == "error.unreadable" and "manifest" in error["message"]


# ---------------------------------------------------------------- the boundary
def _boom() -> int:
    raise ZeroDivisionError("boom")


def _interrupted() -> int:
    raise KeyboardInterrupt


def test_the_boundary_maps_every_failure(capsys: pytest.CaptureFixture[str], schema: dict[str, Any]) -> None:
    assert run_command(_boom, command="plan") == INTERNAL
    said = capsys.readouterr().err
    assert said == "internal error: ZeroDivisionError: boom\n    (run with --debug for the traceback)\n"
    assert run_command(_boom, command="plan", fmt="json") == INTERNAL
    (bug,) = _holds(schema, INTERNAL, json.loads(capsys.readouterr().out), "plan")
    assert bug["code"] == "error.internal" and bug["location"] is None
    with pytest.raises(ZeroDivisionError):
        run_command(_boom, command="plan", debug=True)
    assert run_command(_interrupted, command="update") == INTERRUPTED
    assert capsys.readouterr().err == "interrupted: nothing was changed\n"


def test_the_quick_validate_path_and_typer_share_the_boundary(
    capsys: pytest.CaptureFixture[str], spec_variant: Callable[..., Path]
) -> None:
    from generator.entry import _validate

    bad = spec_variant(("latency_p99_ms: 50", "latency_p99_ms: \x1b[2Jx"))
    for fmt in ("text", "json"):
        code = _validate(str(bad), fmt)
        quick = capsys.readouterr()
        typer = CliRunner().invoke(app, ["validate", str(bad), "--format", fmt])
        assert (code, quick.out, quick.err) == (typer.exit_code, typer.stdout, typer.stderr)
        assert code == 65 and "\x1b" not in quick.err  # the text form escapes what the spec quotes


# ---------------------------------------------------------------- one type
def test_every_error_is_an_archgen_error_with_diagnostics() -> None:
    for kind in (SpecError, SpecUnreadable, InfeasibleSpec, RuleError, ContractError):
        assert issubclass(kind, ArchgenError)
    plain = ArchgenError("cannot write x", exit_code=CANT_CREATE, hint="pass --force")
    (d,) = plain.diagnostics
    assert (d.code, d.message, d.hint, d.location) == ("error.cant_create", "cannot write x", "pass --force", None)
    assert plain.render() == "error: cannot write x\n    hint: pass --force"
    assert (plain.message, plain.hint, plain.exit_code) == ("cannot write x", "pass --force", CANT_CREATE)


def test_the_text_form_shows_finding_codes_and_related_places() -> None:
    at = Location("spec.yaml", 61, 19, "serving.latency_p99_ms")
    finding = Diagnostic("latency.infeasible", "too fast", at, related=(Location("spec.yaml", 0, 0, "serving.mode"),))
    assert finding.render() == (
        "spec.yaml:61:19: error: serving.latency_p99_ms: [latency.infeasible] too fast; see also serving.mode (default)"
    )
    spec = Diagnostic("spec.invalid_value", "expected a number", at, hint="quote it")
    assert spec.render() == "spec.yaml:61:19: error: serving.latency_p99_ms: expected a number\n    hint: quote it"
    cron = Diagnostic("check.scheduler", "bad cron", Location("pipelines/crontab", 3))
    assert str(cron) == "pipelines/crontab:3: bad cron"
    errors = SpecError([spec, spec, finding])  # one per place and message
    assert len(errors.diagnostics) == 2 and errors.render().endswith("2 errors found")
