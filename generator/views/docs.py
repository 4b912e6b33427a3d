"""Documentation of an Architecture: decisions table, ADRs, traceability, risks and the review page.

Pure functions from the Architecture (and, for traceability, the file plan) to template data. Free text from
the spec is escaped here for its target: :func:`md` for Markdown, Jinja autoescaping for the HTML review page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from ..decide.architecture import Architecture, Decision, Finding, Requirement
from .diagrams import INSTALL_HINT

SPEC_COPY = ".archgen/spec.yaml"  # where a generated repository keeps its spec (lines refer to it)

# ADR numbers are fixed per decision key, so a record keeps its number when other decisions appear or go.
# Keys not listed here are numbered from 0100 on, in key order.
ADR_ORDER = (
    "online_store",
    "offline_store",
    "registry",
    "ingestion",
    "materialization",
    "feature_views",
    "on_demand_views",
    "scheduler",
    "training_mode",
    "training_resources",
    "quality_gate",
    "serving_runtime",
    "protocol",
    "triton_backend",
    "dynamic_batching",
    "instance_group",
    "pipeline",
    "sequence_batching",
    "pii",
    "residency",
    "retention",
    "access",
    "delivery",
    "deployment",
    "pipeline_instances",
    "customization",
    "compute_engine",
    "spark_settings",
)
_UNLISTED_START = 100

# what a choice commits the team to (shown in ADRs); keys without an entry say nothing generic
CONSEQUENCES: Mapping[tuple[str, str], str] = {
    ("online_store", "sqlite"): "Nothing to run: the online store is a file next to the feature repo. It serves "
    "one machine; more writers or replicas need redis or postgres.",
    ("online_store", "redis"): "A Redis server must run and be backed up; single-row reads stay well under a "
    "millisecond.",
    ("online_store", "postgres"): "The online store shares the PostgreSQL the company runs; latency is higher "
    "than Redis.",
    ("compute_engine", "spark"): "Spark jobs compute the rollups (scripts/aggregate.py) and, with a Spark warehouse, "
    "materialize; SPARK_MASTER says where they run (local[*] on one machine, a cluster or Kubernetes in production).",
    ("compute_engine", "postgres"): "The rollups are SQL run inside PostgreSQL (scripts/aggregate.py); the database "
    "carries that load at each materialization.",
    ("registry", "file"): "The registry is one file: one writer at a time (`feast apply` from one place).",
    ("registry", "sql"): "The registry lives in PostgreSQL: many writers, but the database must be reachable from "
    "every job.",
    ("scheduler", "crontab"): "crontab has no retries, alerting or run history; jobs log to files.",
    ("scheduler", "airflow"): "The DAGs run on the company's Airflow; its retries and alerting apply.",
    ("scheduler", "kubernetes_cronjob"): "Jobs run as Kubernetes CronJobs next to the workloads; history via "
    "`kubectl get jobs`.",
    ("serving_runtime", "triton"): "Triton serves every model with dynamic batching; models live in "
    "model_repository/ in Triton's layout.",
    ("serving_runtime", "python_rest"): "A FastAPI service (serving/rest_app.py) reads the online features and runs "
    "the trained model in its own process; no Triton server, configs or image are generated. model_repository/ "
    "holds only the model.joblib versions training exports, already in Triton's <model>/<N>/ layout, so moving "
    "to Triton adds configs around the same versions.",
    ("protocol", "grpc"): "Clients use tritonclient's gRPC API; plain curl needs the HTTP port instead.",
    ("pii", "drop"): "PII fields never reach a feature service; models cannot use them.",
    ("pii", "hash"): "Only salted hashes of PII fields are served; the salt comes from the environment.",
    ("pii", "allow"): "PII fields are stored and served as they are: access control is the only protection.",
    ("deployment", "docker_compose"): "Everything runs on one machine with docker compose; scaling out means "
    "moving to Kubernetes.",
    ("deployment", "kubernetes"): "Kubernetes manifests are generated; the cluster must provide storage and, "
    "where asked, GPU nodes.",
}


# ------------------------------------------------------------------ values
def value_text(value: Any) -> str:
    """A spec value as the docs show it (``unset`` for None)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def requirement_ref(req: Requirement, spec_file: str) -> str:
    """``path (spec.yaml:LINE)``: a requirement as the docs cite it."""
    where = f"{spec_file}:{req.line}" if req.line else spec_file
    return f"{req.path} ({where})"


