"""A real SIGINT / SIGTERM to `archgen new` in the middle of writing: exit 130, nothing left behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from interrupting import archgen_process, interrupt, wait_until

from generator.write.write import DELAY_ENV, STAGING_MARK

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_midway_exits_130_and_leaves_nothing(tmp_path: Path, signum: int) -> None:
    work = tmp_path / "work"
    work.mkdir()
    out = work / "repo"

    def writing() -> bool:
        staging = [p for p in work.iterdir() if STAGING_MARK in p.name]
        return bool(staging) and any(p.is_file() for p in staging[0].rglob("*"))

    with archgen_process("new", str(REFERENCE), "-o", str(out), env={**os.environ, DELAY_ENV: "0.05"}) as proc:
        wait_until(proc, writing, "the write")
        time.sleep(0.2)  # a few files into the staging folder
        interrupt(proc, signum)
    assert os.listdir(work) == []  # no target, no staging folder
