"""Plugin components: a package adds a decision (`archgen.rules`) and the file it shapes (`archgen.components`).

The sample plugin in `tests/plugin_sample` is installed into a temporary folder the way an installer lays
out a package (the package plus its `.dist-info` with the entry points of its pyproject.toml) and put on
PYTHONPATH of real `archgen` processes: `new` writes its NOTICE.md from the plugin's own template, the
manifest lists it under the plugin's component, `update` re-renders it and keeps the team's edits,
`check` runs the plugin's probe, which fails once the notice no longer names a license.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).parent / "plugin_sample"
SPEC = ROOT / "requirements_spec" / "presets" / "starter.yaml"


def install(target: Path) -> Path:
    """Lay the sample plugin out as an installed distribution under ``target``."""
    meta = tomllib.loads((SAMPLE / "pyproject.toml").read_text())["project"]
    shutil.copytree(SAMPLE / "acme_archgen", target / "acme_archgen", ignore=shutil.ignore_patterns("__pycache__"))
    info = target / f"acme_archgen-{meta['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    groups = meta["entry-points"]
    (info / "entry_points.txt").write_text(
        "".join(f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in groups[g].items()) + "\n" for g in sorted(groups))
    )
    (info / "top_level.txt").write_text("acme_archgen\n")
    return target


def archgen(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-m", "generator.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.slow
def test_a_plugin_adds_a_decision_and_its_file_that_new_update_and_check_handle(tmp_path: Path) -> None:
    site = install(tmp_path / "site")

    repo = tmp_path / "repo"
    done = archgen(site, "new", str(SPEC), "-o", str(repo))
    assert done.returncode == 0, done.stderr
    notice = repo / "NOTICE.md"
    text = notice.read_text()
    assert "License: apache-2.0\n" in text and "# customer_churn\n" in text
    assert "decision acme_license" in text  # the file says which decision shaped it
    assert "acme_license" in (repo / "docs" / "architecture.md").read_text()  # decided like archgen's own
    manifest = json.loads((repo / ".archgen" / "manifest.json").read_text())
    assert manifest["files"]["NOTICE.md"]["component"] == "acme"

    checked = archgen(site, "check", str(repo))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "acme notices (1)" in checked.stdout

    # the team adds a line; the spec changes what the decision reads: the notice is re-rendered and merged
    notice.write_text(text.replace("the legal team.", "legal@acme.example."))
    batch = SPEC.read_text().replace("mode: online", "mode: batch", 1)
    assert batch != SPEC.read_text()
    new_spec = tmp_path / "batch.yaml"
    new_spec.write_text(batch)
    updated = archgen(site, "update", str(repo), "--spec", str(new_spec))
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "merged    NOTICE.md" in updated.stdout
    merged = notice.read_text()
    assert "License: proprietary\n" in merged and merged.endswith("go to legal@acme.example.\n")

    # the probe fails once the notice names no license
    notice.write_text(merged.replace("License: proprietary", "License: none"))
    checked = archgen(site, "check", str(repo))
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "NOTICE.md: names no company license" in checked.stdout
