"""Feature repository component: the Feast repo (`feature_repo/`), its sample data and materialization job.

Everything here is decided from ``arch.feature_store`` (stores, registry, ingestion, PII handling) and
the spec's entities, sources and features; the templates under ``templates/feature_repo/`` and
``templates/scripts/`` only lay the result out. Names are validated identifiers and may appear as
Python names; free text (descriptions, owners) reaches generated code only through the ``py`` filter.

PII: ``drop`` leaves the field out of every feature view (it stays in the raw source only), so no
feature service can reach it; ``hash`` hashes at write time: ``scripts/protect_pii.py`` copies each
source with personal fields into a protected copy the system owns (``<field>_sha256``, HMAC-SHA256
keyed with ``$PII_HASH_SALT``, in place of the value), the Feast source reads that copy, so the raw
value never reaches the online store or a training set; ``encrypt`` works the same way with a Fernet
token ``<field>_encrypted`` (key in ``$PII_ENCRYPTION_KEY``) that only the roles granted ``read_pii``
decrypt (``scripts/protect_pii.py reveal``); ``allow`` keeps the field, tagged, with a comment.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from requirements_spec.models import (
    GRANULARITY_SECONDS,
    FeatureField,
    FeatureViewSpec,
    FileSourceSpec,
    OnDemandViewSpec,
    RequestSourceSpec,
    Spec,
    StreamSourceSpec,
    TableSourceSpec,
)
from requirements_spec.types import duration_seconds

from ..decide.architecture import PII_SUFFIX, Architecture, FeatureStoreArch
from ..errors import INTERNAL, ArchgenError
from ..render.python_layout import literal
from .plan import PlannedFile
from .training import label_classes

COMPONENT = "feature_repo"

FEAST_TYPES = {
    "int32": "Int32",
    "int64": "Int64",
    "float32": "Float32",
    "float64": "Float64",
    "string": "String",
    "bool": "Bool",
    "bytes": "Bytes",
    "unix_timestamp": "UnixTimestamp",
}
ENTITY_VALUE_TYPES = {"int64": "INT64", "int32": "INT32", "string": "STRING"}
NUMERIC = {"int32", "int64", "float32", "float64", "bool"}
ROLLUP_DIR = "data/rollups"  # where the rollups of file offline stores are written, under feature_repo/
# spec access action -> Feast AuthzedAction members
ACTIONS = {
    "online_read": ["READ_ONLINE"],
    "offline_read": ["READ_OFFLINE"],
    "write": ["WRITE_ONLINE", "WRITE_OFFLINE"],
    "materialize": ["READ_OFFLINE", "WRITE_ONLINE"],
    "describe": ["DESCRIBE"],
    "read_pii": [],  # not a Feast action: decrypting encrypted personal fields (scripts/protect_pii.py)
}
ACTION_ORDER = ["DESCRIBE", "READ_ONLINE", "READ_OFFLINE", "WRITE_ONLINE", "WRITE_OFFLINE"]
HASH_SUFFIX = PII_SUFFIX["hash"]
ENCRYPT_SUFFIX = PII_SUFFIX["encrypt"]
SOURCE_CLASSES = {
    "file": ("feast", "FileSource"),
    "postgres": ("feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source", "PostgreSQLSource"),
    "bigquery": ("feast", "BigQuerySource"),
    "snowflake": ("feast", "SnowflakeSource"),
    "redshift": ("feast", "RedshiftSource"),
    "spark": ("feast.infra.offline_stores.contrib.spark_offline_store.spark_source", "SparkSource"),
}


@dataclass(frozen=True)
class EnvVar:
    """An environment variable the generated feature repo reads (feature_store.yaml or the PII salt)."""

    name: str
    default: str  # local-development default ("" when there is none)
    secret: bool
    description: str


# ------------------------------------------------------------------ public API
def plan(arch: Architecture) -> list[PlannedFile]:
    """The Feast feature repository (none without features)."""
    fs = arch.feature_store
    if fs is None or arch.spec.features is None:
        return []
    fr = build_model(arch)
    ctx = {
        "fr": fr,
        "fs": fs,
        "sample_sources": literal(fr["sample"]["sources"], prefix=len("SOURCES: list[dict[str, Any]] = ")),
    }
    ctx["rollups_literal"] = literal(fr["rollups"], prefix=len("VIEWS: list[dict[str, Any]] = "))
    ctx["spark_conf_literal"] = literal(dict(fs.spark_conf), prefix=len("SPARK_CONF: dict[str, str] = "))
    store_decisions = _known(arch, "online_store", "offline_store", "registry")  # batch: no online store

    def tpl(path: str, template: str, *decisions: str, executable: bool = False) -> PlannedFile:
        return PlannedFile(
            path=path,
            component=COMPONENT,
            template=template,
            context=ctx,
            executable=executable,
            decisions=tuple(decisions),
        )

    yaml_ctx = {
        **ctx,
        "env_vars": env_vars(arch),
        "registry_url": _registry_url(fs),
        "key_ttl_seconds": arch.privacy.retention_s,
        "auth": feast_auth(arch),
    }
    files = [
        PlannedFile(
            path="feature_repo/feature_store.yaml",
            component=COMPONENT,
            template="feature_repo/feature_store.yaml.j2",
            context=yaml_ctx,
            decisions=(*store_decisions, *_known(arch, "compute_engine", "spark_settings")),
        ),
        tpl("feature_repo/.feastignore", "feature_repo/feastignore.j2"),
        PlannedFile(
            path="feature_repo/README.md",
            component=COMPONENT,
            template="feature_repo/README.md.j2",
            context=yaml_ctx,
            decisions=store_decisions,
        ),
        tpl("feature_repo/entities.py", "feature_repo/entities.py.j2"),
        tpl(
            "feature_repo/sources.py",
            "feature_repo/sources.py.j2",
            "offline_store",
            "ingestion",
            *_known(arch, "compute_engine"),
        ),
        tpl("feature_repo/views.py", "feature_repo/views.py.j2", "ingestion", "pii", *_known(arch, "compute_engine")),
        tpl("scripts/generate_sample_data.py", "scripts/generate_sample_data.py.j2", "offline_store", executable=True),
    ]
    if fs.materialization_cron is not None:  # batch scoring materializes nothing
        files.append(
            tpl(
                "scripts/materialize.py",
                "scripts/materialize.py.j2",
                "materialization",
                *_known(arch, "compute_engine"),
                *(("online_store", "registry") if fr["materialization"]["own_store_shared_registry"] else ()),
                executable=True,
            )
        )
    if fr["rollups"]:
        files.append(tpl("scripts/aggregate.py", "scripts/aggregate.py.j2", "compute_engine", executable=True))
    if fs.catalog_views:
        modules = ["entities", "sources", "views"]
        modules += [m for m, made in (("on_demand", fr["odfvs"]), ("services", fr["services"])) if made]
        modules += ["permissions"] if fr["permissions"] else []
        catalog = arch.spec.existing.feature_registry
        assert catalog is not None
        apply_ctx = {
            **ctx,
            "apply_modules": modules,
            "catalog_literal": literal(
                {v.name: [f.name for f in v.fields] for v in catalog.views},
                prefix=len("CATALOG_VIEWS: dict[str, list[str]] = "),
            ),
            "own_entities": sorted({e for v in arch.spec.features.views for e in v.entities}),
        }
        files.append(
            PlannedFile(
                "scripts/apply.py",
                COMPONENT,
                template="scripts/apply.py.j2",
                context=apply_ctx,
                executable=True,
                decisions=("registry",),
            )
        )
    if fr["odfvs"]:
        files.append(tpl("feature_repo/on_demand.py", "feature_repo/on_demand.py.j2", "ingestion"))
    if fr["protected"]:
        files.append(tpl("scripts/protect_pii.py", "scripts/protect_pii.py.j2", "pii", executable=True))
    prereq = prerequisites(arch)
    if any(prereq.values()):
        files.append(
            PlannedFile(
                "scripts/prerequisites.py",
                COMPONENT,
                template="scripts/prerequisites.py.j2",
                context={**ctx, "prereq": prereq},
                executable=True,
                decisions=_known(arch, "online_store", "offline_store", "registry"),
            )
        )
    if fr["services"]:
        files.append(tpl("feature_repo/services.py", "feature_repo/services.py.j2", "pii"))
    if fr["permissions"]:
        files.append(tpl("feature_repo/permissions.py", "feature_repo/permissions.py.j2", "pii"))
    return files


def feast_auth(arch: Architecture) -> str:
    """How Feast servers authenticate callers: `auth.type` of feature_store.yaml.

    kubernetes: on Kubernetes with declared roles (ServiceAccount tokens, roles from RoleBindings,
    deploy/k8s/base/feast-access.yaml); oidc: elsewhere with declared roles when a feature server runs (an
    identity provider issues the tokens); no_auth: no roles declared, or nothing served over the network
    (every reader is in process, so there is no server to protect).
    """
    if not arch.privacy.permissions:
        return "no_auth"
    if arch.deployment.target == "kubernetes":
        return "kubernetes"
    return "oidc" if arch.feature_server_runs else "no_auth"


def prerequisites(arch: Architecture) -> dict[str, bool]:
    """The local services scripts/prerequisites.py checks (and the Makefile runs it before data, apply, materialize)."""
    fs = arch.feature_store
    if fs is None or arch.spec.features is None:
        return {"postgres": False, "redis": False, "registry_url": False}
    return {
        "postgres": _uses_postgres(fs),
        "redis": fs.online_store == "redis",
        "registry_url": _own_registry_url(fs),  # FEAST_REGISTRY_URL
    }


def _known(arch: Architecture, *keys: str) -> tuple[str, ...]:
    made = {d.key for d in arch.decisions}
    return tuple(k for k in keys if k in made)


def env_vars(arch: Architecture) -> list[EnvVar]:
    """Environment variables the generated feature repo needs, with local-development defaults.

    The frame (Makefile, README, docker-compose) and deploy manifests export these; secrets go to the
    platform's secret store, never into a file.
    """
    fs = arch.feature_store
    if fs is None:
        return []
    out: list[EnvVar] = []
    if fs.online_store == "redis":
        out.append(EnvVar("REDIS_CONNECTION_STRING", "127.0.0.1:6379", True, "Redis 'host:port[,db=N][,password=..]'"))
    if _uses_postgres(fs):
        out += [
            EnvVar("POSTGRES_HOST", "127.0.0.1", False, "PostgreSQL host"),
            EnvVar("POSTGRES_PORT", "5432", False, "PostgreSQL port"),
            EnvVar("POSTGRES_DB", "feast", False, "PostgreSQL database"),
            EnvVar("POSTGRES_USER", "postgres", False, "PostgreSQL user"),
            EnvVar("POSTGRES_PASSWORD", "", True, "PostgreSQL password"),
            EnvVar(
                "POSTGRES_SSLMODE",
                "disable",
                False,
                "PostgreSQL sslmode: disable for local dev, require or verify-full elsewhere",
            ),
        ]
    if _own_registry_url(fs):
        out.append(
            EnvVar(
                "FEAST_REGISTRY_URL",
                "postgresql+psycopg://postgres:@127.0.0.1:5432/feast",
                True,
                "SQLAlchemy URL of the SQL registry",
            )
        )
    out += _warehouse_env(fs.offline_store, arch.privacy.residency)
    if fs.hashed_fields:
        out.append(EnvVar("PII_HASH_SALT", "", True, "secret salt of the personal-field hashes"))
    if fs.encrypted_fields:
        out.append(EnvVar("PII_ENCRYPTION_KEY", "", True, "Fernet key the personal fields are encrypted with"))
    if feast_auth(arch) == "oidc":
        out += [
            EnvVar("OIDC_DISCOVERY_URL", "", False, "the identity provider's .well-known/openid-configuration URL"),
            EnvVar("OIDC_CLIENT_ID", "", False, "the feature server's client id at the identity provider"),
        ]
    return out


def refreshes_protected_copies_itself(arch: Architecture) -> bool:
    """Training and batch scoring refresh the protected copies of personal fields before reading them when nothing
    materializes (materialization refreshes them first otherwise; scripts/materialize.py).
    """
    fs = arch.feature_store
    return fs is not None and fs.materialization_cron is None and bool(build_model(arch)["protected"])


def build_model(arch: Architecture) -> dict[str, Any]:
    """The feature repo as plain data for the templates."""
    fs = arch.feature_store
    spec = arch.spec
    if fs is None or spec.features is None:
        raise ArchgenError("internal: no feature store to build", exit_code=INTERNAL)
    features = spec.features
    dropped = set(fs.dropped_fields)
    tags_of = {
        **dict.fromkeys(fs.dropped_fields, "drop"),
        **dict.fromkeys(fs.hashed_fields, "hash"),
        **dict.fromkeys(fs.encrypted_fields, "encrypt"),
        **dict.fromkeys(fs.allowed_pii_fields, "allow"),
    }
    batch, push, request = _sources(arch)
    protected = _protected_sources(arch, batch)
    rollups = _rollups(arch, batch)
    views = [_view(spec, v, dropped, tags_of, fs) for v in features.views]
    odfvs = [_odfv(spec, o, dropped, fs) for o in features.on_demand]
    services = [_service(spec, s, fs) for s in features.services]
    permissions = _permissions(arch)
    kinds = {s["kind"] for s in batch} | {r["kind"] for r in rollups}
    source_imports: list[tuple[str, str]] = [SOURCE_CLASSES[k] for k in sorted(kinds)]
    if push:
        source_imports.append(("feast", "PushSource"))
    if request:
        source_imports += [("feast", "Field"), ("feast", "RequestSource")]
        source_imports += [("feast.types", t) for t in _types(f for s in request for f in s["fields"])]
    view_types = _types(f for v in views for f in v["fields"])
    source_vars = sorted({v["source_var"] for v in views})
    entity_vars = sorted({e for v in views for e in v["entity_vars"]})
    odfv_sources = sorted({s.split("[")[0] for o in odfvs for s in o["source_exprs"]})
    return {
        "data_owner": spec.project.owners.data_engineering,
        "science_owner": spec.project.owners.data_science,
        "entities": [
            {
                "name": e.name,
                "var": _var(e.name, "entity"),
                "join_key": e.join_key,
                "value_type": ENTITY_VALUE_TYPES[e.dtype],
                "description": e.description,
            }
            for e in spec.entities
        ],
        "batch_sources": batch,
        "push_sources": push,
        "request_sources": request,
        "source_imports": _grouped_imports(source_imports),
        "sources_doc": _sources_doc(fs),
        "views": views,
        "view_types": view_types,
        "view_imports": _import_lines({"entities": entity_vars, "sources": source_vars}),
        "odfvs": odfvs,
        "odfv_types": _types(f for o in odfvs for f in o["outputs"]),
        "odfv_numpy": any(f["cast"].startswith("np.") for o in odfvs for f in o["outputs"]),
        "odfv_imports": _import_lines(
            {
                "sources": [v for v in odfv_sources if v.endswith("_source")],
                "views": [v for v in odfv_sources if v.endswith("_view")],
            }
        ),
        "protected": protected,
        "rollups": rollups,
        "compute_engine": fs.compute_engine,
        "spark_data_root": fs.offline_store == "spark" and any(s["kind"] == "spark" for s in [*batch, *rollups]),
        "pii_mode": "encrypt" if fs.encrypted_fields else "hash",
        "decrypt_roles": arch.privacy.decrypt_roles,
        "services": services,
        "service_imports": _service_imports(services),
        "pii_note": _pii_note(fs),
        "permissions": permissions,
        "sample": _sample_model(arch, batch),
        "online": fs.online_store is not None,  # batch scoring reads the offline store only
        "materialization": {
            "cron": fs.materialization_cron,
            "interval_s": fs.materialization_interval_s,
            "freshness": features.freshness,
            "ingestion": fs.ingestion,
            # the online store is the checkout's own SQLite file while the registry is shared (SQL, or another
            # team's file): a new checkout has none of the tables the registry says exist
            "own_store_shared_registry": fs.online_store == "sqlite"
            and (fs.registry == "sql" or bool(fs.registry_path)),
        },
    }


# ------------------------------------------------------------------ sources
def _sources(arch: Architecture) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    fs = arch.feature_store
    assert fs is not None
    offline = fs.offline_store
    batch: list[dict[str, Any]] = []
    push: list[dict[str, Any]] = []
    request: list[dict[str, Any]] = []
    for s in arch.spec.sources:
        if isinstance(s, FileSourceSpec | TableSourceSpec):
            batch.append(_batch_source(s, offline))
        elif isinstance(s, StreamSourceSpec):
            push.append(
                {
                    "name": s.name,
                    "var": _var(s.name, "source"),
                    "batch_var": _var(s.batch_source, "source"),
                    "topic": s.topic,
                    "description": s.description,
                }
            )
        elif isinstance(s, RequestSourceSpec):
            request.append(
                {
                    "name": s.name,
                    "var": _var(s.name, "source"),
                    "fields": [{"name": f.name, "dtype": FEAST_TYPES[f.dtype]} for f in s.fields],
                    "description": s.description,
                }
            )
    return batch, push, request


def _batch_source(s: FileSourceSpec | TableSourceSpec, offline: str) -> dict[str, Any]:
    """A file or table source as the offline store reads it; every one also has a local parquet copy."""
    local_path = s.path if isinstance(s, FileSourceSpec) else f"data/{s.name}.parquet"
    table = s.table if isinstance(s, TableSourceSpec) else s.name
    schema, _, table_name = table.rpartition(".")
    out: dict[str, Any] = {
        "name": s.name,
        "var": _var(s.name, "source"),
        "path": local_path,
        "table": table,
        "schema": schema or "public",
        "table_name": table_name,
        "timestamp_field": s.timestamp_field,
        "created_timestamp_field": s.created_timestamp_field,
        "description": s.description,
        "note": "",
        "load_table": None,
        "lake_path": None,  # spark: parquet files read in place under SPARK_LAKE_ROOT (file sources only)
    }
    if offline in ("file", "duckdb"):
        out["kind"] = "file"
        if isinstance(s, TableSourceSpec):
            out["note"] = (
                f"table {s.table} read from its parquet export while the offline store is {offline}; "
                "scripts/generate_sample_data.py --postgres loads the table"
            )
            out["load_table"] = s.table
    elif offline == "spark" and isinstance(s, FileSourceSpec):
        out["kind"] = "spark"
        out["note"] = f"parquet files read in place by Spark: {s.path} under SPARK_LAKE_ROOT"
        out["lake_path"] = s.path
    else:
        out["kind"] = offline
        out["load_table"] = table
        if isinstance(s, FileSourceSpec):
            out["note"] = f"file source {s.path} lives in the {offline} warehouse as table {table}"
    return out


def _rollups(arch: Architecture, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each view with aggregations: the events it reads, what it computes, and the rollup table Feast reads.

    The rollup lives where the offline store reads: a parquet folder under data/rollups/ (files; written by
    pandas or Spark), the same under SPARK_LAKE_ROOT (Spark), or the table `<view>_rollup` (PostgreSQL).
    """
    fs = arch.feature_store
    spec = arch.spec
    assert fs is not None and spec.features is not None
    by_name = {b["name"]: b for b in batch}
    out = []
    for v in spec.features.views:
        if not v.aggregations or v.granularity is None:
            continue
        events = by_name[v.source]
        keys = [e.join_key for name in v.entities for e in spec.entities if e.name == name]
        dtypes = {f.name: f.dtype for f in v.fields}
        served = {f.name: f.dtype for f in v.served_fields}
        aggregations = [
            {
                "name": name,
                "function": a.function,
                "column": a.column,
                "window": window,
                "window_s": duration_seconds(window),
                "dtype": served[name],
                "column_dtype": dtypes[a.column],
            }
            for a in v.aggregations
            for name, window in a.outputs()
        ]
        kind = "file" if fs.offline_store in ("file", "duckdb") else fs.offline_store
        table = f"{v.name}_rollup"
        schema = events["schema"] if kind == "postgres" else "public"
        qualified = table if schema == "public" else f"{schema}.{table}"
        out.append(
            {
                "view": v.name,
                "name": f"{v.name}_rollup",
                "var": _var(f"{v.name}_rollup", "source"),
                "kind": kind,
                "path": f"{ROLLUP_DIR}/{v.name}",
                "table": qualified,
                # what the job remembers between runs (its watermark and event counts): a file beside the rollup,
                # or a table beside the rollup table; and where Spark stages what it writes before moving it in
                "state": f"{qualified}_state" if kind == "postgres" else f"{ROLLUP_DIR}/_state/{v.name}.json",
                "staging": f"{ROLLUP_DIR}/_staging/{v.name}",
                # the raw events, never a protected copy of them: the job reads the keys, the timestamp and the
                # aggregated columns only, none of them personal (an aggregated view has no personal field), and
                # a copy is refreshed by materialization, after the first rollup run (make apply) and the batch
                # pipeline's (before training)
                "events": {
                    "name": events["name"],
                    "kind": events["kind"],
                    "path": events["path"],
                    "table": events["table"],
                    "lake_path": events.get("lake_path"),
                },
                "timestamp_field": events["timestamp_field"],
                "keys": keys,
                "grain": v.granularity,
                "grain_s": GRANULARITY_SECONDS[v.granularity],
                "columns": sorted({a.column for a in v.aggregations}),
                "partials": _partials(v),
                "aggregations": aggregations,
                "longest_s": max(duration_seconds(w) for a in v.aggregations for w in a.windows),
            }
        )
    return out


