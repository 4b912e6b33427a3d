"""Safety of the write stage: occupied, symlinked, read-only and dangerous targets, failures midway.

Most cases run `archgen new` in process with only the frame component planned (the write stage
does not care which components produced the files, and this keeps the tests fast and independent
of the other components); the injection and secrets cases run the whole pipeline.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import generator.write.write as write_mod
from generator.cli import app
from generator.errors import CANT_CREATE, IO_ERROR, UNSAFE, ArchgenError
from generator.resources import TEMPLATES
from generator.write.manifest import MANIFEST, SPEC_COPY, parse_manifest
from generator.write.write import STAGING_MARK, write_repository

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"


def archgen(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under root: files by content hash and mode, symlinks by target, folders by mode."""
    out: dict[str, str] = {}
    if not os.path.lexists(root):
        return out
    for folder, dirs, names in os.walk(root):
        for name in sorted(dirs + names):
            p = Path(folder, name)
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = f"dir:{stat.S_IMODE(p.stat().st_mode):o}"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() + f":{stat.S_IMODE(p.stat().st_mode):o}"
    return out


def leftovers(parent: Path) -> list[str]:
    return sorted(n for n in os.listdir(parent) if STAGING_MARK in n)


# ------------------------------------------------------------------ the happy path
@pytest.mark.usefixtures("frame_only")
def test_new_target_is_written_with_modes_manifest_and_spec_copy(tmp_path: Path, spec: Path) -> None:
    out = tmp_path / "work" / "repo"  # the parent is created too
    code, output = archgen("new", str(spec), "-o", str(out))
    assert code == 0, output
    assert (out / SPEC_COPY).read_bytes() == spec.read_bytes()
    manifest = parse_manifest((out / MANIFEST).read_bytes())
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == {f.path for f in manifest.files} | {MANIFEST}
    for f in manifest.files:
        path = out / f.path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256
        assert stat.S_IMODE(path.stat().st_mode) == f.mode
        assert f.mode in (0o644, 0o755)
    assert manifest.spec_sha256 == hashlib.sha256(spec.read_bytes()).hexdigest()
    assert all(stat.S_IMODE(d.stat().st_mode) == 0o755 for d in [out, *(p for p in out.rglob("*") if p.is_dir())])
    raw = json.loads((out / MANIFEST).read_text())
    assert str(tmp_path) not in (out / MANIFEST).read_text() and "time" not in json.dumps(raw)
    assert leftovers(out.parent) == []
    assert "Generated driver_ranking" in output and "make demo" in output


@pytest.mark.usefixtures("frame_only")
def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path, spec: Path) -> None:
    out = tmp_path / "repo"
    code, output = archgen("new", str(spec), "-o", str(out), "--dry-run")
    assert code == 0, output
    assert not out.exists() and leftovers(tmp_path) == []
    assert "Makefile" in output and "frame" in output and "serving_runtime" in output
    assert "nothing was written" in output


# ------------------------------------------------------------------ occupied targets
@pytest.mark.usefixtures("frame_only")
def test_non_empty_target_without_force_is_refused_and_unchanged(tmp_path: Path, spec: Path) -> None:
    out = tmp_path / "repo"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    before = snapshot(out)
    code, output = archgen("new", str(spec), "-o", str(out))
    assert code == CANT_CREATE
    assert "not empty" in output and "--force" in output
    assert snapshot(out) == before and leftovers(tmp_path) == []


@pytest.mark.usefixtures("frame_only")
def test_empty_existing_target_is_used_without_force(tmp_path: Path, spec: Path) -> None:
    out = tmp_path / "repo"
    out.mkdir()
    code, output = archgen("new", str(spec), "-o", str(out))
    assert code == 0, output
    assert (out / "Makefile").is_file()


@pytest.mark.usefixtures("frame_only")
def test_force_replaces_managed_files_and_keeps_the_teams(tmp_path: Path, spec: Path) -> None:
    out = tmp_path / "repo"
    assert archgen("new", str(spec), "-o", str(out))[0] == 0
    pristine = (out / "Makefile").read_bytes()
    (out / "Makefile").write_text("edited\n")
    (out / "notes.txt").write_text("mine\n")
    (out / "team" / "empty").mkdir(parents=True)
    (out / "tests" / "test_mine.py").write_text("def test_x():\n    pass\n")
    readme_mtime = (out / "README.md").stat().st_mtime_ns
    code, output = archgen("new", str(spec), "-o", str(out), "--force")
    assert code == 0, output
    assert (out / "Makefile").read_bytes() == pristine
    assert (out / "notes.txt").read_text() == "mine\n"
    assert (out / "tests" / "test_mine.py").is_file()
    assert (out / "team" / "empty").is_dir()
    assert (out / "README.md").stat().st_mtime_ns == readme_mtime  # identical files are not rewritten
    assert "1 replaced" in output and "kept" in output
    assert leftovers(tmp_path) == []


