"""`python -m generator.reference [--check]`: keep reference_impl/ equal to a fresh generation.

reference_impl/ is the repository archgen generates from requirements_spec/presets/reference.yaml,
checked in so reviewers read what archgen produces. ``make reference`` rewrites it (the whole
folder is archgen's, so files that are no longer generated go too); ``--check`` only compares
and lists the differences (tests/test_reference_impl.py runs the same comparison).
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .generate import Generation, generate
from .write import write_repository

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_SPEC = ROOT / "requirements_spec" / "presets" / "reference.yaml"
REFERENCE_IMPL = ROOT / "reference_impl"
IGNORED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".venv", ".venv-triton", ".run"}


def generate_reference() -> Generation:
    return generate(REFERENCE_SPEC)


def tree_files(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root (relative posix path -> (bytes, mode)), skipping caches and virtualenvs."""
    out: dict[str, tuple[bytes, int]] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        for name in sorted(names):
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            out[rel] = (path.read_bytes(), stat.S_IMODE(path.lstat().st_mode))
    return out


def differences(root: Path, files: Mapping[str, bytes], modes: Mapping[str, int]) -> list[str]:
    """What differs between the tree at root and the generated files: one line per path."""
    if not root.is_dir():
        return [f"{root} does not exist"]
    have = tree_files(root)
    lines = []
    for rel in sorted(set(have) | set(files)):
        if rel not in have:
            lines.append(f"missing   {rel}")
        elif rel not in files:
            lines.append(f"extra     {rel}")
        elif have[rel][0] != files[rel]:
            lines.append(f"differs   {rel}")
        elif have[rel][1] != modes.get(rel, 0o644):
            lines.append(f"mode      {rel} ({have[rel][1]:04o}, generated {modes.get(rel, 0o644):04o})")
    return lines


def refresh(target: Path = REFERENCE_IMPL) -> Generation:
    """Replace target with a fresh generation (generate beside it, then swap)."""
    gen = generate_reference()
    with tempfile.TemporaryDirectory(prefix=".reference_impl.", dir=target.parent) as tmp:
        fresh = Path(tmp) / "reference_impl"
        write_repository(fresh, gen.files, gen.modes)
        old = Path(tmp) / "old"
        if target.exists():
            os.rename(target, old)
        os.rename(fresh, target)
        shutil.rmtree(old, ignore_errors=True)
    return gen


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        gen = generate_reference()
        diff = differences(REFERENCE_IMPL, gen.files, gen.modes)
        if diff:
            print("reference_impl/ differs from a fresh generation (run `make reference`):")
            print("\n".join(f"  {line}" for line in diff))
            return 1
        print(f"reference_impl/ is up to date ({len(gen.files)} files)")
        return 0
    gen = refresh()
    print(f"reference_impl/ regenerated from {REFERENCE_SPEC.relative_to(ROOT)}: {len(gen.files)} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
