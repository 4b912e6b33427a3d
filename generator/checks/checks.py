"""Verify a generated repository in place (``archgen check DIR``).

What is checked, each against the real tool where it can run here:

- the manifest (``.archgen/manifest.json``): which managed files the team changed or deleted and which
  files it added. Information, not failures: a team owns its repository;
- ``feature_repo/feature_store.yaml`` loads in Feast (``RepoConfig``) after ``${VAR}`` expansion with
  placeholder values, its store configurations included;
- every Triton ``config.pbtxt`` passes the static rules of :mod:`generator.plan.triton_config` (a
  ``model_repository/`` without any, as the python_rest runtime's, holds trained versions only);
- the schedulers: crontab lines (5 fields, croniter), Python DAGs/flows compile, YAML parses;
- every Kubernetes manifest validates against the 1.30 schemas with ``strict`` (misspelled keys),
  CronJob schedules are 5-field crons, kustomizations name existing resources and, where
  ``kubectl``/``kustomize`` is installed, every overlay builds and its output validates;
- ``deploy/docker-compose.yaml``: structure, and ``docker compose config`` when a docker client with
  compose is installed;
- credentials (:mod:`generator.checks.secrets`): none written in plain text in a manifest, the compose
  file, ``feature_store.yaml`` or a committed env file, and every Secret key and variable a workload
  reads declared by each environment's template.

kustomize and compose read the untrusted repository: they run only when everything they would load is
inside it (:func:`~generator.checks.check_untrusted.kustomize_scope`,
:func:`~generator.checks.check_untrusted.compose_scope`), through :func:`generator.tools.run_tool` (no
shell, a timeout, bounded output, reaped) with an empty HOME and none of archgen's environment variables.

A check whose tool is missing is reported as skipped with the reason; it is not a failure.
Heavy imports (feast, tritonclient, kubernetes_validate, croniter) happen inside the checks.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .. import untrusted
from ..errors import ArchgenError, Diagnostic, Location
from ..write.manifest import MANIFEST, read_manifest

KUBERNETES_VERSION = "1.30"
FEATURE_STORE_YAML = "feature_repo/feature_store.yaml"
COMPOSE_FILE = "deploy/docker-compose.yaml"
TOOL_OUTPUT_MAX = 16 * 1024 * 1024  # bytes a kustomize build or compose may print before it is stopped
# never part of the repository proper: not listed as added files
IGNORED_DIRS = {".git", ".venv", ".venv-triton", "venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
IGNORED_DIRS |= {".run", "node_modules", ".ipynb_checkpoints", ".hypothesis"}
COMPOSE_TOP_LEVEL = {"version", "name", "services", "networks", "volumes", "configs", "secrets", "include"}
COMPOSE_SERVICE_KEYS = {
    "build", "image", "command", "entrypoint", "environment", "env_file", "ports", "expose", "volumes",
    "depends_on", "healthcheck", "restart", "deploy", "shm_size", "networks", "labels", "user", "working_dir",
    "profiles", "secrets", "configs", "logging", "ulimits", "cap_add", "cap_drop", "devices", "extra_hosts",
    "hostname", "container_name", "init", "stop_grace_period", "stop_signal", "tmpfs", "read_only", "runtime",
    "gpus", "ipc", "platform", "pull_policy", "security_opt", "sysctls", "tty", "stdin_open", "mem_limit",
    "cpus", "extends", "develop", "network_mode", "pid", "privileged", "x-",
}  # fmt: skip
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")
CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


#: the codes of ``archgen check``'s problems, one per kind of check
MANIFEST_CODE = "check.manifest"
FEAST_CODE = "check.feast"
TRITON_CODE = "check.triton"
SCHEDULER_CODE = "check.scheduler"
KUBERNETES_CODE = "check.kubernetes"
COMPOSE_CODE = "check.compose"
UNTRUSTED_CODE = "check.untrusted"
PLUGIN_CODE = "check.plugin"


@dataclass
class Report:
    """What ``archgen check`` found. ``ok`` when no problems (changed/added/skipped are information)."""

    problems: list[Diagnostic] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # what -> how many files
    skipped: list[str] = field(default_factory=list)  # "what: why"
    managed: int = 0
    drift: list[Diagnostic] = field(default_factory=list)  # the probes: the repository held to its spec

    @property
    def ok(self) -> bool:
        """No problem and no broken requirement (changed, added and skipped files are information)."""
        return not self.problems and not any(d.severity == "error" for d in self.drift)

    def count(self, what: str, n: int = 1) -> None:
        """``n`` more files (or items) checked by ``what``."""
        self.checked[what] = self.checked.get(what, 0) + n

    def add(self, code: str, file: str, message: str, line: int = 0) -> None:
        """A problem in ``file`` (at ``line`` where known): an error of the repository."""
        self.problems.append(Diagnostic(code, message, Location(file, line)))

    def adder(self, code: str) -> Callable[[str, str, int], None]:
        """:meth:`add` with its code given: ``(file, message, line)``, for the checks that take a callback."""

        def add(file: str, message: str, line: int = 0) -> None:
            self.add(code, file, message, line)

        return add


def check_repository(root: Path) -> Report:
    """Every check; the repository is untrusted input (:mod:`generator.untrusted`): nothing outside it is read."""
    from . import check_untrusted as cu

    report = Report()
    with untrusted.reading(root):
        cu.scan_tree(root, IGNORED_DIRS, report.adder(UNTRUSTED_CODE))
        check_manifest(root, report)
        check_feature_store(root, report)
        check_triton(root, report)
        if cu.check_triton_load_rules(root, report.adder(TRITON_CODE)):
            report.count("Triton load-time rules")
        check_schedulers(root, report)
        check_kubernetes(root, report)
        cu.check_kubernetes_names(root, report.adder(KUBERNETES_CODE))
        check_compose(root, report)
        check_secrets(root, report)
        _check_plugins(root, report)
        check_spec(root, report)
    return report


def _check_plugins(root: Path, report: Report) -> None:
    """The probes of plugin components (``archgen.components`` entry points) whose files the repository holds."""
    try:
        manifest = read_manifest(root)
    except ArchgenError:
        return
    if manifest is not None:
        from ..render.plugins import check_plugins

        check_plugins(root, report, {f.component for f in manifest.files})


def check_spec(root: Path, report: Report) -> None:
    """The probes of :mod:`generator.checks.probes`: each decided value read back from the files it shaped."""
    from .probes import run_probes

    drift, skipped = run_probes(root)
    report.drift += drift
    report.skipped += skipped
    if not skipped:
        report.count("spec probes")


# ------------------------------------------------------------------ manifest
def _walk(root: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            yield (Path(dirpath) / name).relative_to(root).as_posix()


def check_manifest(root: Path, report: Report) -> None:
    """Which managed files the team changed or deleted and which it added, from the manifest's hashes."""
    try:
        manifest = read_manifest(root)
    except ArchgenError as exc:
        report.add(MANIFEST_CODE, MANIFEST, exc.message)
        return
    if manifest is None:
        report.add(MANIFEST_CODE, MANIFEST, "missing: not a repository generated by archgen (or it was removed)")
        return
    report.managed = len(manifest.files)
    for f in manifest.files:
        path = root / f.path
        if path.is_symlink() or not path.is_file():
            report.deleted.append(f.path)
            continue
        try:
            digest = untrusted.sha256_file(path)
        except untrusted.Refused as exc:
            report.add(MANIFEST_CODE, f.path, f"managed file {exc}")
            continue
        if digest != f.sha256:
            report.changed.append(f.path)
    managed = manifest.paths()
    report.added = [p for p in _walk(root) if p not in managed]
    report.count("manifest", 1)