# ------------------------------------------------------------------ decisions and ADRs
@dataclass(frozen=True)
class AdrEntry:
    """A decision record: its number and decision."""

    number: int
    decision: Decision

    @property
    def key(self) -> str:
        """The decided key."""
        return self.decision.key

    @property
    def filename(self) -> str:
        """The record's file name: ``NNNN-key.md``."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.decision.key.lower()).strip("-") or "decision"
        return f"{self.number:04d}-{slug}.md"

    @property
    def title(self) -> str:
        """The record's title: the key and the choice."""
        return f"{self.decision.key.replace('_', ' ')}: {self.decision.choice}"


def adr_entries(arch: Architecture) -> list[AdrEntry]:
    """One record per decision, numbered by :data:`ADR_ORDER` (never by the order decisions were made)."""
    listed = {key: n for n, key in enumerate(ADR_ORDER, start=1)}
    unlisted = sorted({d.key for d in arch.decisions} - set(listed))
    numbers = {**listed, **{key: _UNLISTED_START + n for n, key in enumerate(unlisted)}}
    seen: set[str] = set()
    entries = []
    for d in arch.decisions:
        if d.key in seen:
            continue
        seen.add(d.key)
        entries.append(AdrEntry(numbers[d.key], d))
    return sorted(entries, key=lambda e: e.number)


class RequirementRow(NamedTuple):
    """A requirement as the docs cite it (a named tuple: templates read thousands of them on large specs)."""

    path: str
    line: int
    value: str
    ref: str


def decision_rows(arch: Architecture, spec_file: str) -> list[dict[str, Any]]:
    """Rows of the decisions table, in ADR order, as plain strings (escape per target in the template)."""
    rows = []
    for e in adr_entries(arch):
        d = e.decision
        rows.append(
            {
                "key": d.key,
                "choice": d.choice,
                "rule": d.rule,
                "adr": e.filename,
                "rationale": d.rationale,
                "requirements": [
                    RequirementRow(r.path, r.line, value_text(r.value), requirement_ref(r, spec_file))
                    for r in d.requirements
                ],
                "alternatives": [{"choice": a.choice, "reason": a.reason} for a in d.alternatives],
                "consequence": CONSEQUENCES.get((d.key, d.choice), ""),
            }
        )
    return rows


def finding_rows(arch: Architecture, spec_file: str) -> list[dict[str, Any]]:
    """The findings as rows of the docs' table, errors first."""

    def order(f: Finding) -> tuple[int, str]:
        return (0 if f.severity == "error" else 1, f.code)

    return [
        {
            "code": f.code,
            "severity": f.severity,
            "message": f.message,
            "fix": f.fix,
            "requirements": [requirement_ref(r, spec_file) for r in f.requirements],
            "waiver": None
            if f.waiver is None
            else {
                "justification": f.waiver.justification,
                "accepted_by": f.waiver.accepted_by or "",
                "ref": f"{spec_file}:{f.waiver.line}" if f.waiver.line else spec_file,
            },
        }
        for f in sorted(arch.findings, key=order)
    ]


# ------------------------------------------------------------------ traceability
@dataclass(frozen=True)
class Trace:
    """A requirement traced to the decisions that read it and the files they shaped."""

    path: str  # the requirement's dotted path
    line: int
    decisions: tuple[str, ...]
    files: tuple[str, ...]


def traceability(arch: Architecture, files: Iterable[Any]) -> list[Trace]:
    """Requirement -> decisions that read it -> files those decisions shaped (``PlannedFile.decisions``)."""
    files_by_key: dict[str, set[str]] = {}
    for f in files:
        for key in f.decisions:
            files_by_key.setdefault(key, set()).add(f.path)
    by_req: dict[str, tuple[int, set[str]]] = {}
    for d in arch.decisions:
        for r in d.requirements:
            line, keys = by_req.get(r.path, (r.line, set()))
            keys.add(d.key)
            by_req[r.path] = (line or r.line, keys)
    out = []
    shaped_by_keys: dict[tuple[str, ...], tuple[str, ...]] = {}  # many requirements share their decisions
    for path, (line, keys) in by_req.items():
        decisions = tuple(sorted(keys))
        shaped = shaped_by_keys.get(decisions)
        if shaped is None:
            shaped = tuple(sorted(set().union(*(files_by_key.get(k, set()) for k in decisions))))
            shaped_by_keys[decisions] = shaped
        out.append(Trace(path, line, decisions, shaped))
    return sorted(out, key=lambda t: (t.line or 10**9, t.path))


