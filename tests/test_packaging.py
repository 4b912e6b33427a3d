"""The wheel: what pyproject.toml ships is what the generator reads at run time, and an installed copy generates.

templates/ sits at the top of the checkout and ships inside the package as generator/templates
(generator/resources.py finds either). The quick tests read pyproject.toml against the tree; the slow one
builds the wheel, installs it outside the checkout and runs `archgen new` from the installed copy.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
# what the build needs of the checkout: the metadata and the shipped folders
SOURCES = ("pyproject.toml", "README.md", "generator", "requirements_spec", "templates")


def _data_files() -> dict[str, list[str]]:
    """The files the generator reads at run time, by the package whose data they are (paths relative to it)."""
    return {
        "generator.templates": sorted(p.relative_to(ROOT / "templates").as_posix() for p in _files(ROOT / "templates")),
        "generator": sorted(
            p.relative_to(ROOT / "generator").as_posix() for p in (ROOT / "generator/icons").glob("*.png")
        ),
        "requirements_spec": sorted(
            p.relative_to(ROOT / "requirements_spec").as_posix()
            for p in (ROOT / "requirements_spec/presets").glob("*.yaml")
        ),
    }


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def _matches(rel: str, pattern: str) -> bool:
    """setuptools' package-data glob: ``**/`` spans any number of folders, none included."""
    return fnmatch.fnmatch(rel, pattern) or (pattern.startswith("**/") and fnmatch.fnmatch(rel, pattern[3:]))


def test_the_listed_packages_are_the_packages_of_the_tree() -> None:
    """The package list is explicit (a mapped folder is not found by discovery): it must not miss a new package."""
    found = {
        p.parent.relative_to(ROOT).as_posix().replace("/", ".")
        for top in ("generator", "requirements_spec")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert set(PYPROJECT["packages"]) == found | {"generator.templates"}
    assert PYPROJECT["package-dir"] == {"generator.templates": "templates"}
    assert not (ROOT / "generator" / "templates").exists(), "templates/ stays at the top of the checkout"


def test_package_data_names_every_file_the_generator_reads() -> None:
    for package, files in _data_files().items():
        patterns = PYPROJECT["package-data"][package]
        missed = [rel for rel in files if not any(_matches(rel, pat) for pat in patterns)]
        assert files and missed == [], (package, missed)
    assert all(rel.endswith(".j2") for rel in _data_files()["generator.templates"])


@pytest.mark.slow
def test_an_installed_wheel_generates_outside_the_checkout(tmp_path: Path) -> None:
    """Build the wheel from a copy of the sources, install it (no dependencies: the test venv's serve) into a
    folder outside the checkout, and run `archgen new` from there: the repository equals the checkout's own.
    """
    from generator.generate import generate
    from tools.reference import REFERENCE_SPEC, differences

    src = tmp_path / "src"  # the build writes build/ and *.egg-info beside the sources: not into the checkout
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", src], check=True)
    (wheel,) = (tmp_path / "dist").glob("archgen-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    for package, files in _data_files().items():
        folder = package.replace(".", "/")
        missing = [rel for rel in files if f"{folder}/{rel}" not in names]
        assert missing == [], (package, missing)
    assert not any(n.startswith(("templates/", "tools/", "tests/")) for n in names)

    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-compile", "--target", site, wheel], check=True)
    env = {**os.environ, "PYTHONPATH": str(site), "ARCHGEN_NO_CACHE": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import generator.resources as r; print(r.__file__); print(r.TEMPLATES)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert where == [str(site / "generator" / "resources.py"), str(site / "generator" / "templates")]

    out = tmp_path / "out"
    run = subprocess.run(
        [site / "bin" / "archgen", "new", REFERENCE_SPEC, "-o", out],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    gen = generate(REFERENCE_SPEC)
    assert differences(out, gen.files, gen.modes) == []
