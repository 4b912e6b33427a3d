"""serving/system_data.py: one description of a generated system's data, so that sample data, example
requests, request-time values and model inputs agree for every runnable spec (no servers: fast).

For specs drawn from `tests.strategies.runnable_specs()` the generated repository's own code runs in a
subprocess: scripts/generate_sample_data.py writes its frames, and every row the serving client asks for
by default (system_data.example_rows over the client's ENTITY_KEYS and REQUEST_FIELDS) is in the sample data
at its latest time (raw events that views roll up: in the last window of each of their grains, what the last
rollup counts), with every entity of a view keyed by several; a model that takes tensors gets a sample
of exactly the declared shape and dtype.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from triton_harness import generate

from generator.decide import decide
from generator.plan.serving import client_context
from requirements_spec.models import Spec
from tests.strategies import runnable_specs, spec_yaml

PROBE = r"""
import importlib.util, json, sys
from datetime import datetime, timezone
from pathlib import Path

root = Path.cwd()
sys.path.insert(0, str(root))
from serving import system_data

keys, request, sources = json.loads(sys.argv[1])
out = {"rows": system_data.example_rows(keys, request, n=3), "missing": [], "inputs": {}}
script = root / "scripts" / "generate_sample_data.py"
if script.is_file():
    spec = importlib.util.spec_from_file_location("sample", script)
    sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sample)
    now = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
    frames = sample.generate(seed=42, n_entities=50, n_labels=200, now=now)
    by_name = {s["name"]: s for s in sample.SOURCES}
    end = int(now.timestamp())
    for name, columns in sources.items():
        frame, src = frames[name], by_name[name]
        stamp = frame[src["timestamp_field"]]
        if src["events"]:  # raw events that views roll up: the last window of each grain holds the example ids
            at = lambda s: sample.pd.Timestamp(s, unit="s", tz="UTC")
            grains = src["events"]["grains_s"]
            latest = [(stamp > at((end // g - 1) * g)) & (stamp <= at(end // g * g)) for g in grains]
        else:
            latest = [stamp == stamp.max()]
        for rows in latest:
            have = set(map(tuple, frame.loc[rows, columns].astype(str).itertuples(index=False, name=None)))
            for row in out["rows"]:
                want = tuple(str(row[c]) for c in columns)
                if want not in have:
                    out["missing"].append([name, want])
for model in system_data.MODELS:
    arrays = system_data.sample_inputs(model, batch=2)
    out["inputs"][model] = {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()}
print(json.dumps(out, default=str))
"""


def _batch_sources(spec: Spec, keys: list[str]) -> dict[str, list[str]]:
    """batch source -> the join keys (of the example row) its views are keyed by, together."""
    if spec.features is None:
        return {}
    batch_of = {s.name: getattr(s, "batch_source", None) or s.name for s in spec.sources if s.kind != "request"}
    out: dict[str, list[str]] = {}
    for view in spec.features.views:
        join = [e.join_key for e in spec.entities if e.name in view.entities and e.join_key in keys]
        if join:
            cols = out.setdefault(batch_of[view.source], [])
            cols += [k for k in join if k not in cols]
    return out


@pytest.mark.slow  # six generations, each probed by a subprocess that imports Feast
@settings(
    max_examples=6,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=runnable_specs())
def test_example_requests_find_their_rows_and_tensors_their_shape(
    spec: Spec, tmp_path_factory: pytest.TempPathFactory
) -> None:
    note(spec_yaml(spec))
    check_system_data(spec, tmp_path_factory.mktemp("system_data"))


def check_system_data(spec: Spec, repo: Path) -> None:
    """Generate serving/ and feature_repo/ of the spec into repo; its example rows and samples are right."""
    spec_file = repo / "spec.yaml"
    spec_file.write_text(spec_yaml(spec), encoding="utf-8")
    arch = generate(spec_file, repo, components=("serving", "feature_repo"))
    ctx = client_context(arch)
    keys = [list(k) for k in ctx["entity_keys"]]
    request = [list(r) for r in ctx["request_fields"]]
    sources = _batch_sources(spec, [k for k, _ in keys])
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([keys, request, sources])],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    out = json.loads(probe.stdout.splitlines()[-1])
    # every field of a request source the service's on-demand views read is sent (Feast asks for them all)
    for src in spec.sources:
        if src.kind == "request" and any(r[0] in {f.name for f in src.fields} for r in request):
            assert {f.name for f in src.fields} <= {r[0] for r in request}
    for row in out["rows"]:
        assert set(row) == {k for k, _ in keys} | {r for r, _ in request}
    assert not out["missing"], f"example rows absent from the sample data: {out['missing'][:5]}"
    numpy = {"uint8": "uint8", "fp32": "float32", "int64": "int64", "string": "object", "fp64": "float64"}
    for model in arch.serving.models:
        if model.feature_service is not None or not model.inputs:
            continue
        for t in model.inputs:
            shape, dtype = out["inputs"][model.name][t.name]
            batch = [2] if model.max_batch_size > 0 else []
            assert shape == batch + [4 if d < 0 else d for d in t.dims], (model.name, t.name, shape)
            assert dtype == numpy.get(t.dtype, dtype), (model.name, t.name, dtype)


def test_string_keys_and_several_entities_share_the_example_ids(tmp_path: Path) -> None:
    """The kiosk spec: a string key and an int32 key, a view keyed by both, request-time fields."""
    spec_file = Path(__file__).parent / "specs" / "kiosk_strings.yaml"
    from requirements_spec.validate import load_spec

    arch = decide(load_spec(spec_file))
    ctx = client_context(arch)
    assert ["sku", "str"] in ctx["entity_keys"] and ["store_id", "int32"] in ctx["entity_keys"]
    # the on-demand view reads basket_value only, but Feast asks for every field of the request source
    assert {r[0] for r in ctx["request_fields"]} == {"basket_value", "currency", "items_in_basket"}
    check_system_data(arch.spec, tmp_path)


LABELS_PROBE = r"""
import importlib.util, json, sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

root = Path.cwd()
sys.path.insert(0, str(root))
spec = importlib.util.spec_from_file_location("sample", root / "scripts" / "generate_sample_data.py")
sample = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sample)
views, label_source = json.loads(sys.argv[1])
frames = sample.generate(seed=42, n_entities=50, n_labels=400, now=datetime(2025, 6, 1, 12, tzinfo=timezone.utc))
stamp = {s["name"]: s["timestamp_field"] for s in sample.SOURCES}
labels = frames[label_source].rename(columns={stamp[label_source]: "__label_time"})
labels["__row"] = range(len(labels))
usable = set(labels["__row"])
for source, keys, ttl_s in views:
    rows = frames[source][keys + [stamp[source]]].rename(columns={stamp[source]: "__feature_time"})
    pairs = labels[["__row", "__label_time", *keys]].merge(rows, on=keys)
    age = (pairs["__label_time"] - pairs["__feature_time"]).dt.total_seconds()
    usable &= set(pairs.loc[(age >= 0) & (age <= ttl_s), "__row"])
print(json.dumps({"labels": len(labels), "usable": len(usable)}))
"""


def test_labels_meet_every_view_keyed_by_several_entities_within_its_ttl(tmp_path: Path) -> None:
    """Two views keyed by the same two entities, from different sources, with a 2-day ttl: a label event finds a
    row of both for its key within the ttl (ids paired at random per source would leave almost none usable)."""
    import yaml

    from requirements_spec.types import duration_seconds
    from requirements_spec.validate import load_spec

    data = yaml.safe_load((Path(__file__).parent / "specs" / "kiosk_strings.yaml").read_text())
    data["sources"].append(
        {
            "name": "shelf_audit",
            "kind": "file",
            "path": "data/shelf_audit.parquet",
            "timestamp_field": "event_timestamp",
        }
    )
    second = {
        "name": "sku_audit",
        "entities": ["sku", "store"],
        "source": "shelf_audit",
        "granularity": "day",
        "ttl": "2d",
        "fields": [{"name": "facings", "dtype": "int32"}],
    }
    data["features"]["views"].append(second)
    for view in data["features"]["views"]:
        view["ttl"] = "2d"
    data["features"]["services"][0]["features"].append("sku_audit.facings")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(data, sort_keys=False))
    arch = decide(load_spec(spec_file))
    repo = tmp_path / "repo"
    generate(spec_file, repo)
    keys = {e.name: e.join_key for e in arch.spec.entities}
    views = [
        [v.source, [keys[e] for e in v.entities], duration_seconds(v.ttl)]
        for v in arch.spec.features.views  # type: ignore[union-attr]
        if len(v.entities) > 1
    ]
    probe = subprocess.run(
        [sys.executable, "-c", LABELS_PROBE, json.dumps([views, arch.spec.training.label.source])],  # type: ignore[union-attr]
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    out = json.loads(probe.stdout)
    assert out["usable"] >= 0.9 * out["labels"], out
