"""`archgen export-template`: the decided architecture as a cookiecutter template.

`cookiecutter DIR --no-input` yields the files `archgen new` writes, byte for byte and mode for mode;
with another project name and owners it yields what `archgen new` writes for the spec with those values
(diagram images, which graphviz draws, aside), and `archgen check` accepts the result.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.cli import app

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"
COOKIECUTTER = Path(sys.executable).parent / "cookiecutter"


def archgen(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def without_images(entry: tuple[bytes, int]) -> tuple[bytes, int]:
    """A file without its embedded diagram images (drawn by graphviz: copied, not templated)."""
    data, mode = entry
    return re.sub(rb'<img src="data:image/[^"]*"', b"<img>", data), mode


def cookiecutter(template: Path, out: Path, *values: str) -> None:
    done = subprocess.run(
        [str(COOKIECUTTER), str(template), "--no-input", "-o", str(out), *values],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_the_exported_template_yields_archgen_s_files_for_the_same_values_and_for_others(tmp_path: Path) -> None:
    template = tmp_path / "template"
    code, out = archgen("export-template", str(REFERENCE), "-o", str(template))
    assert code == 0, out
    values = json.loads((template / "cookiecutter.json").read_text())
    assert values["project_name"] == "driver_ranking"
    assert {"owner_data_engineering", "owner_data_science", "registry", "environment_domain"} <= set(values)

    code, out = archgen("new", str(REFERENCE), "-o", str(tmp_path / "new"))
    assert code == 0, out
    cookiecutter(template, tmp_path / "cc")
    expected, got = tree(tmp_path / "new"), tree(tmp_path / "cc" / "driver_ranking")
    assert sorted(got) == sorted(expected)
    for path in expected:
        assert got[path] == expected[path], path

    # another team's values: the same files as `archgen new` of the spec with those values
    text = REFERENCE.read_text().replace("driver_ranking", "fraud_rank").replace("@rides/ranking-ds", "@acme/fraud-ds")
    spec = tmp_path / "fraud.yaml"
    spec.write_text(text)
    code, out = archgen("new", str(spec), "-o", str(tmp_path / "fraud-new"))
    assert code == 0, out
    cookiecutter(template, tmp_path / "cc2", "project_name=fraud_rank", "owner_data_science=@acme/fraud-ds")
    expected, got = tree(tmp_path / "fraud-new"), tree(tmp_path / "cc2" / "fraud_rank")
    assert sorted(got) == sorted(expected)
    images = {p for p in expected if p.endswith((".png", ".svg"))}
    for path in sorted(set(expected) - images - {".archgen/manifest.json"}):
        assert without_images(got[path]) == without_images(expected[path]), path
    assert "group:default/fraud-ds" in (tmp_path / "cc2" / "fraud_rank" / "catalog-info.yaml").read_text()
    code, out = archgen("check", str(tmp_path / "cc2" / "fraud_rank"))
    assert code == 0, out
    assert "0 changed, 0 deleted" in out


def test_jinja_in_generated_files_stays_literal() -> None:
    from generator.render.export import templatize

    subs = [("driver_ranking", "{{ cookiecutter.project_name }}")]
    text = "a {{ x }} driver_ranking {% raw %}b{% endraw %} {#c#}\n"
    rendered = templatize(text, subs)
    from cookiecutter.environment import StrictEnvironment

    env = StrictEnvironment(keep_trailing_newline=True)
    assert env.from_string(rendered).render(cookiecutter={"project_name": "driver_ranking"}) == text
    assert env.from_string(rendered).render(cookiecutter={"project_name": "other"}) == text.replace(
        "driver_ranking", "other"
    )