# ------------------------------------------------------------------ Feast
def _placeholder(name: str) -> str:
    upper = name.upper()
    if upper.endswith(("PORT", "_TTL", "SECONDS", "_SIZE", "_CONN")):
        return "1"
    return "placeholder"


def expand_placeholders(text: str) -> str:
    """``${VAR}`` and ``$VAR`` replaced by placeholder values (numbers for ports), as Feast expands them."""
    return ENV_REF.sub(lambda m: _placeholder(m.group(1) or m.group(2)), text)


def check_feature_store(root: Path, report: Report) -> None:
    """``feature_repo/feature_store.yaml`` loads in Feast's ``RepoConfig`` (placeholders for ``${VAR}``)."""
    path = root / FEATURE_STORE_YAML
    if not path.is_file():
        if (root / "feature_repo").is_dir():
            report.add(FEAST_CODE, FEATURE_STORE_YAML, "missing: Feast needs it to load the feature repo")
        return
    try:
        docs = untrusted.load_yaml_all(expand_placeholders(untrusted.read_text(path)))
        raw = docs[0] if len(docs) == 1 else docs or None
    except (yaml.YAMLError, ValueError) as exc:
        report.add(FEAST_CODE, FEATURE_STORE_YAML, f"is not valid YAML: {untrusted.yaml_error(exc)}")
        return
    if not isinstance(raw, dict):
        report.add(FEAST_CODE, FEATURE_STORE_YAML, "must be a mapping of Feast settings")
        return
    if report.managed and FEATURE_STORE_YAML not in report.changed:
        # byte for byte what archgen generated (the manifest's hash): Feast loaded that file in archgen's own
        # tests; importing Feast (seconds) is kept for a file the team changed
        report.count("feature_store.yaml (as generated)")
        return
    try:
        from feast.errors import FeastModuleImportError
        from feast.repo_config import RepoConfig
        from pydantic import ValidationError
    except ImportError:
        report.skipped.append(f"{FEATURE_STORE_YAML}: feast is not installed (pip install 'feast==0.67.0')")
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = RepoConfig(repo_path=path.parent, **raw)
            for part in ("online_store", "offline_store", "registry", "batch_engine"):
                getattr(config, part)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ())) or "(top level)"
            report.add(FEAST_CODE, FEATURE_STORE_YAML, f"{where}: {err.get('msg', 'invalid')}")
        return
    except FeastModuleImportError as exc:
        report.skipped.append(f"{FEATURE_STORE_YAML}: a Feast extra is missing here ({_one_line(exc)})")
        return
    except Exception as exc:  # Feast raises its own errors for unknown store types and the like
        report.add(FEAST_CODE, FEATURE_STORE_YAML, f"Feast rejects it: {type(exc).__name__}: {_one_line(exc)}")
        return
    report.count("feature_store.yaml")


