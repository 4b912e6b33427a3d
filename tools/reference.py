"""`python -m tools.reference [--check]`: keep reference_impl/ equal to a fresh generation.

reference_impl/ is the repository archgen generates from requirements_spec/presets/reference.yaml,
checked in so reviewers read what archgen produces. ``make reference`` rewrites it (the whole
folder is archgen's, so files that are no longer generated go too) and the digest of every preset's
repository in tests/golden/presets.sha256; ``--check`` only compares and lists the differences
(tests/test_reference_impl.py runs the same comparisons).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from generator.generate import Generation, generate
from generator.write.write import write_repository

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_SPEC = ROOT / "requirements_spec" / "presets" / "reference.yaml"
REFERENCE_IMPL = ROOT / "reference_impl"
PRESETS = ROOT / "requirements_spec" / "presets"
PRESET_DIGESTS = ROOT / "tests" / "golden" / "presets.sha256"
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


def repository_digest(files: Mapping[str, bytes], modes: Mapping[str, int]) -> str:
    """One sha256 over every generated file: its path, its mode and the sha256 of its bytes, in path order."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{modes.get(rel, 0o644):04o}\0{hashlib.sha256(files[rel]).hexdigest()}\n".encode())
    return h.hexdigest()


def preset_digests() -> dict[str, str]:
    """Preset name -> the digest of the repository archgen generates from it (in memory; nothing is drawn)."""
    out = {}
    for spec in sorted(PRESETS.glob("*.yaml")):
        gen = generate(spec)
        out[spec.stem] = repository_digest(gen.files, gen.modes)
    return out


def digest_lines(digests: Mapping[str, str]) -> str:
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))


def stored_digests(path: Path = PRESET_DIGESTS) -> dict[str, str]:
    if not path.is_file():
        return {}
    pairs = (line.split(maxsplit=1) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def digest_differences(stored: Mapping[str, str], fresh: Mapping[str, str]) -> list[str]:
    """Presets whose generated repository is not the one recorded: one line per preset."""
    lines = []
    for name in sorted(set(stored) | set(fresh)):
        if name not in stored:
            lines.append(f"unrecorded {name}")
        elif name not in fresh:
            lines.append(f"no preset  {name}")
        elif stored[name] != fresh[name]:
            lines.append(f"differs    {name}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        gen = generate_reference()
        diff = differences(REFERENCE_IMPL, gen.files, gen.modes)
        presets = digest_differences(stored_digests(), preset_digests())
        if diff:
            print("reference_impl/ differs from a fresh generation (run `make reference`):")
            print("\n".join(f"  {line}" for line in diff))
        if presets:
            print(f"{PRESET_DIGESTS.relative_to(ROOT)} differs from a fresh generation (run `make reference`):")
            print("\n".join(f"  {line}" for line in presets))
        if diff or presets:
            return 1
        print(f"reference_impl/ is up to date ({len(gen.files)} files), and every preset's repository too")
        return 0
    gen = refresh()
    print(f"reference_impl/ regenerated from {REFERENCE_SPEC.relative_to(ROOT)}: {len(gen.files)} files")
    digests = preset_digests()
    old = stored_digests()
    PRESET_DIGESTS.write_text(digest_lines(digests), encoding="utf-8")
    changed = digest_differences(old, digests)
    print(f"{PRESET_DIGESTS.relative_to(ROOT)}: {len(digests)} presets, " + (", ".join(changed) or "unchanged"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
