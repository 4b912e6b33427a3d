"""`archgen check` on a repository nobody vouches for (a pull request in CI).

Each case plants something hostile in a copy of one generated repository and runs the real command:
it finishes promptly with exit 1, names the file, never prints what a file holds, and reads nothing outside.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.checks.check_untrusted import kubernetes_name_problems, scan_tree
from generator.cli import app
from generator.errors import FINDINGS, OK
from generator.untrusted import Refused, YamlLimit, escape, load_yaml_all, read_bytes, reading

pytestmark = pytest.mark.slow  # like tests/test_check.py: the real checks (Feast, Triton's protobuf) run

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"
SECRET = "TOP-SECRET-7f3a9c"
PBTXT = "model_repository/ranker/config.pbtxt"
MODEL_PY = "model_repository/ranker/1/model.py"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)
)


def archgen(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, new_repository: Callable[[Path, Path], Path]) -> Path:
    """The reference repository, which passes `archgen check`: `repo` (tests/conftest.py) copies it for each test."""
    repo = new_repository(tmp_path_factory.mktemp("pristine"), REFERENCE)
    code, output = archgen("check", str(repo))
    assert code == OK, output
    return repo


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret.yaml").write_text(f"password: {SECRET}\nother: [{SECRET}]\n")
    return d


@pytest.fixture
def deadline() -> Iterator[Callable[[], None]]:
    """Fail (instead of hanging the suite) when a check blocks for more than a minute."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError("archgen check blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(120)
    try:
        yield lambda: None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def failed(repo: Path, *expected: str) -> str:
    code, output = archgen("check", str(repo))
    assert code == FINDINGS, output
    for text in expected:
        assert text in output, output
    assert SECRET not in output and "internal error" not in output
    return output


# ------------------------------------------------------------------ never out, never echoed
@pytest.mark.parametrize("managed", ["feature_repo/feature_store.yaml", "deploy/docker-compose.yaml", "README.md"])
def test_a_managed_file_replaced_by_a_symlink_out_is_not_followed_or_printed(
    repo: Path, outside: Path, managed: str
) -> None:
    (repo / managed).unlink()
    (repo / managed).symlink_to(outside / "secret.yaml")
    failed(repo, managed, "symlink leading outside")


def test_a_folder_symlinked_out_is_not_followed(repo: Path, outside: Path) -> None:
    shutil.rmtree(repo / "pipelines")
    (repo / "pipelines").symlink_to(outside)
    (outside / "crontab").write_text(f"* * * * * {SECRET}\n")
    failed(repo, "pipelines", "symlink leading outside")


def test_a_syntax_error_is_reported_by_position_without_the_line(repo: Path) -> None:
    (repo / "deploy" / "docker-compose.yaml").write_text(f"services:\n  x: [{SECRET}\n  y: {{\n")
    output = failed(repo, "deploy/docker-compose.yaml", "line")
    assert "^" not in output  # no snippet with a caret under the file's text


# ------------------------------------------------------------------ bounded work
def test_an_alias_bomb_is_refused_promptly(repo: Path) -> None:
    (repo / "deploy" / "docker-compose.yaml").write_text(BOMB)
    start = time.monotonic()
    failed(repo, "deploy/docker-compose.yaml", "alias")
    assert time.monotonic() - start < 60
    with pytest.raises(YamlLimit):
        load_yaml_all(BOMB)
    with pytest.raises(YamlLimit):
        load_yaml_all("[" * 100 + "]" * 100)


def test_a_fifo_is_refused_not_waited_on(repo: Path, deadline: Callable[[], None]) -> None:
    os.unlink(repo / "deploy" / "docker-compose.yaml")
    os.mkfifo(repo / "deploy" / "docker-compose.yaml")
    failed(repo, "deploy/docker-compose.yaml", "FIFO")


