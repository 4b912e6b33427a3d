"""The writing commands other than `new` (init, schema, diagram, review, rules-doc), and external programs.

Each: an existing file is refused without --force, a symlink is never written through, the spec being read
is never overwritten, a failure leaves the old file whole; a graphviz that fails or hangs is a warning
naming the skipped drawings (exit 69 for `archgen diagram`), and no process is left behind.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_write import archgen, snapshot

import generator.write.outfile as outfile_mod
from generator.errors import CANT_CREATE, DEPENDENCY, IO_ERROR, UNSAFE
from generator.write.outfile import TEMP_MARK

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_bytes(REFERENCE.read_bytes())
    return p


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if TEMP_MARK in p.name)


# ------------------------------------------------------------------ no clobbering, no symlinks, never the spec
@pytest.mark.parametrize(
    "args",
    [
        ["schema", "-o", "{spec}"],
        ["init", "-o", "{spec}"],
        ["rules-doc", "-o", "{spec}"],
        ["review", "{spec}", "-o", "{spec}"],
    ],
    ids=["schema", "init", "rules-doc", "review"],
)
def test_an_existing_file_is_refused_without_force(tmp_path: Path, spec: Path, args: list[str]) -> None:
    before = spec.read_bytes()
    code, output = archgen(*(a.format(spec=spec) for a in args))
    assert code == CANT_CREATE, output
    assert "already exists" in output or "the spec this command reads" in output
    assert spec.read_bytes() == before and temps(tmp_path) == []


def test_review_never_overwrites_the_spec_it_reads_even_with_force(tmp_path: Path, spec: Path) -> None:
    before = spec.read_bytes()
    code, output = archgen("review", str(spec), "-o", str(spec), "--force")
    assert code == CANT_CREATE, output
    assert "the spec this command reads" in output
    assert spec.read_bytes() == before


def test_diagram_into_a_folder_of_earlier_drawings_needs_force(tmp_path: Path, spec: Path) -> None:
    out = tmp_path / "diagrams"
    assert archgen("diagram", str(spec), "-o", str(out), "--format", "mermaid")[0] == 0
    (out / "dataflow.mmd").write_text("edited by hand\n")
    before = snapshot(out)
    code, output = archgen("diagram", str(spec), "-o", str(out), "--format", "mermaid")
    assert code == CANT_CREATE and "--force" in output
    assert snapshot(out) == before
    code, output = archgen("diagram", str(spec), "-o", str(out), "--format", "mermaid", "--force")
    assert code == 0, output
    assert (out / "dataflow.mmd").read_text().startswith("flowchart LR") and temps(out) == []


def test_rules_doc_replaces_its_own_earlier_output(tmp_path: Path) -> None:
    doc = tmp_path / "rules.md"
    assert archgen("rules-doc", "-o", str(doc))[0] == 0
    first = doc.read_bytes()
    doc.write_bytes(first + b"\nstale line\n")
    code, output = archgen("rules-doc", "-o", str(doc))  # `make rules-doc` runs this over the committed file
    assert code == 0, output
    assert doc.read_bytes() == first


@pytest.mark.parametrize("command", ["schema", "init", "rules-doc", "review", "diagram"])
def test_a_symlink_to_an_outside_file_is_never_written_through(tmp_path: Path, spec: Path, command: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("do not touch\n")
    link = tmp_path / "work" / ("diagrams" if command == "diagram" else "out.txt")
    link.parent.mkdir()
    link.symlink_to(outside if command == "diagram" else victim)
    args = {
        "schema": ["schema", "-o", str(link)],
        "init": ["init", "-o", str(link)],
        "rules-doc": ["rules-doc", "-o", str(link)],
        "review": ["review", str(spec), "-o", str(link)],
        "diagram": ["diagram", str(spec), "-o", str(link), "--format", "mermaid"],
    }[command]
    before = snapshot(outside)
    code, output = archgen(*args, "--force")
    assert code == UNSAFE, output
    assert "symlink" in output
    assert snapshot(outside) == before and link.is_symlink()


def test_init_force_on_a_full_disk_keeps_the_spec_it_would_replace(
    tmp_path: Path, spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = spec.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outfile_mod.os, "fsync", full)
    code, output = archgen("init", "--preset", "starter", "-o", str(spec), "--force")
    assert code == IO_ERROR, output
    assert "No space left on device" in output
    assert spec.read_bytes() == before and temps(tmp_path) == []


# ------------------------------------------------------------------ graphviz that fails or hangs
FAILING_DOT = "#!/bin/sh\necho 'There is no layout engine support for \"dot\"' >&2\nexit 1\n"
HANGING_DOT = '#!/bin/sh\necho $$ >> "{pids}"\nexec sleep 300\n'


def _fake_dot(tmp_path: Path, script: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dot = bin_dir / "dot"
    dot.write_text(script.format(pids=tmp_path / "pids"))
    dot.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "ARCHGEN_TOOL_TIMEOUT": "1"}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "generator.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0


@pytest.mark.parametrize("script", [FAILING_DOT, HANGING_DOT], ids=["failing", "hanging"])
def test_a_broken_dot_is_a_warning_for_review_and_exit_69_for_diagram(tmp_path: Path, spec: Path, script: str) -> None:
    env = _fake_dot(tmp_path, script)
    review = _cli("review", str(spec), "-o", str(tmp_path / "review.html"), env=env)
    assert review.returncode == 0, review.stderr
    assert "skipped dataflow.svg, deployment.svg" in review.stderr and "internal error" not in review.stderr
    assert "flowchart LR" in (tmp_path / "review.html").read_text()
    diagram = _cli("diagram", str(spec), "-o", str(tmp_path / "d"), env=env)
    assert diagram.returncode == DEPENDENCY, diagram.stderr
    assert "skipped dataflow.png, deployment.png" in diagram.stderr
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "dataflow.dot",
        "dataflow.mmd",
        "deployment.dot",
        "deployment.mmd",
    ]
    pids = tmp_path / "pids"
    if pids.exists():  # the hanging dot ran: every one of its processes was killed and reaped
        started = [int(x) for x in pids.read_text().split()]
        assert started and not any(_alive(pid) for pid in started)


@pytest.mark.slow
@pytest.mark.parametrize("script", [FAILING_DOT, HANGING_DOT], ids=["failing", "hanging"])
def test_new_never_runs_graphviz(tmp_path: Path, spec: Path, script: str) -> None:
    """`new` does not depend on graphviz: it never starts `dot` (a hanging one costs nothing), and the same files
    come out as where `dot` is missing."""
    env = _fake_dot(tmp_path, script)
    (tmp_path / "s").mkdir()
    started = time.monotonic()
    result = _cli("new", str(spec), "-o", str(tmp_path / "s" / "repo"), env=env)
    assert result.returncode == 0, result.stderr
    assert "skipped docs/diagrams/*.png and *.svg" in result.stderr
    assert not (tmp_path / "pids").exists()  # every fake dot records its pid first: none ran
    assert time.monotonic() - started < 120
    bare = {**env, "PATH": os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != str(tmp_path / "bin"))}
    result = _cli("new", str(spec), "-o", str(tmp_path / "s" / "bare"), env=bare)
    assert result.returncode == 0, result.stderr
    assert snapshot(tmp_path / "s" / "repo") == snapshot(tmp_path / "s" / "bare")


# a dot that draws the probe graph and the data-flow view, and fails on the deployment view
DOT_FAILING_ON_ONE = """#!/bin/sh
input=$(cat)
case "$input" in
  *'digraph probe'*) echo '<svg></svg>' ;;
  *': deployment'*) echo 'Error: <stdin>: syntax error in line 9' >&2; exit 1 ;;
  *) printf 'drawn' ;;
