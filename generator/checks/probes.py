"""Probes: read each decided value back from the files it shaped, and hold a repository to its spec.

``archgen check DIR`` decides the architecture of the repository's own spec copy (``.archgen/spec.yaml``)
and runs every probe. A probe compares what a file says with what the spec and the decisions ask for:

- a value that breaks a requirement is an error (``archgen check`` exits 1): the file and line, the
  requirement it breaks (``.archgen/spec.yaml:LINE``) and the fix;
- an edit that still satisfies the spec is information (the team owns its repository).

Probes parse the files they read (``ast`` for Python, YAML nodes for YAML, line scans for crontabs and
Triton's text protobuf) and never run them. Each names the decisions it reads back
(:attr:`Probe.decisions`); docs/contract.md lists them per decision. :data:`PROBES` lists every probe
(registration is explicit: importing or reloading this module registers nothing).
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from requirements_spec.errors import Diagnostic, Location, PathItem, format_path
from requirements_spec.validate import LoadedSpec

from ..decide.architecture import Architecture, TritonModelArch

SPEC_COPY = ".archgen/spec.yaml"
MAX_PROBED_BYTES = 4 * 1024 * 1024  # a probe reads at most this much of one file


#: the spec requirements a probe's finding cites: the related locations of its diagnostic
Cited = tuple[Location, ...]
#: the hint of a finding that is information: the edit still satisfies the spec
INFO_FIX = "none needed: the spec holds"


def requirement_text(cited: Cited) -> str:
    """``path (.archgen/spec.yaml:LINE)``, or ``path (default)``, for each cited requirement."""
    return ", ".join(f"{c.path} ({c.file}:{c.line})" if c.line else f"{c.path} (default)" for c in cited)


@dataclass
class ProbeContext:
    """What a probe reads: the repository, its decided architecture and spec; where its findings go."""

    root: Path
    arch: Architecture
    loaded: LoadedSpec
    found: list[Diagnostic] = field(default_factory=list)
    probe: str = ""
    _manifest: dict[str, str] | None = None

    def spec_at(self, *path: PathItem) -> Cited:
        """Where a spec node is in ``.archgen/spec.yaml`` (its nearest written ancestor's line and column)."""
        line, column = self.loaded.source_map.where(tuple(path))
        return (Location(SPEC_COPY, line, column, format_path(tuple(path))),)

    def read(self, rel: str) -> str | None:
        """The text of a repository file (at most ``MAX_PROBED_BYTES``), or None when it is absent or unsafe."""
        path = self.root / rel
        if path.is_symlink() or not path.is_file():
            return None
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_PROBED_BYTES + 1)
        except OSError:
            return None
        if len(data) > MAX_PROBED_BYTES:
            return None
        return data.decode("utf-8", errors="replace")

    def as_generated(self, rel: str) -> bool:
        """Whether ``rel`` is byte for byte what archgen wrote (the manifest's hash): no hand edit to find."""
        from ..errors import ArchgenError
        from ..write.manifest import read_manifest, sha256

        if self._manifest is None:
            try:
                manifest = read_manifest(self.root)
            except ArchgenError:
                manifest = None
            self._manifest = {f.path: f.sha256 for f in manifest.files} if manifest is not None else {}
        text = self.read(rel)
        return text is not None and self._manifest.get(rel) == sha256(text.encode("utf-8"))

    def error(self, file: str, line: int, message: str, requirement: Cited, fix: str) -> None:
        """``file`` (at ``line``; 0: the whole file) breaks the ``requirement``; ``fix`` says what to do."""
        self.found.append(Diagnostic(f"probe.{self.probe}", message, Location(file, line), "error", fix, requirement))

    def info(self, file: str, line: int, message: str, requirement: Cited) -> None:
        """``file`` was edited, and still satisfies the ``requirement``."""
        self.found.append(
            Diagnostic(f"probe.{self.probe}", message, Location(file, line), "info", INFO_FIX, requirement)
        )


@dataclass(frozen=True)
class Probe:
    """A probe: its name, the decisions it reads back, its documentation and its function."""

    name: str
    decisions: tuple[str, ...]  # the decisions whose values it reads back
    doc: str
    fn: Callable[[ProbeContext], None]