# where each area of the spec lives in a generated repository (filtered by the files actually planned)
AREA_PLACES: Mapping[str, tuple[str, ...]] = {
    "project": ("README.md", "CODEOWNERS", "pyproject.toml"),
    "existing": ("deploy/", "pipelines/", "feature_repo/feature_store.yaml"),
    "entities": ("feature_repo/",),
    "sources": ("feature_repo/", "scripts/generate_sample_data.py"),
    "features": ("feature_repo/", "scripts/materialize.py"),
    "training": ("training/", "pipelines/"),
    "serving": ("model_repository/", "serving/"),
    "privacy": ("feature_repo/", "pipelines/"),
    "autonomy": ("deploy/",),
    "delivery": ("Makefile", "pipelines/", ".github/workflows/"),
    "waivers": ("docs/architecture.md", "docs/review.html"),
}


def area_places(paths: Iterable[str]) -> list[tuple[str, list[str]]]:
    """The places of the repository that exist among ``paths``, by area."""
    present = set(paths)

    def exists(place: str) -> bool:
        return any(p.startswith(place) for p in present) if place.endswith("/") else place in present

    return [(area, [p for p in places if exists(p)]) for area, places in AREA_PLACES.items()]


# ------------------------------------------------------------------ risks
Level = Literal["high", "medium", "low"]
_LEVELS = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class Risk:
    """A risk the docs list: its level, title and detail."""

    level: Level
    title: str
    detail: str
    source: str  # a finding code or a decision key
    mitigation: str = ""


@dataclass
class _Risks:
    items: list[Risk] = field(default_factory=list)

    def add(self, level: Level, title: str, detail: str, source: str, mitigation: str = "") -> None:
        self.items.append(Risk(level, title, detail, source, mitigation))


def risks(arch: Architecture) -> list[Risk]:
    """Findings (errors, open warnings, waived warnings) plus decisions that carry a notable cost."""
    r = _Risks()
    for f in arch.findings:
        if f.severity == "error":
            r.add("high", f.code, f.message, f.code, f.fix)
        elif f.waiver is None:
            r.add("medium", f.code, f.message, f.code, f.fix)
        else:
            who = f" by {f.waiver.accepted_by}" if f.waiver.accepted_by else ""
            r.add("low", f.code, f"{f.message} (waived{who}: {f.waiver.justification})", f.code, f.fix)
    _decision_risks(arch, r)
    return sorted(r.items, key=lambda x: (_LEVELS[x.level], x.source, x.title))


def _decision_risks(arch: Architecture, r: _Risks) -> None:
    """The risks the decisions carry, area by area (the order within a level is the order they are added)."""
    _store_risks(arch, r)
    _training_risks(arch, r)
    _serving_risks(arch, r)
    _privacy_risks(arch, r)
    _platform_risks(arch, r)


def _store_risks(arch: Architecture, r: _Risks) -> None:
    fs = arch.feature_store
    if fs is not None and fs.online_store == "sqlite":
        r.add(
            "low",
            "SQLite online store",
            "one file on one machine: no concurrent writers, no replicas",
            "online_store",
            "switch to redis when throughput grows or the platform becomes kubernetes",
        )
    if fs is not None and fs.registry == "file":
        r.add("low", "file registry", "one writer at a time", "registry", "a SQL registry once several teams apply")


def _training_risks(arch: Architecture, r: _Risks) -> None:
    tr = arch.training
    if tr.scheduler == "crontab":
        r.add("low", "crontab scheduler", "no retries, alerting or run history", "scheduler", "watch the job logs")
    if tr.mode == "manual" or arch.mlops_level == 0:
        r.add("medium", "manual training", "models are retrained by hand and can go stale", "training_mode")
    if tr.trained_models and tr.quality_gate is None:
        r.add(
            "medium",
            "no quality gate",
            "nothing stops a worse model from shipping",
            "quality_gate",
            "set training.min_quality",
        )


