"""The same spec gives byte-identical repositories, whatever the cwd, time zone, hash seed, locale,
umask, temp folder or template cache; generating again over an unchanged repository rewrites nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tools.reference import tree_files

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"


def _generate(spec: str, out: Path, cwd: Path, env: dict[str, str], umask: int, *extra: str) -> None:
    def child() -> None:
        os.umask(umask)

    res = subprocess.run(
        [sys.executable, "-m", "generator.cli", "new", spec, "-o", str(out), *extra],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        preexec_fn=child,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_two_generations_in_different_environments_are_identical(tmp_path: Path) -> None:
    a_cwd, b_cwd = tmp_path / "a", tmp_path / "b" / "deeper"
    b_cwd.mkdir(parents=True)
    a_cwd.mkdir()
    spec_b = b_cwd / "my spec.yaml"  # another name, another folder, given relative to the cwd
    shutil.copyfile(REFERENCE, spec_b)
    _generate(
        str(REFERENCE),
        a_cwd / "out",
        a_cwd,
        {"TZ": "UTC", "PYTHONHASHSEED": "0", "LC_ALL": "C", "TMPDIR": str(a_cwd), "XDG_CACHE_HOME": str(a_cwd)},
        0o022,
    )
    _generate(
        "my spec.yaml",
        tmp_path / "other" / "out",
        b_cwd,
        {
            "TZ": "Pacific/Kiritimati",
            "PYTHONHASHSEED": "4242",
            "LC_ALL": "C.UTF-8",
            "TMPDIR": str(b_cwd),
            "ARCHGEN_NO_CACHE": "1",  # templates compiled afresh, not loaded from the cache
        },
        0o077,
    )
    first, second = tree_files(a_cwd / "out"), tree_files(tmp_path / "other" / "out")
    assert sorted(first) == sorted(second)
    differing = [p for p in first if first[p] != second[p]]
    assert differing == [], f"files differ between the two generations: {differing}"
    for path, (data, _) in first.items():
        assert str(tmp_path).encode() not in data, f"{path} holds an absolute path"


def test_generating_again_rewrites_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _generate(str(REFERENCE), out, tmp_path, {}, 0o022)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    _generate(str(REFERENCE), out, tmp_path, {}, 0o022, "--force")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes
