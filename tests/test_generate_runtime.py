"""How a generation runs, apart from what it writes: the garbage collector is handed back as it was,
compiled templates are cached safely between commands, and checking Triton configs does not import
the Triton client's gRPC stack."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

from generator.generate import generate, no_gc_pauses
from tools.reference import tree_files

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_handed_back_as_it_was(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        generate(REFERENCE)
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), no_gc_pauses():
            assert not gc.isenabled()
            raise RuntimeError("a failing generation")
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_cyclic_garbage_of_a_generation_is_still_collected() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    with no_gc_pauses():
        ref = weakref.ref(Node())  # a cycle: only the collector frees it
    assert ref() is not None
    gc.collect()
    assert ref() is None


def _new(out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "generator.cli", "new", str(REFERENCE), "-o", str(out)],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_template_cache_fills_and_a_damaged_unwritable_or_shared_cache_changes_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    plain = _new(tmp_path / "plain", {"ARCHGEN_NO_CACHE": "1", "XDG_CACHE_HOME": str(cache)})
    assert plain.returncode == 0, plain.stderr
    assert not cache.exists(), "ARCHGEN_NO_CACHE must not create a cache"

    first = _new(tmp_path / "first", {"XDG_CACHE_HOME": str(cache)})
    assert first.returncode == 0, first.stderr
    entries = sorted((cache / "archgen" / "templates").iterdir())
    assert len(entries) > 20, "every template used is cached"

    for i, entry in enumerate(entries):  # damage every entry, each in another way
        data = entry.read_bytes()
        entry.write_bytes([b"", data[: len(data) // 2], b"garbage" * 10, data[:20] + b"\x00" * 50][i % 4])
    damaged = _new(tmp_path / "damaged", {"XDG_CACHE_HOME": str(cache)})
    assert damaged.returncode == 0, damaged.stderr

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    unwritable = _new(tmp_path / "unwritable", {"XDG_CACHE_HOME": str(blocked)})
    assert unwritable.returncode == 0, unwritable.stderr

    shared = tmp_path / "shared"
    (shared / "archgen" / "templates").mkdir(parents=True)
    (shared / "archgen" / "templates").chmod(0o777)  # others could plant compiled code here: not used
    in_shared = _new(tmp_path / "in_shared", {"XDG_CACHE_HOME": str(shared)})
    assert in_shared.returncode == 0, in_shared.stderr
    assert list((shared / "archgen" / "templates").iterdir()) == []

    expected = tree_files(tmp_path / "plain")
    for name in ("first", "damaged", "unwritable", "in_shared"):
        got = tree_files(tmp_path / name)
        assert sorted(got) == sorted(expected)
        assert [p for p in got if got[p] != expected[p]] == [], name


def test_triton_configs_are_checked_without_the_grpc_stack(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from generator.generate import generate\n"
        f"gen = generate(Path({str(REFERENCE)!r}))\n"
        "assert any(p.endswith('config.pbtxt') for p in gen.files)\n"
        "heavy = sorted(m for m in ('grpc', 'numpy', 'ml_dtypes', 'tritonclient.grpc') if m in sys.modules)\n"
        "assert heavy == [], heavy\n"
        "from tritonclient.grpc import model_config_pb2\n"
        "from generator.plan.triton_config import _pb\n"
        "assert _pb().ModelConfig is model_config_pb2.ModelConfig\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
