"""`archgen validate`, `archgen schema` and `archgen init` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from generator.cli import app
from requirements_spec import parse_spec, presets

ROOT = Path(__file__).resolve().parent.parent
PRESET_DIR = ROOT / "requirements_spec" / "presets"
REFERENCE = PRESET_DIR / "reference.yaml"
ARCHGEN = Path(sys.executable).with_name("archgen")
HEAVY = ("feast", "tritonclient", "diagrams", "graphviz", "jinja2", "cookiecutter", "rich")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def archgen(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ARCHGEN), *args], capture_output=True, text=True, cwd=cwd, timeout=60)


# ---------------------------------------------------------------- schema
@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    code, output = invoke("schema")
    assert code == 0
    loaded: dict[str, object] = json.loads(output)
    return loaded


def test_schema_is_a_valid_json_schema(schema: dict[str, object]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("name", presets.names())
def test_every_preset_satisfies_the_schema(schema: dict[str, object], name: str) -> None:
    data = yaml.safe_load(presets.text(name))
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    assert errors == [], [e.message for e in errors]


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("computation: precomputed", "compuation: precomputed", "compuation"),
        ("warehouse: files", "warehouse: filez", "filez"),
        ("name: driver_ranking", "name: Driver-Ranking", "Driver-Ranking"),
        ("version: 1", "version: true", "True"),
        ("ttl: 7d", "ttl: 7 days", "7 days"),
    ],
)
def test_schema_rejects_what_validate_rejects(schema: dict[str, object], old: str, new: str, fragment: str) -> None:
    data = yaml.safe_load(REFERENCE.read_text().replace(old, new, 1))
    messages = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]
    assert any(fragment in m for m in messages), messages


def test_schema_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "spec.schema.json"
    code, output = invoke("schema", "-o", str(target))
    assert code == 0 and "wrote" in output
    assert json.loads(target.read_text())["title"] == "archgen requirements spec"
    code, output = invoke("schema", "-o", str(tmp_path / "missing" / "x.json"))
    assert code == 73 and "cannot write" in output


# ---------------------------------------------------------------- init
@pytest.mark.parametrize("name", presets.names())
def test_init_writes_each_preset_as_a_valid_spec(name: str, tmp_path: Path) -> None:
    target = tmp_path / "spec.yaml"
    code, output = invoke("init", "--preset", name, "-o", str(target))
    assert code == 0, output
    text = target.read_text(encoding="utf-8")
    assert text == (PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8")
    parse_spec(text, str(target))
    code, output = invoke("validate", str(target))
    assert code == 0 and "valid" in output


def test_init_default_is_the_commented_starter(tmp_path: Path) -> None:
    target = tmp_path / "spec.yaml"
    done = archgen("init", "-o", str(target), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = target.read_text()
    assert text == presets.text("starter")
    assert sum(1 for line in text.splitlines() if "#" in line) > 40, "the starter explains itself"
    assert archgen("validate", str(target), cwd=tmp_path).returncode == 0


def test_init_to_stdout() -> None:
    code, output = invoke("init", "--preset", "edge_airgapped")
    assert code == 0 and output == presets.text("edge_airgapped")


def test_init_list_names_every_preset_with_its_summary() -> None:
    code, output = invoke("init", "--list")
    assert code == 0
    rows = output.splitlines()
    assert [row.split()[0] for row in rows] == presets.names()
    for row, name in zip(rows, presets.names(), strict=True):
        assert presets.summary(name) in row and len(presets.summary(name)) > 20
    assert any("(default)" in row and row.startswith("starter") for row in rows)


@pytest.mark.parametrize(
    ("preset", "suggestion"), [("nope", None), ("batch", "batch_warehouse"), ("refrence", "reference")]
)
def test_unknown_preset_is_a_usage_error_with_a_hint(preset: str, suggestion: str | None, tmp_path: Path) -> None:
    target = tmp_path / "spec.yaml"
    code, output = invoke("init", "--preset", preset, "-o", str(target))
    assert code == 2
    assert f"unknown preset {preset!r}" in output and "hint:" in output and "starter" in output
    if suggestion:
        assert f"did you mean `{suggestion}`?" in output
    assert not target.exists()


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    target = tmp_path / "spec.yaml"
    target.write_text("mine\n")
    code, output = invoke("init", "-o", str(target))
    assert code == 73 and "--force" in output
    assert target.read_text() == "mine\n"
    code, _ = invoke("init", "--preset", "reference", "-o", str(target), "--force")
    assert code == 0 and target.read_text() == presets.text("reference")
    code, output = invoke("init", "-o", str(tmp_path))
    assert code == 73 and "directory" in output


# ---------------------------------------------------------------- validate
def test_validate_json_output() -> None:
    code, output = invoke("validate", "--format", "json", str(REFERENCE))
    assert code == 0
    assert json.loads(output) == {
        "schema_version": 1,
        "command": "validate",
        "ok": True,
        "exit_code": 0,
        "diagnostics": [],
        "project": "driver_ranking",
    }


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "{spec}"),
        ("validate", "--format", "json", "{spec}"),
        ("validate", "{spec}", "--format=json"),
        ("validate", "--format", "text", "{spec}"),
    ],
)
@pytest.mark.parametrize("good", [True, False], ids=["valid", "invalid"])
def test_console_script_answers_like_the_typer_app(args: tuple[str, ...], good: bool, tmp_path: Path) -> None:
    """The console script answers plain `validate` without typer; the output must not differ."""
    spec = tmp_path / "spec.yaml"
    text = REFERENCE.read_text()
    spec.write_text(text if good else text.replace("entities: [driver]", "entities: [drivr]"))
    argv = [a.format(spec=spec) for a in args]
    done = archgen(*argv, cwd=tmp_path)
    result = CliRunner().invoke(app, argv)
    assert (done.returncode, done.stdout + done.stderr) == (result.exit_code, result.output)
    assert done.returncode == (0 if good else 65)


def test_other_validate_forms_go_to_typer(tmp_path: Path) -> None:
    helped = archgen("validate", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "Usage:" in helped.stdout
    extra = archgen("validate", str(REFERENCE), "extra.yaml", cwd=tmp_path)
    assert extra.returncode == 2 and "Traceback" not in extra.stderr
    bad_format = archgen("validate", "--format", "xml", str(REFERENCE), cwd=tmp_path)
    assert bad_format.returncode == 2
    debug = archgen("--debug", "validate", str(REFERENCE), cwd=tmp_path)
    assert debug.returncode == 0 and "valid" in debug.stdout


_PROBE = """
import runpy, sys
sys.argv = {argv!r}
try:
    runpy.run_module({module!r}, run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print("EXIT", code, "HEAVY", ",".join(heavy) or "-", "TYPER", "typer" in sys.modules)
"""


@pytest.mark.parametrize(("module", "typer_loaded"), [("generator.entry", False), ("generator.cli", True)])
def test_validate_imports_no_heavy_dependencies(module: str, typer_loaded: bool, tmp_path: Path) -> None:
    probe = _PROBE.format(argv=["archgen", "validate", str(REFERENCE)], module=module, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert summary == f"EXIT 0 HEAVY - TYPER {typer_loaded}", done.stdout + done.stderr


def test_validate_of_a_missing_file_is_66_without_traceback(tmp_path: Path) -> None:
    done = archgen("validate", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert done.returncode == 66
    assert f"{tmp_path / 'nope.yaml'}:1:1: error: <document>: cannot read the spec" in done.stderr
    assert "Traceback" not in done.stderr
