"""Company templates over the generated repository: cookiecutter overlays.

``archgen new SPEC -o DIR --overlay PATH`` (or ``overlays:`` in the spec) renders a company's
cookiecutter template (a folder or a zip) with cookiecutter's own API, in a temporary folder, with the
decided architecture as its context, and adds the files it renders to the repository's files before
anything is written. They then go through :mod:`generator.write.write` like archgen's own files (the same
path, symlink and escape checks), are listed in the manifest (component ``overlay:<name>``), and
``archgen update`` re-renders and merges them like any other file.

Safety, before cookiecutter runs:

- the template is read into memory first: a symlink in a folder template, or a zip member that is a
  symlink, absolute or climbs with ``..``, is refused (exit 4);
- every file name is rendered with cookiecutter's own environment and context; a name that renders to
  an absolute path or climbs out of the project with ``..`` is refused (exit 4) and nothing is rendered;
- hooks (``hooks/``) run code: an overlay with hooks is refused (exit 4) unless ``--trust`` is given;
- cookiecutter's own configuration, replay and clone folders are pointed into the temporary folder,
  so nothing is written to the user's home.

The template's ``cookiecutter.json`` is extended (in the temporary copy) with ``_archgen``: the
project, owners, decisions, environments, images and ports (see :func:`overlay_context`); keys the
template declares among ``project_name``, ``project_slug`` and ``description`` take archgen's values.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import zipfile
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..decide.architecture import Architecture
from ..errors import INVALID_SPEC, UNREADABLE, UNSAFE, ArchgenError
from ..write.manifest import RECORD_DIR, OverlayRecord

COMPONENT_PREFIX = "overlay:"
HOOKS_DIR = "hooks"
WINS = ("refuse", "overlay", "archgen")
# cookiecutter.json keys that take archgen's value where the template declares them
DECLARED_KEYS = ("project_name", "project_slug", "description")
MAX_TEMPLATE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class OverlaySource:
    """A company template read into memory: template-relative path -> (bytes, mode)."""

    name: str
    location: Path  # absolute
    files: Mapping[str, tuple[bytes, int]]
    wins: str = "refuse"
    declared: str = "cli"  # "spec" | "cli"

    @property
    def sha256(self) -> str:
        """A digest of the overlay's files (paths, modes, contents)."""
        digest = hashlib.sha256()
        for path in sorted(self.files):
            data, mode = self.files[path]
            digest.update(f"{path}\0{mode:o}\0{hashlib.sha256(data).hexdigest()}\n".encode())
        return digest.hexdigest()

    @property
    def hooks(self) -> list[str]:
        """The overlay's cookiecutter hooks."""
        return sorted(p for p in self.files if p.startswith(f"{HOOKS_DIR}/"))

    def record(self, root: Path | None) -> OverlayRecord:
        """What the manifest records of the overlay (its source relative to ``root``)."""
        source = self.location.as_posix()
        if root is not None:
            source = Path(os.path.relpath(self.location, root)).as_posix()
        return OverlayRecord(self.name, source, self.sha256, self.wins, self.declared)


@dataclass
class Rendered:
    """What one overlay rendered: repository path -> bytes / mode, and the template file behind each."""

    source: OverlaySource
    files: dict[str, bytes] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)


def _unsafe(message: str, hint: str | None = None) -> ArchgenError:
    return ArchgenError(message, exit_code=UNSAFE, hint=hint)


def _safe_relative(path: str) -> bool:
    p = PurePosixPath(path)
    return (
        bool(path)
        and not p.is_absolute()
        and "\\" not in path
        and all(part not in ("..", ".", "") for part in path.split("/"))
    )


def _mode(raw: int) -> int:
    return 0o755 if raw & 0o111 else 0o644


