"""`make demo`: generate the reference system and run it end to end on this machine.

Steps: generate `demo/driver_ranking/` from the reference preset, then run the generated
repository's own Makefile targets one by one (sample data, feast apply, materialization,
training with the quality gate, a real Triton server, predictions, stop), with the archgen
virtualenvs standing in for the generated repo's own (same pins). Prints where the diagrams,
decision records and review page are. A failing step stops the demo with its output and a
non-zero exit code; the Triton server is always stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRESET = ROOT / "requirements_spec" / "presets" / "reference.yaml"

STEPS = [
    ("sample data for every source", "data"),
    ("feast apply: register entities, sources, views, services", "apply"),
    ("materialize features into the online store", "materialize"),
    ("train, check the quality gate, export model version", "train"),
    ("start the Triton server on loopback", "serve-start"),
    ("predict through the serving client (Feast features + Triton)", "predict"),
]


def _say(text: str) -> None:
    print(text, flush=True)


def _make(repo: Path, target: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    venv = os.environ.get("ARCHGEN_VENV", str(ROOT / ".venv"))
    triton = os.environ.get("ARCHGEN_TRITON_VENV", str(ROOT / ".venv-triton"))
    return subprocess.run(
        ["make", "--no-print-directory", target, f"VENV={venv}", f"TRITON_VENV={triton}"],
        cwd=repo,
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    out = Path(args[0]) if args else ROOT / "demo" / "driver_ranking"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    total = len(STEPS) + 1
    _say(f"[1/{total}] archgen new {PRESET.relative_to(ROOT)} -o {out}")
    gen = subprocess.run(
        [sys.executable, "-m", "generator.cli", "new", str(PRESET), "-o", str(out), "--force"],
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=False,
    )
    if gen.returncode != 0:
        _say(gen.stdout + gen.stderr)
        _say(f"demo failed: generating the repository exited {gen.returncode}")
        return gen.returncode
    started = False
    try:
        for n, (title, target) in enumerate(STEPS, start=2):
            _say(f"[{n}/{total}] {title}  (make {target})")
            t0 = time.monotonic()
            res = _make(out, target, env)
            if res.returncode != 0:
                _say(res.stdout[-4000:] + res.stderr[-4000:])
                _say(f"demo failed at `make {target}` (exit {res.returncode}) in {out}")
                return 1
            started = started or target == "serve-start"
            if target == "predict":
                _say(res.stdout.rstrip())
            _say(f"    done in {time.monotonic() - t0:.1f} s")
    finally:
        if started:
            _say("stopping the Triton server  (make serve-stop)")
            _make(out, "serve-stop", env)
    _say("")
    _say(f"The system runs. Generated repository: {out}")
    for label, rel in (
        ("architecture and decisions", "docs/architecture.md"),
        ("decision records", "docs/adr/"),
        ("diagrams", "docs/diagrams/"),
        ("review page", "docs/review.html"),
        ("onboarding", "README.md"),
    ):
        if (out / rel).exists():
            _say(f"  {label:<28} {out / rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
