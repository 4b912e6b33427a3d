"""`archgen validate` on bad specs: every case names file:line:col and the field path, exits
65 (66 when the file cannot be read) and never shows a traceback.

The table is the contract of reliability-and-security.md §6 A-C. Cases marked ``subprocess``
run the installed `archgen` script in a fresh process; the rest run the same typer
application in-process (CliRunner), which is faster and maps errors identically.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.cli import app
from requirements_spec import presets

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "requirements_spec" / "presets"
SHARED = Path("/work/shared/design")
REFERENCE = presets.text("reference")
REALTIME = presets.text("realtime")
ARCHGEN = Path(sys.executable).with_name("archgen")


def _replace(base: str, old: str, new: str) -> str:
    assert base.count(old) >= 1, f"{old!r} is not in the base spec"
    return base.replace(old, new, 1)


def _position(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based line and column of the n-th occurrence of ``needle``."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


@dataclass(frozen=True)
class Case:
    id: str
    content: str | bytes
    path: str  # the dotted field path the diagnostic names
    message: str  # a fragment of the message (or hint)
    at: str | tuple[int, int] | None = None  # where it points: a needle in the text, or (line, col)
    occurrence: int = 1
    code: int = 65
    subprocess: bool = False

    def where(self) -> tuple[int, int]:
        if isinstance(self.at, tuple):
            return self.at
        text = self.content.decode("utf-8", "replace") if isinstance(self.content, bytes) else self.content
        return _position(text, self.at if self.at is not None else "", self.occurrence)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)
DUPLICATE = REFERENCE + "features:\n  computation: realtime\n"
DEEP = "version: " + "[" * 2000 + "]" * 2000 + "\n"
HUGE = REFERENCE + "# " + "x" * (1024 * 1024) + "\n"
BAD_UTF8 = _replace(REFERENCE, "Rank available drivers", "Rank av\udcffailable drivers").encode(
    "utf-8", "surrogateescape"
)

# the reference view as raw events with rollups; each case below breaks one thing of it
AGGREGATED = _replace(
    REFERENCE,
    "        - {name: phone_number, dtype: string, pii: true}\n",
    "        - {name: phone_number, dtype: string}\n"
    "      aggregations:\n"
    "        - {function: sum, column: rating, windows: [1d, 7d]}\n"
    "        - {function: count_distinct, column: phone_number, windows: [7d]}\n",
)


def _aggregated(old: str, new: str) -> str:
    return _replace(AGGREGATED, old, new)


CASES = [
    # ---- A. the YAML layer
    Case("empty-file", "", "<document>", "the spec is empty", (1, 1), subprocess=True),
    Case("null-document", "null\n", "<document>", "the spec is empty", (1, 1)),
    Case("not-a-mapping", "- version\n- 1\n", "<root>", "must be a mapping", (1, 1)),
    Case("syntax-unclosed", "version: 1\nproject: [a, b\n", "<document>", "YAML syntax error", (3, 1)),
    Case("syntax-tab", "version: 1\nproject:\n\tname: x\n", "<document>", "tabs", (3, 1)),
    Case(
        "python-tag",
        'version: !!python/object/apply:os.system ["touch PWNED"]\n',
        "version",
        "YAML tags are not allowed",
        "!!python",
        subprocess=True,
    ),
    Case("alias-bomb", BOMB, "f[1]", "expands to more than", (6, 12), subprocess=True),
    Case("cyclic-alias", "a: &a [*a]\n", "a[0]", "cycle", "*a"),
    Case("deep-nesting", DEEP, "<document>", "nesting deeper than", (1, 1009), subprocess=True),
    Case("huge-file", HUGE, "<document>", "larger than 1024 KiB", (1, 1), subprocess=True),
    Case("duplicate-key", DUPLICATE, "features", "first at line 33, again at line 79", (79, 1), subprocess=True),
    Case("two-documents", REFERENCE + "---\nversion: 1\n", "<document>", "exactly one YAML document", "---"),
    Case("invalid-utf8", BAD_UTF8, "<document>", "invalid UTF-8 at byte offset", "\ufffd"),
    Case("utf16-bom", REFERENCE.encode("utf-16"), "<document>", "UTF-16", (1, 1), subprocess=True),
    # ---- B. the schema layer
    Case(
        "unknown-top-level-key",
        _replace(REFERENCE, "\nfeatures:", "\nfetures:"),
        "fetures",
        "did you mean `features`?",
        "fetures",
        subprocess=True,
    ),
    Case(
        "unknown-nested-key",
        _replace(REFERENCE, "computation:", "compuation:"),
        "features.compuation",
        "did you mean `computation`?",
        "compuation",
    ),
    Case(
        "unknown-key-in-list-item",
        _replace(REFERENCE, "{name: rating, dtype: float32}", "{name: rating, dtyp: float32}"),
        "features.views[0].fields[1].dtyp",
        "did you mean `dtype`?",
        "dtyp:",
    ),
    Case(
        "missing-field",
        _replace(REFERENCE, "  throughput_rps: 200\n", ""),
        "serving.throughput_rps",
        "missing required field `throughput_rps`",
        "serving:",
    ),
    Case(
        "wrong-type",
        _replace(REFERENCE, "latency_p99_ms: 50", "latency_p99_ms: fast"),
        "serving.latency_p99_ms",
        "expected a number, got string 'fast'",
        "fast",
    ),
    Case(
        "wrong-type-list",
        _replace(REFERENCE, "dims: [1]", "dims: []"),
        "serving.models[0].outputs[0].dims",
        "at least 1 item",
        "[]",
    ),
    Case(
        "invalid-enum",
        _replace(REFERENCE, "warehouse: files ", "warehouse: filez "),
        "existing.warehouse",
        "'postgres'",
        "filez",
    ),
    Case(
        "invalid-source-kind",
        _replace(REFERENCE, "kind: file          #", "kind: fil           #"),
        "sources[0].kind",
        "'table', 'stream', 'request'",
        "fil ",
    ),
    Case(
        "version-true-is-not-1",
        _replace(REFERENCE, "version: 1", "version: true"),
        "version",
        "got boolean true",
        "true",
    ),
    Case(
        "threshold-nan",
        _replace(REFERENCE, "threshold: 0.6", "threshold: .nan"),
        "training.min_quality.threshold",
        "finite number",
        ".nan",
    ),
    Case(
        "threshold-out-of-range",
        _replace(REFERENCE, "threshold: 0.6", "threshold: 60"),
        "training.min_quality.threshold",
        "between 0 and 1",
        "60",
    ),
    Case(
        "huge-number",
        _replace(REFERENCE, "throughput_rps: 200", "throughput_rps: " + "9" * 5000),
        "serving.throughput_rps",
        "more than 100 digits",
        "9999",
    ),
    # ---- cross-references
    Case(
        "unknown-view-entity",
        _replace(REFERENCE, "entities: [driver]", "entities: [drivr]"),
        "features.views[0].entities[0]",
        "did you mean `driver`?",
        "drivr",
        subprocess=True,
    ),
    Case(
        "unknown-view-source",
        _replace(REFERENCE, "source: driver_activity\n      granularity", "source: driver_activty\n      granularity"),
        "features.views[0].source",
        "unknown source 'driver_activty'",
        "driver_activty",
    ),
    Case(
        "unknown-service-field",
        _replace(REFERENCE, "driver_activity.rating,", "driver_activity.ratin,"),
        "features.services[0].features[1]",
        "did you mean `rating`?",
        "driver_activity.ratin,",
    ),
    Case(
        "unknown-model-feature-service",
        _replace(REFERENCE, "feature_service: ranking_v1", "feature_service: ranking_v2"),
        "serving.models[0].feature_service",
        "unknown feature service 'ranking_v2'",
        "ranking_v2",
    ),
    Case(
        "unknown-pipeline-step",
        _replace(REALTIME, "steps: [fraud_gbm, fraud_calibrator]", "steps: [fraud_gbm, fraud_calibrater]"),
        "serving.pipeline.steps[1]",
        "did you mean `fraud_calibrator`?",
        "fraud_calibrater",
    ),
    Case(
        "unknown-label-source",
        _replace(REFERENCE, "label: {source: ride_outcomes", "label: {source: ride_outcome"),
        "training.label.source",
        "did you mean `ride_outcomes`?",
        "ride_outcome,",
    ),
    Case(
        "duplicate-view-field",
        _replace(REFERENCE, "{name: rating, dtype: float32}", "{name: trips_today, dtype: float32}"),
        "features.views[0].fields[1].name",
        "see also features.views[0].fields[0].name (line 43)",
        "trips_today, dtype: float32",
    ),
    # ---- C. names, paths, injection
    Case(
        "name-with-slash",
        _replace(REFERENCE, "name: driver_ranking", "name: driver/ranking"),
        "project.name",
        "not a valid name",
        "driver/ranking",
    ),
    Case(
        "name-with-dotdot",
        _replace(REFERENCE, "- name: driver\n", "- name: ../../etc/x\n"),
        "entities[0].name",
        "not a valid name",
        "../../etc/x",
    ),
    Case(
        "name-with-jinja",
        _replace(REFERENCE, "- name: ranker", '- name: "{{ 7*7 }}"'),
        "serving.models[0].name",
        "not a valid name",
        '"{{ 7*7 }}"',
    ),
    Case(
        "name-with-space",
        _replace(REFERENCE, "{name: rating, dtype", "{name: driver rating, dtype"),
        "features.views[0].fields[1].name",
        "not a valid name",
        "driver rating",
    ),
    Case(
        "name-python-keyword",
        _replace(REFERENCE, "{name: rating, dtype", "{name: class, dtype"),
        "features.views[0].fields[1].name",
        "Python keyword",
        "class, dtype",
    ),
    Case(
        "absolute-source-path",
        _replace(REFERENCE, "path: data/driver_activity.parquet", "path: /etc/cron.d/x"),
        "sources[0].path",
        "relative path",
        "/etc/cron.d/x",
    ),
    Case(
        "traversing-source-path",
        _replace(REFERENCE, "path: data/driver_activity.parquet", "path: data/../../x.parquet"),
        "sources[0].path",
        "'..'",
        "data/../../x.parquet",
    ),
    Case(
        "control-character-in-description",
        _replace(
            REFERENCE,
            "description: Rank available drivers for each incoming ride request.",
            'description: "Rank\\u0000 available drivers"',
        ),
        "project.description",
        "control character",
        '"Rank',
    ),
    Case(
        "cron-six-fields",
        _replace(REFERENCE, '"@daily"', '"0 0 3 * * *"'),
        "training.schedule",
        "has 6 fields; use exactly 5",
        '"0 0 3',
    ),
    Case(
        "cron-minute-61",
        _replace(REFERENCE, '"@daily"', '"61 * * * *"'),
        "training.schedule",
        "minute 61 is out of range",
        '"61',
    ),
    Case(
        "schedule-on-is-not-true",
        _replace(REFERENCE, 'schedule: "@daily"', "schedule: on"),
        "training.schedule",
        "cron expression 'on'",
        (53, 13),
    ),
    # ---- aggregations: rollups of raw events
    Case(
        "aggregation-unknown-column",
        _aggregated("column: rating, windows", "column: ratings, windows"),
        "features.views[0].aggregations[0].column",
        "did you mean `rating`?",
        "ratings",
    ),
    Case(
        "aggregation-sum-of-string",
        _aggregated("{function: count_distinct, column: phone_number", "{function: max, column: phone_number"),
        "features.views[0].aggregations[1].function",
        "max needs a numeric column; 'phone_number' is string",
        "max",
    ),
    Case(
        "aggregation-window-off-grain",
        _aggregated("windows: [1d, 7d]", "windows: [1d, 36h]"),
        "features.views[0].aggregations[0].windows[1]",
        "window 36h is not a whole number of days",
        "36h",
    ),
    Case(
        "aggregation-window-twice",
        _aggregated("windows: [1d, 7d]", "windows: [1d, 1w, 7d]"),
        "features.views[0].aggregations[0].windows[2]",
        "window 7d is the same as 1w",
        "7d]",
    ),
    Case(
        "aggregation-unknown-function",
        _aggregated("function: sum", "function: median"),
        "features.views[0].aggregations[0].function",
        "allowed values: 'sum', 'count', 'mean', 'min', 'max' or 'count_distinct'",
        "median",
    ),
    Case(
        "aggregation-needs-granularity",
        _aggregated("      granularity: day       # pre-aggregate grain: hour | day | week | month\n", ""),
        "features.views[0].aggregations",
        "needs a granularity",
        "- {function: sum",
    ),
    Case(
        "aggregation-of-personal-data",
        _aggregated("{name: phone_number, dtype: string}", "{name: phone_number, dtype: string, pii: true}"),
        "features.views[0].fields[3].pii",
        "personal data is not aggregated",
        "true}",
    ),
    Case(
        "aggregation-service-reads-a-raw-field",
        AGGREGATED,
        "features.services[0].features[0]",
        "view 'driver_activity' has no field 'trips_today'",
        "driver_activity.trips_today",
    ),
    # ---- a joined feature catalog
    Case(
        "catalog-view-unknown-entity",
        _replace(
            REFERENCE,
            "  broker: none          # none | kafka | rabbitmq | redis\n",
            "  broker: none\n  feature_registry:\n    project: acme\n    views:\n"
            "      - {name: stats, entities: [drivr], fields: [{name: conv_rate, dtype: float64}]}\n",
        ),
        "existing.feature_registry.views[0].entities[0]",
        "did you mean `driver`?",
        "drivr",
    ),
    Case(
        "catalog-view-named-like-a-view",
        _replace(
            REFERENCE,
            "  broker: none          # none | kafka | rabbitmq | redis\n",
            "  broker: none\n  feature_registry:\n    project: acme\n    views:\n"
            "      - {name: driver_activity, entities: [driver], fields: [{name: conv_rate, dtype: float64}]}\n",
        ),
        "features.views[0].name",
        "duplicate feature view",
        "driver_activity\n      entities",
    ),
    # ---- unreadable files (66)
    Case("missing-file", "", "<document>", "No such file or directory", (1, 1), code=66, subprocess=True),
    Case("directory", "", "<document>", "is a directory", (1, 1), code=66),
]


def run_validate(spec: Path, *, via_subprocess: bool, cwd: Path, extra: tuple[str, ...] = ()) -> tuple[int, str]:
    """Run `archgen validate SPEC`; (exit code, everything it printed)."""
    if via_subprocess:
        done = subprocess.run(
            [str(ARCHGEN), "validate", *extra, str(spec)],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=60,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        return done.returncode, done.stdout + done.stderr
    result = CliRunner().invoke(app, ["validate", *extra, str(spec)])
    return result.exit_code, result.output


def _write_case(case: Case, tmp_path: Path) -> Path:
    if case.id == "missing-file":
        return tmp_path / "does-not-exist.yaml"
    if case.id == "directory":
        return tmp_path
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(case.content if isinstance(case.content, bytes) else case.content.encode("utf-8"))
    return spec


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_spec_is_reported_at_its_place(case: Case, tmp_path: Path) -> None:
    spec = _write_case(case, tmp_path)
    work = tmp_path / "cwd"
    work.mkdir()
    started = time.perf_counter()
    code, output = run_validate(spec, via_subprocess=case.subprocess, cwd=work)
    elapsed = time.perf_counter() - started

    line, col = case.where()
    assert code == case.code, output
    assert f"{spec}:{line}:{col}: error: {case.path}: " in output, output
    assert case.message in output, output
    assert "Traceback" not in output and "internal error" not in output, output
    assert list(work.iterdir()) == [], "validate wrote into its working directory"
    if case.id == "python-tag":
        assert not (work / "PWNED").exists() and not (ROOT / "PWNED").exists()
    if case.id in ("alias-bomb", "deep-nesting", "huge-file"):
        assert elapsed < (3.0 if case.subprocess else 1.0), f"{case.id} took {elapsed:.2f} s"


def test_alias_bomb_is_rejected_within_a_second() -> None:
    from requirements_spec import SpecError, parse_spec

    started = time.perf_counter()
    with pytest.raises(SpecError, match="expands to more than"):
        parse_spec(BOMB, "bomb.yaml")
    assert time.perf_counter() - started < 1.0


def test_name_no_stays_a_string(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(_replace(REFERENCE, "name: driver_ranking", "name: no"), encoding="utf-8")
    code, output = run_validate(spec, via_subprocess=True, cwd=tmp_path, extra=("--format", "json"))
    assert code == 0, output
    data = json.loads(output)
    assert (data["ok"], data["diagnostics"], data["project"]) == (True, [], "no")


FIVE_ERRORS = (
    REFERENCE.replace("warehouse: files ", "warehouse: filez ", 1)  # line 13
    .replace("entities: [driver]", "entities: [drivr]", 1)  # line 38: a reference error
    .replace('"@daily"', '"0 0 * * * *"', 1)  # line 53
    .replace("  throughput_rps: 200\n", "", 1)  # reported at `serving:`, line 58
    .replace("pii_handling: drop ", "pii_handling: drops", 1)  # line 69 (after the removed line)
    .replace("customization: low ", "customisation: low", 1)  # line 74
)


def test_all_errors_of_a_file_at_once_sorted_by_line(tmp_path: Path) -> None:
    """Schema errors come all at once; reference errors need a schema-valid spec, so they follow."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(FIVE_ERRORS, encoding="utf-8")
    code, output = run_validate(spec, via_subprocess=True, cwd=tmp_path, extra=("--format", "json"))
    assert code == 65
    diagnostics = json.loads(output)["diagnostics"]
    assert [(d["location"]["line"], d["location"]["path"]) for d in diagnostics] == [
        (13, "existing.warehouse"),
        (53, "training.schedule"),
        (58, "serving.throughput_rps"),
        (69, "privacy.pii_handling"),
        (74, "customisation"),
    ]
    code, text = run_validate(spec, via_subprocess=False, cwd=tmp_path)
    assert code == 65 and text.rstrip().endswith("5 errors found")
    lines = [int(row.split(":")[1]) for row in text.splitlines() if row.startswith(str(spec))]
    assert lines == sorted(lines) and len(lines) == 5


