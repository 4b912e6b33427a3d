"""`archgen update`: a changed spec regenerates the repository and keeps the team's edits.

Every test works on a real generated repository (copied from one module-scoped `archgen new`) and
runs the real command line; the modified specs are text edits of the reference preset.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from interrupting import archgen_process, interrupt, wait_until
from typer.testing import CliRunner

from generator.cli import app
from generator.generate import generate_text
from generator.write.manifest import MANIFEST, SPEC_COPY, parse_manifest, sha256
from generator.write.merge import BASE, OURS, SEP, THEIRS, has_markers, merge2, merge3
from generator.write.write import DELAY_ENV, STAGING_MARK

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"
REF = REFERENCE.read_text()


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


# a looser budget and a load that fills a batch within the queue delay: the batching (config.pbtxt) changes
LATENCY = _edit(_edit(REF, "latency_p99_ms: 50", "latency_p99_ms: 80"), "throughput_rps: 200", "throughput_rps: 400")
LATENCY_RPS = _edit(LATENCY, "throughput_rps: 400", "throughput_rps: 300")
GRPC = _edit(REF, "protocol: rest ", "protocol: grpc ")
SERVICE = "      features: [driver_activity.trips_today, driver_activity.rating, driver_activity.acceptance_rate]\n"
WITH_ON_DEMAND = _edit(
    REF,
    "  services:\n    - name: ranking_v1\n" + SERVICE,
    "  on_demand:\n"
    "    - name: driver_score\n"
    "      inputs: [driver_activity.trips_today, driver_activity.rating]\n"
    "      fields:\n"
    "        - {name: trips_x_rating, dtype: float64}\n"
    "  services:\n    - name: ranking_v1\n" + SERVICE.replace("]\n", ", driver_score.trips_x_rating]\n"),
)
ON_DEMAND_FILE = "feature_repo/on_demand.py"
PBTXT = "model_repository/ranker/config.pbtxt"
FITNESS = "tests/fitness.py"
TRAIN = "training/train.py"

Snapshot = tuple[dict[str, tuple[bytes, int]], set[str]]


def archgen(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def snapshot(root: Path) -> Snapshot:
    """Every file (bytes and mode) and every folder under ``root``."""
    files: dict[str, tuple[bytes, int]] = {}
    dirs: set[str] = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            dirs.add(rel)
        else:
            files[rel] = (path.read_bytes(), path.stat().st_mode & 0o777)
    return files, dirs


def spec_file(tmp_path: Path, text: str, name: str = "new.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def manifest_of(repo: Path) -> dict[str, str]:
    return {f.path: f.sha256 for f in parse_manifest((repo / MANIFEST).read_bytes()).files}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A pristine repository per spec text, generated once by `archgen new`."""
    cache: dict[str, Path] = {}

    def get(text: str) -> Path:
        if text not in cache:
            work = tmp_path_factory.mktemp("pristine")
            code, output = archgen("new", str(spec_file(work, text, "spec.yaml")), "-o", str(work / "repo"))
            assert code == 0, output
            cache[text] = work / "repo"
        return cache[text]

    return get


@pytest.fixture
def repo_of(generated: Callable[[str], Path], tmp_path: Path) -> Callable[[str], Path]:
    """A private copy of the pristine repository of a spec, to edit and update."""

    def copy(text: str = REF) -> Path:
        dest = tmp_path / "work" / "repo"
        shutil.copytree(generated(text), dest, symlinks=True)
        return dest

    return copy


# ------------------------------------------------------------------ the merge itself
def _lines(*items: str) -> str:
    return "".join(f"{i}\n" for i in items)


def test_merge3_takes_each_sides_change_in_different_places() -> None:
    base = _lines(*"abcdefgh")
    ours = _lines("A", *"bcdefgh", "mine")
    theirs = _lines(*"abcd", "E", *"fgh")
    merged = merge3(base, ours, theirs)
    assert merged.clean and merged.text == _lines("A", *"bcd", "E", *"fgh", "mine")
    assert merge3(base, ours, base).text == ours and merge3(base, base, theirs).text == theirs
    assert merge3(base, theirs, theirs).text == theirs  # the same change on both sides, once