# ------------------------------------------------------------------ Triton
def check_triton(root: Path, report: Report) -> None:
    """Every Triton ``config.pbtxt`` passes the static rules of :mod:`generator.plan.triton_config`."""
    repo = root / "model_repository"
    if not repo.is_dir() or not any(repo.glob("*/config.pbtxt")):
        return  # no repository, or only trained versions for a runtime without Triton (python_rest)
    try:
        from ..plan.triton_config import validate_model_repository
    except ImportError as exc:  # tritonclient (protobuf) is missing
        report.skipped.append(f"model_repository: cannot load Triton's ModelConfig protobuf ({exc})")
        return
    try:
        problems = validate_model_repository(repo, relative_to=root)
    except ImportError as exc:
        report.skipped.append(f"model_repository: cannot load Triton's ModelConfig protobuf ({exc})")
        return
    report.problems += problems
    report.count("Triton configs", len(list(repo.glob("*/config.pbtxt"))))


# ------------------------------------------------------------------ schedulers
def cron_problem(expr: str) -> str | None:
    """Why ``expr`` is not a crontab / Kubernetes schedule (5 fields or an @ macro), or None."""
    expr = expr.strip()
    if expr in CRON_MACROS:
        return None
    if len(expr.split()) != 5:
        return f"cron {expr!r} must have exactly 5 fields (minute hour day month weekday) or be an @ macro"
    if "#" in expr:
        return f"cron {expr!r}: '#' (nth weekday) is not supported by cron or Kubernetes"
    try:
        from croniter import croniter
    except ImportError:
        return None
    if not croniter.is_valid(expr):
        return f"cron {expr!r} is not a valid cron expression"
    try:
        croniter(expr, datetime(2025, 1, 1, tzinfo=UTC)).get_next(datetime)
    except Exception:
        return f"cron {expr!r} never fires (impossible date)"
    return None


def check_crontab(path: Path, rel: str, report: Report) -> None:
    """Each crontab line: a 5-field schedule (or an @ macro) and a command."""
    try:
        text = untrusted.read_text(path)
    except ValueError as exc:
        report.add(SCHEDULER_CODE, rel, f"cannot be read: {untrusted.yaml_error(exc)}")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*=", text):
            continue
        fields = text.split()
        expr = fields[0] if fields[0].startswith("@") else " ".join(fields[:5])
        command_fields = fields[1:] if fields[0].startswith("@") else fields[5:]
        problem = cron_problem(expr)
        if problem is None and not command_fields:
            problem = "a schedule without a command"
        elif problem is None and CRON_FIELD.match(command_fields[0]):
            # the 6th token looks like a schedule field: a 6-field (seconds) cron that crontab would misread
            problem = f"cron {' '.join(fields[:6])!r} has 6 schedule fields; crontab takes exactly 5"
        if problem:
            report.add(SCHEDULER_CODE, rel, problem, number)
    report.count("crontabs")


