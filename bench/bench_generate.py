"""Generation speed and scaling: archgen vs cookiecutter rendering the same number of files.

For the reference spec and for synthetic specs with 10, 100 and 1,000 feature views, time the
whole `archgen new` pipeline in process (load, validate, decide, plan, render, write into a temp
folder; best of several runs), then time cookiecutter's ``generate_files`` (render + write) on a
synthetic template with the same number of files and about the same number of bytes. Prints the
per-file times and the ratio; growth should be about linear in the spec size, and archgen no
slower per file than cookiecutter. The two are timed in alternation (best of --repeat runs each),
so that a busy moment on a shared machine slows both. In process, repeated runs reuse what a
process keeps (compiled templates, graphviz drawings of unchanged diagrams), as cookiecutter's
runs reuse its imports.

Then the same comparison as fresh processes (`archgen new` vs `cookiecutter --no-input`): what a
user waits for, with interpreter start-up, imports (pydantic, typer, diagrams, jinja2) and the
graphviz drawings included; skip it with --no-cli.

    .venv/bin/python bench/bench_generate.py [--repeat N] [--views 10 100 1000] [--no-cli]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.generate import generate  # noqa: E402
from generator.write.write import write_repository  # noqa: E402

REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"


def synthetic_spec(views: int) -> str:
    """The reference spec with `views` feature views (each on the activity source, four fields)."""
    data: dict[str, Any] = yaml.safe_load(REFERENCE.read_text())
    base = data["features"]["views"][0]
    data["features"]["views"] = [
        {**base, "name": "driver_activity" if i == 0 else f"driver_stats_{i:04d}"} for i in range(views)
    ]
    return yaml.safe_dump(data, sort_keys=False)


def time_archgen_once(spec_path: Path) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory(prefix="archgen-bench-") as tmp:
        t0 = time.perf_counter()
        gen = generate(spec_path)
        write_repository(Path(tmp) / "out", gen.files, gen.modes)
        elapsed = time.perf_counter() - t0
    return elapsed, len(gen.files), sum(len(b) for b in gen.files.values())


LINE = 'feature_{{ i }} = Field(name="{{ cookiecutter.project }}_{{ i }}", dtype=Float32)  # {{ cookiecutter.owner }}\n'


def cookiecutter_template(root: Path, files: int, size: int) -> Path:
    """A cookiecutter template of `files` files rendering about `size` bytes in all."""
    template = root / "template"
    project = template / "{{ cookiecutter.project }}"
    project.mkdir(parents=True)
    (template / "cookiecutter.json").write_text(json.dumps({"project": "driver_ranking", "owner": "@rides/data-eng"}))
    line_bytes = len('feature_000 = Field(name="driver_ranking_000", dtype=Float32)  # @rides/data-eng\n')
    reps = max(1, round(size / files / line_bytes))
    body = (
        "# {{ cookiecutter.project }}: generated\n"
        f"{{% for i in range({reps}) %}}" + LINE.replace("{{ i }}", "{{ '%03d' % i }}") + "{% endfor %}"
    )
    for n in range(files):
        sub = project / f"pkg{n % 8}"
        sub.mkdir(exist_ok=True)
        (sub / f"module_{n:04d}.py").write_text(body)
    return template


class Cookiecutter:
    """cookiecutter's render + write of a template with a given number of files and bytes."""

    def __init__(self, root: Path, files: int, size: int) -> None:
        from cookiecutter.generate import generate_files

        self.generate_files = generate_files
        self.root = root
        self.template = cookiecutter_template(root, files, size)
        self.context = {"cookiecutter": json.loads((self.template / "cookiecutter.json").read_text())}
        self.runs = 0
        self.written = 0

    def once(self) -> float:
        out = self.root / f"out{self.runs}"
        self.runs += 1
        out.mkdir()
        t0 = time.perf_counter()
        self.generate_files(repo_dir=str(self.template), context=self.context, output_dir=str(out))
        elapsed = time.perf_counter() - t0
        self.written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        return elapsed