def test_merge3_marks_the_same_place_changed_differently() -> None:
    merged = merge3(_lines("a", "b", "c"), _lines("a", "mine", "c"), _lines("a", "new", "c"))
    assert merged.conflicts == 1
    assert merged.text == _lines("a", OURS, "mine", BASE, "b", SEP, "new", THEIRS, "c")
    assert has_markers(merged.text) and not has_markers(_lines("title", SEP, "text"))


def test_merge3_keeps_a_missing_final_newline_off_the_markers() -> None:
    merged = merge3("a\nb", "a\nmine", "a\nnew")
    assert merged.text == "a\n" + _lines(OURS, "mine", BASE, "b", SEP, "new", THEIRS)
    assert merge3("a\nb", "a\nb", "a\nnew").text == "a\nnew"


def test_merge2_marks_every_difference_without_a_base() -> None:
    merged = merge2(_lines("a", "b", "c", "d"), _lines("a", "B", "c", "d", "e"))
    assert merged.conflicts == 2
    assert merged.text == _lines("a", OURS, "b", SEP, "B", THEIRS, "c", "d", OURS, SEP, "e", THEIRS)
    assert merge2("same\n", "same\n").clean


# ------------------------------------------------------------------ the command
def test_spec_change_without_edits_gives_the_new_spec_s_repository(repo_of: Any, tmp_path: Path) -> None:
    repo = repo_of()
    code, output = archgen("update", str(repo), "--spec", str(spec_file(tmp_path, LATENCY)))
    assert code == 0, output
    expected = generate_text(LATENCY)
    files, _ = snapshot(repo)
    assert files == {p: (expected.files[p], expected.modes[p]) for p in expected.files}
    assert "changed  dynamic_batching" in output and "serving.latency_p99_ms: 50 -> 80" in output
    assert f"replaced  {PBTXT}" in output and "CONFLICT" not in output
    code, output = archgen("update", str(repo))  # the recorded spec again: nothing to do
    assert code == 0 and "is up to date" in output and "no decision or finding changes" in output


def test_user_edit_in_a_file_the_update_does_not_touch_is_kept(repo_of: Any, tmp_path: Path) -> None:
    repo = repo_of()
    edited = (repo / TRAIN).read_text().replace("def main(", "def helper() -> int:\n    return 1\n\n\ndef main(", 1)
    (repo / TRAIN).write_text(edited)
    code, output = archgen("update", str(repo), "--spec", str(spec_file(tmp_path, LATENCY)))
    assert code == 0, output
    assert (repo / TRAIN).read_text() == edited
    assert (repo / PBTXT).read_bytes() == generate_text(LATENCY).files[PBTXT]
    assert "1 of them changed by you" in output and TRAIN not in output


def test_edits_in_different_places_merge_cleanly_and_the_next_update_merges_against_the_new_base(
    repo_of: Any, tmp_path: Path
) -> None:
    repo = repo_of()
    mine = "\n\ndef my_budget_check() -> bool:  # the team's own check\n    return True\n"
    (repo / FITNESS).write_text((repo / FITNESS).read_text() + mine)
    code, output = archgen("update", str(repo), "--spec", str(spec_file(tmp_path, LATENCY)))
    assert code == 0, output
    text = (repo / FITNESS).read_text()
    assert text == generate_text(LATENCY).files[FITNESS].decode() + mine
    assert f"merged    {FITNESS}" in output
    assert (repo / SPEC_COPY).read_text() == LATENCY
    assert manifest_of(repo)[FITNESS] == sha256(generate_text(LATENCY).files[FITNESS])
    # the next update's base is what this one wrote: archgen's change again merges cleanly
    code, output = archgen("update", str(repo), "--spec", str(spec_file(tmp_path, LATENCY_RPS, "rps.yaml")))
    assert code == 0, output
    assert (repo / FITNESS).read_text() == generate_text(LATENCY_RPS).files[FITNESS].decode() + mine