esac
"""


def test_a_dot_failing_on_one_drawing_is_exit_69_and_writes_no_drawing(tmp_path: Path, spec: Path) -> None:
    env = _fake_dot(tmp_path, DOT_FAILING_ON_ONE)
    out = tmp_path / "d"
    diagram = _cli("diagram", str(spec), "-o", str(out), env=env)
    assert diagram.returncode == DEPENDENCY, diagram.stderr
    assert "skipped dataflow.png, deployment.png" in diagram.stderr
    assert "deployment.png: graphviz `dot` failed: exit status 1: Error: <stdin>: syntax error" in diagram.stderr
    assert "internal error" not in diagram.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["dataflow.dot", "dataflow.mmd", "deployment.dot", "deployment.mmd"]  # dataflow.png drew: not kept
    assert temps(tmp_path) == []
    working = _cli("diagram", str(spec), "-o", str(out), "--format", "svg", "--force", env=_fake_dot_ok(tmp_path))
    assert working.returncode == 0, working.stderr
    assert sorted(p.name for p in out.glob("*.svg")) == ["dataflow.svg", "deployment.svg"]


def _fake_dot_ok(tmp_path: Path) -> dict[str, str]:
    """A dot that draws every graph as an empty SVG."""
    bin_dir = tmp_path / "bin-ok"
    bin_dir.mkdir()
    dot = bin_dir / "dot"
    dot.write_text("#!/bin/sh\ncat >/dev/null\necho '<svg></svg>'\n")
    dot.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


# ------------------------------------------------------------------ the terminal
def test_control_characters_from_the_spec_are_printed_escaped(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(REFERENCE.read_text().replace("project:\n", 'project:\n  "\\e[2J\\e]0;owned\\a": 1\n', 1))
    code, output = archgen("validate", str(bad))
    assert code == 65, output
    assert "\x1b" not in output and "\x07" not in output
    assert "\\x1b[2J\\x1b]0;owned\\x07" in output


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_any_terminal_encoding_works(spec: Path, command: str) -> None:
    env = {**os.environ, "LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": "ascii"}
    result = _cli(command, str(spec), env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_diff_exit_code_says_whether_decisions_change(tmp_path: Path, spec: Path) -> None:
    changed = tmp_path / "changed.yaml"
    changed.write_text(spec.read_text().replace("protocol: rest ", "protocol: grpc "))
    assert archgen("diff", str(spec), str(spec), "--exit-code")[0] == 0
    code, output = archgen("diff", str(spec), str(changed), "--exit-code")
    assert code == 1, output
    assert archgen("diff", str(spec), str(changed))[0] == 0  # without the flag: information only


# ------------------------------------------------------------------ placeholder secrets
def test_the_generated_image_refuses_to_start_with_the_example_placeholders(tmp_path: Path, spec: Path) -> None:
    import json

    out = tmp_path / "repo"
    code, output = archgen("new", str(spec), "-o", str(out))
    assert code == 0, output
    line = next(x for x in (out / "deploy" / "app.Dockerfile").read_text().splitlines() if x.startswith("ENTRYPOINT"))
    entrypoint = json.loads(line.removeprefix("ENTRYPOINT"))
    assert entrypoint[0] == "python"
    command = [sys.executable, *entrypoint[1:], sys.executable, "-c", "print('started')"]
    base = {k: v for k, v in os.environ.items() if not v.startswith("change-me")}
    # run where the image runs it: its WORKDIR is the repository root (deploy/check_secrets.py)
    refused = subprocess.run(
        command,
        env={**base, "REDIS_PASSWORD": "change-me-redis-prod"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=out,
    )
    assert refused.returncode != 0 and "started" not in refused.stdout
    assert "REDIS_PASSWORD" in refused.stderr and "placeholder" in refused.stderr
    started = subprocess.run(
        command, env={**base, "REDIS_PASSWORD": "s3cr3t"}, capture_output=True, text=True, timeout=60, cwd=out
    )
    assert started.returncode == 0 and started.stdout.strip() == "started", started.stderr
    compose = (out / "deploy" / "docker-compose.yaml").read_text()
    assert "change-me*) echo 'refusing to start: REDIS_PASSWORD" in compose or "redis:" not in compose


def _started_by(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_the_stores_and_triton_refuse_to_start_with_the_example_placeholders(tmp_path: Path) -> None:
    """The compose guards of Redis and PostgreSQL and the Triton image's entrypoint, run as the container would
    run them (with the program they start in place of the real server): a placeholder of the example env file
    stops them with its name, a real value starts the server."""
    import json

    import yaml

    out = tmp_path / "repo"
    code, output = archgen("new", str(REFERENCE.parent / "realtime.yaml"), "-o", str(out))
    assert code == 0, output
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for server in ("redis-server", "docker-entrypoint.sh"):  # the programs the guards hand over to
        (bin_dir / server).write_text(f'#!/bin/sh\necho started {server} "$@"\n')
        (bin_dir / server).chmod(0o755)
    base = {k: v for k, v in os.environ.items() if not v.startswith("change-me")}
    base["PATH"] = f"{bin_dir}{os.pathsep}{base['PATH']}"
    services = yaml.safe_load((out / "deploy" / "docker-compose.yaml").read_text())["services"]
    for service, key, how in (("redis", "REDIS_PASSWORD", "command"), ("postgres", "POSTGRES_PASSWORD", "entrypoint")):
        command = [part.replace("$$", "$") for part in services[service][how]]  # compose's own unescaping
        refused = _started_by(command, {**base, key: f"change-me-{service}-dev"})
        assert refused.returncode == 78 and "started" not in refused.stdout, (service, refused)
        assert f"refusing to start: {key}" in refused.stderr
        started = _started_by(command, {**base, key: "s3cr3t"})
        assert started.returncode == 0 and started.stdout.startswith("started"), (service, started)
    line = next(
        x for x in (out / "deploy" / "triton.Dockerfile").read_text().splitlines() if x.startswith("ENTRYPOINT")
    )
    entrypoint = json.loads(line.removeprefix("ENTRYPOINT"))
    assert entrypoint[0] == "python3"
    triton = [sys.executable, *entrypoint[1:], sys.executable, "-c", "print('started')"]
    flag = "--http-restricted-api=model-repository:triton-admin-key="
    refused = _started_by([*triton, f"{flag}change-me-triton-admin-dev"], base)
    assert refused.returncode != 0 and "started" not in refused.stdout
    assert "--http-restricted-api" in refused.stderr and "placeholder" in refused.stderr
    refused = _started_by(triton, {**base, "TRITON_ADMIN_KEY": "change-me-triton-admin-dev"})
    assert refused.returncode != 0 and "TRITON_ADMIN_KEY" in refused.stderr
    started = _started_by([*triton, f"{flag}s3cr3t"], {**base, "TRITON_ADMIN_KEY": "s3cr3t"})
    assert started.returncode == 0 and started.stdout.strip() == "started", started.stderr
