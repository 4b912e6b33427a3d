"""reference_impl/ is exactly what archgen generates from the reference spec (`make reference`)."""

from __future__ import annotations

from tools.reference import (
    PRESET_DIGESTS,
    REFERENCE_IMPL,
    differences,
    digest_differences,
    generate_reference,
    preset_digests,
    stored_digests,
)


def test_reference_impl_matches_a_fresh_generation() -> None:
    gen = generate_reference()
    diff = differences(REFERENCE_IMPL, gen.files, gen.modes)
    assert not diff, "reference_impl/ has drifted from a fresh generation; run `make reference`:\n" + "\n".join(
        f"  {line}" for line in diff
    )


def test_every_preset_generates_the_recorded_repository() -> None:
    """Each preset's whole repository (paths, modes, bytes) hashes to its line in tests/golden/presets.sha256."""
    diff = digest_differences(stored_digests(), preset_digests())
    assert not diff, f"{PRESET_DIGESTS.name} differs from a fresh generation; run `make reference`:\n" + "\n".join(
        f"  {line}" for line in diff
    )


def test_no_reference_file_is_hidden_from_git() -> None:
    """A generated file that a .gitignore hides would be missing from a fresh clone (and the test above fail)."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("git") is None or not (REFERENCE_IMPL.parent / ".git").exists():
        pytest.skip("not a git checkout")
    paths = [f"reference_impl/{p}" for p in sorted(generate_reference().files)]
    res = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=REFERENCE_IMPL.parent,
        input="\n".join(paths),
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.stdout.split() == [], f"ignored by a .gitignore: {res.stdout.split()}"