def _serving_risks(arch: Architecture, r: _Risks) -> None:
    sv = arch.serving
    for m in sv.models:
        if m.placeholder and m.kind == "model":
            r.add(
                "medium",
                f"model {m.name} is a stand-in",
                f"no training pipeline produces {m.name}: a shape-honouring placeholder is served "
                "until the real artefact is dropped into model_repository/",
                "serving_runtime",
            )
        if m.runs_here_as_python:
            r.add(
                "low",
                f"model {m.name} ({m.framework}) is validated statically",
                "its backend cannot run on the development machine; a python stand-in runs locally",
                "serving_runtime",
            )
    if sv.latency_p99_ms < 20:
        r.add(
            "medium",
            f"tight latency budget ({sv.latency_p99_ms:g} ms p99)",
            "feature lookup and inference share the budget",
            "protocol",
            "run the generated latency fitness test on production-like hardware",
        )


def _privacy_risks(arch: Architecture, r: _Risks) -> None:
    fs, pv = arch.feature_store, arch.privacy
    has_pii = fs is not None and (fs.allowed_pii_fields or fs.hashed_fields or fs.encrypted_fields)
    if pv.pii_handling == "allow" and has_pii:
        r.add("high", "PII served as is", "personal data is stored and served unmasked", "pii", "hash or drop it")
    if has_pii and pv.retention_s is None:
        r.add("medium", "no retention for PII", "personal data is kept forever", "pii", "set privacy.retention")


def _platform_risks(arch: Architecture, r: _Risks) -> None:
    fs, pv = arch.feature_store, arch.privacy
    if arch.deployment.gpu_nodes:
        r.add("low", "GPU nodes needed", "the platform must provide GPUs for training or serving", "deployment")
    if pv.local_mirror:
        r.add(
            "low",
            "local mirror needed",
            "images and packages must come from a mirror inside the site",
            "deployment",
        )
    if fs is not None and fs.offline_store in ("bigquery", "snowflake", "redshift"):
        r.add("low", f"{fs.offline_store} offline store", "credentials and query cost", "offline_store")


# ------------------------------------------------------------------ the review page
@dataclass(frozen=True)
class DiagramEmbed:
    """A diagram in the docs: its name, title and SVG (None without graphviz)."""

    name: str
    title: str
    svg: bytes | None  # self-contained SVG, or None without graphviz
    mermaid: str


@lru_cache(maxsize=1)
def _html_environment() -> Any:
    import jinja2

    from ..render.render import Environment, template_cache
    from ..resources import TEMPLATES

    env = Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        bytecode_cache=template_cache(),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["html_cited"] = _html_cited
    return env


def _html_cited(requirements: Iterable[RequirementRow]) -> Any:
    """Requirements a decision read, one per line of a table cell, escaped (a filter: there can be thousands)."""
    from markupsafe import Markup, escape

    return Markup(
        "<br>".join(
            f"<code>{escape(r.path)}</code> = {escape(r.value)} ({f'line {r.line}' if r.line else 'default'})"
            for r in requirements
        )
    )


def review_html(
    arch: Architecture,
    diagrams: Sequence[DiagramEmbed],
    *,
    spec_file: str,
    rows: list[dict[str, Any]] | None = None,
) -> str:
    """One self-contained HTML page: diagrams (SVG as data URIs), decisions, findings, risks. No requests.

    ``rows``: :func:`decision_rows` for the same architecture and spec file, when the caller has them.
    """
    import base64

    embeds = [
        {
            "name": d.name,
            "title": d.title,
            "src": "data:image/svg+xml;base64," + base64.b64encode(d.svg).decode("ascii") if d.svg else "",
            "mermaid": d.mermaid,
        }
        for d in diagrams
    ]
    template = _html_environment().get_template("docs/review.html.j2")
    return str(
        template.render(
            arch=arch,
            spec=arch.spec,
            spec_file=spec_file,
            diagrams=embeds,
            decisions=decision_rows(arch, spec_file) if rows is None else rows,
            findings=finding_rows(arch, spec_file),
            risks=risks(arch),
            install_hint=INSTALL_HINT,
        )
    )
