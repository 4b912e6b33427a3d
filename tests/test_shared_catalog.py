"""A spec that joins an existing feature catalog: its repository applies to the shared SQL registry on PostgreSQL
without redefining, replacing or deleting the catalog's views.

The catalog team's repository is stood in for by a few lines of Feast (two views of their own, applied to project
``acme_catalog`` in a SQL registry that lives in a schema of its own in the ``test`` database, dropped after). The
generated repository then runs ``scripts/apply.py`` (what its ``make apply`` runs): its own view and service join
the project, the catalog's views keep their exact definitions, and the service serves the catalog's features with
its own, point in time. A view of ours that takes the name of another team's view is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from spec_parts import small_serving

from generator.decide import decide
from generator.plan.plan import build_plan
from generator.render.render import render_plan
from requirements_spec.validate import parse_spec

pd = pytest.importorskip("pandas")
psycopg = pytest.importorskip("psycopg")

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PROJECT = "acme_catalog"
NOW = datetime.now(UTC).replace(microsecond=0)

CATALOG = """
import json, sys
from datetime import timedelta
from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast.repo_config import RepoConfig
from feast.types import Float64

url, data, out = sys.argv[1], sys.argv[2], sys.argv[3]
config = RepoConfig(
    project="acme_catalog", provider="local",
    registry={"registry_type": "sql", "path": url, "cache_ttl_seconds": 0},
    online_store={"type": "sqlite", "path": data + "/catalog_online.db"}, offline_store={"type": "file"},
    entity_key_serialization_version=3,
)
store = FeatureStore(config=config)
driver = Entity(name="driver", join_keys=["driver_id"])
stats = FileSource(name="driver_stats_source", path=data + "/driver_stats.parquet", timestamp_field="event_timestamp")
views = [
    FeatureView(name=name, entities=[driver], source=stats, ttl=timedelta(days=30), owner="@acme/catalog",
                schema=[Field(name="conv_rate", dtype=Float64), Field(name="acc_rate", dtype=Float64)])
    for name in ("driver_stats", "other_team_view")
]
store.apply([driver, stats, *views])
json.dump({v.name: v.to_proto().SerializeToString().hex() for v in store.list_feature_views()}, open(out, "w"))
"""

READ = """
import json, sys
import pandas as pd
from feast import FeatureStore
repo, entity_df, out = sys.argv[1], sys.argv[2], sys.argv[3]
store = FeatureStore(repo_path=repo)
service = store.get_feature_service("ranking")
df = store.get_historical_features(entity_df=pd.read_parquet(entity_df), features=service).to_df()
json.dump({
    "project": store.project,
    "views": {v.name: v.to_proto().SerializeToString().hex() for v in store.list_feature_views()},
    "owners": {v.name: v.owner for v in store.list_feature_views()},
    "service": [[p.name, [f.name for f in p.features]] for p in service.feature_view_projections],
    "rows": json.loads(df.to_json(orient="records", date_format="iso")),
}, open(out, "w"))
"""


def spec_text(own_view: str = "driver_trips") -> str:
    data = {
        "version": 1,
        "project": {"name": "rides", "owners": {"data_engineering": "@acme/rides", "data_science": "@acme/ds"}},
        "existing": {
            "feature_registry": {
                "project": PROJECT,
                "views": [
                    {
                        "name": "driver_stats",
                        "entities": ["driver"],
                        "fields": [{"name": "conv_rate", "dtype": "float64"}, {"name": "acc_rate", "dtype": "float64"}],
                    }
                ],
            }
        },
        "entities": [{"name": "driver", "join_key": "driver_id"}],
        "sources": [{"name": "trips", "kind": "file", "path": "data/trips.parquet"}],
        "features": {
            "freshness": "1d",
            "views": [
                {
                    "name": own_view,
                    "entities": ["driver"],
                    "source": "trips",
                    "ttl": "30d",
                    "fields": [{"name": "fare", "dtype": "float64"}],
                }
            ],
            "services": [
                {"name": "ranking", "features": [f"{own_view}.fare", "driver_stats.conv_rate"]},
            ],
        },
        "serving": small_serving("ranking"),
    }
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture(scope="module")
def registry_url() -> Iterator[str]:
    """A SQL registry in a schema of its own in the `test` database, dropped after."""
    schema = f"archgen_catalog_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(host="127.0.0.1", port=5432, dbname="test", user="postgres", autocommit=True)
    except Exception as exc:  # no server here: the test cannot run
        pytest.skip(f"PostgreSQL does not answer on 127.0.0.1:5432: {exc}")
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


def python(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args] if not script.endswith(".py") else [sys.executable, script, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def generate(root: Path, own_view: str = "driver_trips") -> None:
    arch = decide(parse_spec(spec_text(own_view), "spec.yaml"))
    for path, data in render_plan(build_plan(arch), arch).items():
        if path.startswith(("feature_repo/", "scripts/")) or path == "serving/system_data.py":
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
    (root / "feature_repo" / "data").mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
def joined(registry_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("catalog")
    stamps = [NOW - timedelta(days=d) for d in (3, 2, 1)]
    catalog = pd.DataFrame(
        {"driver_id": [1, 2, 1], "conv_rate": [0.1, 0.7, 0.2], "acc_rate": [0.5, 0.9, 0.6], "event_timestamp": stamps}
    )
    catalog.to_parquet(tmp / "driver_stats.parquet", index=False)
    done = python(CATALOG, registry_url, str(tmp), str(tmp / "before.json"))
    assert done.returncode == 0, done.stderr[-4000:]

    root = tmp / "rides"
    generate(root)
    trips = pd.DataFrame({"driver_id": [1, 2], "fare": [12.5, 30.0], "event_timestamp": stamps[:2]})
    trips.to_parquet(root / "feature_repo" / "data" / "trips.parquet", index=False)
    env = {"FEAST_REGISTRY_URL": registry_url}
    done = python(str(root / "scripts" / "apply.py"), env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    entity_df = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [NOW - timedelta(hours=36), NOW]})
    entity_df.to_parquet(tmp / "entities.parquet", index=False)
    done = python(READ, str(root / "feature_repo"), str(tmp / "entities.parquet"), str(tmp / "after.json"), env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return {
        "before": json.loads((tmp / "before.json").read_text()),
        "after": json.loads((tmp / "after.json").read_text()),
        "tmp": tmp,
        "env": env,
    }


def test_own_views_join_the_catalog_and_its_views_stay_as_they_were(joined: dict[str, Any]) -> None:
    before, after = joined["before"], joined["after"]
    assert after["project"] == PROJECT
    assert set(after["views"]) == {"driver_stats", "other_team_view", "driver_trips"}
    for name in ("driver_stats", "other_team_view"):  # not redefined, not touched: the same bytes
        assert after["views"][name] == before[name], f"{name} was redefined"
    assert after["owners"]["driver_trips"] == "@acme/rides"
    assert sorted(after["service"]) == [["driver_stats", ["conv_rate"]], ["driver_trips", ["fare"]]]


def test_the_service_serves_the_catalogs_features_point_in_time(joined: dict[str, Any]) -> None:
    rows = {r["driver_id"]: r for r in joined["after"]["rows"]}
    assert rows[1]["conv_rate"] == 0.1 and rows[1]["fare"] == 12.5  # 36 h ago: not the catalog's row of 1 day ago
    assert rows[2]["conv_rate"] == 0.7 and rows[2]["fare"] == 30.0


def test_a_view_named_like_another_teams_view_is_refused(joined: dict[str, Any]) -> None:
    root = joined["tmp"] / "clash"
    generate(root, own_view="other_team_view")
    done = python(str(root / "scripts" / "apply.py"), env=joined["env"])
    assert done.returncode != 0
    assert "belongs to @acme/catalog" in done.stderr
    tmp = joined["tmp"]
    rides = str(tmp / "rides" / "feature_repo")
    again = python(READ, rides, str(tmp / "entities.parquet"), str(tmp / "again.json"), env=joined["env"])
    assert again.returncode == 0, again.stderr[-4000:]
    after = json.loads((tmp / "again.json").read_text())
    assert after["views"]["other_team_view"] == joined["before"]["other_team_view"]