#: what each function sums its windows from, per grain (count: every function's empty windows read it)
_PARTIALS = {"sum": ("sum",), "mean": ("sum",), "min": ("min",), "max": ("max",), "count": (), "count_distinct": ()}


def _partials(view: FeatureViewSpec) -> dict[str, list[str]]:
    """Per aggregated column, the statistics each grain holds: its count, and the sum, min or max its functions read.

    A column that is only counted (a string one, say) holds no sum, min or max: its dtype may have none.
    """
    return {
        col: ["count", *(s for s in ("sum", "min", "max") if any(s in _PARTIALS[a.function] for a in aggs))]
        for col in sorted({a.column for a in view.aggregations})
        for aggs in [[a for a in view.aggregations if a.column == col]]
    }


def _protected_sources(arch: Architecture, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sources with hashed or encrypted personal fields, and the protected copy the Feast source reads instead.

    The copy is the system's own: a parquet file under data/protected/ (file offline stores) or the table
    `<table>_protected` next to the raw one (warehouses). scripts/protect_pii.py writes it before each
    materialization; each batch source entry gets `read_path`/`read_table` pointing at it.
    """
    fs = arch.feature_store
    spec = arch.spec
    assert fs is not None and spec.features is not None
    hashed: dict[str, list[str]] = {}
    for ref in [*fs.hashed_fields, *fs.encrypted_fields]:
        view_name, _, field = ref.partition(".")
        view = spec.view(view_name)
        if view is None:
            continue
        src = spec.source(view.source)
        name = src.batch_source if isinstance(src, StreamSourceSpec) else view.source
        hashed.setdefault(name, [])
        if field not in hashed[name]:
            hashed[name].append(field)
    out = []
    for b in batch:
        b.setdefault("read_path", b["path"])
        b.setdefault("read_table", b["table"])
        b.setdefault("read_table_name", b["table_name"])
        fields = hashed.get(b["name"])
        if not fields:
            continue
        b["read_path"] = f"data/protected/{b['name']}.parquet"
        b["read_table"] = f"{b['table']}_protected"
        b["read_table_name"] = f"{b['table_name']}_protected"
        suffix = ENCRYPT_SUFFIX if fs.encrypted_fields else HASH_SUFFIX
        out.append(
            {
                "name": b["name"],
                "kind": b["kind"],
                "raw": b["path"] if b["kind"] == "file" else b["table"],
                "protected": b["read_path"] if b["kind"] == "file" else b["read_table"],
                "pairs": [(f, f + suffix) for f in sorted(fields)],
            }
        )
    return out


def _sources_doc(fs: FeatureStoreArch) -> str:
    if fs.offline_store in ("file", "duckdb"):
        text = "Batch sources are parquet files under data/ (scripts/generate_sample_data.py writes sample ones)."
    else:
        text = (
            f"Batch sources are tables of the {fs.offline_store} warehouse; scripts/generate_sample_data.py "
            "writes sample parquet files under data/, and with --postgres loads them as these tables."
        )
    return textwrap.fill(text, width=100)


# ------------------------------------------------------------------ views
def _view(
    spec: Spec, v: FeatureViewSpec, dropped: set[str], tags_of: dict[str, str], fs: FeatureStoreArch
) -> dict[str, Any]:
    fields = []
    notes = []
    for f in v.fields:
        ref = f"{v.name}.{f.name}"
        if ref in dropped:
            notes.append(
                f"{f.name} is personal data and privacy.pii_handling is drop: it stays in the raw source only, "
                "so no feature service can reach it"
            )
            continue
        tags = {"pii": tags_of[ref]} if ref in tags_of else {}
        if tags.get("pii") == "hash":
            name = f.name + HASH_SUFFIX
            fields.append({"name": name, "dtype": "String", "description": f.description, "tags": tags})
            notes.append(
                f"{f.name} is personal data: only its salted hash {name} is written (scripts/protect_pii.py), "
                "never the value"
            )
            continue
        if tags.get("pii") == "encrypt":
            name = f.name + ENCRYPT_SUFFIX
            fields.append({"name": name, "dtype": "String", "description": f.description, "tags": tags})
            notes.append(
                f"{f.name} is personal data: only its ciphertext {name} is written (scripts/protect_pii.py, key in "
                "$PII_ENCRYPTION_KEY); roles granted read_pii decrypt it, nobody else can"
            )
            continue
        fields.append({"name": f.name, "dtype": FEAST_TYPES[f.dtype], "description": f.description, "tags": tags})
        if tags.get("pii") == "allow":
            notes.append(f"{f.name} is personal data served as is (privacy.pii_handling allow)")
    src = spec.source(v.source)
    tags = {"granularity": v.granularity} if v.granularity else {}
    source_var = _var(v.source, "source")
    if v.aggregations:
        served = {f.name: f.dtype for f in v.served_fields}
        fields = [
            {
                "name": name,
                "dtype": FEAST_TYPES[served[name]],
                "description": f"{a.function} of {a.column} over {window}",
                "tags": {"aggregation": a.function, "column": a.column, "window": window},
            }
            for a in v.aggregations
            for name, window in a.outputs()
        ]
        engine = {"local": "pandas, in process", "spark": "Spark", "postgres": "SQL inside PostgreSQL"}
        notes.append(
            f"rollups of the raw events of {v.source}, computed at every {v.granularity} boundary by "
            f"scripts/aggregate.py ({engine[fs.compute_engine]}) before each materialization; this view reads "
            f"them. Feast 0.67's BatchFeatureView aggregations are not used: its registry drops them, so "
            "materialization and retrieval would look for these columns in the raw events"
        )
        source_var = _var(f"{v.name}_rollup", "source")
        tags["aggregated_from"] = v.source
    if isinstance(src, StreamSourceSpec):
        tags["ingestion"] = "push"
        notes.append(f"fed by the push source {src.name} (stream {src.topic}); backfilled from {src.batch_source}")
    else:
        tags["ingestion"] = "batch"
    return {
        "name": v.name,
        "var": _var(v.name, "view"),
        "entity_vars": [_var(e, "entity") for e in v.entities],
        "source_var": source_var,
        "ttl": _timedelta(duration_seconds(v.ttl)),
        "fields": fields,
        "description": v.description,
        "tags": tags,
        "notes": _wrap(notes),
    }


def _field_dtype(spec: Spec, ref: str) -> str | None:
    view, _, field = ref.partition(".")
    holders: list[list[FeatureField]] = []
    v = spec.view(view)
    if v is not None:
        holders.append(v.fields)
    s = spec.source(view)
    if isinstance(s, RequestSourceSpec):
        holders.append(s.fields)
    if spec.features is not None:
        holders += [o.fields for o in spec.features.on_demand if o.name == view]
    for fields in holders:
        for f in fields:
            if f.name == field:
                return f.dtype
    return None


def _odfv(spec: Spec, o: OnDemandViewSpec, dropped: set[str], fs: FeatureStoreArch) -> dict[str, Any]:
    inputs = [protected_ref(r, fs) for r in o.inputs if r not in dropped]
    by_view: dict[str, list[str]] = {}
    for ref in inputs:
        view, _, field = ref.partition(".")
        by_view.setdefault(view, []).append(field)
    source_exprs = []
    for view, fields in by_view.items():
        if spec.view(view) is not None:
            source_exprs.append(f"{_var(view, 'view')}[{_pylist(fields)}]")
        else:
            source_exprs.append(_var(view, "source"))
    names = [r.partition(".")[2] for r in inputs]
    numeric = [r.partition(".")[2] for r in inputs if (_field_dtype(spec, r) or "") in NUMERIC]
    outputs = []
    for i, f in enumerate(o.fields):
        outputs.append(_odfv_output(f, names, numeric, i))
    return {
        "name": o.name,
        "var": _var(o.name, "odfv"),
        "source_exprs": source_exprs,
        "outputs": outputs,
        "description": o.description,
        "numeric": any(f["kind"] in ("ratio", "compare") for f in outputs),
        "now": any(f["kind"] == "timestamp" for f in outputs),
        "columns": any(f["kind"] in ("bytes", "join") or f.get("others") for f in outputs),
    }


# how a python-mode transformation makes a value of each numeric dtype that Feast reads as that dtype (a Python
# float is a Float64 and an int an Int64 to Feast; numpy scalars name the narrower ones)
ODFV_CASTS = {"int32": "np.int32", "int64": "", "float32": "np.float32", "float64": "float", "bool": "bool"}


def _odfv_output(f: FeatureField, names: list[str], numeric: list[str], i: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f.name,
        "dtype": FEAST_TYPES[f.dtype],
        "spec_dtype": f.dtype,
        "inputs": names,
        "cast": ODFV_CASTS.get(f.dtype, ""),
    }
    if f.dtype == "unix_timestamp":
        out |= {"kind": "timestamp", "formula_doc": f"{f.name} = the request time"}
    elif f.dtype in ("string", "bytes"):
        out |= {"kind": f.dtype if f.dtype == "bytes" else "join", "formula_doc": f"{f.name} = '|'.join({names})"}
    elif not numeric:
        out |= {"kind": "length", "numerator": names[0], "formula_doc": f"{f.name} = len(str({names[0]}))"}
    else:
        num = numeric[i % len(numeric)]
        others = [n for n in numeric if n != num]
        rest = f"mean({', '.join(others)})" if others else "0"
        if f.dtype == "bool":
            out |= {"kind": "compare", "formula_doc": f"{f.name} = {num} > |{rest}|"}
        else:
            out |= {"kind": "ratio", "formula_doc": f"{f.name} = {num} / (|{rest}| + 1)"}
        out |= {"numerator": num, "others": others}
        if f.dtype == "float64":
            out["cast"] = ""  # the ratio is a Python float already
    return out


def hashed_ref(ref: str) -> str:
    """Where a hashed personal field is served: `view.field` -> `view.field_sha256` (hashed at write time)."""
    view, _, field = ref.partition(".")
    return f"{view}.{field}{HASH_SUFFIX}"


def encrypted_ref(ref: str) -> str:
    """Where an encrypted personal field is served: `view.field` -> `view.field_encrypted` (its ciphertext)."""
    view, _, field = ref.partition(".")
    return f"{view}.{field}{ENCRYPT_SUFFIX}"


def protected_ref(ref: str, fs: FeatureStoreArch) -> str:
    """The field a reference is read as: its hash or its ciphertext when personal, else itself."""
    if ref in fs.hashed_fields:
        return hashed_ref(ref)
    if ref in fs.encrypted_fields:
        return encrypted_ref(ref)
    return ref


# ------------------------------------------------------------------ services, permissions
def served_features(arch: Architecture, service: str) -> list[str]:
    """The `view.field` references a feature service serves, in order, after PII handling.

    Dropped personal fields are left out; hashed ones are replaced by their hash. Training and serving
    use this order for model inputs.
    """
    fs = arch.feature_store
    svc = arch.spec.service(service)
    if fs is None or svc is None:
        return []
    return _served_refs(svc.features, fs)


def _served_refs(refs: list[str], fs: FeatureStoreArch) -> list[str]:
    dropped = set(fs.dropped_fields)
    return list(dict.fromkeys(protected_ref(ref, fs) for ref in refs if ref not in dropped))


def _service(spec: Spec, s: Any, fs: FeatureStoreArch) -> dict[str, Any]:
    refs = _served_refs(s.features, fs)
    projections: dict[str, list[str]] = {}
    for ref in refs:
        view, _, field = ref.partition(".")
        projections.setdefault(view, []).append(field)
    declared_views = {v.name for v in spec.features.views} if spec.features else set()
    catalog = set(fs.catalog_views)
    notes = []
    for ref in s.features:
        if ref in fs.dropped_fields:
            notes.append(f"{ref} left out: personal data with privacy.pii_handling drop")
        elif ref in fs.hashed_fields:
            notes.append(f"{ref} served as its salted hash {hashed_ref(ref)}")
        elif ref in fs.encrypted_fields:
            notes.append(f"{ref} served as its ciphertext {encrypted_ref(ref)} (roles granted read_pii decrypt it)")
    return {
        "name": s.name,
        "var": _var(s.name, "service"),
        "projections": [
            {"var": _var(view, "view" if view in declared_views else "odfv"), "fields": fields}
            for view, fields in projections.items()
            if view not in catalog
        ],
        # the catalog's views, by reference: Feast resolves `view:field` against the registry when it applies
        "catalog_refs": [f"{view}:{f}" for view, fields in projections.items() if view in catalog for f in fields],
        "description": s.description,
        "notes": _wrap(notes),
        "features": refs,
    }


def _service_imports(services: list[dict[str, Any]]) -> list[str]:
    by_module: dict[str, set[str]] = {"views": set(), "on_demand": set()}
    for s in services:
        for p in s["projections"]:
            var = p["var"]
            module = "views" if var.endswith("_view") else "on_demand"
            by_module[module].add(var)
    return _import_lines({k: sorted(v) for k, v in by_module.items()})


def _pii_note(fs: FeatureStoreArch) -> str:
    if fs.dropped_fields:
        return "Personal fields (privacy.pii_handling drop) are in no feature view, so no service can serve them."
    if fs.hashed_fields:
        return (
            "Personal fields (privacy.pii_handling hash) are hashed before they are written\n"
            "(scripts/protect_pii.py): the stores hold only salted hashes."
        )
    if fs.encrypted_fields:
        return (
            "Personal fields (privacy.pii_handling encrypt) are encrypted before they are written\n"
            "(scripts/protect_pii.py): the stores hold only ciphertext; roles granted read_pii decrypt it."
        )
    return ""


def _permissions(arch: Architecture) -> list[dict[str, Any]]:
    out = []
    for role, can in arch.privacy.permissions:
        actions = {a for c in can for a in ACTIONS[c]}  # read_pii alone is refused by validation
        out.append(
            {
                "name": role,
                "var": _var(role, "permission"),
                "role": role,
                "actions": [a for a in ACTION_ORDER if a in actions],
                "spec_actions": ",".join(can),
            }
        )
    return out


# ------------------------------------------------------------------ sample data
def _sample_model(arch: Architecture, batch: list[dict[str, Any]]) -> dict[str, Any]:
    """What scripts/generate_sample_data.py writes: per batch source, its columns and their meaning."""
    spec = arch.spec
    assert spec.features is not None
    entities = {e.name: {"join_key": e.join_key, "dtype": e.dtype} for e in spec.entities}
    # which views read each batch source (directly or through a stream landing in it)
    batch_of = {s.name: s.name for s in spec.sources if isinstance(s, FileSourceSpec | TableSourceSpec)}
    batch_of |= {s.name: s.batch_source for s in spec.sources if isinstance(s, StreamSourceSpec)}
    label = spec.training.label
    label_entities, label_request = _label_inputs(arch)
    regression = spec.training.min_quality is not None and spec.training.min_quality.metric in ("rmse", "mae", "r2")
    sources = []
    for b in batch:
        views = [v for v in spec.features.views if batch_of.get(v.source) == b["name"]]
        ents = list(dict.fromkeys(e for v in views for e in v.entities))
        fields = [
            {"name": f.name, "dtype": f.dtype, "pii": f.pii, "entities": list(v.entities)}
            for v in views
            for f in v.fields
        ]
        grains = [GRANULARITY_SECONDS[v.granularity] for v in views if v.granularity]
        ttls = [duration_seconds(v.ttl) for v in views]
        src: dict[str, Any] = {
            "name": b["name"],
            "path": b["path"],
            "table": b["load_table"],
            "timestamp_field": b["timestamp_field"],
            "created_timestamp_field": b["created_timestamp_field"],
            "entities": ents,
            "fields": fields,
            "step_s": min(grains) if grains else 3600,
            "min_ttl_s": min(ttls) if ttls else 0,
            "label": None,
            "request_fields": [],
            "events": _sample_events(views),
        }
        if label is not None and label.source == b["name"]:
            src["entities"] = list(dict.fromkeys([*ents, *label_entities]))
            src["label"] = {
                "field": label.field,
                "kind": "regression" if regression else "classification",
                "classes": 0 if regression else label_classes(arch),
            }
            src["request_fields"] = label_request
        elif not views:
            src["entities"] = sorted(entities)
        sources.append(src)
    return {"entities": entities, "sources": sources}


SAMPLE_EVENTS_PER_ID = (20, 400)  # raw events per id of a source's first entity, at least and at most


def _sample_events(views: list[FeatureViewSpec]) -> dict[str, Any] | None:
    """How the sample data draws raw events for the views of a source that some of them aggregate (None: none).

    Events at random times over two of the longest windows and two of the coarsest grains (`span_s`; labels
    come after the first longest window, `warmup_s`, where the windows are full), at least three in each
    view's longest window and two in each coarsest grain per id, so every rollup holds several; and one per
    id in the last grain of each granularity (`grains_s`), so the rollups the serving client reads hold one.
    A view of the same source that does not aggregate serves each id's latest event within its ttl: one per id
    in the last half of the shortest such ttl (`recent_s`, 0 when there is none), and at least two a ttl over
    the span, so labels find one too.
    """
    rolled = [v for v in views if v.aggregations and v.granularity]
    if not rolled:
        return None
    longest = {v.name: max(duration_seconds(w) for a in v.aggregations for w in a.windows) for v in rolled}
    grains = sorted({GRANULARITY_SECONDS[v.granularity] for v in rolled if v.granularity})
    ttls = [duration_seconds(v.ttl) for v in views if not (v.aggregations and v.granularity)]
    span = 2 * max(longest.values()) + 2 * grains[-1]
    rate = max(3 / min(longest.values()), 2 / grains[-1], *(2 / ttl for ttl in ttls))
    low, high = SAMPLE_EVENTS_PER_ID
    return {
        "span_s": span,
        "warmup_s": max(longest.values()),
        "grains_s": grains,
        "recent_s": max(1, min(ttls) // 2) if ttls else 0,
        "per_id": min(high, max(low, math.ceil(rate * span))),
    }


def _label_inputs(arch: Architecture) -> tuple[list[str], list[dict[str, str]]]:
    """Entities and request values a label row needs to fetch the trained models' features."""
    spec = arch.spec
    assert spec.features is not None
    ents: list[str] = []
    request: dict[str, str] = {}
    for m in spec.serving.models:
        svc = spec.service(m.feature_service or "")
        if svc is None:
            continue
        for ref in svc.features:
            view, _, _ = ref.partition(".")
            v = spec.view(view)
            if v is not None:
                ents += v.entities
            for o in spec.features.on_demand:
                if o.name != view:
                    continue
                for inp in o.inputs:
                    src_name = inp.partition(".")[0]
                    iv = spec.view(src_name)
                    if iv is not None:
                        ents += iv.entities
                    src = spec.source(src_name)
                    if isinstance(src, RequestSourceSpec):  # Feast asks for every field of the source
                        request |= {f.name: f.dtype for f in src.fields}
    if not ents:
        ents = [v.entities[0] for v in spec.features.views[:1]]
    return list(dict.fromkeys(ents)), [{"name": k, "dtype": v} for k, v in request.items()]


# ------------------------------------------------------------------ helpers
def _wrap(notes: list[str]) -> list[str]:
    """Comment lines: each note wrapped to 100 columns."""
    return [line for note in notes for line in _wrapped(note)]


@lru_cache(maxsize=4096)
def _wrapped(note: str) -> tuple[str, ...]:
    # views that share a source share its notes: wrap each distinct note once
    return tuple(textwrap.wrap(note, width=100))


def _var(name: str, kind: str) -> str:
    return f"{name}_{kind}"


def _pylist(items: list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def _types(fields: Any) -> list[str]:
    return sorted({f["dtype"] for f in fields})


def _import_lines(by_module: dict[str, list[str]]) -> list[str]:
    return [f"from {mod} import {', '.join(sorted(names))}" for mod, names in sorted(by_module.items()) if names]


def _grouped_imports(pairs: list[tuple[str, str]]) -> list[str]:
    by_module: dict[str, set[str]] = {}
    for module, name in pairs:
        by_module.setdefault(module, set()).add(name)
    return [f"from {m} import {', '.join(sorted(names))}" for m, names in sorted(by_module.items())]


def _timedelta(seconds: int) -> str:
    for unit, size in (("weeks", 604800), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"timedelta({unit}={seconds // size})"
    return f"timedelta(seconds={seconds})"


def _uses_postgres(fs: FeatureStoreArch) -> bool:
    return "postgres" in (fs.online_store, fs.offline_store)


def _own_registry_url(fs: FeatureStoreArch) -> bool:
    """The SQL registry's URL is a variable of its own: a joined catalog's, or ours where no PostgreSQL is used."""
    return fs.registry == "sql" and (bool(fs.catalog_views) or not _uses_postgres(fs))


def _registry_url(fs: FeatureStoreArch) -> str:
    if fs.registry != "sql":
        return fs.registry_path or "data/registry.db"
    if not _own_registry_url(fs):
        return (
            "postgresql+psycopg://${POSTGRES_USER}:${POSTGRES_PASSWORD}@${POSTGRES_HOST}:${POSTGRES_PORT}/"
            "${POSTGRES_DB}?sslmode=${POSTGRES_SSLMODE}"
        )
    return "${FEAST_REGISTRY_URL}"


def _warehouse_env(offline: str, residency: str) -> list[EnvVar]:
    table: dict[str, list[tuple[str, bool, str]]] = {
        "bigquery": [
            ("BIGQUERY_PROJECT", False, "GCP project of the BigQuery dataset"),
            ("BIGQUERY_DATASET", False, "BigQuery dataset"),
            ("BIGQUERY_LOCATION", False, "BigQuery location, e.g. EU"),
        ],
        "snowflake": [
            ("SNOWFLAKE_ACCOUNT", False, "Snowflake account"),
            ("SNOWFLAKE_USER", False, "Snowflake user"),
            ("SNOWFLAKE_PASSWORD", True, "Snowflake password"),
            ("SNOWFLAKE_ROLE", False, "Snowflake role"),
            ("SNOWFLAKE_WAREHOUSE", False, "Snowflake warehouse"),
            ("SNOWFLAKE_DATABASE", False, "Snowflake database"),
            ("SNOWFLAKE_SCHEMA", False, "Snowflake schema"),
        ],
        "redshift": [
            ("REDSHIFT_CLUSTER_ID", False, "Redshift cluster id"),
            ("AWS_REGION", False, "AWS region"),
            ("REDSHIFT_DATABASE", False, "Redshift database"),
            ("REDSHIFT_USER", False, "Redshift user"),
            ("REDSHIFT_S3_STAGING_LOCATION", False, "s3:// staging location for unloads"),
            ("REDSHIFT_IAM_ROLE", False, "IAM role Redshift assumes for S3"),
        ],
        "spark": [
            ("SPARK_MASTER", False, "Spark master URL, e.g. local[*] or spark://host:7077"),
            ("SPARK_LAKE_ROOT", False, "where Spark reads the lake's parquet files: a folder or URI (s3a://...)"),
        ],
    }
    defaults = {
        "SPARK_MASTER": "local[*]",
        "SPARK_LAKE_ROOT": "feature_repo",
        "BIGQUERY_LOCATION": "US",
        "SNOWFLAKE_SCHEMA": "PUBLIC",
    }
    from .deploy import WAREHOUSE_LOCATION

    # privacy.residency eu/us: the warehouse's location inside it
    defaults |= WAREHOUSE_LOCATION.get(residency, {})
    return [EnvVar(n, defaults.get(n, ""), secret, d) for n, secret, d in table.get(offline, [])]
