"""How long `archgen validate` takes in a fresh process, next to a bare interpreter.

Targets: the reference preset validates in under 0.5 s wall time, and in under 10x the time
of `python -c pass` (the interpreter's own start-up, site and the editable install's finder
included). Runs are interleaved (bare, validate, bare, ...) so that load from other
processes on the machine hits both alike; the median of N runs is compared.

    python bench/bench_validate.py [--runs N] [--spec FILE]

Exit status 0 when both targets are met, 1 otherwise (the figures are printed either way).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"
ABSOLUTE_TARGET_S = 0.5
RATIO_TARGET = 10.0


def _archgen() -> list[str]:
    script = Path(sys.executable).with_name("archgen")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "generator.cli"]


def _time(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run; a failing command is an error."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--spec", type=Path, default=REFERENCE)
    args = parser.parse_args()

    bare = [sys.executable, "-c", "pass"]
    validate = [*_archgen(), "validate", str(args.spec)]
    _time(bare), _time(validate)  # warm the file cache and the bytecode cache
    results: dict[str, list[tuple[float, float]]] = {"bare": [], "validate": []}
    for _ in range(args.runs):
        results["bare"].append(_time(bare))
        results["validate"].append(_time(validate))

    def med(name: str, i: int) -> float:
        return statistics.median(r[i] for r in results[name])

    bare_wall, validate_wall = med("bare", 0), med("validate", 0)
    ratio = validate_wall / bare_wall
    print(f"runs: {args.runs} each, interleaved; median wall time (CPU time in brackets)")
    print(f"  python -c pass                {bare_wall * 1000:7.1f} ms  ({med('bare', 1) * 1000:.1f} ms CPU)")
    name = f"archgen validate {args.spec.name}"
    print(f"  {name:<29} {validate_wall * 1000:7.1f} ms  ({med('validate', 1) * 1000:.1f} ms CPU)")
    print(f"  fastest validate run          {min(r[0] for r in results['validate']) * 1000:7.1f} ms")
    print(f"  ratio validate / bare         {ratio:7.1f} x")
    absolute_ok = validate_wall < ABSOLUTE_TARGET_S
    ratio_ok = ratio < RATIO_TARGET
    print(f"{'PASS' if absolute_ok else 'FAIL'}: under {ABSOLUTE_TARGET_S} s ({validate_wall:.3f} s)")
    print(f"{'PASS' if ratio_ok else 'FAIL'}: under {RATIO_TARGET:.0f}x a bare interpreter ({ratio:.1f}x)")
    return 0 if absolute_ok and ratio_ok else 1


if __name__ == "__main__":
    sys.exit(main())
