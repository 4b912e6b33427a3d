"""Privacy and autonomy: the rules (pii handling, residency, retention, access) and their findings."""

from __future__ import annotations

from collections.abc import Iterator

from requirements_spec.types import duration_seconds

from .context import Conflict, Outcome, ReqPath, RuleContext
from .registry import finding, rule
from .thresholds import THRESHOLDS

HANDLING: ReqPath = ("privacy", "pii_handling")
KEY_ENV = "PII_ENCRYPTION_KEY"  # encrypt: the Fernet key scripts/protect_pii.py reads


def salt_env(project: str) -> str:
    """The environment variable holding the salt of hashed pii fields."""
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
    encrypt: encrypted at write time (Fernet, the key read from the environment), so stores and
    training sets hold only ciphertext, decrypted only for the roles granted `read_pii`; allow: kept
    as is, with a warning in the review.
    """
    handling = ctx.spec.privacy.pii_handling
    fields = ctx.pii_fields()
    reads: list[ReqPath] = [HANDLING, *(p for p, _ in fields)]
    names = ", ".join(ref for _, ref in fields)
    what = {
        "drop": "kept out of every feature service and the training set",
        "hash": f"hashed before they are written: stores and training sets hold only a salted hash "
        f"(salt in ${salt_env(ctx.spec.project.name)})",
        "encrypt": f"encrypted before they are written: stores and training sets hold only ciphertext (key in "
        f"${KEY_ENV}); only roles granted read_pii decrypt them",
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


# privacy.residency eu/us on Kubernetes: the provisioner of the StorageClass <residency>-resident every volume uses.
# The model repository is ReadWriteMany, so a file-share CSI driver: the one of the cloud the warehouse runs in,
# or, when the spec names no cloud, the Kubernetes NFS CSI driver (any cluster, on premises too).
RESIDENT_PROVISIONERS = {
    "bigquery": ("filestore.csi.storage.gke.io", "Google Cloud Filestore, the warehouse being BigQuery"),
    "redshift": ("efs.csi.aws.com", "Amazon EFS access points, the warehouse being Redshift"),
}
DEFAULT_RESIDENT_PROVISIONER = ("nfs.csi.k8s.io", "the Kubernetes NFS CSI driver, the spec naming no cloud")
KUBERNETES_PLATFORMS = ("kubernetes", "openshift")


def resident_provisioner(warehouse: str) -> tuple[str, str]:
    """The provisioner of the resident StorageClass and why it is that one, from the warehouse's cloud."""
    return RESIDENT_PROVISIONERS.get(warehouse, DEFAULT_RESIDENT_PROVISIONER)


