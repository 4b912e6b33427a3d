"""The developer portal: Backstage `catalog-info.yaml` and TechDocs `mkdocs.yml` of every preset.

The catalog descriptor is validated by Backstage's own catalog model (`@backstage/catalog-model`, the
policies and kind validators the catalog runs on ingestion; `make setup-node-tools` installs it), and
the docs build with `mkdocs build --strict`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from generator.cli import app
from generator.plan.portal import owner_ref, tag
from requirements_spec.presets import names

PRESETS = names()

ROOT = Path(__file__).resolve().parent.parent
PRESETS_DIR = ROOT / "requirements_spec" / "presets"
NODE_TOOLS = Path(os.environ.get("ARCHGEN_NODE_TOOLS", ROOT / ".node-tools"))
VALIDATOR = Path(__file__).parent / "portal" / "validate_entities.js"
MKDOCS = Path(sys.executable).parent / "mkdocs"


def validate_entities(entities: list[object]) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    modules = NODE_TOOLS / "node_modules"
    if node is None or not (modules / "@backstage" / "catalog-model").is_dir():
        pytest.skip(f"Backstage's catalog model is not installed in {NODE_TOOLS} (make setup-node-tools)")
    return subprocess.run(
        [node, str(VALIDATOR)],
        input=json.dumps(entities),
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_PATH": str(modules)},
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name in sorted(PRESETS):
        repo = tmp_path_factory.mktemp(name) / "repo"
        result = CliRunner().invoke(app, ["new", str(PRESETS_DIR / f"{name}.yaml"), "-o", str(repo)])
        assert result.exit_code == 0, result.output
        out[name] = repo
    return out


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_catalog_info_is_a_valid_backstage_catalog_and_the_docs_build_strictly(
    generated: dict[str, Path], preset: str, tmp_path: Path
) -> None:
    repo = generated[preset]
    entities = [e for e in yaml.safe_load_all((repo / "catalog-info.yaml").read_text()) if e is not None]
    kinds = [e["kind"] for e in entities]
    assert kinds[0] == "System" and kinds.count("Component") >= 2
    system = entities[0]["metadata"]["name"]
    spec = yaml.safe_load((repo / ".archgen" / "spec.yaml").read_text())
    owners = {owner_ref(o) for o in spec["project"]["owners"].values()}
    for entity in entities:
        assert entity["spec"]["owner"] in owners
        assert entity["metadata"]["annotations"]["backstage.io/techdocs-ref"] == "dir:."
        if entity["kind"] == "Component":
            assert entity["spec"]["system"] == system
    checked = validate_entities(entities)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("ok ") == len(entities)

    site = tmp_path / "site"
    built = subprocess.run(
        [str(MKDOCS), "build", "--strict", "-d", str(site)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    assert (site / "architecture" / "index.html").is_file()
    assert (site / "adr" / "index.html").is_file()
    # a link from the docs to code elsewhere in the repository is no longer a link (no repo_url set) ...
    html = (site / "architecture" / "index.html").read_text()
    assert 'href="../../' not in html


def test_the_validator_rejects_what_the_catalog_rejects() -> None:
    bad = [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "trailing_"},
            "spec": {"type": "service", "lifecycle": "production", "owner": "group:default/x"},
        },
        {"apiVersion": "backstage.io/v1alpha1", "kind": "System", "metadata": {"name": "s"}, "spec": {}},
    ]
    checked = validate_entities(bad)
    assert checked.returncode == 1
    assert "invalid Component:trailing_" in checked.stdout and "invalid System:s" in checked.stdout


def test_owners_become_backstage_entity_references() -> None:
    assert owner_ref("@rides/ranking-ds") == "group:default/ranking-ds"
    assert owner_ref("@alice") == "user:default/alice"
    assert owner_ref("first.last+ml@example.com") == "user:default/first.last-ml"
    assert tag("kubernetes_cronjob") == "kubernetes-cronjob"


def test_the_links_hook_points_outside_links_at_the_repository(tmp_path: Path) -> None:
    from generator.plan.portal import LINKS_HOOK_SOURCE

    source = tmp_path / "repo_links.py"
    source.write_text(LINKS_HOOK_SOURCE.format(version="test"))
    spec = importlib.util.spec_from_file_location("repo_links", source)
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)

    class File:
        src_uri = "adr/0012-serving-runtime.md"

    class Page:
        file = File()

    md = "See [serving](../../serving/README.md#run), [ADR 1](0001-online-store.md) and [web](https://x.org/a)."
    with_repo = hook.on_page_markdown(md, Page(), {"repo_url": "https://git.example/org/repo/"}, None)
    assert with_repo == (
        "See [serving](https://git.example/org/repo/blob/HEAD/serving/README.md#run), "
        "[ADR 1](0001-online-store.md) and [web](https://x.org/a)."
    )
    assert hook.on_page_markdown(md, Page(), {}, None).startswith("See serving, [ADR 1](0001-online-store.md)")
