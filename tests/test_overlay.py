"""Company templates over the generated repository: `archgen new --overlay` (cookiecutter).

Each test builds a small cookiecutter template in its temporary folder and runs the real command line:
files land and are managed (manifest, `update`, `check`); hooks need `--trust` (exit 4 otherwise, the
hook not run); a file name that renders outside the repository, a zip member that climbs out and a
symlink are refused with exit 4 and nothing written; a shared path is refused naming both sides
unless the spec says which wins.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.cli import app
from generator.write.manifest import MANIFEST, parse_manifest, sha256

ROOT = Path(__file__).resolve().parent.parent
STARTER = ROOT / "requirements_spec" / "presets" / "starter.yaml"
SLUG = "{{cookiecutter.project_slug}}"
NOTES = (
    "# Company notes\n\nOwner: {{ cookiecutter._archgen.owners.data_science }}\n"
    "Description: {{ cookiecutter._archgen.description }}\n"
    "Online store: {{ cookiecutter._archgen.decisions.online_store }}\n"
    "Environments: {{ cookiecutter._archgen.environments | join(', ') }}\n\nline a\nline b\nline c\n"
)


def archgen(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def template(root: Path, files: dict[str, str], context: dict[str, str] | None = None) -> Path:
    """A cookiecutter template at ``root``: ``files`` are paths inside the project folder (or `hooks/...`)."""
    ctx = {"project_name": "Placeholder", "project_slug": "{{ cookiecutter.project_name|lower }}", "license": "MIT"}
    (root).mkdir(parents=True)
    (root / "cookiecutter.json").write_text(json.dumps({**ctx, **(context or {})}))
    for rel, text in files.items():
        dest = root / rel if rel.startswith("hooks/") else root / SLUG / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
        if rel.endswith(".sh"):
            dest.chmod(0o755)
    return root


def company(root: Path) -> Path:
    return template(
        root,
        {
            "LICENSE": "Copyright {{ cookiecutter.project_name }} ({{ cookiecutter.license }})\n",
            "docs/company.md": NOTES,
            "ci/build-{{ cookiecutter.project_slug }}.sh": "#!/bin/sh\necho build {{ cookiecutter.project_slug }}\n",
        },
    )


def everything_under(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")}


@pytest.mark.slow
def test_overlay_files_land_are_managed_survive_update_and_check(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    code, out = archgen("new", str(STARTER), "-o", str(repo), "--overlay", str(company(tmp_path / "company")))
    assert code == 0, out
    assert (repo / "LICENSE").read_text() == "Copyright customer_churn (MIT)\n"
    notes = (repo / "docs" / "company.md").read_text()
    assert "Owner: @acme/churn-ds\n" in notes and "Online store: sqlite\n" in notes
    assert "Environments: dev, staging, prod\n" in notes
    script = repo / "ci" / "build-customer_churn.sh"
    assert script.stat().st_mode & 0o777 == 0o755
    manifest = parse_manifest((repo / MANIFEST).read_bytes())
    by_path = {f.path: f for f in manifest.files}
    for rel in ("LICENSE", "docs/company.md", "ci/build-customer_churn.sh"):
        assert by_path[rel].component == "overlay:company"
        assert by_path[rel].sha256 == sha256((repo / rel).read_bytes())
    [record] = manifest.overlays
    assert (record.name, record.source, record.wins, record.declared) == ("company", "../company", "refuse", "cli")

    # the team edits an overlay file; the spec changes a value the overlay renders
    (repo / "docs" / "company.md").write_text(notes + "team line\n")
    new_spec = tmp_path / "new.yaml"
    new_spec.write_text(STARTER.read_text().replace("Score each active customer", "Rate each active customer"))
    code, out = archgen("update", str(repo), "--spec", str(new_spec))
    assert code == 0, out
    assert "merged    docs/company.md" in out
    merged = (repo / "docs" / "company.md").read_text()
    assert "Description: Rate each active customer" in merged  # archgen's re-render
    assert merged.endswith("line c\nteam line\n")  # the team's edit
    assert parse_manifest((repo / MANIFEST).read_bytes()).overlays == manifest.overlays

    code, out = archgen("check", str(repo))
    assert code == 0, out
    assert "docs/company.md" in out  # known to the manifest: reported as changed by the team, not unknown
    assert "0 not from archgen" in out


def test_a_hook_runs_only_with_trust_and_an_escape_is_refused_even_then(tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    escaped = f"escaped-{uuid.uuid4().hex}.txt"
    hook = f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
    tmpl = template(
        tmp_path / "evil",
        {"hooks/post_gen_project.py": hook, "README-company.md": "hi\n", "{{ cookiecutter.target }}": "gotcha\n"},
        {"target": f"../../../../{escaped}"},
    )
    repo = tmp_path / "out" / "repo"
    before = everything_under(tmp_path)
    code, out = archgen("new", str(STARTER), "-o", str(repo), "--overlay", str(tmpl))
    assert code == 4, out
    assert "hooks/post_gen_project.py" in out and "--trust" in out
    assert not marker.exists() and not repo.exists()

    code, out = archgen("new", str(STARTER), "-o", str(repo), "--overlay", str(tmpl), "--trust")
    assert code == 4, out
    assert "leads outside the repository" in out and escaped in out
    assert not marker.exists() and not repo.exists()  # refused before cookiecutter ran the hook
    assert everything_under(tmp_path) == before
    for parent in (tmp_path, *tmp_path.parents):
        assert not (parent / escaped).exists()


def test_a_trusted_hook_runs_and_its_files_are_managed(tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    hook = (
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('ran')\n"
        "Path('from-hook.txt').write_text('{{ cookiecutter.project_slug }}\\n')\n"
    )
    tmpl = template(tmp_path / "hooked", {"hooks/post_gen_project.py": hook, "NOTICE": "n\n"})
    repo = tmp_path / "repo"
    code, out = archgen("new", str(STARTER), "-o", str(repo), "--overlay", str(tmpl), "--trust")
    assert code == 0, out
    assert marker.read_text() == "ran"
    assert (repo / "from-hook.txt").read_text() == "customer_churn\n"
    components = {f.path: f.component for f in parse_manifest((repo / MANIFEST).read_bytes()).files}
    assert components["from-hook.txt"] == components["NOTICE"] == "overlay:hooked"


def test_a_zip_overlay_renders_like_its_folder_and_a_climbing_member_is_refused(tmp_path: Path) -> None:
    folder = company(tmp_path / "company")
    archive = tmp_path / "company.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(f"company/{path.relative_to(folder).as_posix()}")
                info.external_attr = (0o100000 | (path.stat().st_mode & 0o777)) << 16
                zf.writestr(info, path.read_bytes())
    code, out = archgen("new", str(STARTER), "-o", str(tmp_path / "a"), "--overlay", str(folder))
    assert code == 0, out
    code, out = archgen("new", str(STARTER), "-o", str(tmp_path / "b"), "--overlay", str(archive))
    assert code == 0, out
    for rel in ("LICENSE", "docs/company.md", "ci/build-customer_churn.sh"):
        a, b = tmp_path / "a" / rel, tmp_path / "b" / rel
        assert (a.read_bytes(), a.stat().st_mode) == (b.read_bytes(), b.stat().st_mode)

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("cookiecutter.json", "{}")
        zf.writestr("../outside.txt", "x")
    code, out = archgen("new", str(STARTER), "-o", str(tmp_path / "c"), "--overlay", str(bad))
    assert code == 4, out
    assert "leads outside the template" in out
    assert not (tmp_path / "c").exists() and not (tmp_path.parent / "outside.txt").exists()


def test_a_symlink_in_the_template_is_refused(tmp_path: Path) -> None:
    tmpl = company(tmp_path / "company")
    os.symlink("/etc/passwd", tmpl / SLUG / "passwd")
    code, out = archgen("new", str(STARTER), "-o", str(tmp_path / "repo"), "--overlay", str(tmpl))
    assert code == 4, out
    assert "symlink" in out and not (tmp_path / "repo").exists()


def test_a_shared_path_is_refused_naming_both_unless_the_spec_says_who_wins(tmp_path: Path) -> None:
    tmpl = template(tmp_path / "brand", {"README.md": "# {{ cookiecutter.project_name }}, the company way\n"})
    code, out = archgen("new", str(STARTER), "-o", str(tmp_path / "refused"), "--overlay", str(tmpl))
    assert code == 65, out
    assert "README.md: written by archgen's" in out
    assert "by overlay brand ({{cookiecutter.project_slug}}/README.md)" in out
    assert not (tmp_path / "refused").exists()

    for wins, expected in (("overlay", "# customer_churn, the company way\n"), ("archgen", None)):
        spec = tmp_path / f"spec-{wins}.yaml"
        spec.write_text(STARTER.read_text() + f"\noverlays:\n  - path: brand\n    wins: {wins}\n")
        repo = tmp_path / wins
        code, out = archgen("new", str(spec), "-o", str(repo))
        assert code == 0, out
        readme = (repo / "README.md").read_text()
        manifest = parse_manifest((repo / MANIFEST).read_bytes())
        component = manifest.file("README.md").component  # type: ignore[union-attr]
        if expected is not None:
            assert readme == expected and component == "overlay:brand"
        else:
            assert readme != "# customer_churn, the company way\n" and component != "overlay:brand"
        assert [(o.declared, o.wins) for o in manifest.overlays] == [("spec", wins)]


@pytest.mark.parametrize("where", ["cli", "spec"])
def test_a_missing_overlay_is_a_clear_error(tmp_path: Path, where: str) -> None:
    spec = STARTER
    args = ["--overlay", str(tmp_path / "nope")] if where == "cli" else []
    if where == "spec":
        spec = tmp_path / "spec.yaml"
        spec.write_text(STARTER.read_text() + "\noverlays:\n  - path: nope\n")
    code, out = archgen("new", str(spec), "-o", str(tmp_path / "repo"), *args)
    assert code == 66, out
    assert "nope does not exist" in out and not (tmp_path / "repo").exists()
