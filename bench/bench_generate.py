"""Generation speed and scaling: archgen vs cookiecutter rendering the same number of files.

For the reference spec and for synthetic specs with 10, 100 and 1,000 feature views, time the
whole `archgen new` pipeline in process (load, validate, decide, plan, render, write into a temp
folder; best of several runs), then time cookiecutter's ``generate_files`` (render + write) on a
synthetic template with the same number of files and about the same number of bytes. Prints the
per-file times and the ratio; growth should be about linear in the spec size, and archgen no
slower per file than cookiecutter.

    .venv/bin/python bench/bench_generate.py [--repeat N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.generate import generate  # noqa: E402
from generator.write import write_repository  # noqa: E402

REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"


def synthetic_spec(views: int) -> str:
    """The reference spec with `views` feature views (each on the activity source, four fields)."""
    data: dict[str, Any] = yaml.safe_load(REFERENCE.read_text())
    base = data["features"]["views"][0]
    data["features"]["views"] = [
        {**base, "name": "driver_activity" if i == 0 else f"driver_stats_{i:04d}"} for i in range(views)
    ]
    return yaml.safe_dump(data, sort_keys=False)


def time_archgen(spec_path: Path, repeat: int) -> tuple[float, int, int]:
    best = float("inf")
    files = size = 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="archgen-bench-") as tmp:
            t0 = time.perf_counter()
            gen = generate(spec_path)
            write_repository(Path(tmp) / "out", gen.files, gen.modes)
            best = min(best, time.perf_counter() - t0)
            files, size = len(gen.files), sum(len(b) for b in gen.files.values())
    return best, files, size


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


def time_cookiecutter(files: int, size: int, repeat: int) -> tuple[float, int]:
    from cookiecutter.generate import generate_files

    best = float("inf")
    written = 0
    with tempfile.TemporaryDirectory(prefix="cookiecutter-bench-") as tmp:
        template = cookiecutter_template(Path(tmp), files, size)
        context = {"cookiecutter": json.loads((template / "cookiecutter.json").read_text())}
        for n in range(repeat):
            out = Path(tmp) / f"out{n}"
            out.mkdir()
            t0 = time.perf_counter()
            generate_files(repo_dir=str(template), context=context, output_dir=str(out))
            best = min(best, time.perf_counter() - t0)
            written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return best, written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--views", type=int, nargs="*", default=[10, 100, 1000])
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
        print(header)
        print("-" * len(header))
        rows = []
        for label, path in cases:
            t_a, files, size = time_archgen(path, args.repeat)
            t_c, c_size = time_cookiecutter(files, size, args.repeat)
            rows.append((label, files, size, t_a))
            print(
                f"{label:<12} {files:>5} {size / 1024:>7.0f} {t_a:>10.3f} {1000 * t_a / files:>8.2f} "
                f"{t_c:>15.3f} {1000 * t_c / files:>8.2f} {c_size / 1024:>7.0f} {t_a / t_c:>6.2f}"
            )
    synthetic = [(r[0], r[3]) for r in rows[1:]]
    if len(synthetic) >= 2:
        (l0, t0), (l1, t1) = synthetic[0], synthetic[-1]
        print(f"\ngrowth: {l0} -> {l1}: time x{t1 / t0:.1f}")
        for (la, ta), (lb, tb) in itertools.pairwise(synthetic):
            print(f"  {la} -> {lb}: x{tb / ta:.1f}")
    print("ratio = archgen time / cookiecutter time for the same number of files and about the same bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
