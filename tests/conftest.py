"""Shared fixtures and the test tiers.

Tiers (``make test-quick`` runs the first, ``make test`` runs all):

- ``unit``: in process, no subprocess and no server. A test is in this tier when its module is listed
  in :data:`UNIT_MODULES`, it is not named in :data:`NOT_UNIT` and it carries none of the markers of the
  slower tiers. The tier is enforced, not assumed: a unit test that starts a subprocess or opens a
  network connection fails.
- the rest: in-process tests that take seconds (whole generations, scanners, validators run as
  programs), and ``slow`` end-to-end tests that start real servers or run generated systems.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "requirements_spec" / "presets"
REFERENCE = PRESETS / "reference.yaml"

# modules whose tests run in process, quickly (the unit tier)
UNIT_MODULES = frozenset(
    {
        "test_contributing.py",
        "test_diagnostics.py",
        "test_docs.py",
        "test_new_cli.py",
        "test_packaging.py",
        "test_plan_cli.py",
        "test_rules.py",
        "test_rules_properties.py",
        "test_serving_client.py",
        "test_spec_loader.py",
        "test_spec_properties.py",
        "test_spec_validation.py",
        "test_triton_config.py",
        "test_write.py",
    }
)
# tests of those modules that start a program or take seconds: they stay in the full run
NOT_UNIT = (
    "test_new_cli.py::test_every_preset_generates_and_records_itself",
    "test_new_cli.py::test_frame_follows_the_decisions",
    "test_plan_cli.py::test_plan_imports_neither_feast_nor_tritonclient",
    "test_diagnostics.py::test_new_and_update",  # `new` asks graphviz whether it draws (a subprocess)
    *(
        f"test_spec_validation.py::test_bad_spec_is_reported_at_its_place[{case}]"
        for case in (
            "empty-file",
            "python-tag",
            "alias-bomb",
            "deep-nesting",
            "huge-file",
            "duplicate-key",
            "utf16-bom",
            "unknown-top-level-key",
            "unknown-view-entity",
            "missing-file",
        )
    ),
    "test_spec_validation.py::test_name_no_stays_a_string",
    "test_spec_validation.py::test_all_errors_of_a_file_at_once_sorted_by_line",
    "test_spec_validation.py::test_shared_examples_validate_unchanged",
    "test_triton_config.py::test_python_rest_presets_generate_no_triton_pieces",
    "test_write.py::test_jinja_and_shell_syntax_in_spec_values_is_emitted_literally",
    "test_write.py::test_secrets_from_the_environment_are_never_written",
)
SLOWER_MARKERS = ("slow", "redis", "postgres", "triton")

# property tests: fewer examples in the unit tier (HYPOTHESIS_PROFILE=quick), the full count otherwise;
# modules take their example count from the loaded profile (``settings().max_examples``)
settings.register_profile("full", max_examples=60, deadline=None)
settings.register_profile("quick", max_examples=12, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "full"))


def _is_unit(item: pytest.Item) -> bool:
    path = Path(str(item.fspath))
    if path.name not in UNIT_MODULES:
        return False
    if any(item.get_closest_marker(m) for m in SLOWER_MARKERS):
        return False
    nodeid = item.nodeid.split("/")[-1]
    return not any(nodeid.startswith(prefix) for prefix in NOT_UNIT)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_unit(item):
            item.add_marker(pytest.mark.unit)


class _Forbidden(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _unit_runs_nothing_outside(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A unit test may not start a program or reach a server: it fails if it tries."""
    if request.node.get_closest_marker("unit") is None:
        yield
        return

    def no_popen(*args: object, **kwargs: object) -> None:
        raise _Forbidden(f"a unit test started a subprocess {args[1:2]}: move it out of the unit tier")

    def no_connect(self: socket.socket, address: object) -> None:
        if self.family == socket.AF_UNIX:
            raise _Forbidden(f"a unit test connected to {address!r}")
        raise _Forbidden(f"a unit test opened a network connection to {address!r}")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_popen)
    monkeypatch.setattr(socket.socket, "connect", no_connect)
    yield


# ---------------------------------------------------------------- shared helpers
@pytest.fixture(scope="session")
def cli() -> Callable[..., tuple[int, str]]:
    """Run the archgen CLI in process: ``code, output = cli("validate", path)``."""
    from generator.cli import app

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args))
        return result.exit_code, result.output

    return invoke


@pytest.fixture
def frame_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plan only the frame component: the writer's tests need files, not a whole system."""
    from generator.plan import plan

    monkeypatch.setattr(plan, "COMPONENTS", {"frame": plan.COMPONENTS["frame"]})


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    """The reference spec in a folder of its own (the spec's folder is a refused target)."""
    d = tmp_path / "spec"
    d.mkdir()
    p = d / "spec.yaml"
    p.write_bytes(REFERENCE.read_bytes())
    return p


@pytest.fixture
def reference_text() -> str:
    return REFERENCE.read_text(encoding="utf-8")


@pytest.fixture
def spec_variant(tmp_path: Path, reference_text: str) -> Callable[..., Path]:
    """Write the reference spec with replacements applied: ``spec_variant(("old", "new"), ...)``."""

    def make(*replacements: tuple[str, str], name: str = "spec.yaml") -> Path:
        text = reference_text
        for old, new in replacements:
            assert old in text, f"{old!r} is not in the reference spec"
            text = text.replace(old, new)
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return make


# ---------------------------------------------------------------- a generated repository to tamper with
@pytest.fixture(scope="session")
def new_repository(cli: Callable[..., tuple[int, str]]) -> Callable[[Path, Path], Path]:
    """``new_repository(work, spec)``: `archgen new` of ``spec`` (copied into a folder of its own) into
    ``work/repo``, in process; for a module's ``pristine`` repository, which :func:`repo` copies per test.
    """

    def make(work: Path, spec: Path) -> Path:
        (work / "spec").mkdir()
        copy = work / "spec" / "spec.yaml"
        copy.write_bytes(spec.read_bytes())
        code, output = cli("new", str(copy), "-o", str(work / "repo"))
        assert code == 0, output
        return work / "repo"

    return make


@pytest.fixture
def repo(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the module's ``pristine`` repository (symlinks as they are), for one test to tamper with.

    A module that uses it defines ``pristine``; a module with a ``repo`` of its own overrides this one.
    """
    dest = tmp_path / "repo"
    shutil.copytree(pristine, dest, symlinks=True)
    return dest