def probe(name: str, *decisions: str) -> Callable[[Callable[[ProbeContext], None]], Probe]:
    """Make a function the :class:`Probe` ``name`` reading back ``decisions``; its docstring documents it
    (docs/contract.md).

    Nothing is registered: :data:`PROBES`, at the end of this module, lists every probe, so importing or
    reloading the module runs nothing but definitions.
    """

    def wrap(fn: Callable[[ProbeContext], None]) -> Probe:
        return Probe(name, tuple(decisions), " ".join((fn.__doc__ or "").split()), fn)

    return wrap


def run_probes(root: Path) -> tuple[list[Diagnostic], list[str]]:
    """Every probe against the repository at ``root``: (drift, skipped reasons).

    Each drift is a :class:`Diagnostic` coded ``probe.<name>``, at the file and line, citing the requirement
    it breaks (in ``.archgen/spec.yaml``) as its related locations, with the fix as its hint.
    """
    from requirements_spec.errors import SpecError

    from ..decide import decide

    spec_path = root / SPEC_COPY
    if spec_path.is_symlink() or not spec_path.is_file():
        return [], [f"spec probes: no {SPEC_COPY} (the repository's spec copy) to hold the files to"]
    try:
        from requirements_spec import parse_spec

        text = spec_path.read_bytes()[: MAX_PROBED_BYTES + 1]
        if len(text) > MAX_PROBED_BYTES:
            return [], [f"spec probes: {SPEC_COPY} is larger than {MAX_PROBED_BYTES} bytes"]
        loaded = parse_spec(text.decode("utf-8", errors="replace"), SPEC_COPY)
        arch = decide(loaded)
    except SpecError as exc:
        return [
            Diagnostic(
                "probe.spec",
                f"the spec copy does not validate: {exc}",
                Location(SPEC_COPY),
                hint="fix the spec",
                related=(Location(SPEC_COPY),),
            )
        ], []
    ctx = ProbeContext(root, arch, loaded)
    for p in PROBES:
        ctx.probe = p.name
        p.fn(ctx)
    order = {"error": 0, "info": 1}
    return sorted(ctx.found, key=lambda d: (order[d.severity], d.file, d.line, d.message)), []


# ------------------------------------------------------------------ helpers
def cron_gap_s(expr: str) -> int | None:
    """The longest gap between two runs of a 5-field cron over a year of runs (None: not a valid cron)."""
    try:
        from croniter import croniter
    except ImportError:
        return None
    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        return None
    it = croniter(expr, datetime(2025, 1, 1, tzinfo=UTC))
    times = [it.get_next(datetime) for _ in range(400)]
    return int(max((b - a).total_seconds() for a, b in itertools.pairwise(times)))


