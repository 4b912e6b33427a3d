"""Diagrams: every preset draws both views; output is stable, portable, and degrades without graphviz."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from generator.decide import decide
from generator.icons import NAMES, icon_path
from generator.views import diagrams as dg
from requirements_spec import presets
from requirements_spec.validate import parse_spec
from tools.draw_icons import draw

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "diagrams"
UPDATE = os.environ.get("ARCHGEN_UPDATE_GOLDEN") == "1"  # ARCHGEN_UPDATE_GOLDEN=1 pytest ... rewrites snapshots
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` is not installed")


def arch_of(name: str):  # type: ignore[no-untyped-def]
    return decide(parse_spec(presets.text(name), f"{name}.yaml"))


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "generator.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def test_shipped_icons_are_what_draw_produces() -> None:
    for name in NAMES:
        assert icon_path(name).read_bytes() == draw(name), f"run `python -m tools.draw_icons` ({name})"
        assert icon_path(name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("preset", presets.names())
def test_every_preset_builds_both_views_as_text(preset: str) -> None:
    arch = arch_of(preset)
    views = dg.views(arch)
    assert [v.name for v in views] == ["dataflow", "deployment"]
    resources, own = dg.icon_dirs()
    for v in views:
        ids = [n.id for n in v.nodes]
        assert len(ids) == len(set(ids))
        mermaid = dg.to_mermaid(v)
        assert mermaid.startswith("flowchart LR\n")
        dot = dg.to_dot(v, origin=f"{preset}.yaml")
        for nid in ids:  # fixed ids, never uuids
            assert f"\t{nid} [" in dot, nid
            assert f"{nid}[" in mermaid
        assert str(resources) not in dot and str(own) not in dot and str(ROOT) not in dot
        assert 'image="/' not in dot
    dataflow = dg.to_mermaid(views[0])
    runtime = arch.serving.runtime
    chain = [("train", "model_repo")]
    if runtime == "batch_scoring":  # offline store -> scoring job -> score table; nothing materialized
        chain += [("model_repo", "serving"), ("offline_store", "serving"), ("serving", "scores")]
        assert "materialize" not in dataflow and "online_store" not in dataflow
    elif runtime == "embedded":  # gated model + online snapshot -> bundle -> the library on the device
        chain += [("model_repo", "bundle_build"), ("bundle_build", "bundle"), ("bundle", "serving")]
    else:
        chain.append(("model_repo", "serving"))
    if arch.feature_store is not None:
        chain.append(("offline_store", "train"))
        if runtime != "batch_scoring":  # sources -> offline -> materialize -> online -> serving
            chain += [("offline_store", "materialize"), ("materialize", "online_store")]
        if runtime == "python_rest":  # the REST service reads the features itself
            chain += [("online_store", "serving"), ("clients", "serving")]
            assert "client_lib" not in dataflow and "triton" not in dg.to_mermaid(views[1])
        elif runtime not in ("batch_scoring", "embedded"):
            chain += [("online_store", "client_lib"), ("client_lib", "serving")]
    for a, b in chain:
        assert re.search(rf"\n  {a} -\.?->(\|[^|]*\|)? {b}\n", dataflow), (a, b)


def _runtime_spec(tmp_path: Path, kind: str) -> Path:
    from test_runtimes import batch_spec, embedded_spec

    if kind in ("embedded", "batch_files"):
        path = embedded_spec(tmp_path)
        if kind == "batch_files":
            path.write_text(path.read_text().replace("mode: embedded", "mode: batch"))
        return path
    on_k8s = {"batch_k8s_airflow": "airflow", "batch_k8s_cronjob": "kubernetes"}
    if kind in on_k8s:
        return batch_spec(tmp_path, platform="kubernetes", orchestrator=on_k8s[kind])
    return batch_spec(tmp_path)


@pytest.mark.parametrize(
    "kind", ["embedded", "batch_files", "batch_postgres", "batch_k8s_airflow", "batch_k8s_cronjob"]
)
def test_embedded_and_batch_diagrams_draw_their_own_runtime_never_triton(tmp_path: Path, kind: str) -> None:
    """Embedded: a library reading a bundle on the device; batch: a scoring job writing to the warehouse.
    Neither draws Triton, a client library, a feature server, a Service or an autoscaler, in DOT or Mermaid."""
    from requirements_spec import load_spec

    arch = decide(load_spec(_runtime_spec(tmp_path, kind)))
    dataflow, deployment = dg.views(arch)
    texts = [dg.to_mermaid(v) + dg.to_dot(v, origin=f"{kind}.yaml") for v in (dataflow, deployment)]
    for text in texts:
        assert "triton" not in text.lower() and "client_lib" not in text and "feature server" not in text
        assert "hpa" not in text and "svc" not in text and "Deployment" not in text
    icons = {n.icon for v in (dataflow, deployment) for n in v.nodes}
    assert not icons & {"triton", "hpa", "service", "deploy"}, icons
    edges = {(e.src, e.dst) for v in (dataflow, deployment) for e in v.edges}
    if kind == "embedded":
        assert {("bundle_build", "bundle"), ("bundle", "serving"), ("clients", "serving")} <= edges
        assert {("bundles", "device_bundles"), ("device_bundles", "app")} <= edges
        assert "package" in deployment.nodes[[n.id for n in deployment.nodes].index("app")].label
    else:
        store = "scores" if kind == "batch_files" else "postgres"  # PostgreSQL: a table of the warehouse itself
        assert {("offline_store", "serving"), ("serving", "scores"), ("scores", "clients")} <= edges
        assert {("jobs", store), (store, "clients")} <= edges
        assert "materialize" not in texts[0] and "online_store" not in texts[0] + texts[1]
        if kind == "batch_k8s_cronjob":
            assert any(n.icon == "cronjob" and "score" in n.label for n in deployment.nodes)


@needs_dot
@pytest.mark.parametrize("preset", presets.names())
def test_every_preset_renders_png_and_svg(preset: str) -> None:
    resources, own = dg.icon_dirs()
    for v in dg.views(arch_of(preset)):
        png = dg.render(v, "png")
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
        svg = dg.render(v, "svg").decode("utf-8")
        root = ElementTree.fromstring(svg)  # well-formed XML
        assert root.tag.endswith("svg")
        assert "Generated by graphviz version" not in svg
        assert str(resources) not in svg and str(own) not in svg and str(ROOT) not in svg
        images = [e for e in root.iter() if e.tag.endswith("image")]
        assert images, "icons are drawn"
        for image in images:  # icons inlined: the SVG is portable
            href = image.get("{http://www.w3.org/1999/xlink}href") or ""
            assert href.startswith("data:image/png;base64,")


def test_reference_dot_matches_the_snapshot() -> None:
    for v in dg.views(arch_of("reference")):
        text = dg.to_dot(v, origin="reference.yaml")
        golden = GOLDEN / f"reference_{v.name}.dot"
        if UPDATE:
            golden.write_text(text, encoding="utf-8")
        assert golden.exists(), f"no snapshot {golden}: ARCHGEN_UPDATE_GOLDEN=1 pytest {__file__}"
        assert text == golden.read_text(encoding="utf-8"), (
            f"{golden.name} drifted; if the change is intended: ARCHGEN_UPDATE_GOLDEN=1 pytest {__file__}"
        )


@pytest.mark.slow
@needs_dot
def test_diagram_command_is_byte_identical_across_runs(tmp_path: Path) -> None:
    spec = ROOT / "requirements_spec" / "presets" / "reference.yaml"
    outputs = []
    for run in ("a", "b"):
        for fmt in ("png", "svg", "dot"):
            result = cli("diagram", str(spec), "-o", str(tmp_path / run), "--format", fmt)
            assert result.returncode == 0, result.stderr
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).iterdir())})
    assert sorted(outputs[0]) == [
        "dataflow.dot",
        "dataflow.png",
        "dataflow.svg",
        "deployment.dot",
        "deployment.png",
        "deployment.svg",
    ]
    assert outputs[0] == outputs[1]


def _path_without_dot(tmp_path: Path) -> str:
    """A PATH with the usual tools but no `dot` (symlinks to everything in the PATH dirs except graphviz)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or not Path(folder).is_dir():
            continue
        for tool in Path(folder).iterdir():
            target = bin_dir / tool.name
            if tool.name not in ("dot", "neato", "fdp", "sfdp", "circo", "twopi") and not target.exists():
                target.symlink_to(tool)
    return str(bin_dir)