def test_a_huge_managed_file_is_not_read_whole(repo: Path, deadline: Callable[[], None]) -> None:
    with open(repo / "README.md", "r+b") as fh:
        fh.truncate(3 * 1024**3)  # sparse: 3 GB to read, nothing on disk
    failed(repo, "README.md", "larger than")
    with reading(repo), pytest.raises(Refused):
        read_bytes(repo / "README.md")


# ------------------------------------------------------------------ what the tools would refuse
def test_conflict_markers_fail(repo: Path) -> None:
    readme = repo / "README.md"
    readme.write_text(readme.read_text() + "<<<<<<< ours\nmine\n=======\ntheirs\n>>>>>>> archgen\n")
    failed(repo, "README.md:", "conflict markers")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("max_batch_size: 32", "max_batch_size: -4"), "max_batch_size -4 is negative"),
        (
            lambda t: t + "dynamic_batching {\n  preferred_batch_size: 64\n}\n",
            "preferred_batch_size 64 exceeds max_batch_size 32",
        ),
        (lambda t: re.sub(r"count: 1", "count: -2", t, count=1), "count -2 is negative"),
    ],
    ids=["negative-max-batch", "preferred-above-max", "negative-count"],
)
def test_triton_load_time_rules(repo: Path, edit: Callable[[str], str], message: str) -> None:
    config = repo / PBTXT
    text = config.read_text()
    if "dynamic_batching" in text and "preferred" in message:
        text = re.sub(r"dynamic_batching \{[^}]*\}\n?", "", text)
    changed = edit(text)
    assert changed != config.read_text()
    config.write_text(changed)
    failed(repo, PBTXT, message)


def test_model_code_that_does_not_compile_fails_without_being_imported(repo: Path, tmp_path: Path) -> None:
    flag = tmp_path / "imported"
    (repo / MODEL_PY).write_text(f"open({str(flag)!r}, 'w').write('x')\ndef broken(:\n    pass\n")
    failed(repo, f"{MODEL_PY}:2", "syntax error")
    assert not flag.exists()


def test_kubernetes_names_longer_than_the_limits_fail(tmp_path: Path) -> None:
    long = "a" * 64
    assert kubernetes_name_problems({"kind": "Service", "metadata": {"name": long}})
    assert kubernetes_name_problems({"kind": "CronJob", "metadata": {"name": "b" * 53}})
    assert kubernetes_name_problems({"kind": "Deployment", "metadata": {"name": "x", "labels": {"app": long}}})
    assert not kubernetes_name_problems({"kind": "Service", "metadata": {"name": "a" * 63, "labels": {"app": "ok"}}})


# ------------------------------------------------------------------ the terminal
def test_file_names_with_escape_sequences_are_printed_escaped(repo: Path, tmp_path: Path) -> None:
    (repo / "\x1b]0;pwned\x07\x1b[2J.txt").write_text("<<<<<<< a\nx\n=======\ny\n>>>>>>> b\n")
    code, output = archgen("check", str(repo))
    assert code == FINDINGS
    assert "\x1b" not in output and "\x07" not in output
    assert "\\x1b]0;pwned\\x07" in output
    found: list[tuple[str, str]] = []
    scan_tree(repo, set(), lambda f, m, line: found.append((f, m)))
    assert any(f.startswith(escape("\x1b]0;pwned")) for f, _ in found)


def test_kubernetes_manifests_with_long_names_are_found_in_the_repository(tmp_path: Path) -> None:
    from generator.checks.check_untrusted import check_kubernetes_names

    k8s = tmp_path / "deploy" / "k8s" / "base"
    k8s.mkdir(parents=True)
    (k8s / "svc.yaml").write_text(f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {'s' * 70}\n")
    (k8s / "ok.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: ranker\n")
    found: list[tuple[str, str]] = []
    with reading(tmp_path):
        check_kubernetes_names(tmp_path, lambda f, m, line: found.append((f, m)))
    assert found == [("deploy/k8s/base/svc.yaml", "Service name is 70 characters; Kubernetes allows at most 63")]
