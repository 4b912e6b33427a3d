"""`make demo`: generate the reference system and run it end to end on this machine.

    python -m tools.demo [OUT] [--spec SPEC] [--entities N]

Generates OUT (default ``demo/driver_ranking/``) from SPEC (default the reference preset) with
``archgen new``, then runs the generated repository's own Makefile targets one by one: sample data,
``feast apply``, materialization, training with the quality gate, a real Triton server on loopback,
predictions for N sample entities through the serving client, and the server's stop. archgen's
virtualenvs stand in for the generated repository's own (the same pins): ``ARCHGEN_VENV`` (default
``.venv``) and ``ARCHGEN_TRITON_VENV`` (default ``.venv-triton``).

Every step prints its number, what it does, the command and its time. Each prediction is printed
on one line that scripts can parse::

    prediction driver_id=1001 score=0.310822 | features: acceptance_rate=0.3673 rating=3.694 trips_today=6

A failing step prints the end of its output, where the whole log is, and the demo exits 1 (2 for a
problem with the setup, 130 on Ctrl-C). The Triton server is stopped in every case.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PRESET = ROOT / "requirements_spec" / "presets" / "reference.yaml"
DEFAULT_OUT = ROOT / "demo" / "driver_ranking"
EXIT_STEP_FAILED = 1
EXIT_SETUP = 2
EXIT_INTERRUPTED = 130
TAIL_LINES = 30
STEP_TIMEOUT_S = 900
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MAKE_ERROR = re.compile(r"^make(?:\[\d+\])?: \*\*\* \[[^\]]*\] Error (\d+)$", re.M)


@dataclass(frozen=True)
class Step:
    target: str  # the generated Makefile's target
    title: str
    show: int = 3  # how many of the last output lines to print on success
    hint: str = ""  # printed when the step fails


STEPS = (
    Step("data", "sample data for every source", show=4),
    Step("apply", "feast apply: register entities, sources, views and services", show=4),
    Step("materialize", "materialize the latest features into the online store", show=1),
    Step(
        "train",
        "train, check the quality gate, export a model version",
        show=2,
        hint="a model below the spec's training.min_quality is not exported: see {out}/training/README.md",
    ),
    Step(
        "serve-start",
        "start the Triton server on loopback",
        show=1,
        hint="the server's own log is {out}/.run/triton.log",
    ),
    Step("predict", "predictions through the serving client (Feast online features, then Triton)", show=0),
)


@dataclass
class Demo:
    out: Path
    spec: Path
    entities: int
    venv: Path
    triton_venv: Path
    total: int = len(STEPS) + 3  # generate + the steps + stop + summary
    number: int = 0
    timings: list[tuple[str, float]] = field(default_factory=list)
    server: dict[str, Any] | None = None  # .run/triton.json while the server runs
    serving: bool = False  # serve-start ran and serve-stop has not

    # -------------------------------------------------------------- output
    def header(self, title: str, command: str) -> None:
        self.number += 1
        say(f"\n[{self.number}/{self.total}] {title}")
        say(f"      $ {command}")

    def log_path(self, target: str) -> Path:
        return self.out / ".run" / "demo" / f"{self.number:02d}-{target}.log"

    def failed(self, what: str, output: str, code: int, log: Path | None, hint: str = "") -> int:
        lines = [line for line in clean(output).splitlines() if line.strip()]
        if lines:
            say(f"      --- last {min(len(lines), TAIL_LINES)} lines of output ---")
            for line in lines[-TAIL_LINES:]:
                say(f"      {line}")
        say("")
        say(f"demo failed at step {self.number}/{self.total}: {what} exited {code}")
        if hint:
            say(f"  hint: {hint}")
        if log is not None:
            say(f"  full output: {log}")
        return EXIT_STEP_FAILED

    # -------------------------------------------------------------- steps
    def make(self, target: str, *args: str) -> tuple[int, str, float, Path]:
        """Run one target of the generated Makefile with archgen's virtualenvs; (code, output, seconds, log)."""
        command = ["make", "--no-print-directory", target, f"VENV={self.venv}", f"TRITON_VENV={self.triton_venv}"]
        command += list(args)
        t0 = time.monotonic()
        try:
            res = subprocess.run(
                command,
                cwd=self.out,
                env=child_env(),
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=STEP_TIMEOUT_S,
                check=False,
            )
            code, output = res.returncode, res.stdout
        except subprocess.TimeoutExpired as exc:
            partial = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
            code, output = 124, partial + f"\n(timed out after {STEP_TIMEOUT_S} s)"
        seconds = time.monotonic() - t0
        log = self.log_path(target)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(output)
        return code, output, seconds, log

    def generate(self) -> int:
        rel = self.spec.relative_to(ROOT) if self.spec.is_relative_to(ROOT) else self.spec
        self.header(f"generate the repository of {rel}", f"archgen new {rel} -o {self.out}")
        if (self.out / ".archgen" / "manifest.json").is_file():
            self.stop_leftover_server()
            say(f"      removing the previous demo output in {self.out}")
            shutil.rmtree(self.out)
        elif self.out.exists() and any(self.out.iterdir()):
            say(f"\ndemo failed: {self.out} exists and is not an archgen repository; pass another folder")
            return EXIT_SETUP
        t0 = time.monotonic()
        res = subprocess.run(
            [sys.executable, "-m", "generator.cli", "new", str(self.spec), "-o", str(self.out)],
            cwd=ROOT,
            env=child_env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
        seconds = time.monotonic() - t0
        if res.returncode != 0:
            return self.failed("archgen new", res.stdout, res.returncode, None)
        first = next((line for line in res.stdout.splitlines() if line.startswith(("Generated", "Updated"))), "")
        if first:
            say(f"      {first}")
        self.done("generate", seconds)
        return 0

    def run_step(self, step: Step, args: Sequence[str] = (), report: Callable[[str], list[str]] | None = None) -> int:
        """One Makefile target; ``report`` turns its output into the lines to show (ValueError: bad output)."""
        shown = shlex.join(["make", step.target, *args])
        self.header(step.title, shown)
        code, output, seconds, log = self.make(step.target, *args)
        if step.target == "serve-start":
            self.serving = True
            self.server = read_server_state(self.out)
        if code != 0:
            inner = _MAKE_ERROR.findall(output)  # the recipe's own exit status, not make's 2
            code = int(inner[0]) if inner else code
            return self.failed(f"`make {step.target}`", output, code, log, step.hint.format(out=self.out))
        lines = [line for line in clean(output).splitlines() if line.strip() and not line.startswith(str(self.venv))]
        shown_lines = lines[len(lines) - step.show :] if step.show else []
        if report is not None:
            try:
                shown_lines = report(output)
            except ValueError as exc:
                return self.failed(f"`make {step.target}` answered unexpectedly ({exc}); it", output, 1, log)
        for line in shown_lines:
            say(f"      {line}")
        self.done(step.target, seconds)
        return 0

    def done(self, name: str, seconds: float) -> None:
        self.timings.append((name, seconds))
        say(f"      ok ({seconds:.1f} s)")

    def stop_server(self) -> int:
        """`make serve-stop`, then check the process is gone and its ports closed."""
        self.header("stop the Triton server", "make serve-stop")
        code, output, seconds, log = self.make("serve-stop")
        state, self.server, self.serving = self.server, None, False
        if code != 0:
            return self.failed("`make serve-stop`", output, code, log)
        if state is not None:
            pid = int(state.get("pid", 0))
            ports = [int(state[k]) for k in ("http_port", "grpc_port", "metrics_port") if state.get(k)]
            deadline = time.monotonic() + 10
            while (pid_alive(pid) or any(port_open(p) for p in ports)) and time.monotonic() < deadline:
                time.sleep(0.2)
            if pid_alive(pid) or any(port_open(p) for p in ports):
                return self.failed("the Triton server", f"pid {pid} or ports {ports} still open", 1, log)
            say(f"      Triton server stopped: pid {pid} gone, ports {', '.join(map(str, ports))} closed")
        self.done("serve-stop", seconds)
        return 0

    def stop_leftover_server(self) -> None:
        """A server an interrupted demo left running in the previous output: stop it before removing the folder."""
        if read_server_state(self.out) is not None and (self.out / "Makefile").is_file():
            say("      stopping the Triton server a previous demo left running")
            self.make("serve-stop")


# ------------------------------------------------------------------ helpers
def say(text: str) -> None:
    print(text, flush=True)


def clean(text: str) -> str:
    return _ANSI.sub("", text)


def child_env() -> dict[str, str]:
    """The environment of every step: ours, minus what would make the children import the wrong code."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def read_server_state(repo: Path) -> dict[str, Any] | None:
    state = repo / ".run" / "triton.json"
    try:
        data = json.loads(state.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")  # a zombie has exited already
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def sample_ids(entity: str, dtype: str, n: int) -> list[str]:
    """The ids scripts/generate_sample_data.py writes: 1001, 1002, ... or <entity>_0001, ..."""
    if dtype.startswith("int"):
        return [str(1001 + i) for i in range(n)]
    return [f"{entity}_{i + 1:04d}" for i in range(n)]


def predict_args(arch: Any, n: int) -> tuple[list[str], list[str]]:
    """(PREDICT_ARGS tokens asking for n sample entities, the entity key names) of the serving client."""
    from generator.plan.serving import client_context

    keys = client_context(arch)["entity_keys"]
    if len(keys) != 1:  # several keys or none: the client's own example request
        return [], [k for k, _ in keys]
    join_key, dtype = keys[0]
    entity = next((e.name for e in arch.spec.entities if e.join_key == join_key), join_key)
    tokens = [f"--{join_key} {value}" for value in sample_ids(entity, dtype, n)]
    return tokens, [join_key]


def _plain(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value).replace(" ", "_")


def prediction_lines(output: str, keys: list[str]) -> list[str]:
    """One `prediction key=value output=value | features: ...` line per prediction of the client's JSON."""
    payload = next((line for line in reversed(output.splitlines()) if line.startswith("{")), None)
    if payload is None:
        raise ValueError("the serving client printed no JSON")
    data = json.loads(payload)
    lines = []
    for row in data.get("predictions", []):
        features = row.get("features", {})
        ids = [f"{k}={_plain(row[k])}" for k in keys if k in row]
        outputs = [f"{k}={_plain(v)}" for k, v in sorted(row.items()) if k not in keys and k != "features"]
        line = "prediction " + " ".join(ids + outputs)
        if features:
            line += " | features: " + " ".join(f"{k}={_plain(v)}" for k, v in sorted(features.items()))
        lines.append(line)
    if "outputs" in data:
        lines.append("prediction " + " ".join(f"{k}={_plain(v)}" for k, v in sorted(data["outputs"].items())))
    if not lines:
        raise ValueError("the serving client returned no prediction")
    return [f"model {data.get('model', '?')}: {len(lines)} prediction(s)", *lines]


def check_setup(venv: Path, triton_venv: Path) -> list[str]:
    problems = []
    if not (venv / "bin" / "python").is_file() or not (venv / "bin" / "feast").is_file():
        problems.append(f"{venv}: no Python with Feast; `make setup` creates it (or set ARCHGEN_VENV)")
    if not any(triton_venv.glob("lib/python3*/site-packages/pytriton/tritonserver/bin/tritonserver")):
        problems.append(f"{triton_venv}: no tritonserver; `make setup-triton` creates it (or set ARCHGEN_TRITON_VENV)")
    if shutil.which("make") is None:
        problems.append("`make` is not on PATH")
    return problems


def service_problems(arch: Any) -> list[str]:
    """Redis or PostgreSQL the generated system needs here but that do not answer on loopback."""
    needed = []
    if arch.uses_redis:
        needed.append(("Redis", 6379))
    if arch.uses_postgres:
        needed.append(("PostgreSQL", 5432))
    return [
        f"{name} does not answer on 127.0.0.1:{port} (`make services` starts it)"
        for name, port in needed
        if not port_open(port)
    ]


def summary(demo: Demo, started: float) -> None:
    out = demo.out
    demo.number += 1
    say(f"\n[{demo.number}/{demo.total}] the system ran end to end in {time.monotonic() - started:.1f} s")
    width = max(len(name) for name, _ in demo.timings)
    for name, seconds in demo.timings:
        say(f"      {name:<{width}}  {seconds:6.1f} s")
    say(f"\nGenerated repository: {out}")
    diagrams = sorted(p.name for p in (out / "docs" / "diagrams").glob("*.svg"))
    rows = [
        ("architecture and decisions", out / "docs" / "architecture.md"),
        ("decision records", out / "docs" / "adr"),
        ("diagrams", out / "docs" / "diagrams"),
        ("review page", out / "docs" / "review.html"),
        ("onboarding", out / "README.md"),
    ]
    for label, path in rows:
        if path.exists():
            extra = ""
            if path.name == "adr":
                extra = f"  ({len(list(path.glob('[0-9]*.md')))} records)"
            elif path.name == "diagrams":
                extra = (
                    f"  ({', '.join(diagrams)})"
                    if diagrams
                    else "  (DOT and Mermaid; SVG: `archgen diagram .archgen/spec.yaml -o docs/diagrams` there)"
                )
            say(f"  {label:<27} {path}{extra}")
    if shutil.which("dot") is None:
        say("  note: graphviz `dot` is not installed: `apt-get install graphviz` (or `brew install graphviz`)")
    say(f"\nRun it again step by step: cd {out} && make help")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "out", nargs="?", type=Path, default=DEFAULT_OUT, help="where to generate (default %(default)s)"
    )
    parser.add_argument("--spec", type=Path, default=PRESET, help="the spec (default: the reference preset)")
    parser.add_argument("--entities", type=int, default=5, help="how many sample entities to predict for")
    args = parser.parse_args(argv)
    venv = Path(os.environ.get("ARCHGEN_VENV", ROOT / ".venv")).absolute()
    triton_venv = Path(os.environ.get("ARCHGEN_TRITON_VENV", ROOT / ".venv-triton")).absolute()
    demo = Demo(args.out.absolute(), args.spec.absolute(), max(1, args.entities), venv, triton_venv)
    started = time.monotonic()
    say(f"archgen demo: generate {demo.spec.name} into {demo.out} and run it end to end")

    from generator.errors import ArchgenError
    from generator.generate import decide
    from requirements_spec.validate import load_spec

    try:
        arch = decide(load_spec(demo.spec))
    except ArchgenError as exc:
        say(f"\ndemo failed: {demo.spec}: {exc}")
        return EXIT_SETUP
    if arch.serving.runtime != "triton" or not arch.training.trained_models or arch.feature_store is None:
        say(f"\ndemo failed: {demo.spec} has no Feast + training + Triton system to run; use a preset like reference")
        return EXIT_SETUP
    problems = check_setup(venv, triton_venv) + service_problems(arch)
    if problems:
        say("\ndemo failed: this machine is not ready:\n" + "\n".join(f"  - {p}" for p in problems))
        return EXIT_SETUP
    tokens, keys = predict_args(arch, demo.entities)
    try:
        if code := demo.generate():
            return code
        for step in STEPS:
            if step.target == "predict":
                extra = [f"PREDICT_ARGS={' '.join(tokens)}"] if tokens else []
                code = demo.run_step(step, extra, lambda output: prediction_lines(output, keys))
            else:
                code = demo.run_step(step)
            if code:
                return code
        if code := demo.stop_server():
            return code
    except KeyboardInterrupt:
        say("\ndemo interrupted")
        return EXIT_INTERRUPTED
    finally:
        if demo.serving:
            say("stopping the Triton server  (make serve-stop)")
            demo.make("serve-stop")
    summary(demo, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