def test_five_reference_errors_at_once(tmp_path: Path) -> None:
    text = (
        REALTIME.replace("entities: [card]", "entities: [crad]", 1)
        .replace("source: payments\n", "source: paymnts\n", 1)
        .replace("merchant_risk.chargeback_rate_7d", "merchant_risk.chargeback_rate", 1)
        .replace("feature_service: fraud_v3", "feature_service: fraud_v2", 1)
        .replace("steps: [fraud_gbm, fraud_calibrator]", "steps: [fraud_gbm, calibrator]", 1)
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    code, output = run_validate(spec, via_subprocess=False, cwd=tmp_path, extra=("--format", "json"))
    assert code == 65
    found = [(d["location"]["line"], d["location"]["path"]) for d in json.loads(output)["diagnostics"]]
    assert found == sorted(found)
    assert {d["code"] for d in json.loads(output)["diagnostics"]} == {"spec.unknown_reference"}
    assert [p for _, p in found] == [
        "features.views[0].entities[0]",
        "features.views[1].source",
        "features.services[0].features[2]",
        "serving.models[0].feature_service",
        "serving.pipeline.steps[1]",
    ]


# ---------------------------------------------------------------- the good specs
@pytest.mark.parametrize("name", presets.names())
def test_every_preset_validates(name: str) -> None:
    from requirements_spec import parse_spec

    loaded = parse_spec(presets.text(name), f"{name}.yaml")
    assert loaded.spec.version == 1


@pytest.mark.parametrize(
    ("preset", "shared"), [("reference", "spec-reference.yaml"), ("realtime", "spec-realtime-example.yaml")]
)
def test_shared_examples_validate_unchanged(preset: str, shared: str, tmp_path: Path) -> None:
    source = SHARED / shared
    if not source.exists():
        pytest.skip(f"{source} is not on this machine (the presets are the checked-in copies)")
    assert (PRESETS / f"{preset}.yaml").read_bytes() == source.read_bytes(), "the preset drifted from the design"
    code, output = run_validate(source, via_subprocess=True, cwd=tmp_path)
    assert code == 0, output
    assert "valid" in output


def test_presets_have_a_summary_line() -> None:
    for name in presets.names():
        if name in ("reference", "realtime"):
            continue  # byte-identical copies of the design's files; summaries live in presets/__init__.py
        first = presets.text(name).splitlines()[0]
        assert first.startswith("# ") and len(first) > 20, name
        assert presets.summary(name) == first[2:].strip()