@rule(
    "residency",
    title="Residency and autonomy: where the system may run and fetch from",
    reads=("privacy.residency", "autonomy", "existing.platform", "existing.warehouse"),
    alternatives=("local mirror", "region pinned", "any"),
)
def residency(ctx: RuleContext) -> Outcome:
    """on_prem residency or air-gapped autonomy: no cloud stores, registries or platforms; images and
    packages come from a local mirror. eu/us residency: every store is pinned to that region; on
    Kubernetes every pod by node affinity on the region label, and every volume by a StorageClass
    restricted to the region's nodes (its provisioner: the file-share driver of the warehouse's cloud,
    else the Kubernetes NFS CSI driver).
    """
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
        why = f"data must stay in the {res.upper()}: stores and backups are pinned to that region"
        if spec.existing.platform in KUBERNETES_PLATFORMS:
            provisioner, because = resident_provisioner(spec.existing.warehouse)
            why += (
                f"; pods by node affinity on the region label, volumes by the StorageClass {res}-resident "
                f"(allowed topologies: the region; provisioner {provisioner}: {because})"
            )
            reads += [PLATFORM, WAREHOUSE]
        return Outcome(
            f"region {res}",
            why,
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
    from the offline data (daily at `purge_cron`).
    """
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
    on the feature services and views; no roles means the feature store is open to its network.
    """
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


# ---------------------------------------------------------------- findings: autonomy and residency
CLOUD_WAREHOUSES = ("bigquery", "snowflake", "redshift")
CLOUD_PLATFORMS = ("sagemaker", "heroku")
WAREHOUSE: ReqPath = ("existing", "warehouse")
PLATFORM: ReqPath = ("existing", "platform")
AUTONOMY: ReqPath = ("autonomy",)
RESIDENCY: ReqPath = ("privacy", "residency")


@finding("autonomy.airgap_cloud_warehouse", "error", title="Air-gapped system with a cloud warehouse")
def airgap_cloud_warehouse(ctx: RuleContext) -> Iterator[Conflict]:
    """An air-gapped site reaches nothing beyond itself, so BigQuery, Snowflake or Redshift cannot be its
    warehouse.
    """
    wh = ctx.spec.existing.warehouse
    if ctx.spec.autonomy == "air_gapped" and wh in CLOUD_WAREHOUSES:
        yield Conflict(
            f"autonomy is air_gapped but the warehouse is {wh}, a cloud service the site cannot reach",
            [AUTONOMY, WAREHOUSE],
            "use an on-site warehouse (files, postgres, spark) or set autonomy to self_hosted",
        )


@finding("autonomy.airgap_cloud_platform", "error", title="Air-gapped system on a cloud platform")
def airgap_cloud_platform(ctx: RuleContext) -> Iterator[Conflict]:
    """SageMaker and Heroku are cloud services; an air-gapped system cannot run on them."""
    platform = ctx.spec.existing.platform
    if ctx.spec.autonomy == "air_gapped" and platform in CLOUD_PLATFORMS:
        yield Conflict(
            f"autonomy is air_gapped but the platform is {platform}, a cloud service",
            [AUTONOMY, PLATFORM],
            "deploy on local, docker-compose or an on-site kubernetes, or set autonomy to cloud",
        )


@finding("residency.on_prem_cloud_platform", "error", title="On-premises residency on a cloud platform")
def on_prem_cloud_platform(ctx: RuleContext) -> Iterator[Conflict]:
    """Data that must stay on premises cannot be served from SageMaker or Heroku."""
    platform = ctx.spec.existing.platform
    if ctx.spec.privacy.residency == "on_prem" and platform in CLOUD_PLATFORMS:
        yield Conflict(
            f"residency is on_prem but the platform is {platform}, which runs in the provider's cloud",
            [RESIDENCY, PLATFORM],
            "deploy on an on-premises platform (local, docker-compose, kubernetes, openshift) or relax residency",
        )


@finding("residency.on_prem_cloud_warehouse", "error", title="On-premises residency with a cloud warehouse")
def on_prem_cloud_warehouse(ctx: RuleContext) -> Iterator[Conflict]:
    """Data that must stay on premises cannot live in BigQuery, Snowflake or Redshift."""
    wh = ctx.spec.existing.warehouse
    if ctx.spec.privacy.residency == "on_prem" and wh in CLOUD_WAREHOUSES:
        yield Conflict(
            f"residency is on_prem but the warehouse is {wh}, a cloud service",
            [RESIDENCY, WAREHOUSE],
            "keep the data in an on-premises warehouse (files, postgres, spark) or relax residency",
        )


@finding("residency.on_prem_cloud_autonomy", "error", title="On-premises residency with cloud autonomy")
def on_prem_cloud_autonomy(ctx: RuleContext) -> Iterator[Conflict]:
    """autonomy `cloud` runs the system on a cloud provider; residency `on_prem` forbids exactly that."""
    if ctx.spec.privacy.residency == "on_prem" and ctx.spec.autonomy == "cloud":
        yield Conflict(
            "residency is on_prem but autonomy is cloud",
            [RESIDENCY, AUTONOMY],
            "set autonomy to self_hosted or air_gapped, or relax residency",
        )


@finding("residency.region_not_enforced", "warning", title="Regional residency on a cloud service archgen cannot pin")
def region_not_enforced(ctx: RuleContext) -> Iterator[Conflict]:
    """residency eu/us with a cloud warehouse or platform: archgen cannot check where that service keeps
    the data; pin the dataset and endpoint regions yourself, or waive with the contract that does.
    """
    wh, platform, res = ctx.spec.existing.warehouse, ctx.spec.existing.platform, ctx.spec.privacy.residency
    if res in ("eu", "us") and (wh in CLOUD_WAREHOUSES or platform in CLOUD_PLATFORMS):
        cited = (
            [RESIDENCY]
            + ([WAREHOUSE] if wh in CLOUD_WAREHOUSES else [])
            + ([PLATFORM] if platform in CLOUD_PLATFORMS else [])
        )
        yield Conflict(
            f"residency {res}: archgen cannot check the region of "
            + " and ".join(x for x in (wh, platform) if x in CLOUD_WAREHOUSES + CLOUD_PLATFORMS),
            cited,
            f"pin datasets and endpoints to the {res.upper()} region, then waive this warning citing where",
        )


# ---------------------------------------------------------------- findings: personal data
def _pii_in_services(ctx: RuleContext) -> list[tuple[ReqPath, str]]:
    """The pii fields feature services expose: the path of each listing and its ``view.field``."""
    f = ctx.spec.features
    if f is None:
        return []
    pii = {ref for _, ref in ctx.pii_fields()}
    return [
        (("features", "services", i, "features", j), ref)
        for i, s in enumerate(f.services)
        for j, ref in enumerate(s.features)
        if ref in pii
    ]


@finding(
    "privacy.pii_served_while_drop", "error", title="A feature service exposes a pii field while pii_handling is drop"
)
def pii_served_while_drop(ctx: RuleContext) -> Iterator[Conflict]:
    """drop means a pii field never leaves the feature store; a service listing it contradicts that.
    Validation accepts the spec, the decision engine refuses it.
    """
    if ctx.spec.privacy.pii_handling != "drop":
        return
    field_paths = {ref: p for p, ref in ctx.pii_fields()}
    for path, ref in _pii_in_services(ctx):
        yield Conflict(
            f"feature service serves {ref}, a pii field, while pii_handling is drop",
            [path, field_paths[ref], HANDLING],
            f"remove {ref} from the service, or set privacy.pii_handling to hash",
        )


@finding("privacy.pii_allowed", "warning", title="PII kept and served as is")
def pii_allowed(ctx: RuleContext) -> Iterator[Conflict]:
    """pii_handling allow keeps personal data in clear text; the review must accept that risk."""
    fields = ctx.pii_fields()
    if ctx.spec.privacy.pii_handling == "allow" and fields:
        yield Conflict(
            "pii fields are kept and served in clear text: " + ", ".join(ref for _, ref in fields),
            [HANDLING, *(p for p, _ in fields)],
            "use pii_handling hash or encrypt, or waive with the legal basis for keeping them",
        )


@finding("privacy.ttl_exceeds_retention", "error", title="A view keeps values longer than the retention")
def ttl_exceeds_retention(ctx: RuleContext) -> Iterator[Conflict]:
    """A TTL above privacy.retention serves values the purge job must already have deleted."""
    ret = ctx.spec.privacy.retention
    if ret is None or ctx.spec.features is None:
        return
    for i, v in enumerate(ctx.spec.features.views):
        if duration_seconds(v.ttl) > duration_seconds(ret):
            yield Conflict(
                f"view {v.name} keeps values for {v.ttl}, longer than the {ret} retention",
                [("features", "views", i, "ttl"), ("privacy", "retention")],
                f"lower the ttl of {v.name} to {ret} or less",
            )


@finding("privacy.pii_without_retention", "warning", title="PII kept with no retention")
def pii_without_retention(ctx: RuleContext) -> Iterator[Conflict]:
    """Personal data (hashed, encrypted or allowed) is kept forever when no retention is set."""
    handling = ctx.spec.privacy.pii_handling
    if ctx.spec.privacy.retention is None and ctx.pii_fields() and handling != "drop":
        yield Conflict(
            f"pii fields are kept ({handling}) with no retention",
            [("privacy", "retention"), HANDLING],
            "set privacy.retention (e.g. 365d) so a purge job deletes them",
        )


def _feature_server_runs(ctx: RuleContext) -> bool:
    """A Feast feature server is deployed: features are read online, over the network (as feature_server_runs)."""
    sv = ctx.spec.serving
    return (
        ctx.spec.features is not None
        and ctx.choice("online_store") is not None
        and sv.mode in ("online", "async")
        and any(m.feature_service for m in sv.models)
    )


def _pii_open(ctx: RuleContext) -> list[tuple[ReqPath, str]]:
    """The pii fields services expose (hashed, encrypted or as is) while privacy.access declares no role."""
    if ctx.spec.privacy.pii_handling == "drop" or ctx.spec.privacy.access:
        return []
    return _pii_in_services(ctx)


@finding(
    "privacy.pii_served_over_network_without_access_control",
    "error",
    title="A network feature server serves personal data to anyone who reaches it",
    waivable=True,
)
def pii_served_over_network_without_access_control(ctx: RuleContext) -> Iterator[Conflict]:
    """A feature server runs (features are read online over the network) and a feature service serves personal
    fields (hashed, encrypted or as is) while privacy.access declares no role: no authorization is generated,
    so any client that reaches the server reads them. Declare roles, or accept the risk with a waiver and its
    justification (e.g. the network itself admits only the serving path).
    """
    served = _pii_open(ctx)
    if served and _feature_server_runs(ctx):
        handling = ctx.spec.privacy.pii_handling
        yield Conflict(
            f"a feature server serves pii fields ({handling}) over the network but privacy.access declares no role",
            [("privacy", "access"), HANDLING, ("serving", "mode"), *(p for p, _ in served)],
            "declare roles under privacy.access (e.g. {role: scoring, can: [online_read]}), or waive "
            "privacy.pii_served_over_network_without_access_control with the justification",
        )


@finding("privacy.pii_served_without_access_control", "warning", title="PII served with no access roles")
def pii_served_without_access_control(ctx: RuleContext) -> Iterator[Conflict]:
    """A feature service exposes pii-derived fields while privacy.access grants nothing, and every reader is in
    process (no feature server): access is whoever holds the store credentials (encrypt needs roles to decrypt
    for). Served over the network, the same is the error privacy.pii_served_over_network_without_access_control.
    """
    served = _pii_open(ctx)
    if served and not _feature_server_runs(ctx):
        handling = ctx.spec.privacy.pii_handling
        yield Conflict(
            f"services expose pii fields ({handling}) but privacy.access declares no role",
            [("privacy", "access"), HANDLING, *(p for p, _ in served)],
            "declare roles under privacy.access (e.g. {role: scoring, can: [online_read]})",
        )


RULES = (pii, residency, retention, access)
FINDINGS = (
    airgap_cloud_warehouse,
    airgap_cloud_platform,
    on_prem_cloud_platform,
    on_prem_cloud_warehouse,
    on_prem_cloud_autonomy,
    region_not_enforced,
    pii_served_while_drop,
    pii_allowed,
    ttl_exceeds_retention,
    pii_without_retention,
    pii_served_over_network_without_access_control,
    pii_served_without_access_control,
)
