"""Checks of ``archgen check`` for a repository nobody vouches for (see :mod:`generator.untrusted`).

- :func:`scan_tree`: every entry, without following symlinks: a symlink leading outside, a FIFO, socket or
  device are problems (and never read); text files that still hold conflict markers fail (large files are
  not scanned; a managed one above the size cap fails where the manifest check hashes it);
- :func:`check_triton_load_rules`: what Triton refuses when it loads a model, beyond the protobuf schema
  (``max_batch_size`` >= 0, preferred batch sizes within ``max_batch_size``, instance groups), and the
  Python syntax of every Python-backend ``model.py`` (compiled, never imported);
- :func:`check_kubernetes_names`: object names and label values within Kubernetes' length limits.

Problems name a file, a line and a reason; never the file's contents.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..untrusted import Refused, check_inside, escape, load_yaml_all, read_bytes, read_text, yaml_error

MARKER_SCAN_BYTES = 4 * 1024 * 1024  # conflict markers are looked for in text files up to this size
_MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.MULTILINE)
_SEPARATOR = re.compile(r"^={7}$", re.MULTILINE)
K8S_NAME_MAX = 63  # DNS-1123 label: Services, and the names that become labels and host names
K8S_CRONJOB_NAME_MAX = 52  # the CronJob controller appends 11 characters to name its Jobs
K8S_LABEL_VALUE_MAX = 63
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

Add = Callable[[str, str, int], None]  # (file, message, line: 0 when not known)


def _kind(mode: int) -> str | None:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return None


def scan_tree(root: Path, ignored: set[str], add: Add) -> int:
    """Walk ``root`` without following symlinks; report what archgen will not read, and conflict markers."""
    scanned = 0
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ignored and not d.endswith(".egg-info"))
        for name in sorted(dirs + names):
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                why = check_inside(root, rel, names=False)
                if why:
                    add(escape(rel), "a symlink leading outside the repository: not followed, not read", 0)
                continue
            if name in dirs:
                continue
            special = _kind(st.st_mode)
            if special:
                add(escape(rel), f"{special}, not a regular file: not read", 0)
                continue
            if st.st_size > MARKER_SCAN_BYTES or name.endswith((".pyc", ".pyo", ".png", ".parquet", ".onnx")):
                continue
            try:
                data = read_bytes(path, MARKER_SCAN_BYTES)
            except Refused:
                continue
            scanned += 1
            if b"\0" in data[:8192]:
                continue  # binary
            text = data.decode("utf-8", "replace")
            markers = [m.start() for m in _MARKER.finditer(text)]
            if markers and _SEPARATOR.search(text):
                line = text.count("\n", 0, markers[0]) + 1
                add(escape(rel), "holds merge conflict markers (<<<<<<< ... >>>>>>>): resolve them", line)
    return scanned


# ------------------------------------------------------------------ Triton: load-time rules
def triton_load_problems(cfg: Any, mc: Any) -> list[str]:
    """What Triton 2.51 refuses when it loads this ModelConfig, beyond the protobuf schema."""
    out: list[str] = []
    if cfg.max_batch_size < 0:
        out.append(f"max_batch_size {cfg.max_batch_size} is negative: Triton refuses to load the model")
    if cfg.HasField("dynamic_batching"):
        for size in cfg.dynamic_batching.preferred_batch_size:
            if size <= 0:
                out.append(f"dynamic_batching.preferred_batch_size {size} must be positive")
            elif cfg.max_batch_size > 0 and size > cfg.max_batch_size:
                out.append(
                    f"dynamic_batching.preferred_batch_size {size} exceeds max_batch_size {cfg.max_batch_size}: "
                    "Triton refuses to load the model"
                )
    names: set[str] = set()
    for n, group in enumerate(cfg.instance_group):
        label = f"instance_group[{n}]" + (f" {escape(group.name)!s}" if group.name else "")
        if group.name:
            if group.name in names:
                out.append(f"{label}: the name is used twice")
            names.add(group.name)
        if group.count < 0:
            out.append(f"{label}: count {group.count} is negative: Triton refuses to load the model")
        if group.kind not in (mc.ModelInstanceGroup.KIND_GPU, mc.ModelInstanceGroup.KIND_AUTO) and group.gpus:
            out.append(f"{label}: gpus are listed, but the kind is not KIND_GPU")
        if any(g < 0 for g in group.gpus):
            out.append(f"{label}: negative GPU id")
    return out


def check_triton_load_rules(root: Path, add: Add) -> int:
    """Triton's load-time rules for every config.pbtxt, and the syntax of every Python-backend model.py."""
    repo = root / "model_repository"
    if not repo.is_dir() or repo.is_symlink():
        return 0
    try:
        from google.protobuf import text_format

        from ..plan.triton_config import _pb

        mc = _pb()
    except ImportError:
        return 0
    count = 0
    for model_dir in sorted(p for p in repo.iterdir() if p.is_dir() and not p.is_symlink()):
        config = model_dir / "config.pbtxt"
        rel = config.relative_to(root).as_posix()
        try:
            cfg = text_format.Parse(read_text(config), mc.ModelConfig())
        except (Refused, ValueError, text_format.ParseError, OSError):
            continue  # missing, unreadable or unparsable: the schema check reports it
        count += 1
        for message in triton_load_problems(cfg, mc):
            add(escape(rel), message, 0)
        if cfg.backend == "python" and cfg.platform != "ensemble":
            filename = cfg.default_model_filename or "model.py"
            for version in sorted(p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()):
                code = version / filename
                if code.is_file() and not code.is_symlink():
                    _compile(code, code.relative_to(root).as_posix(), add)
    return count


