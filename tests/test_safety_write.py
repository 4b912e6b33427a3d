"""Paths read from files archgen reads, `new --force` as a transaction, the update lock and the journal.

In the style of tests/test_write.py: the outside file is untouched, the target is as before, the exit code
is the documented one, and nothing is left half-written.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_write import archgen, leftovers, snapshot

from generator.errors import CANT_CREATE, IO_ERROR, UNSAFE
from generator.write.manifest import MANIFEST, sha256
from generator.write.write import DELAY_ENV, JOURNAL, STAGING_MARK, recover_interrupted, repository_lock

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"
EMPTY_SHA = sha256(b"")  # public: anyone can list an empty file with a "matching" hash


@pytest.fixture
def generated(tmp_path: Path, spec: Path, frame_only: None) -> Path:
    out = tmp_path / "repo"
    code, output = archgen("new", str(spec), "-o", str(out))
    assert code == 0, output
    return out


def _plant(repo: Path, path: str, sha: str = EMPTY_SHA) -> None:
    """Add ``path`` to the repository's manifest, as a hostile pull request could."""
    raw = json.loads((repo / MANIFEST).read_text())
    raw["files"][path] = {"sha256": sha, "mode": "0644", "component": "frame"}
    (repo / MANIFEST).write_text(json.dumps(raw))


# ------------------------------------------------------------------ 1. paths from the manifest
@pytest.mark.parametrize("command", ["new", "update"])
@pytest.mark.parametrize("where", ["dotdot", "absolute", "through-symlink"])
def test_manifest_paths_leading_out_are_exit_4_and_touch_nothing(
    tmp_path: Path, spec: Path, generated: Path, command: str, where: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"")  # empty: its hash is the public EMPTY_SHA
    if where == "dotdot":
        _plant(generated, "../outside/victim.txt")
    elif where == "absolute":
        _plant(generated, str(victim))
    else:
        (generated / "docs_link").symlink_to(outside)
        _plant(generated, "docs_link/victim.txt")
    before, before_outside = snapshot(generated), snapshot(outside)
    if command == "new":
        code, output = archgen("new", str(spec), "-o", str(generated), "--force")
    else:
        code, output = archgen("update", str(generated), "--spec", str(spec))
    assert code == UNSAFE, output
    assert "nothing was changed" in output and "internal error" not in output
    assert victim.exists() and snapshot(outside) == before_outside
    assert snapshot(generated) == before and leftovers(tmp_path) == []