def test_without_graphviz_diagram_writes_dot_and_mermaid(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _path_without_dot(tmp_path)}
    assert shutil.which("dot", path=env["PATH"]) is None
    out = tmp_path / "out"
    result = cli("diagram", str(ROOT / "requirements_spec/presets/reference.yaml"), "-o", str(out), env=env)
    assert result.returncode == 69, result.stderr  # the command exists to draw: a missing tool (README)
    assert "apt-get install graphviz" in result.stderr
    assert "skipped dataflow.png, deployment.png" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "dataflow.dot",
        "dataflow.mmd",
        "deployment.dot",
        "deployment.mmd",
    ]
    assert (out / "dataflow.mmd").read_text().startswith("flowchart LR")


@pytest.mark.slow
def test_without_graphviz_new_succeeds_and_says_what_it_skipped(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _path_without_dot(tmp_path)}
    out = tmp_path / "repo"
    result = cli("new", str(ROOT / "requirements_spec/presets/reference.yaml"), "-o", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert "skipped docs/diagrams/*.png and *.svg" in result.stderr
    assert "apt-get install graphviz" in result.stderr
    names = sorted(p.name for p in (out / "docs" / "diagrams").iterdir())
    assert names == ["dataflow.dot", "dataflow.mmd", "deployment.dot", "deployment.mmd"]
    review = (out / "docs" / "review.html").read_text()
    assert "flowchart LR" in review and "apt-get install graphviz" in review
    assert "diagrams/dataflow.png" not in (out / "docs" / "architecture.md").read_text()


def test_dot_missing_in_process_raises_a_dependency_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from generator.errors import DEPENDENCY, ArchgenError

    monkeypatch.setattr(dg.shutil, "which", lambda name, *a, **k: None)
    dg._pipe.cache_clear()
    assert dg.skipped_note() is not None
    view = dg.views(arch_of("reference"))[0]
    with pytest.raises(ArchgenError) as info:
        dg.render(view, "png")
    assert info.value.exit_code == DEPENDENCY and "apt-get install graphviz" in (info.value.hint or "")
    assert dg.produce(view, "dot").startswith(b"// ")  # text formats need no binary