def _compile(path: Path, rel: str, add: Add) -> None:
    try:
        compile(read_text(path), rel, "exec", dont_inherit=True)
    except SyntaxError as exc:
        add(escape(rel), f"Python syntax error: {escape(exc.msg)} (Triton cannot load it)", exc.lineno or 0)
    except (Refused, ValueError) as exc:  # UnicodeDecodeError, null bytes
        add(escape(rel), f"cannot be compiled: {yaml_error(exc)}", 0)


# ------------------------------------------------------------------ Kubernetes names
def kubernetes_name_problems(doc: Any) -> list[str]:
    """Why a Kubernetes object's name or labels exceed Kubernetes' length limits (none: an empty list)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("metadata"), dict):
        return []
    kind = str(doc.get("kind", "?"))
    meta = doc["metadata"]
    out: list[str] = []
    name = meta.get("name")
    if isinstance(name, str):
        limit = K8S_CRONJOB_NAME_MAX if kind == "CronJob" else K8S_NAME_MAX
        if len(name) > limit:
            out.append(f"{kind} name is {len(name)} characters; Kubernetes allows at most {limit}")
        elif kind in ("Service", "CronJob", "Deployment", "StatefulSet", "Job") and not _DNS_LABEL.fullmatch(name):
            out.append(f"{kind} name {escape(name)!r} is not a DNS-1123 label (lowercase letters, digits, '-')")
    labels = meta.get("labels")
    if isinstance(labels, dict):
        for key, value in labels.items():
            text = str(value) if value is not None else ""
            if len(text) > K8S_LABEL_VALUE_MAX or not _LABEL_VALUE.fullmatch(text):
                out.append(f"{kind} label {escape(key)}: the value is not a valid label value (at most 63 characters)")
    return out


def check_kubernetes_names(root: Path, add: Add) -> None:
    """Every manifest under deploy/k8s and pipelines/k8s: names and labels within Kubernetes' limits."""
    for folder in (root / "deploy" / "k8s", root / "pipelines" / "k8s"):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix not in (".yaml", ".yml") or path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            try:
                docs = load_yaml_all(read_text(path))
            except Exception:
                continue
            for doc in docs:
                for message in kubernetes_name_problems(doc):
                    add(escape(rel), message, 0)