def check_python(path: Path, rel: str, report: Report) -> None:
    """A Python scheduler file compiles (it is never imported or run)."""
    try:
        compile(untrusted.read_text(path), rel, "exec", dont_inherit=True)
    except SyntaxError as exc:
        report.add(SCHEDULER_CODE, rel, f"Python syntax error: {exc.msg}", exc.lineno or 0)
    except (UnicodeDecodeError, ValueError) as exc:
        report.add(SCHEDULER_CODE, rel, f"cannot compile: {untrusted.yaml_error(exc)}")
    else:
        report.count("Python pipeline files")


def check_schedulers(root: Path, report: Report) -> None:
    """The scheduler configs: crontabs, Python DAGs and flows, YAML and the CI workflows."""
    pipelines = root / "pipelines"
    for path in sorted(pipelines.rglob("*")) if pipelines.is_dir() else []:
        if not path.is_file() or any(part in IGNORED_DIRS for part in path.parts):
            continue
        rel = path.relative_to(root).as_posix()
        if path.name == "crontab" or path.suffix == ".cron":
            check_crontab(path, rel, report)
        elif path.suffix == ".py":
            check_python(path, rel, report)
        elif path.suffix in (".yaml", ".yml") and "k8s" not in path.relative_to(pipelines).parts:
            _load_yaml_docs(path, rel, report, SCHEDULER_CODE)
    scheduler = root / "deploy" / "scheduler.py"
    if scheduler.is_file():
        check_python(scheduler, "deploy/scheduler.py", report)
    for workflow in sorted((root / ".github" / "workflows").glob("*.y*ml")):
        _load_yaml_docs(workflow, workflow.relative_to(root).as_posix(), report, SCHEDULER_CODE)


def _load_yaml_docs(path: Path, rel: str, report: Report, code: str) -> list[Any] | None:
    try:
        docs = untrusted.load_yaml_all(untrusted.read_text(path))
    except (yaml.YAMLError, ValueError) as exc:
        report.add(code, rel, f"is not valid YAML: {untrusted.yaml_error(exc)}")
        return None
    return docs