def compare(spec_path: Path, repeat: int) -> tuple[float, float, int, int, int]:
    """Best times of archgen and cookiecutter, runs interleaved so that a noisy moment hits both."""
    _, files, size = time_archgen_once(spec_path)  # the file count and bytes cookiecutter must match
    best_a = best_c = float("inf")
    with tempfile.TemporaryDirectory(prefix="cookiecutter-bench-") as tmp:
        cc = Cookiecutter(Path(tmp), files, size)
        for _ in range(repeat):
            best_a = min(best_a, time_archgen_once(spec_path)[0])
            best_c = min(best_c, cc.once())
        return best_a, best_c, files, size, cc.written


def _cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine: modules load from their .pyc
    return env


def _run_cli(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def compare_cli(spec_path: Path, files: int, size: int, repeat: int) -> tuple[float, float]:
    """Best wall time of `archgen new` and of `cookiecutter --no-input` as fresh processes (start-up included)."""
    bindir = Path(sys.executable).parent
    env = _cli_env()
    best_a = best_c = float("inf")
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        root = Path(tmp)
        template = cookiecutter_template(root, files, size)
        for n in range(repeat + 1):  # the first round warms .pyc files and archgen's template cache
            t_a = _run_cli([str(bindir / "archgen"), "new", str(spec_path), "-o", str(root / f"a{n}")], env)
            t_c = _run_cli([str(bindir / "cookiecutter"), "--no-input", str(template), "-o", str(root / f"c{n}")], env)
            if n:
                best_a, best_c = min(best_a, t_a), min(best_c, t_c)
    return best_a, best_c


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--views", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--no-cli", dest="cli", action="store_false", help="skip the fresh-process comparison")
    args = parser.parse_args(argv)
    cases: list[tuple[str, Path]] = [("reference", REFERENCE)]
    with tempfile.TemporaryDirectory(prefix="archgen-bench-specs-") as tmp:
        for n in args.views:
            p = Path(tmp) / f"views_{n}.yaml"
            p.write_text(synthetic_spec(n))
            cases.append((f"{n} views", p))
        generate(REFERENCE)  # warm imports and template caches
        header = (
            f"{'spec':<12} {'files':>5} {'KiB':>7} {'archgen s':>10} {'ms/file':>8} "
            f"{'cookiecutter s':>15} {'ms/file':>8} {'KiB':>7} {'ratio':>6}"
        )
        print("in process (load, validate, decide, plan, render, write; cookiecutter: render and write):")
        print(header)
        print("-" * len(header))
        rows = []
        for label, path in cases:
            t_a, t_c, files, size, c_size = compare(path, args.repeat)
            rows.append((label, files, size, t_a))
            print(
                f"{label:<12} {files:>5} {size / 1024:>7.0f} {t_a:>10.3f} {1000 * t_a / files:>8.2f} "
                f"{t_c:>15.3f} {1000 * t_c / files:>8.2f} {c_size / 1024:>7.0f} {t_a / t_c:>6.2f}"
            )
        print("ratio = archgen time / cookiecutter time for the same number of files and about the same bytes")
        synthetic = [(r[0], r[3]) for r in rows[1:]]
        if len(synthetic) >= 2:
            (l0, t0), (l1, t1) = synthetic[0], synthetic[-1]
            print(f"\ngrowth: {l0} -> {l1}: time x{t1 / t0:.1f}")
            for (la, ta), (lb, tb) in itertools.pairwise(synthetic):
                print(f"  {la} -> {lb}: x{tb / ta:.1f}")
            views = [int(label.split()[0]) for label, _ in synthetic]
            times = [t for _, t in synthetic]
            print("cost of each added view (linear growth keeps it flat):")
            for (va, ta), (vb, tb) in itertools.pairwise(zip(views, times, strict=True)):
                print(f"  {va} -> {vb} views: {1000 * (tb - ta) / (vb - va):.3f} ms per view")
        if args.cli:
            print("\nfresh processes (`archgen new` vs `cookiecutter --no-input`; start-up and imports included):")
            print(f"{'spec':<12} {'files':>5} {'archgen s':>10} {'cookiecutter s':>15} {'ratio':>6}")
            for (label, path), (_, files, size, _) in zip(cases, rows, strict=True):
                t_a, t_c = compare_cli(path, files, size, args.repeat)
                print(f"{label:<12} {files:>5} {t_a:>10.3f} {t_c:>15.3f} {t_a / t_c:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