# ------------------------------------------------------------------ reading a template
def _read_folder(folder: Path) -> dict[str, tuple[bytes, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    total = 0
    for here, dirs, names in os.walk(folder):
        dirs.sort()
        for d in list(dirs):
            if d == ".git":
                dirs.remove(d)
            elif os.path.islink(os.path.join(here, d)):
                rel = Path(os.path.relpath(os.path.join(here, d), folder)).as_posix()
                raise _unsafe(f"overlay {folder}: {rel} is a symlink; overlay templates may not hold symlinks")
        for name in sorted(names):
            full = os.path.join(here, name)
            rel = Path(os.path.relpath(full, folder)).as_posix()
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                raise _unsafe(f"overlay {folder}: {rel} is a symlink; overlay templates may not hold symlinks")
            if not stat.S_ISREG(st.st_mode):
                raise _unsafe(f"overlay {folder}: {rel} is not a regular file")
            total += st.st_size
            if total > MAX_TEMPLATE_BYTES:
                raise ArchgenError(f"overlay {folder} is larger than 64 MiB", exit_code=UNREADABLE)
            files[rel] = (Path(full).read_bytes(), _mode(st.st_mode))
    return files


def _read_zip(path: Path) -> dict[str, tuple[bytes, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                unix = info.external_attr >> 16
                if stat.S_ISLNK(unix):
                    raise _unsafe(f"overlay {path}: {info.filename} is a symlink; overlay templates may not hold them")
                if not _safe_relative(info.filename):
                    raise _unsafe(f"overlay {path}: member {info.filename!r} leads outside the template")
                total += info.file_size
                if total > MAX_TEMPLATE_BYTES:
                    raise ArchgenError(f"overlay {path} is larger than 64 MiB", exit_code=UNREADABLE)
                files[info.filename] = (zf.read(info), _mode(unix))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchgenError(f"overlay {path} cannot be read as a zip: {exc}", exit_code=UNREADABLE) from None
    # cookiecutter zips hold one top-level folder with the template in it
    if "cookiecutter.json" not in files:
        tops = {p.split("/", 1)[0] for p in files}
        if len(tops) == 1 and all("/" in p for p in files):
            top = tops.pop()
            files = {p[len(top) + 1 :]: v for p, v in files.items()}
    return files


def load_overlay(path: Path, *, wins: str = "refuse", declared: str = "cli") -> OverlaySource:
    """Read a cookiecutter template (folder or zip) into memory, refusing symlinks and escaping members."""
    if wins not in WINS:
        raise ArchgenError(f"overlay {path}: wins must be one of {', '.join(WINS)}", exit_code=INVALID_SPEC)
    location = Path(os.path.abspath(path))
    if location.is_dir():
        files = _read_folder(location)
        name = location.name
    elif location.is_file():
        files = _read_zip(location)
        name = location.name.removesuffix(".zip")
    else:
        raise ArchgenError(
            f"overlay {path} does not exist", exit_code=UNREADABLE, hint="pass a cookiecutter template folder or zip"
        )
    if "cookiecutter.json" not in files:
        raise ArchgenError(
            f"overlay {path} is not a cookiecutter template: it has no cookiecutter.json", exit_code=UNREADABLE
        )
    return OverlaySource(name=name, location=location, files=files, wins=wins, declared=declared)


def spec_overlays(arch_spec: Any, spec_dir: Path) -> list[OverlaySource]:
    """The overlays a spec declares, their paths relative to the spec file's folder."""
    return [load_overlay(spec_dir / o.path, wins=o.wins, declared="spec") for o in getattr(arch_spec, "overlays", [])]


def unique_names(sources: Sequence[OverlaySource]) -> list[OverlaySource]:
    """Overlays with distinct names (a second `company-template` becomes `company-template-2`)."""
    seen: dict[str, int] = {}
    out = []
    for s in sources:
        n = seen.get(s.name, 0) + 1
        seen[s.name] = n
        out.append(s if n == 1 else OverlaySource(f"{s.name}-{n}", s.location, s.files, s.wins, s.declared))
    return out


# ------------------------------------------------------------------ the context
def overlay_context(arch: Architecture) -> dict[str, Any]:
    """The decided architecture as a cookiecutter template sees it (``cookiecutter._archgen``)."""
    from ..plan import deploy

    project = arch.spec.project
    owners = {k: v for k, v in project.owners.model_dump().items() if v is not None}
    return {
        "project_name": project.name,
        "project_slug": project.name,  # already a safe identifier and file name
        "app": deploy.slug(project.name),  # the Kubernetes / compose name
        "description": project.description,
        "owners": owners,
        "decisions": {d.key: d.choice for d in arch.decisions},
        "mlops_level": arch.mlops_level,
        "deployment": arch.deployment.target,
        "platform": arch.deployment.platform,
        "serving_runtime": arch.serving.runtime,
        "models": [m.name for m in arch.serving.models],
        "environments": list(deploy.ENVIRONMENTS),
        "images": {
            "triton": deploy.TRITON_IMAGE,
            "python": deploy.PYTHON_IMAGE,
            "redis": deploy.REDIS_IMAGE,
            "postgres": deploy.POSTGRES_IMAGE,
        },
        "ports": {
            "http": deploy.TRITON_HTTP,
            "grpc": deploy.TRITON_GRPC,
            "metrics": deploy.TRITON_METRICS,
            "feature_server": deploy.FEATURE_SERVER_PORT,
            "rest": deploy.REST_PORT,
        },
    }


# ------------------------------------------------------------------ rendering
def _project_dir(files: Mapping[str, Any], name: str) -> str:
    tops = sorted({p.split("/", 1)[0] for p in files if "/" in p})
    found = [t for t in tops if "cookiecutter" in t and "{{" in t and "}}" in t]
    if len(found) != 1:
        raise ArchgenError(
            f"overlay {name}: expected one project folder named with {{{{cookiecutter.…}}}}, found {len(found)}",
            exit_code=UNREADABLE,
        )
    return found[0]


def _render_names(src: OverlaySource, template: Path, extra: dict[str, Any]) -> dict[str, str]:
    """Each template file of the project folder -> the repository path it renders to; escapes refused."""
    from cookiecutter.environment import StrictEnvironment
    from cookiecutter.generate import generate_context
    from cookiecutter.prompt import prompt_for_config

    context = generate_context(
        context_file=str(template / "cookiecutter.json"), default_context={}, extra_context=extra
    )
    cookie = prompt_for_config(context, no_input=True)
    env = StrictEnvironment(context={"cookiecutter": cookie}, keep_trailing_newline=True)
    top = _project_dir(src.files, src.name)
    rendered_top = env.from_string(top).render(cookiecutter=cookie)
    if not _safe_relative(rendered_top) or "/" in rendered_top:
        raise _unsafe(f"overlay {src.name}: the project folder {top!r} renders to {rendered_top!r}")
    names: dict[str, str] = {}
    for path in sorted(src.files):
        if not path.startswith(f"{top}/"):
            continue
        out = env.from_string(path).render(cookiecutter=cookie)
        rel = out[len(rendered_top) + 1 :] if out.startswith(f"{rendered_top}/") else out
        if not out.startswith(f"{rendered_top}/") or not _safe_relative(rel):
            raise _unsafe(
                f"overlay {src.name}: {path!r} renders to {out!r}, which leads outside the repository; "
                "nothing was written",
                hint="overlay file names must render to relative paths inside the project folder",
            )
        names[rel] = path
    return names


def render_overlay(src: OverlaySource, arch: Architecture, *, trust: bool) -> Rendered:
    """Render one overlay with cookiecutter in a temporary folder; return its files in memory."""
    if src.hooks and not trust:
        raise _unsafe(
            f"overlay {src.name} has hooks ({', '.join(src.hooks)}), which run code on this machine; "
            "they were not run and nothing was written",
            hint="read the hooks, then pass --trust to run them",
        )
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.main import cookiecutter

    ctx = overlay_context(arch)
    with tempfile.TemporaryDirectory(prefix="archgen-overlay-") as tmp:
        work = Path(tmp)
        template = work / "template"
        for rel, (data, mode) in src.files.items():
            dest = template / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            dest.chmod(mode)
        try:
            raw = json.loads(src.files["cookiecutter.json"][0].decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ArchgenError(f"overlay {src.name}: cookiecutter.json: {exc}", exit_code=UNREADABLE) from None
        if not isinstance(raw, dict):
            raise ArchgenError(f"overlay {src.name}: cookiecutter.json is not an object", exit_code=UNREADABLE)
        raw["_archgen"] = ctx
        (template / "cookiecutter.json").write_text(json.dumps(raw, indent=2, sort_keys=False), encoding="utf-8")
        extra = {k: ctx[k] for k in DECLARED_KEYS if k in raw}
        names = _render_names(src, template, extra)
        config = work / "config.yaml"
        config.write_text(
            f"cookiecutters_dir: {json.dumps(str(work / 'cookiecutters'))}\n"
            f"replay_dir: {json.dumps(str(work / 'replay'))}\n",
            encoding="utf-8",
        )
        out_dir = work / "out"
        out_dir.mkdir()
        try:
            project = Path(
                cookiecutter(
                    str(template),
                    no_input=True,
                    extra_context=extra,
                    output_dir=str(out_dir),
                    config_file=str(config),
                    accept_hooks=trust,
                )
            )
        except CookiecutterException as exc:
            raise ArchgenError(f"overlay {src.name}: cookiecutter failed: {exc}", exit_code=INVALID_SPEC) from None
        result = Rendered(src)
        for rel, (data, mode) in _read_folder(project).items():
            if not _safe_relative(rel):  # pragma: no cover - _read_folder yields relative paths
                raise _unsafe(f"overlay {src.name}: {rel!r} is not a safe path")
            result.files[rel] = data
            result.modes[rel] = mode
            result.origin[rel] = names.get(rel, f"{HOOKS_DIR}/ (written by a hook)")
    return result


def apply(
    rendered: Rendered,
    files: MutableMapping[str, bytes],
    modes: MutableMapping[str, int],
    components: MutableMapping[str, str],
) -> None:
    """Add an overlay's files; a shared path is refused (naming both) or kept from one side, as ``wins`` says."""
    src = rendered.source
    collisions = []
    for path in sorted(rendered.files):
        if path == RECORD_DIR or path.startswith(f"{RECORD_DIR}/"):
            raise _unsafe(f"overlay {src.name}: {rendered.origin[path]} renders to {path}, archgen's own record")
        if path in files:
            if src.wins == "refuse":
                owner = components[path]
                owner = (
                    f"overlay {owner[len(COMPONENT_PREFIX) :]}"
                    if owner.startswith(COMPONENT_PREFIX)
                    else (f"archgen's {owner} component")
                )
                collisions.append(f"{path}: written by {owner} and by overlay {src.name} ({rendered.origin[path]})")
                continue
            if src.wins == "archgen":
                continue
        files[path] = rendered.files[path]
        modes[path] = rendered.modes[path]
        components[path] = f"{COMPONENT_PREFIX}{src.name}"
    if collisions:
        raise ArchgenError(
            f"overlay {src.name} collides with {len(collisions)} file(s); nothing was written:\n  "
            + "\n  ".join(collisions),
            exit_code=INVALID_SPEC,
            hint="declare the overlay in the spec's overlays with wins: overlay or wins: archgen",
        )
