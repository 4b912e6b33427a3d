"""A view fed by a stream reads, offline, the file or table the stream lands in (its batch source): the embedded
bundle's key population and the batch scoring population come from there, never from the stream's empty path."""

from __future__ import annotations

from pathlib import Path

import yaml

from generator.decide import decide
from generator.plan import batch, embedded
from requirements_spec import load_spec

PRESETS = Path(__file__).resolve().parents[1] / "requirements_spec" / "presets"


def _streamed(preset: str, view_index: int, tmp_path: Path) -> tuple[dict, str]:
    """The preset with its view fed by a new stream that lands in the view's former file source."""
    data = yaml.safe_load((PRESETS / f"{preset}.yaml").read_text())
    view = data["features"]["views"][view_index]
    landed = view["source"]
    data["sources"].append({"name": "live_feed", "kind": "stream", "topic": "readings", "batch_source": landed})
    view["source"] = "live_feed"
    data["serving"].pop("population", None)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return data, landed


def test_a_stream_resolves_to_the_source_it_lands_in(tmp_path: Path) -> None:
    _data, landed = _streamed("edge_airgapped", 0, tmp_path)
    spec = load_spec(tmp_path / "spec.yaml").spec
    stored = spec.stored_source("live_feed")
    assert stored is not None and stored.name == landed
    assert spec.stored_source(landed) is stored
    assert spec.stored_source("no_such_source") is None


def test_the_embedded_bundle_reads_its_keys_from_where_the_stream_lands(tmp_path: Path) -> None:
    data, landed = _streamed("edge_airgapped", 0, tmp_path)
    arch = decide(load_spec(tmp_path / "spec.yaml"))
    population = embedded.context(arch)["population"]
    path = next(s["path"] for s in data["sources"] if s["name"] == landed)
    assert population == {"name": landed, "kind": "file", "location": path}


def test_batch_scoring_scores_the_population_where_the_stream_lands(tmp_path: Path) -> None:
    _data, landed = _streamed("batch_warehouse", 0, tmp_path)
    arch = decide(load_spec(tmp_path / "spec.yaml"))
    population = batch.context(arch)["population"]
    assert population["name"] == landed and population["location"]