def test_force_removes_only_untouched_files_archgen_no_longer_generates(tmp_path: Path) -> None:
    out = tmp_path / "repo"
    v1 = {"a.txt": b"a\n", "old.txt": b"old\n", "edited.txt": b"v1\n", "sub/gone.txt": b"g\n"}
    modes = dict.fromkeys(v1, 0o644)
    write_repository(out, _with_manifest(v1, modes), modes)
    (out / "edited.txt").write_text("the team changed this\n")
    v2 = {"a.txt": b"a2\n"}
    result = write_repository(out, _with_manifest(v2, modes), modes, force=True)
    assert sorted(result.removed) == ["old.txt", "sub/gone.txt"]
    assert result.stale_kept == ["edited.txt"]
    assert (out / "edited.txt").read_text() == "the team changed this\n"
    assert (out / "sub").is_dir()  # folders are never removed
    assert (out / "a.txt").read_bytes() == b"a2\n"


def _with_manifest(files: dict[str, bytes], modes: dict[str, int]) -> dict[str, bytes]:
    from generator.write.manifest import build_manifest

    m = build_manifest("p", b"spec", files, modes, dict.fromkeys(files, "test"))
    modes[MANIFEST] = 0o644
    return {**files, MANIFEST: m.to_json()}


# ------------------------------------------------------------------ symlinks
@pytest.mark.usefixtures("frame_only")
def test_symlinked_target_pointing_elsewhere_is_refused(tmp_path: Path, spec: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "repo"
    out.symlink_to(elsewhere)
    code, output = archgen("new", str(spec), "-o", str(out), "--force")
    assert code == UNSAFE
    assert "symlink" in output
    assert os.listdir(elsewhere) == [] and leftovers(tmp_path) == []


@pytest.mark.usefixtures("frame_only")
@pytest.mark.parametrize("link", ["tests", "README.md"])
def test_symlink_inside_the_target_leading_out_is_refused(tmp_path: Path, spec: Path, link: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.md"
    victim.write_text("do not touch\n")
    out = tmp_path / "repo"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    (out / link).symlink_to(outside if link == "tests" else victim)
    before_out, before_outside = snapshot(out), snapshot(outside)
    code, output = archgen("new", str(spec), "-o", str(out), "--force")
    assert code == UNSAFE, output
    assert "outside the target" in output
    assert snapshot(outside) == before_outside and snapshot(out) == before_out
    assert leftovers(tmp_path) == []


def test_planned_path_escaping_the_target_is_refused_at_write_time(tmp_path: Path) -> None:
    out = tmp_path / "repo"
    for bad in ("../escape.txt", "/etc/passwd", "a/../../b", "a//b", "./a"):
        with pytest.raises(ArchgenError):
            write_repository(out, {bad: b"x"}, {bad: 0o644})
    assert not out.exists() and not (tmp_path / "escape.txt").exists()


# ------------------------------------------------------------------ unwritable, dangerous
@pytest.mark.usefixtures("frame_only")
def test_read_only_parent_is_exit_73_naming_the_path(
    tmp_path: Path, spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # root ignores chmod 0555, so the refusal is simulated at the first write into the parent
    parent = tmp_path / "readonly"
    parent.mkdir()

    def refuse(*args: object, **kwargs: object) -> str:
        raise PermissionError(errno.EACCES, "Permission denied", str(parent / ".repo.archgen-tmp-x"))

    monkeypatch.setattr(write_mod.tempfile, "mkdtemp", refuse)
    code, output = archgen("new", str(spec), "-o", str(parent / "repo"))
    assert code == CANT_CREATE
    assert str(parent) in output and "Permission denied" in output
    assert os.listdir(parent) == []


@pytest.mark.usefixtures("frame_only")
@pytest.mark.parametrize("where", ["proc", "file"])
def test_parent_that_cannot_hold_folders_is_exit_73(tmp_path: Path, spec: Path, where: str) -> None:
    if where == "proc":
        if not Path("/proc/self").exists():
            pytest.skip("no /proc")
        out = Path("/proc/archgen-test-repo")
    else:
        (tmp_path / "a-file").write_text("x")
        out = tmp_path / "a-file" / "repo"
    code, output = archgen("new", str(spec), "-o", str(out))
    assert code == CANT_CREATE, output
    assert str(out.parent) in output
    assert not os.path.lexists(out)


@pytest.mark.usefixtures("frame_only")
def test_dangerous_targets_are_refused(tmp_path: Path, spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    templates_sub = TEMPLATES / "archgen-test-out"
    for target in ("/", str(home), str(tmp_path), str(spec.parent), str(templates_sub)):
        code, output = archgen("new", str(spec), "-o", target, "--force")
        assert code == CANT_CREATE, (target, output)
        assert "refusing" in output
    assert os.listdir(home) == [] and not templates_sub.exists()
    assert sorted(os.listdir(spec.parent)) == ["spec.yaml"]


@pytest.mark.usefixtures("frame_only")
def test_target_that_is_a_file_is_refused(tmp_path: Path, spec: Path) -> None:
    out = tmp_path / "repo"
    out.write_text("x")
    code, output = archgen("new", str(spec), "-o", str(out), "--force")
    assert code == CANT_CREATE and "not a folder" in output
    assert out.read_text() == "x"


# ------------------------------------------------------------------ failures midway
def _fail_after(monkeypatch: pytest.MonkeyPatch, n: int) -> list[Path]:
    written: list[Path] = []
    real = write_mod._write_file

    def flaky(dest: Path, data: bytes, mode: int) -> None:
        if len(written) >= n:
            raise OSError(errno.ENOSPC, "No space left on device", str(dest))
        real(dest, data, mode)
        written.append(dest)

    monkeypatch.setattr(write_mod, "_write_file", flaky)
    return written


@pytest.mark.usefixtures("frame_only")
def test_disk_full_midway_leaves_nothing_behind(tmp_path: Path, spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = _fail_after(monkeypatch, 3)
    out = tmp_path / "new" / "deeper" / "repo"
    code, output = archgen("new", str(spec), "-o", str(out))
    assert code == IO_ERROR, output
    assert "No space left on device" in output
    assert len(written) == 3 and not any(p.exists() for p in written)
    assert sorted(os.listdir(tmp_path)) == ["spec"]  # neither the target, its new parents nor the staging folder


@pytest.mark.usefixtures("frame_only")
def test_disk_full_midway_with_force_leaves_the_target_as_it_was(
    tmp_path: Path, spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "repo"
    assert archgen("new", str(spec), "-o", str(out))[0] == 0
    (out / "Makefile").write_text("edited\n")
    (out / "notes.txt").write_text("mine\n")
    before = snapshot(out)
    _fail_after(monkeypatch, 0)  # only the one changed file is staged
    code, _ = archgen("new", str(spec), "-o", str(out), "--force")
    assert code == IO_ERROR
    assert snapshot(out) == before and leftovers(tmp_path) == []


def test_interrupt_while_staging_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def interrupted(dest: Path, data: bytes, mode: int) -> None:
        calls.append(dest)
        if len(calls) == 2:
            raise KeyboardInterrupt
        dest.write_bytes(data)

    monkeypatch.setattr(write_mod, "_write_file", interrupted)
    out = tmp_path / "repo"
    files = {f"f{i}.txt": b"x" for i in range(5)}
    with pytest.raises(KeyboardInterrupt):
        write_repository(out, files, dict.fromkeys(files, 0o644))
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ spec values stay data
INJECTION = '{{ 7*7 }} $(rm -rf /) \'; DROP TABLE x; -- "quoted" {% raw %} `id` \\n'


def _hostile_spec(tmp_path: Path) -> Path:
    import yaml

    data = yaml.safe_load(REFERENCE.read_text())
    data["project"]["description"] = INJECTION
    data["entities"][0]["description"] = INJECTION
    data["features"]["views"][0]["description"] = INJECTION
    data["features"]["views"][0]["fields"][0]["description"] = INJECTION
    data["serving"]["models"][0]["description"] = INJECTION
    d = tmp_path / "hostile"
    d.mkdir()
    path = d / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_jinja_and_shell_syntax_in_spec_values_is_emitted_literally(tmp_path: Path) -> None:
    import yaml

    spec = _hostile_spec(tmp_path)
    out = tmp_path / "repo"
    code, output = archgen("new", str(spec), "-o", str(out))
    assert code == 0, output
    assert INJECTION in (out / "README.md").read_text()
    assert tomllib.loads((out / "pyproject.toml").read_text())["project"]["description"] == INJECTION
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        data = path.read_bytes()
        assert b"49 $(rm" not in data, rel
        if path.suffix == ".py":
            compile(data, rel, "exec")  # a quote in a description cannot break the generated code
        elif path.suffix in (".yaml", ".yml") and rel != SPEC_COPY:
            list(yaml.safe_load_all(data))
        elif path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".toml":
            tomllib.loads(data.decode())
    assert not Path("/tmp/49").exists()


def test_secrets_from_the_environment_are_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "hunter2-s3cr3t"
    for var in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "REDIS_CONNECTION_STRING", "PII_SALT", "FEAST_PII_SALT"):
        monkeypatch.setenv(var, secret)
    d = tmp_path / "spec"
    d.mkdir()
    spec = d / "spec.yaml"
    spec.write_bytes((ROOT / "requirements_spec" / "presets" / "realtime.yaml").read_bytes())  # redis + postgres
    out = tmp_path / "repo"
    code, output = archgen("new", str(spec), "-o", str(out))
    assert code == 0, output
    texts = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert not [rel for rel, data in texts.items() if secret.encode() in data]
    store = texts["feature_repo/feature_store.yaml"].decode()
    for line in store.splitlines():
        key, _, value = line.strip().partition(":")
        if key in ("password", "connection_string") or "://" in value:
            assert "${" in value, line  # credentials are environment placeholders, never literals