# ------------------------------------------------------------------ Kubernetes
def _k8s_files(root: Path) -> list[Path]:
    out: list[Path] = []
    for folder in (root / "deploy" / "k8s", root / "pipelines" / "k8s"):
        if folder.is_dir():
            out += [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")]
    return sorted(out)


def validate_k8s_doc(doc: Any, where: str) -> list[Diagnostic]:
    """Schema problems of one Kubernetes object (strict: unknown keys are errors) and of CronJob schedules."""
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError

    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return [_k8s(where, "not a Kubernetes object (apiVersion and kind are required)")]
    name = (doc.get("metadata") or {}).get("name", "?") if isinstance(doc.get("metadata"), dict) else "?"
    label = f"{doc['kind']} {name}"
    problems: list[Diagnostic] = []
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "(top level)"
        problems.append(_k8s(where, f"{label}: {path}: {exc.message}"))
    except SchemaNotFoundError:
        problems.append(_k8s(where, f"{label}: unknown apiVersion/kind {doc['apiVersion']}/{doc['kind']}"))
    if doc.get("kind") == "CronJob" and isinstance(doc.get("spec"), dict):
        schedule = doc["spec"].get("schedule")
        if isinstance(schedule, str) and (problem := cron_problem(schedule)):
            problems.append(_k8s(where, f"{label}: spec.schedule: {problem}"))
    return problems


def _k8s(where: str, message: str) -> Diagnostic:
    return Diagnostic(KUBERNETES_CODE, message, Location(where))


def _check_kustomization(root: Path, path: Path, rel: str, docs: list[Any], report: Report) -> None:
    doc = docs[0] if docs else None
    if not isinstance(doc, dict):
        report.add(KUBERNETES_CODE, rel, "a kustomization must be a mapping")
        return
    real_root = os.path.realpath(root)
    resources = doc.get("resources") or []
    for entry in resources if isinstance(resources, list) else []:
        shown = untrusted.escape(entry)
        target = path.parent / str(entry)
        if os.path.isabs(str(entry)) or not Path(os.path.realpath(target)).is_relative_to(real_root):
            report.add(KUBERNETES_CODE, rel, f"resources: {shown} is not a path inside the repository")
        elif not target.exists():
            report.add(KUBERNETES_CODE, rel, f"resources: {shown} does not exist")
        elif target.is_dir() and not any((target / n).is_file() for n in ("kustomization.yaml", "kustomization.yml")):
            report.add(KUBERNETES_CODE, rel, f"resources: {shown} is a folder without a kustomization.yaml")
    report.count("kustomizations")


def _sandboxed(command: list[str], timeout: float) -> Any:
    """``command`` on the untrusted repository: no shell, a timeout, bounded output, no variable of archgen's
    environment (a CI secret) and an empty HOME (:mod:`generator.tools`). OSError when it cannot start.
    """
    from ..tools import minimal_env, run_tool, scratch_home, tool_timeout

    with scratch_home() as home:
        return run_tool(
            command, timeout=tool_timeout(timeout), max_output=TOOL_OUTPUT_MAX, env=minimal_env(home), cwd=home
        )


def _finished(command: list[str], timeout: float, report: Report, what: str) -> Any:
    """:func:`_sandboxed`'s result when the tool started and finished; else None, reported as skipped."""
    try:
        run = _sandboxed(command, timeout)
    except OSError as exc:
        report.skipped.append(f"{what} did not run ({exc.strerror})")
        return None
    if run.returncode is None:
        report.skipped.append(f"{what} {run.reason()}")
        return None
    return run


def _kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def check_kubernetes(root: Path, report: Report) -> None:
    """Every Kubernetes manifest against the schemas (strict), kustomizations, and overlay builds where a tool runs."""
    files = _k8s_files(root)
    if not files:
        return
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        report.skipped.append("Kubernetes manifests: kubernetes-validate is not installed")
        return
    overlays: list[Path] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        docs = _load_yaml_docs(path, rel, report, KUBERNETES_CODE)
        if docs is None:
            continue
        if path.name in ("kustomization.yaml", "kustomization.yml"):
            _check_kustomization(root, path, rel, docs, report)
            overlays.append(path.parent)
            continue
        for doc in docs:
            report.problems += validate_k8s_doc(doc, rel)
        report.count("Kubernetes manifests")
    _build_overlays(root, overlays, report)


def _build_overlays(root: Path, overlays: list[Path], report: Report) -> None:
    """Each kustomize overlay builds (with kustomize or kubectl, where one is installed) and its output validates."""
    command = _kustomize_command()
    if command is None:
        report.skipped.append("kustomize builds: neither kustomize nor kubectl is installed")
        return
    for folder in overlays:
        _kustomize_build(root, folder, command, report)


def _kustomize_build(root: Path, folder: Path, command: list[str], report: Report) -> None:
    """``kustomize build`` of one overlay, only when everything it loads is inside the repository (see
    :func:`generator.checks.check_untrusted.kustomize_scope`), without a shell, with a timeout and bounded output.
    """
    from . import check_untrusted as cu

    rel = folder.relative_to(root).as_posix()
    why = cu.kustomize_scope(root, folder)
    if why:
        report.problems.append(_k8s(f"{rel}/kustomization.yaml", f"not built: {why}"))
        return
    run = _finished(
        [*command, "--load-restrictor=LoadRestrictionsRootOnly", os.path.abspath(folder)],
        120.0,
        report,
        f"{rel}: kustomize build",
    )
    if run is None:
        return
    if not run.ok:
        report.problems.append(_k8s(f"{rel}/kustomization.yaml", f"kustomize build fails: {_tool_error(run.stderr)}"))
        return
    try:
        docs = untrusted.load_yaml_all(run.stdout.decode("utf-8"))
    except (yaml.YAMLError, ValueError) as exc:
        report.problems.append(_k8s(f"{rel}/kustomization.yaml", f"kustomize output: {untrusted.yaml_error(exc)}"))
        return
    for doc in docs:
        report.problems += validate_k8s_doc(doc, f"{rel} (built)")
    report.count("kustomize builds")


# ------------------------------------------------------------------ credentials
def check_secrets(root: Path, report: Report) -> None:
    """No credential in plain text; every Secret key and variable a workload reads declared (:mod:`.secrets`)."""
    from .secrets import check_secrets as scan

    report.problems += scan(root)
    report.count("credentials and secret references")


# ------------------------------------------------------------------ docker compose
def check_compose_structure(data: Any) -> list[str]:
    """What is wrong with a docker-compose document's structure, in words (none: an empty list)."""
    if not isinstance(data, dict):
        return ["must be a mapping"]
    out = [f"unknown top-level key {k!r}" for k in data if k not in COMPOSE_TOP_LEVEL and not str(k).startswith("x-")]
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        return [*out, "services: at least one service is required"]
    volumes = data.get("volumes") or {}
    for name, svc in services.items():
        if not isinstance(svc, dict):
            out.append(f"services.{name}: must be a mapping")
            continue
        out += [
            f"services.{name}: unknown key {k!r}"
            for k in svc
            if k not in COMPOSE_SERVICE_KEYS and not str(k).startswith("x-")
        ]
        if "image" not in svc and "build" not in svc:
            out.append(f"services.{name}: needs an image or a build")
        deps = svc.get("depends_on") or []
        for dep in deps if isinstance(deps, list | dict) else []:
            if dep not in services:
                out.append(f"services.{name}.depends_on: no service named {dep!r}")
        for vol in svc.get("volumes") or []:
            source = str(vol).split(":", 1)[0] if isinstance(vol, str) else ""
            if source and not source.startswith((".", "/", "~", "$")) and source not in volumes:
                out.append(f"services.{name}.volumes: named volume {source!r} is not declared under volumes")
    return out


def compose_command() -> list[str] | None:
    """``docker compose`` (v2 plugin) or ``docker-compose`` (standalone), whichever answers here."""
    candidates: list[list[str]] = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        try:
            run = _sandboxed([*command, "version"], 30.0)
        except OSError:
            continue
        if run.ok:
            return command
    return None


def compose_env_file(root: Path) -> Path | None:
    """The env file `docker compose config` reads: the dev env, or its example."""
    for name in ("deploy/env/dev.env", "deploy/env/dev.env.example"):
        if (root / name).is_file():
            return root / name
    return None


def check_compose(root: Path, report: Report) -> None:
    """``deploy/docker-compose.yaml``: its structure, and `docker compose config` where it runs."""
    path = root / COMPOSE_FILE
    if not path.is_file():
        return
    docs = _load_yaml_docs(path, COMPOSE_FILE, report, COMPOSE_CODE)
    if docs is None:
        return
    for problem in check_compose_structure(docs[0] if docs else None):
        report.add(COMPOSE_CODE, COMPOSE_FILE, problem)
    report.count("compose files")
    from . import check_untrusted as cu

    env_file = compose_env_file(root)
    why = cu.compose_scope(root, path, docs[0] if docs else None)
    for extra in [p for p in (env_file, path.parent / ".env") if p is not None and os.path.lexists(p)]:
        if why is None and untrusted.check_inside(root, extra.relative_to(root).as_posix(), names=False):
            why = f"{escape_rel(root, extra)} leads outside the repository"
    if why:
        report.add(COMPOSE_CODE, COMPOSE_FILE, f"`docker compose config` not run: {why}")
        return
    command = compose_command()
    if command is None:
        report.skipped.append(f"{COMPOSE_FILE}: `docker compose config` (no docker client with compose here)")
        return
    # absolute paths: the tool runs in an empty folder of its own
    args = [*command, "--project-directory", os.path.abspath(path.parent), "-f", os.path.abspath(path)]
    if env_file is not None:
        args += ["--env-file", os.path.abspath(env_file)]
    # no variable of archgen's environment (a CI secret) can be interpolated into an error message
    run = _finished([*args, "config", "-q"], 60.0, report, f"{COMPOSE_FILE}: `docker compose config`")
    if run is None:
        return
    if not run.ok:
        report.add(COMPOSE_CODE, COMPOSE_FILE, f"docker compose config: {_tool_error(run.stderr or run.stdout)}")


def escape_rel(root: Path, path: Path) -> str:
    """A repository path, relative to ``root``, with its control characters escaped."""
    return untrusted.escape(path.relative_to(root).as_posix())


def _tool_error(output: bytes) -> str:
    """A tool's error output as one escaped line of at most 400 characters."""
    return untrusted.escape(_one_line(output.decode("utf-8", "replace")))


def _one_line(value: Any, limit: int = 400) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