def test_edits_in_the_same_place_are_marked_as_a_conflict(repo_of: Any, tmp_path: Path) -> None:
    repo = repo_of()
    (repo / PBTXT).write_text(
        (repo / PBTXT)
        .read_text()
        .replace("dynamic_batching {\n}", "dynamic_batching {\n  max_queue_delay_microseconds: 100\n}")
    )
    code, output = archgen("update", str(repo), "--spec", str(spec_file(tmp_path, LATENCY)))
    assert code == 1, output
    assert f"CONFLICT  {PBTXT}  (1 conflicting region(s))" in output and "1 file(s) have conflicts" in output
    text = (repo / PBTXT).read_text()
    block = _lines(
        OURS,
        "  max_queue_delay_microseconds: 100",
        BASE,
        SEP,
        *(f"  preferred_batch_size: {n}" for n in (2, 4, 8, 16, 32)),
        "  max_queue_delay_microseconds: 5000",
        THEIRS,
    )
    assert block in text and text.count(OURS) == 1
    assert (repo / SPEC_COPY).read_text() == LATENCY  # the rest of the update went through
    before = snapshot(repo)
    code, output = archgen("update", str(repo), "--spec", str(spec_file(tmp_path, LATENCY_RPS, "rps.yaml")))
    assert code == 1 and "still hold conflict markers" in output and PBTXT in output
    assert snapshot(repo) == before


@pytest.mark.parametrize("edited", [False, True], ids=["untouched", "edited"])
def test_a_removed_view_s_files_go_unless_edited(repo_of: Any, tmp_path: Path, edited: bool) -> None:
    repo = repo_of(WITH_ON_DEMAND)
    if edited:
        (repo / ON_DEMAND_FILE).write_text((repo / ON_DEMAND_FILE).read_text() + "# tuned by the team\n")
    code, output = archgen("update", str(repo), "--spec", str(spec_file(tmp_path, REF)))
    assert code == 0, output
    assert "changed  on_demand_views: driver_score -> none" in output
    assert (repo / ON_DEMAND_FILE).exists() is edited
    assert ON_DEMAND_FILE not in manifest_of(repo)  # kept or not, archgen no longer manages it
    if edited:
        assert f"kept      {ON_DEMAND_FILE}  (no longer generated, but changed by you" in output
    else:
        assert f"removed   {ON_DEMAND_FILE}" in output
        expected = generate_text(REF)
        assert snapshot(repo)[0] == {p: (expected.files[p], expected.modes[p]) for p in expected.files}


@pytest.mark.parametrize("team_file", [False, True], ids=["new-path", "team-file-there"])
def test_an_added_view_s_file_is_added(repo_of: Any, tmp_path: Path, team_file: bool) -> None:
    repo = repo_of()
    if team_file:
        (repo / ON_DEMAND_FILE).write_text("# the team's own on-demand features\n")
    code, output = archgen("update", str(repo), "--spec", str(spec_file(tmp_path, WITH_ON_DEMAND)))
    new = generate_text(WITH_ON_DEMAND).files[ON_DEMAND_FILE].decode()
    text = (repo / ON_DEMAND_FILE).read_text()
    if team_file:  # never silently overwritten: both versions, marked
        assert code == 1, output
        assert f"CONFLICT  {ON_DEMAND_FILE}" in output and "archgen did not write your file" in output
        assert text == _lines(OURS, "# the team's own on-demand features", SEP) + new + _lines(THEIRS)
    else:
        assert code == 0, output
        assert f"new       {ON_DEMAND_FILE}" in output and text == new


def test_an_edited_binary_file_is_kept(repo_of: Any, tmp_path: Path) -> None:
    repo = repo_of()
    drawing = "docs/diagrams/dataflow.dot"  # archgen changes it for GRPC; the team made it binary
    mine = (repo / drawing).read_bytes() + b"\0team"
    (repo / drawing).write_bytes(mine)
    code, output = archgen("update", str(repo), "--spec", str(spec_file(tmp_path, GRPC)))
    assert code == 0, output
    assert (repo / drawing).read_bytes() == mine and f"kept      {drawing}  (binary, changed by you" in output
    assert (repo / "docs/diagrams/deployment.dot").read_bytes() == generate_text(GRPC).files[
        "docs/diagrams/deployment.dot"
    ]