# ------------------------------------------------------------------ what an external tool may read
def _inside(root: Path, path: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def _remote(entry: str) -> bool:
    """A URL or a git address: kustomize and compose would fetch it over the network."""
    return "://" in entry or entry.startswith(("git@", "github.com/", "gitlab.com/", "bitbucket.org/", "oci:"))


KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE_LOADS = ("resources", "bases", "components")  # folders kustomize builds, wherever they are
KUSTOMIZE_REFUSED = ("helmCharts", "helmChartInflationGenerator", "generators", "transformers", "validators")


def kustomize_scope(root: Path, folder: Path) -> str | None:
    """Why ``kustomize build folder`` must not run on this repository (None: everything it loads is inside).

    kustomize itself keeps the files a kustomization names within its folder (its load restrictor also
    refuses symlinks out), but builds any *folder* named under resources, bases or components, however far
    outside, and fetches remote ones. Every such entry, in the overlay and in every folder it builds, must be
    a file or folder inside the repository; plugins and Helm charts are not run.
    """
    seen: set[str] = set()
    stack = [folder]
    while stack:
        current = stack.pop()
        rel = escape(current.relative_to(root).as_posix()) if current.is_relative_to(root) else escape(current)
        if not _inside(root, current):
            return f"{rel} leads outside the repository"
        real = os.path.realpath(current)
        if real in seen:
            continue
        seen.add(real)
        why, folders = _kustomization_loads(root, current, rel)
        if why:
            return why
        stack += folders
    return None


def _kustomization_loads(root: Path, current: Path, rel: str) -> tuple[str | None, list[Path]]:
    """Why the kustomization in ``current`` must not be built; else the folders it builds."""
    kfile = next((current / n for n in KUSTOMIZATION_NAMES if (current / n).is_file()), None)
    if kfile is None:
        return None, []  # kustomize reports it; nothing is loaded from here
    try:
        docs = load_yaml_all(read_text(kfile))
    except Exception as exc:
        return f"{rel}: its kustomization cannot be read ({yaml_error(exc)})", []
    doc = docs[0] if docs else None
    if not isinstance(doc, dict):
        return None, []
    for key in KUSTOMIZE_REFUSED:
        if doc.get(key):
            return f"{rel}: {key} would run programs or fetch charts; not built here", []
    folders: list[Path] = []
    for key in KUSTOMIZE_LOADS:
        entries = doc.get(key) or []
        for entry in entries if isinstance(entries, list) else [entries]:
            text = str(entry)
            why = _outside_entry(root, current / text, f"{rel}: {key} entry {escape(text)!r}", text)
            if why:
                return why, []
            if (current / text).is_dir():
                folders.append(current / text)
    return None, folders


def _outside_entry(root: Path, target: Path, named: str, text: str) -> str | None:
    """Why an entry a kustomization loads is not a path inside the repository (None: it is)."""
    if _remote(text) or os.path.isabs(text):
        return f"{named} is not a path inside the repository"
    if not os.path.lexists(target):
        return f"{named} does not exist (kustomize would fetch it)"
    if not _inside(root, target):
        return f"{named} leads outside the repository"
    return None


def _compose_paths(data: Any) -> list[tuple[str, str]]:
    """(where, path) of every file or folder a compose file makes ``docker compose config`` read."""
    out: list[tuple[str, str]] = []
    if not isinstance(data, dict):
        return out
    _add_paths(out, "include", data.get("include"))
    for section in ("configs", "secrets"):
        for name, item in (data.get(section) or {}).items() if isinstance(data.get(section), dict) else []:
            if isinstance(item, dict) and "file" in item:
                _add_paths(out, f"{section}.{name}.file", item["file"])
    services = data.get("services")
    for name, svc in services.items() if isinstance(services, dict) else []:
        if not isinstance(svc, dict):
            continue
        for key in ("env_file", "label_file"):
            if key in svc:
                _add_paths(out, f"services.{name}.{key}", svc[key])
        extends = svc.get("extends")
        if isinstance(extends, dict) and "file" in extends:
            _add_paths(out, f"services.{name}.extends.file", extends["file"])
    return out


def _add_paths(out: list[tuple[str, str]], where: str, value: Any, key: str = "path") -> None:
    """The paths in a compose value: a string, a mapping with ``key`` (and env files), or a list of those."""
    if isinstance(value, str):
        out.append((where, value))
    elif isinstance(value, dict):
        _add_paths(out, where, value.get(key))
        for extra in ("env_file", "project_directory"):
            if extra in value:
                _add_paths(out, f"{where}.{extra}", value[extra])
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _add_paths(out, f"{where}[{n}]", item, key)


def compose_scope(root: Path, compose_file: Path, data: Any) -> str | None:
    """Why ``docker compose config`` must not run on this compose file (None: what it reads is inside)."""
    base = compose_file.parent
    for where, value in _compose_paths(data):
        if "$" in value:
            return f"{where}: {escape(value)!r} is interpolated from the environment; not resolved here"
        if _remote(value) or os.path.isabs(value) or value.startswith("~"):
            return f"{where}: {escape(value)!r} is not a path inside the repository"
        if not _inside(root, base / value):
            return f"{where}: {escape(value)!r} leads outside the repository"
    return None