def test_archgen_folder_symlinked_outside_is_exit_4(tmp_path: Path, spec: Path, generated: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (generated / ".archgen").rename(elsewhere)
    (generated / ".archgen").symlink_to(elsewhere)
    before, before_elsewhere = snapshot(generated), snapshot(elsewhere)
    code, output = archgen("update", str(generated))
    assert code == UNSAFE, output
    assert snapshot(generated) == before and snapshot(elsewhere) == before_elsewhere


# ------------------------------------------------------------------ 2. new --force: all or nothing
@pytest.mark.usefixtures("frame_only")
def test_force_into_a_folder_without_manifest_keeps_the_teams_readme_and_makefile(tmp_path: Path, spec: Path) -> None:
    out = tmp_path / "repo"
    out.mkdir()
    (out / "README.md").write_text("our own readme\n")
    (out / "Makefile").write_text("all:\n\techo ours\n")
    before = snapshot(out)
    code, output = archgen("new", str(spec), "-o", str(out), "--force")
    assert code == CANT_CREATE, output
    assert "README.md" in output and "Makefile" in output and "nothing was written" in output
    assert snapshot(out) == before and leftovers(tmp_path) == []


@pytest.mark.usefixtures("frame_only")
def test_force_accepts_an_identical_unmanaged_file(tmp_path: Path, spec: Path) -> None:
    first = tmp_path / "first"
    assert archgen("new", str(spec), "-o", str(first))[0] == 0
    out = tmp_path / "repo"
    out.mkdir()
    (out / "Makefile").write_bytes((first / "Makefile").read_bytes())
    code, output = archgen("new", str(spec), "-o", str(out), "--force")
    assert code == 0, output
    assert (out / MANIFEST).is_file()


@pytest.mark.usefixtures("frame_only")
def test_force_failing_midway_through_the_commit_leaves_the_target_as_it_was(
    tmp_path: Path, spec: Path, generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for rel in ("Makefile", "README.md", ".gitignore"):  # managed, edited: --force replaces them
        (generated / rel).write_text("edited\n")
    (spec.parent / "spec.yaml").write_text(spec.read_text().replace("latency_p99_ms: 50", "latency_p99_ms: 40"))
    before = snapshot(generated)
    real, calls = os.replace, []

    def failing(src: str | Path, dst: str | Path) -> None:
        calls.append(dst)
        if len(calls) == 3:  # the manifest or a file already moved in: taken back
            raise OSError(errno.EIO, "Input/output error", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    code, output = archgen("new", str(spec), "-o", str(generated), "--force")
    assert code == IO_ERROR, output
    assert len(calls) >= 3
    monkeypatch.setattr(os, "replace", real)
    assert snapshot(generated) == before and leftovers(tmp_path) == []


# ------------------------------------------------------------------ 7. the lock and the journal
_HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_writer_is_refused_while_one_holds_the_lock(tmp_path: Path, spec: Path, generated: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(generated)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = snapshot(generated)
        for args in (
            ["update", str(generated), "--spec", str(spec)],
            ["new", str(spec), "-o", str(generated), "--force"],
        ):
            code, output = archgen(*args)
            assert code == CANT_CREATE, output
            assert "another archgen command is writing" in output
        assert snapshot(generated) == before
    finally:
        holder.kill()
        holder.wait()
    with repository_lock(generated):  # released with the process that held it: no stale lock
        pass


_WRITER = """
import sys
from pathlib import Path
from generator.write.write import write_repository
out = Path(sys.argv[1])
files = {f"f{i:03}.txt": b"new %d\\n" % i for i in range(60)}
write_repository(out, files, dict.fromkeys(files, 0o644), force=True)
"""


def _kill_midway(tmp_path: Path, out: Path) -> None:
    """Run a transaction into ``out`` in a real process and SIGKILL it while it commits."""
    env = {**os.environ, DELAY_ENV: "0.02", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_WRITER), str(out)], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            journals = list(tmp_path.glob(f".repo{STAGING_MARK}*/{JOURNAL}"))
            if journals and journals[0].read_text().count('"put"') >= 5:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the writer finished before the kill"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_after_a_hard_kill_the_next_run_rolls_back_the_interrupted_transaction(tmp_path: Path) -> None:
    out = tmp_path / "repo"
    out.mkdir()
    for i in range(60):
        (out / f"f{i:03}.txt").write_bytes(b"old %d\n" % i)
    # a manifest that says archgen wrote the old files, so --force may replace them
    from generator.write.manifest import build_manifest

    old = {f"f{i:03}.txt": b"old %d\n" % i for i in range(60)}
    (out / ".archgen").mkdir()
    (out / MANIFEST).write_bytes(
        build_manifest("p", b"s", old, dict.fromkeys(old, 0o644), dict.fromkeys(old, "t")).to_json()
    )
    before = snapshot(out)
    _kill_midway(tmp_path, out)
    half = snapshot(out)
    assert half != before and leftovers(tmp_path)  # really cut in the middle, the journal left behind
    assert recover_interrupted(out) is not None
    assert snapshot(out) == before and leftovers(tmp_path) == []
    assert recover_interrupted(out) is None  # nothing more to do


def test_a_transaction_killed_after_its_commit_is_finished_not_rolled_back(tmp_path: Path) -> None:
    out = tmp_path / "repo"
    out.mkdir()
    (out / "a.txt").write_text("new\n")  # the commit had moved the new file in
    staging = tmp_path / f".repo{STAGING_MARK}killed"
    (staging / "old").mkdir(parents=True)
    (staging / "new").mkdir()
    (staging / "old" / "a.txt").write_text("old\n")
    (staging / JOURNAL).write_text('["aside", "a.txt", 0]\n["put", "a.txt", 0]\n["committed", "", 0]\n')
    assert recover_interrupted(out) == "finished an interrupted update"
    assert (out / "a.txt").read_text() == "new\n" and leftovers(tmp_path) == []


def test_a_journal_cut_mid_line_rolls_back_the_steps_it_recorded(tmp_path: Path) -> None:
    out = tmp_path / "repo"
    out.mkdir()
    (out / "a.txt").write_text("new\n")
    staging = tmp_path / f".repo{STAGING_MARK}killed"
    (staging / "old").mkdir(parents=True)
    (staging / "new" / "b").mkdir(parents=True)
    (staging / "old" / "a.txt").write_text("old\n")
    (staging / "new" / "b" / "c.txt").write_text("never moved in\n")
    (out / "b").mkdir()
    (staging / JOURNAL).write_text('["aside", "a.txt", 0]\n["put", "a.txt", 0]\n["mkdir", "b", 0]\n["put", "b/c.t')
    assert recover_interrupted(out) is not None
    assert (out / "a.txt").read_text() == "old\n" and not (out / "b").exists() and leftovers(tmp_path) == []