def test_without_a_reproducible_base_the_merge_is_two_way(repo_of: Any, tmp_path: Path) -> None:
    repo = repo_of()
    # as if another archgen version had written the file: the base rebuilt today has another hash
    (repo / FITNESS).write_text((repo / FITNESS).read_text() + "# mine\n")
    data = json.loads((repo / MANIFEST).read_text())
    data["files"][FITNESS]["sha256"] = sha256(b"what an older archgen wrote")
    (repo / MANIFEST).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    code, output = archgen("update", str(repo), "--spec", str(spec_file(tmp_path, LATENCY)))
    assert code == 1, output
    assert f"CONFLICT  {FITNESS}" in output and "two-way, without a base" in output and "does not reproduce" in output
    text = (repo / FITNESS).read_text()
    assert BASE not in text and text.count(OURS) == 2  # the latency line and the team's line
    assert has_markers(text)


def test_dry_run_changes_nothing(repo_of: Any, tmp_path: Path) -> None:
    repo = repo_of(WITH_ON_DEMAND)
    (repo / PBTXT).write_text(
        (repo / PBTXT)
        .read_text()
        .replace("dynamic_batching {\n}", "dynamic_batching {\n  max_queue_delay_microseconds: 100\n}")
    )
    before = snapshot(repo)
    code, output = archgen("update", str(repo), "--spec", str(spec_file(tmp_path, LATENCY)), "--dry-run")
    assert code == 1, output  # conflicts would be marked
    assert "dry run: nothing was written" in output and "would have conflicts" in output
    assert f"CONFLICT  {PBTXT}" in output and f"removed   {ON_DEMAND_FILE}" in output
    assert snapshot(repo) == before
    assert not [p for p in repo.parent.iterdir() if STAGING_MARK in p.name]


def test_bad_spec_is_reported_at_its_line_and_changes_nothing(repo_of: Any, tmp_path: Path) -> None:
    repo = repo_of()
    before = snapshot(repo)
    bad = spec_file(tmp_path, _edit(REF, "latency_p99_ms: 50", "latency_p99_ms: fast"))
    code, output = archgen("update", str(repo), "--spec", str(bad))
    assert code == 65, output
    assert f"{bad}:61:19: error: serving.latency_p99_ms" in output and "Traceback" not in output
    assert snapshot(repo) == before


def test_not_a_generated_repository(tmp_path: Path) -> None:
    code, output = archgen("update", str(tmp_path))
    assert code == 66 and "not a repository archgen generated" in output


# ------------------------------------------------------------------ atomicity
@pytest.mark.parametrize("fault", [OSError, KeyboardInterrupt], ids=["disk-full", "interrupt"])
def test_a_failure_midway_through_the_commit_leaves_the_repo_as_it_was(
    repo_of: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: type[BaseException]
) -> None:
    repo = repo_of(WITH_ON_DEMAND)
    (repo / FITNESS).write_text((repo / FITNESS).read_text() + "# mine\n")
    before = snapshot(repo)
    real_replace = os.replace
    calls = 0

    def failing_replace(src: Any, dst: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 6:  # a file removed, files set aside and moved in: all of it is undone
            raise fault(errno.ENOSPC, "No space left on device") if fault is OSError else fault()
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    code, output = archgen("update", str(repo), "--spec", str(spec_file(tmp_path, LATENCY)))
    assert calls > 6
    assert code == (74 if fault is OSError else 130), output
    assert snapshot(repo) == before
    assert [p.name for p in repo.parent.iterdir()] == ["repo"]  # no staging folder left


@pytest.mark.parametrize("phase", ["staging", "commit"])
def test_a_signal_midway_leaves_the_repo_as_it_was(repo_of: Any, tmp_path: Path, phase: str) -> None:
    repo = repo_of(WITH_ON_DEMAND)
    (repo / FITNESS).write_text((repo / FITNESS).read_text() + "# mine\n")
    before = snapshot(repo)
    spec = spec_file(tmp_path, LATENCY)
    sub = "new" if phase == "staging" else "old"  # files staged / files already set aside by the commit

    def started() -> bool:
        staging = [p for p in repo.parent.iterdir() if STAGING_MARK in p.name]
        return bool(staging) and any(p.is_file() for p in (staging[0] / sub).rglob("*"))

    with archgen_process("update", str(repo), "--spec", str(spec), env={**os.environ, DELAY_ENV: "0.1"}) as proc:
        wait_until(proc, started, f"the {phase}")
        interrupt(proc, signal.SIGTERM if phase == "commit" else signal.SIGINT)
    assert snapshot(repo) == before
    assert [p.name for p in repo.parent.iterdir()] == ["repo"]