def _line_of(text: str, pattern: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.search(pattern, line):
            return number
    return 0


def _duration_s(text: str) -> int:
    from requirements_spec.types import duration_seconds

    return int(duration_seconds(text))


# ------------------------------------------------------------------ schedules
# scheduler configs that list every job in one file (the others hold one file per job in a folder)
LIST_CONFIGS = (
    "pipelines/crontab",
    "deploy/scheduler.py",
    "pipelines/prefect/prefect.yaml",
    "pipelines/dagster/definitions.py",
)
# the batch train -> score pipeline's crontab lines go into the same crontab as the other jobs
CRONTABS = {"pipelines/crontab": "pipelines/crontab", "pipelines/batch.crontab": "pipelines/crontab"}


def _job_requirement(ctx: ProbeContext, job: str) -> Cited:
    spec = ctx.arch.spec
    if job == "train":
        return ctx.spec_at("training", "schedule")
    if job == "train_score":  # batch scoring: serving.schedule, or the training schedule it defaults to
        return ctx.spec_at("serving", "schedule") if spec.serving.schedule else ctx.spec_at("training", "schedule")
    if job == "purge":
        return ctx.spec_at("privacy", "retention")
    if spec.features is not None:
        return ctx.spec_at("features", "freshness")
    return ctx.spec_at("serving", "mode")


Entry = tuple[str, str, int, str]  # (job, file, line, cron) of a scheduler entry; job "" when none matches


def _scheduled_entries(ctx: ProbeContext, names: list[str]) -> Iterator[Entry]:
    """(job, file, line, cron) of every scheduler entry in the repository; job "" for one no job matches."""
    for form in (_crontab_entries, _scheduler_entries, _airflow_entries, _cronjob_entries, _flow_entries):
        yield from form(ctx, names)


def _crontab_entries(ctx: ProbeContext, names: list[str]) -> Iterator[Entry]:
    """The lines of ``pipelines/crontab`` and the batch pipeline's ``pipelines/batch.crontab``: the job from
    its lock file.
    """
    for rel in CRONTABS:
        crontab = ctx.read(rel)
        for number, line in enumerate(crontab.splitlines() if crontab is not None else [], start=1):
            text = line.strip()
            if not text or text.startswith("#") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*=", text):
                continue
            match = re.search(r"\.run/([a-z_]+)\.lock", text)
            job = match.group(1) if match and match.group(1) in names else ""
            yield (job, rel, number, " ".join(text.split()[:5]))


def _scheduler_entries(ctx: ProbeContext, names: list[str]) -> Iterator[Entry]:
    """The job table of ``deploy/scheduler.py``."""
    scheduler = ctx.read("deploy/scheduler.py")
    for number, line in enumerate(scheduler.splitlines() if scheduler is not None else [], start=1):
        m = re.match(r'\s*"([a-z_-]+)": \("([^"]*)", \[', line)
        if m:
            job = m.group(1).replace("-", "_")
            yield (job if job in names else "", "deploy/scheduler.py", number, m.group(2))


def _airflow_entries(ctx: ProbeContext, names: list[str]) -> Iterator[Entry]:
    """The ``schedule=`` of each Airflow DAG: the job from the DAG's file name."""
    project = ctx.arch.spec.project.name
    dags = ctx.root / "pipelines" / "airflow" / "dags"
    for dag in sorted(dags.glob("*.py")) if dags.is_dir() else []:
        rel = dag.relative_to(ctx.root).as_posix()
        job = dag.stem.removeprefix(f"{project}_")
        for number, line in enumerate((ctx.read(rel) or "").splitlines(), start=1):
            m = re.match(r'\s*schedule="([^"]*)"', line)
            if m:
                yield (job if job in names else "", rel, number, m.group(1))


def _cronjob_entries(ctx: ProbeContext, names: list[str]) -> Iterator[Entry]:
    """The ``schedule:`` of each Kubernetes CronJob: the job from the manifest's file name."""
    for folder, suffix in (("pipelines/k8s", "-cronjob.yaml"), ("deploy/k8s/base", ".yaml")):
        base = ctx.root / folder
        for path in sorted(base.glob("*.yaml")) if base.is_dir() else []:
            if folder.startswith("deploy") and not path.name.startswith("cronjob-"):
                continue
            rel = path.relative_to(ctx.root).as_posix()
            stem = path.name.removesuffix(suffix).removeprefix("cronjob-").replace("-", "_")
            for number, line in enumerate((ctx.read(rel) or "").splitlines(), start=1):
                m = re.match(r'\s*schedule:\s*"?([^"#]*?)"?\s*$', line)
                if m:
                    yield (stem if stem in names else "", rel, number, m.group(1))


def _flow_entries(ctx: ProbeContext, names: list[str]) -> Iterator[Entry]:
    """The crons of Prefect deployments and Dagster schedules: the job from the name above each."""
    for rel, pattern, name_pattern in (
        ("pipelines/prefect/prefect.yaml", r'\s*- cron:\s*"([^"]*)"', r'\s*- name:\s*"([a-z-]+)"'),
        ("pipelines/dagster/definitions.py", r'.*cron_schedule="([^"]*)"', r".*job=([a-z_]+)_job"),
    ):
        current = ""
        for number, line in enumerate((ctx.read(rel) or "").splitlines(), start=1):
            n = re.match(name_pattern, line)
            if n:
                current = n.group(1).replace("-", "_")
            m = re.match(pattern, line)
            if m:
                yield (current if current in names else "", rel, number, m.group(1))


@probe("schedules", "scheduler", "materialization", "training_mode", "retention")
def schedules(ctx: ProbeContext) -> None:
    """Every decided job is in the scheduler config at its decided cron, and nothing else is scheduled.

    A materialization run less often than the freshness, a training schedule other than the spec's, or a
    job nothing decided is an error; a materialization or purge that runs more often is information.
    """
    from ..plan import batch, pipelines

    jobs = {j.name: j for j in pipelines.jobs(ctx.arch)}
    scored = batch.pipeline_job(ctx.arch)  # batch scoring: train -> score, one pipeline of its own
    if scored is not None:
        jobs[scored.name] = scored
    seen: dict[str, set[str]] = {}  # scheduler config (a file, or a folder of one file per job) -> its jobs
    for job, rel, line, cron in _scheduled_entries(ctx, list(jobs)):
        config = CRONTABS.get(rel) or (rel if rel in LIST_CONFIGS else rel.rsplit("/", 1)[0] + "/")
        seen.setdefault(config, set())
        if not job:
            ctx.error(
                rel,
                line,
                f"schedules {cron!r} for a job no decision asks for",
                ctx.spec_at("training", "trigger") + ctx.spec_at("delivery", "mlops_level"),
                "remove the entry, or change the spec so that the job is decided (then `archgen update`)",
            )
            continue
        seen[config].add(job)
        decided = jobs[job].cron
        if " ".join(cron.split()) == decided:
            continue
        requirement = _job_requirement(ctx, job)
        gap, want = cron_gap_s(cron), cron_gap_s(decided)
        if job in ("materialize", "purge") and gap is not None and want is not None and gap <= want:
            ctx.info(rel, line, f"{job} runs at {cron!r} instead of {decided!r}: at least as often", requirement)
            continue
        why = (
            "the spec's training schedule"
            if job == "train"
            else "the spec's scoring schedule"
            if job == "train_score"
            else f"runs every {gap} s at most, the decision needs {want} s"
            if gap is not None and want is not None
            else "not a valid 5-field cron"
        )
        ctx.error(
            rel,
            line,
            f"{job} is scheduled at {cron!r}, the decision is {decided!r} ({why})",
            requirement,
            f"set the schedule back to {decided!r}, or change the requirement and run `archgen update`",
        )
    if jobs and not seen:
        for name in sorted(jobs):
            ctx.error(
                "pipelines/",
                0,
                f"the decided job {name} ({jobs[name].cron}) is in no scheduler config",
                _job_requirement(ctx, name),
                "run `archgen update` to put the scheduler config back",
            )
    for config, found in sorted(seen.items()):
        for name in sorted(set(jobs) - found):
            ctx.error(
                config,
                0,
                f"the decided job {name} ({jobs[name].cron}) is missing from this scheduler config",
                _job_requirement(ctx, name),
                "run `archgen update` to put it back",
            )


# ------------------------------------------------------------------ feature views (TTL) and services
def _calls(tree: ast.AST, func: str) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name == func:
                yield node


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _const_str(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _timedelta_s(node: ast.expr | None) -> int | None:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.func.id != "timedelta":
        return None
    units: dict[str, int | float] = {}
    for k in node.keywords:
        if k.arg is None or not isinstance(k.value, ast.Constant) or not isinstance(k.value.value, int | float):
            return None
        units[k.arg] = k.value.value
    try:
        return int(timedelta(**units).total_seconds())
    except TypeError:
        return None


def _parse(ctx: ProbeContext, rel: str) -> ast.Module | None:
    text = ctx.read(rel)
    if text is None:
        return None
    try:
        return ast.parse(text, rel)
    except SyntaxError:
        return None  # `archgen check` reports syntax errors of its own


@probe("ttl", "feature_views", "retention", "materialization")
def ttl(ctx: ProbeContext) -> None:
    """Each feature view's ttl in feature_repo/views.py: beyond the retention or below the freshness is an error."""
    spec = ctx.arch.spec
    tree = _parse(ctx, "feature_repo/views.py")
    if tree is None or spec.features is None:
        return
    index = {v.name: i for i, v in enumerate(spec.features.views)}
    retention = ctx.arch.privacy.retention_s
    for call in _calls(tree, "FeatureView"):
        name = _const_str(_kw(call, "name"))
        node = _kw(call, "ttl")
        if name not in index or node is None:
            continue
        i = index[name]
        view = spec.features.views[i]
        got = _timedelta_s(node)
        want = _duration_s(view.ttl)
        if got is None or got == want:
            continue
        rel, line = "feature_repo/views.py", node.lineno
        if retention is not None and got > retention:
            ctx.error(
                rel,
                line,
                f"view {name}: ttl {got} s is beyond the retention of {retention} s: personal data outlives it",
                ctx.spec_at("privacy", "retention"),
                f"set ttl back to {want} s (features.views[{i}].ttl), at most the retention",
            )
        elif got < _duration_s(spec.features.freshness):
            ctx.error(
                rel,
                line,
                f"view {name}: ttl {got} s is shorter than its freshness: values expire before the next update",
                ctx.spec_at("features", "freshness"),
                f"set ttl back to {want} s",
            )
        else:
            ctx.info(
                rel,
                line,
                f"view {name}: ttl {got} s instead of {want} s, within the retention",
                ctx.spec_at("features", "views", i, "ttl"),
            )


@probe("pii_fields", "pii")
def pii_fields(ctx: ProbeContext) -> None:
    """With privacy.pii_handling drop, no personal field is in a feature view's schema (feature_repo/views.py)."""
    spec = ctx.arch.spec
    tree = _parse(ctx, "feature_repo/views.py")
    if tree is None or spec.features is None or ctx.arch.privacy.pii_handling != "drop":
        return
    index = {v.name: i for i, v in enumerate(spec.features.views)}
    for call in _calls(tree, "FeatureView"):
        name = _const_str(_kw(call, "name"))
        if name not in index:
            continue
        i = index[name]
        pii = {f.name: j for j, f in enumerate(spec.features.views[i].fields) if f.pii}
        for field_call in _calls(call, "Field"):
            field_name = _const_str(_kw(field_call, "name"))
            if field_name in pii:
                ctx.error(
                    "feature_repo/views.py",
                    field_call.lineno,
                    f"view {name} keeps the personal field {field_name}, which privacy.pii_handling drop leaves out",
                    ctx.spec_at("features", "views", i, "fields", pii[field_name], "pii")
                    + ctx.spec_at("privacy", "pii_handling"),
                    f"remove the Field {field_name!r} from the view",
                )


def _service_features(call: ast.Call, views: dict[str, str]) -> list[tuple[str, int]]:
    """``view.field`` references of a FeatureService(features=[view_var[["a", "b"]], "view:c", ...]) and their lines."""
    out: list[tuple[str, int]] = []
    node = _kw(call, "features")
    for item in node.elts if isinstance(node, ast.List) else []:
        if isinstance(item, ast.Subscript) and isinstance(item.value, ast.Name):
            view = views.get(item.value.id, item.value.id)
            sl = item.slice
            if isinstance(sl, ast.List):
                for e in sl.elts:
                    if isinstance(e, ast.Constant) and isinstance(e.value, str):
                        out.append((f"{view}.{e.value}", e.lineno))
        elif isinstance(item, ast.Name):
            out.append((f"{views.get(item.id, item.id)}.*", item.lineno))
        elif isinstance(item, ast.Constant) and isinstance(item.value, str):  # "view:field": a catalog's view
            view, _, field = item.value.partition(":")
            out.append((f"{view}.{field or '*'}", item.lineno))
    return out


def _view_vars(ctx: ProbeContext) -> dict[str, str]:
    """Python variable -> view name, from feature_repo/views.py (and on_demand.py)."""
    out: dict[str, str] = {}
    for rel in ("feature_repo/views.py", "feature_repo/on_demand.py"):
        tree = _parse(ctx, rel)
        for node in ast.walk(tree) if tree is not None else []:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1:
                target = node.targets[0]
                name = _const_str(_kw(node.value, "name"))
                if isinstance(target, ast.Name) and name:
                    out[target.id] = name
            if isinstance(node, ast.FunctionDef):
                for dec in node.decorator_list:
                    if isinstance(dec, ast.Call) and _const_str(_kw(dec, "name")):
                        out[node.name] = str(_const_str(_kw(dec, "name")))
                    elif isinstance(dec, ast.Call):
                        out.setdefault(node.name, node.name)
    return out


def _pii_paths(ctx: ProbeContext) -> dict[str, tuple[PathItem, ...]]:
    """``view.field`` of each personal field of a feature view -> the spec path of its ``pii`` flag."""
    features = ctx.arch.spec.features
    return {
        f"{v.name}.{f.name}": ("features", "views", i, "fields", j, "pii")
        for i, v in enumerate(features.views if features is not None else [])
        for j, f in enumerate(v.fields)
        if f.pii
    }


@probe("services", "feature_views", "pii")
def services(ctx: ProbeContext) -> None:
    """Each feature service serves exactly the spec's features; a personal field served against the PII rule fails."""
    spec = ctx.arch.spec
    tree = _parse(ctx, "feature_repo/services.py")
    if tree is None or spec.features is None:
        return
    rel = "feature_repo/services.py"
    index = {s.name: i for i, s in enumerate(spec.features.services)}
    pii = _pii_paths(ctx)
    handling = ctx.arch.privacy.pii_handling
    views = _view_vars(ctx)
    for call in _calls(tree, "FeatureService"):
        name = _const_str(_kw(call, "name"))
        if name not in index:
            continue
        i = index[name]
        want = [r for r in spec.features.services[i].features if not (handling == "drop" and r in pii)]
        got = _service_features(call, views)
        got_refs = [r for r, _ in got]
        requirement = ctx.spec_at("features", "services", i, "features")
        for ref, line in got:
            if ref.endswith(".*"):
                continue
            if ref in pii and handling == "drop":
                ctx.error(
                    rel,
                    line,
                    f"service {name} serves the personal field {ref}, which privacy.pii_handling drop never serves",
                    ctx.spec_at(*pii[ref]) + ctx.spec_at("privacy", "pii_handling"),
                    f"remove {ref} from the service",
                )
            elif ref not in want:
                ctx.error(
                    rel,
                    line,
                    f"service {name} serves {ref}, which the spec does not list: the model's inputs no longer match",
                    requirement,
                    f"remove {ref}, or add it to features.services[{i}].features and run `archgen update`",
                )
        line = call.lineno
        for ref in want:
            if ref not in got_refs and f"{ref.partition('.')[0]}.*" not in got_refs:
                ctx.error(
                    rel,
                    line,
                    f"service {name} lacks {ref}, which the spec lists: the model's inputs no longer match",
                    requirement,
                    f"add {ref} back to the service",
                )


# ------------------------------------------------------------------ Triton configs
def _pbtxt_values(text: str) -> dict[str, list[tuple[str, int]]]:
    """``key: value`` pairs of a text protobuf, by key (nesting ignored), with their lines."""
    out: dict[str, list[tuple[str, int]]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        m = re.match(r"\s*([a-z_]+)\s*:\s*(\S+)", line)
        if m:
            out.setdefault(m.group(1), []).append((m.group(2).strip('"'), number))
        b = re.match(r"\s*([a-z_]+)\s*\{", line)
        if b:
            out.setdefault(b.group(1) + "{", []).append(("", number))
    return out


@probe("triton_configs", "dynamic_batching", "instance_group")
def triton_configs(ctx: ProbeContext) -> None:
    """Each model's config.pbtxt keeps its decided batching (max_batch_size, dynamic batching, queue delay) and
    instances (count and kind).
    """
    if not ctx.arch.triton_serves:
        return
    spec_models = {m.name: i for i, m in enumerate(ctx.arch.spec.serving.models)}
    for m in ctx.arch.serving.models:
        if m.kind != "model":
            continue
        rel = f"model_repository/{m.name}/config.pbtxt"
        text = ctx.read(rel)
        if text is None:
            continue
        values = _pbtxt_values(text)
        i = spec_models.get(m.name, 0)
        _compare_pbtxt(ctx, rel, m, values, i)


def _compare_pbtxt(
    ctx: ProbeContext, rel: str, m: TritonModelArch, values: dict[str, list[tuple[str, int]]], i: int
) -> None:
    def first(key: str) -> tuple[str, int]:
        return values.get(key, [("", 0)])[0]

    batching_req = ctx.spec_at("serving", "models", i, "max_batch_size") + ctx.spec_at("serving", "latency_p99_ms")
    got, line = first("max_batch_size")
    got = got or "0"  # protobuf text omits the default 0
    if got != str(m.max_batch_size):
        ctx.error(
            rel,
            line,
            f"max_batch_size {got}, decided {m.max_batch_size} (dynamic_batching)",
            batching_req,
            f"set max_batch_size: {m.max_batch_size}, or change the requirement and run `archgen update`",
        )
    has_dynamic = "dynamic_batching{" in values
    if has_dynamic != m.dynamic_batching:
        ctx.error(
            rel,
            values["dynamic_batching{"][0][1] if has_dynamic else 0,
            f"dynamic batching {'on' if has_dynamic else 'off'}, decided {'on' if m.dynamic_batching else 'off'}",
            batching_req,
            "restore the dynamic_batching block as generated (`archgen update`)",
        )
    elif has_dynamic:
        delay, dline = first("max_queue_delay_microseconds")
        if delay and delay != str(m.max_queue_delay_us):
            ctx.error(
                rel,
                dline,
                f"max_queue_delay_microseconds {delay}, decided {m.max_queue_delay_us} (a share of the p99 budget)",
                ctx.spec_at("serving", "latency_p99_ms"),
                f"set it back to {m.max_queue_delay_us}",
            )
    count, cline = first("count")
    kind, kline = first("kind")
    instances_req = ctx.spec_at("serving", "models", i, "accelerator") + ctx.spec_at("serving", "throughput_rps")
    if count and count != str(m.instance_count):
        ctx.error(
            rel,
            cline,
            f"instance_group count {count}, decided {m.instance_count}",
            instances_req,
            f"set count: {m.instance_count}, or change the requirement and run `archgen update`",
        )
    if kind and m.instance_kind and kind != m.instance_kind:
        ctx.error(
            rel,
            kline,
            f"instance_group kind {kind}, decided {m.instance_kind}",
            instances_req,
            f"set kind: {m.instance_kind}",
        )


# ------------------------------------------------------------------ images and ports
def _yaml_nodes(text: str) -> list[yaml.Node]:
    """The documents' node graphs, within the spec loader's limits (an alias bomb is left to the safety checks)."""
    from ..untrusted import compose_yaml_all

    try:
        return compose_yaml_all(text)
    except yaml.YAMLError:  # YamlLimit included: check_untrusted reports it
        return []


def _leaves(node: yaml.Node, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str, int]]:
    """(path, scalar value, line) of every scalar; sequence items are keyed by a name/containerPort where present."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield from _leaves(v, (*path, str(k.value)))
    elif isinstance(node, yaml.SequenceNode):
        for j, item in enumerate(node.value):
            label = str(j)
            if isinstance(item, yaml.MappingNode):
                named = {str(k.value): v for k, v in item.value}
                if isinstance(named.get("name"), yaml.ScalarNode):
                    label = str(named["name"].value)
            yield from _leaves(item, (*path, label))
    elif isinstance(node, yaml.ScalarNode):
        yield path, str(node.value), node.start_mark.line + 1


_WATCHED = re.compile(r"(^|\.)(image|ports\.\d+|containerPort|port|targetPort|hostPort)$")


def _watched(path: tuple[str, ...]) -> bool:
    return bool(_WATCHED.search(".".join(path)))


@probe("images_and_ports", "deployment", "serving_runtime", "online_store")
def images_and_ports(ctx: ProbeContext) -> None:
    """Images and ports of docker compose and the Kubernetes workloads are the decided ones."""
    from ..plan.plan import build_plan
    from ..render.render import render_file

    watched = ("deploy/docker-compose.yaml", "deploy/k8s/base/")
    if all(ctx.as_generated(p) for p in ("deploy/docker-compose.yaml",)) and not (ctx.root / "deploy/k8s").is_dir():
        return  # nothing edited by hand: no plan to build
    plan = build_plan(ctx.arch)
    for f in plan.files:
        if not f.path.startswith(watched):
            continue
        if not (
            f.path == "deploy/docker-compose.yaml"
            or (
                f.path.startswith("deploy/k8s/base/")
                and f.path.endswith(("-deployment.yaml", "-service.yaml", "-statefulset.yaml"))
            )
        ):
            continue
        actual = ctx.read(f.path)
        if actual is None or ctx.as_generated(f.path):
            continue  # unedited: compared against this archgen's rendering it could only show a version skew
        expected = render_file(f, ctx.arch).decode("utf-8")
        want = {p: v for doc in _yaml_nodes(expected) for p, v, _ in _leaves(doc) if _watched(p)}
        got = {p: (v, line) for doc in _yaml_nodes(actual) for p, v, line in _leaves(doc) if _watched(p)}
        requirement = ctx.spec_at("existing", "platform") + ctx.spec_at("serving", "mode")
        for path, value in sorted(want.items()):
            have = got.get(path)
            where = ".".join(path)
            if have is None:
                ctx.error(f.path, 0, f"{where}: missing, decided {value!r}", requirement, "run `archgen update`")
            elif have[0] != value:
                ctx.error(
                    f.path,
                    have[1],
                    f"{where} is {have[0]!r}, decided {value!r}",
                    requirement,
                    f"set it back to {value!r}; images and ports follow the decided runtime and stores",
                )
        for path, (value, line) in sorted(got.items()):
            if path not in want:
                ctx.error(
                    f.path,
                    line,
                    f"{'.'.join(path)} = {value!r}: no decision asks for it",
                    requirement,
                    "remove it, or change the spec and run `archgen update`",
                )


#: every probe, in the order they run; a probe this list does not name never runs (tests/test_contract.py)
PROBES: tuple[Probe, ...] = (schedules, ttl, pii_fields, services, triton_configs, images_and_ports)
