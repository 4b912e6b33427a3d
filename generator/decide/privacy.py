"""Privacy, autonomy, delivery and deployment rules."""

from __future__ import annotations

from requirements_spec.types import duration_seconds

from .context import Outcome, ReqPath, RuleContext
from .registry import rule
from .thresholds import THRESHOLDS

HANDLING: ReqPath = ("privacy", "pii_handling")


def salt_env(project: str) -> str:
    return "PII_HASH_SALT"  # what scripts/protect_pii.py reads, the same name in every project


@rule(
    "pii",
    title="PII handling: what happens to fields marked pii",
    reads=("privacy.pii_handling", "features.views[].fields[].pii"),
    alternatives=("drop", "hash", "encrypt", "allow"),
    choices=("drop", "hash", "encrypt", "allow"),
)
def pii(ctx: RuleContext) -> Outcome:
    """drop: never in a feature service (served only if a finding is ignored — it is an error);
    hash: hashed at write time (a protected copy of each source holds a salted SHA-256 instead of the
    value, the salt read from the environment), so no store or training set ever holds the value;
    encrypt: encrypted at rest, decrypted only for the roles allowed to read; allow: kept as is,
    with a warning in the review."""
    handling = ctx.spec.privacy.pii_handling
    fields = ctx.pii_fields()
    reads: list[ReqPath] = [HANDLING, *(p for p, _ in fields)]
    names = ", ".join(ref for _, ref in fields)
    what = {
        "drop": "kept out of every feature service and the training set",
        "hash": f"hashed before they are written: stores and training sets hold only a salted hash "
        f"(salt in ${salt_env(ctx.spec.project.name)})",
        "encrypt": "encrypted at rest; only roles allowed to read can decrypt them",
        "allow": "kept and served as is; the review shows a warning",
    }[handling]
    others = {
        "drop": "the only handling that cannot leak",
        "hash": "joinable without revealing the value",
        "encrypt": "reversible for the roles that need it",
        "allow": "no protection",
    }
    return Outcome(
        handling,
        f"pii fields ({names}) are {what}" if fields else f"no field is marked pii; any marked later is {what}",
        reads,
        [(h, f"{why}; the spec asks for {handling}") for h, why in others.items() if h != handling],
        value={ref: handling for _, ref in fields},
    )


@rule(
    "residency",
    title="Residency and autonomy: where the system may run and fetch from",
    reads=("privacy.residency", "autonomy"),
    alternatives=("local mirror", "region pinned", "any"),
)
def residency(ctx: RuleContext) -> Outcome:
    """on_prem residency or air-gapped autonomy: no cloud stores, registries or platforms; images and
    packages come from a local mirror. eu/us residency: every store is pinned to that region."""
    spec = ctx.spec
    res, aut = spec.privacy.residency, spec.autonomy
    reads: list[ReqPath] = [("privacy", "residency"), ("autonomy",)]
    if res == "on_prem" or aut == "air_gapped":
        why = "air-gapped: nothing beyond the site is reachable" if aut == "air_gapped" else "data stay on premises"
        return Outcome(
            "local mirror",
            f"{why}: no cloud services; container images and Python packages come from a local mirror",
            reads,
            [("public registries", "not reachable or not allowed from the site")],
            value=True,
        )
    if res in ("eu", "us"):
        return Outcome(
            f"region {res}",
            f"data must stay in the {res.upper()}: stores and backups are pinned to that region",
            reads,
            [("any region", f"residency is {res}")],
            value=False,
        )
    return Outcome("any", "no residency constraint", reads, [("local mirror", "nothing requires one")], value=False)


@rule(
    "retention",
    title="Retention: how long data are kept",
    reads=("privacy.retention", "features.views[].ttl"),
    alternatives=("purge job", "none"),
    thresholds=("purge_cron",),
)
def retention(ctx: RuleContext) -> Outcome:
    """With a retention, feature TTLs stay within it and a scheduled purge job deletes older rows
    from the offline data (daily at `purge_cron`)."""
    ret = ctx.spec.privacy.retention
    if ret is None:
        return Outcome(
            "none",
            "no retention: data are kept until someone deletes them",
            [("privacy", "retention")],
            [("purge job", "no retention is required")],
            value={"retention_s": None, "purge_cron": None},
        )
    cron = THRESHOLDS["purge_cron"]
    return Outcome(
        f"purge after {ret}",
        f"rows older than {ret} are purged daily ({cron}); view TTLs stay within the retention",
        [("privacy", "retention")],
        [("none", f"data older than {ret} would be kept against the requirement")],
        value={"retention_s": duration_seconds(ret), "purge_cron": cron},
    )


@rule(
    "access",
    title="Access: who may read and write features",
    reads=("privacy.access",),
    alternatives=("feast permissions", "open"),
)
def access(ctx: RuleContext) -> Outcome:
    """Each role becomes Feast permissions (online_read, offline_read, write, materialize, describe)
    on the feature services and views; no roles means the feature store is open to its network."""
    roles = ctx.spec.privacy.access
    if not roles:
        # embedded and batch systems run no feature server: their feature store is read by their own jobs
        where = "feature store" if ctx.spec.serving.mode in ("embedded", "batch") else "feature server"
        return Outcome(
            "open",
            f"no roles declared: anyone who reaches the {where} can read",
            [("privacy", "access")],
            [("feast permissions", "no roles to grant")],
            value=[],
        )
    text = "; ".join(f"{a.role}: {', '.join(a.can)}" for a in roles)
    return Outcome(
        f"feast permissions for {len(roles)} role{'s' if len(roles) != 1 else ''}",
        f"Feast permissions per feature service and view: {text}",
        [("privacy", "access", i) for i in range(len(roles))],
        [("open", "any client could read every feature")],
        value=[(a.role, list(a.can)) for a in roles],
    )
