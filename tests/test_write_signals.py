"""A real SIGINT / SIGTERM to `archgen new` in the middle of writing: exit 130, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator.write import DELAY_ENV, STAGING_MARK

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"


def _default_sigint() -> None:
    # a child of a non-interactive shell may start with SIGINT ignored; Ctrl-C semantics need the default
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_midway_exits_130_and_leaves_nothing(tmp_path: Path, signum: int) -> None:
    work = tmp_path / "work"
    work.mkdir()
    out = work / "repo"
    env = {**os.environ, DELAY_ENV: "0.05"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "generator.cli", "new", str(REFERENCE), "-o", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        staging: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None:
            staging = [p for p in work.iterdir() if STAGING_MARK in p.name]
            if staging and any(p.is_file() for p in staging[0].rglob("*")):
                break
            time.sleep(0.01)
        assert staging, "the write never started"
        time.sleep(0.2)  # a few files into the staging folder
        assert proc.poll() is None, "the write finished before the signal"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert os.listdir(work) == []  # no target, no staging folder
