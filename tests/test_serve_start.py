"""`make serve-start` (serving/triton_runtime.py start) reports a model that fails to load at once, with the
model's own error from the Triton log, instead of waiting for its ready timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from triton_harness import PRESETS, generate, have_triton, runtime

pytestmark = [
    pytest.mark.slow,
    pytest.mark.triton,
    pytest.mark.skipif(not have_triton(), reason="no tritonserver in the Triton venv (ARCHGEN_TRITON_VENV)"),
]


def test_a_model_that_fails_to_load_inside_a_pipeline_is_reported_at_once(tmp_path: Path) -> None:
    generate(PRESETS / "realtime.yaml", tmp_path, ("model_repository", "serving"))
    broken = sorted(tmp_path.glob("model_repository/*/1/model.py"))
    assert broken, "the realtime preset has python models"
    model = broken[-1].parent.parent.name
    text = broken[-1].read_text(encoding="utf-8")
    broken[-1].write_text(
        text.replace(
            "    def initialize(self, args):\n",
            "    def initialize(self, args):\n        raise ValueError('bad weights 8x1')\n",
            1,
        ),
        encoding="utf-8",
    )
    started = time.monotonic()
    result = runtime(tmp_path, "start", timeout=300)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert elapsed < 60, f"start took {elapsed:.0f} s to report the failure (the ready timeout is 120 s)"
    assert model in result.stderr and "bad weights 8x1" in result.stderr, result.stderr
    assert not (tmp_path / ".run" / "triton.json").exists()
    assert runtime(tmp_path, "status").returncode == 1
