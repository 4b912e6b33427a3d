"""Delivery and deployment: the rules (MLOps level, where the system runs, the team's seams) and their findings."""

from __future__ import annotations

from collections.abc import Iterator

from .context import Conflict, Outcome, ReqPath, RuleContext
from .privacy import CLOUD_PLATFORMS, KUBERNETES_PLATFORMS
from .registry import finding, rule

PLATFORM: ReqPath = ("existing", "platform")
ORCHESTRATOR: ReqPath = ("existing", "orchestrator")


@rule(
    "delivery",
    title="Delivery: how much of the ML lifecycle is automated (MLOps level)",
    reads=("delivery.mlops_level", "delivery.priority"),
    alternatives=("mlops_level_0", "mlops_level_1", "mlops_level_2"),
    choices=("mlops_level_0", "mlops_level_1", "mlops_level_2"),
)
def delivery(ctx: RuleContext) -> Outcome:
    """Level 0: scripts run by hand, documented. Level 1: the training pipeline runs on the
    scheduler with the quality gate. Level 2: plus CI/CD — a workflow that tests, validates
    configs, trains, gates and deploys.
    """
    level = ctx.spec.delivery.mlops_level
    text = {
        0: "scripts run by hand, each step documented in the README",
        1: "the training pipeline runs on the scheduler and ships only models that pass the quality gate",
        2: "the pipeline runs on the scheduler, and a CI/CD workflow tests, validates configs, trains, gates and "
        "deploys on every change",
    }[level]
    return Outcome(
        f"mlops_level_{level}",
        f"MLOps level {level}: {text}",
        [("delivery", "mlops_level")],
        [(f"mlops_level_{n}", "not what the requirement asks for") for n in (0, 1, 2) if n != level],
    )


def _nothing_deployed(ctx: RuleContext) -> str | None:
    """Why nothing of the system is deployed as a service, or None when something is."""
    mode, platform = ctx.spec.serving.mode, ctx.spec.existing.platform
    if mode == "embedded":
        return "the model runs inside the application, as a library: nothing of this system is deployed as a service"
    if mode == "batch" and platform not in KUBERNETES_PLATFORMS and ctx.spec.existing.orchestrator != "kubernetes":
        return (
            f"batch scoring on {platform} runs as scheduled jobs of the scheduler (pipelines/): nothing answers "
            "requests, nothing is deployed as a service"
        )
    return None


@rule(
    "deployment",
    title="Deployment target",
    reads=(
        "existing.platform",
        "existing.orchestrator",
        "serving.mode",
        "training.resources.accelerator",
        "serving.models[].accelerator",
    ),
    alternatives=("docker_compose", "kubernetes"),
    choices=("docker_compose", "kubernetes"),
    unless=_nothing_deployed,
    applies="a service answers requests (online or async serving), or batch jobs run on Kubernetes (the platform, "
    "or the company's Kubernetes as the orchestrator)",
)
def deployment(ctx: RuleContext) -> Outcome | None:
    """docker-compose for one machine (local, docker-compose); Kubernetes manifests (Triton
    Deployment with autoscaling, Redis, the Feast feature server, CronJobs) on Kubernetes and
    OpenShift; on Kubernetes a batch system's train -> score job runs as pods, and so it does where the
    company's orchestrator is Kubernetes whatever the platform: its CronJobs need the image, the model
    volume and each environment's configuration. SageMaker and Heroku get the docker-compose bundle and a
    finding: their deployment is not generated. Nothing is deployed for an embedded system or a batch
    system whose jobs run on another scheduler off Kubernetes.
    """
    spec = ctx.spec
    platform = spec.existing.platform
    gpu = spec.training.resources.accelerator == "gpu" or any(m.accelerator == "gpu" for m in spec.serving.models)
    if platform in KUBERNETES_PLATFORMS and spec.serving.mode == "batch":
        return Outcome(
            "kubernetes",
            f"platform {platform}: the train -> score job runs as pods of the app image with the model volume; "
            "nothing answers requests, so no server and no autoscaler",
            [PLATFORM, ("serving", "mode")],
            [("docker_compose", "one machine; the cluster is already there")],
            value={"gpu_nodes": gpu},
        )
    if spec.serving.mode == "batch" and spec.existing.orchestrator == "kubernetes":
        return Outcome(
            "kubernetes",
            f"orchestrator kubernetes (platform {platform}): the train -> score job runs as CronJobs on the "
            "company's Kubernetes, as pods of the app image with the model volume and each environment's "
            "configuration; nothing answers requests, so no server and no autoscaler",
            [ORCHESTRATOR, ("serving", "mode")],
            [("docker_compose", "the jobs run on the company's Kubernetes, not on one machine")],
            value={"gpu_nodes": gpu},
        )
    if platform in KUBERNETES_PLATFORMS:
        return Outcome(
            "kubernetes",
            f"platform {platform}: Kubernetes manifests — Triton Deployment with autoscaling, the online store, "
            "the Feast feature server and the jobs",
            [PLATFORM],
            [("docker_compose", "one machine; the cluster is already there")],
            value={"gpu_nodes": gpu},
        )
    return Outcome(
        "docker_compose",
        f"platform {platform}: docker-compose runs everything on one machine",
        [PLATFORM],
        [("kubernetes", "a cluster to run for what one machine handles")],
        value={"gpu_nodes": gpu},
    )


def _seams(ctx: RuleContext, level: str) -> list[str]:
    """The files the team owns at a customization level: generated once, never rewritten by `archgen update`."""
    from .architecture import TRITON_RUNTIMES

    if level == "low":
        return []
    sv = ctx.spec.serving
    from .values import TRAINING_MODE, typed

    mode = typed(ctx, "training_mode", TRAINING_MODE)
    trained = set(mode["trained_models"] if mode is not None else [])
    triton = ctx.choice("serving_runtime") in TRITON_RUNTIMES
    out: list[str] = []
    if triton:
        # model code: the placeholders the team replaces (medium), every python model and BLS pipeline (high)
        for m in sv.models:
            if m.framework in ("python", "sklearn") and (m.name not in trained or level == "high"):
                out.append(f"model_repository/{m.name}/1/model.py")
        if level == "high" and sv.pipeline is not None and sv.pipeline.conditional:
            out.append(f"model_repository/{sv.pipeline.name}/1/model.py")
    if level == "high" and trained:
        out.append("training/train.py")
    return sorted(out)


@rule(
    "customization",
    title="Customization: which files are the team's own seams",
    reads=("customization",),
    alternatives=("low", "medium", "high"),
    choices=("low", "medium", "high"),
    after=("serving_runtime", "training_mode", "pipeline"),
)
def customization(ctx: RuleContext) -> Outcome:
    """How much custom code the team plugs in decides which files are its own seams.

    low: every file stays managed; the team's edits are merged three ways by `archgen update`. medium:
    the model code archgen can only stub (placeholder `model.py` of untrained python/sklearn models) is
    the team's: generated once, never rewritten. high: also every python model and BLS pipeline and the
    training code (`training/train.py`).
    """
    level = ctx.spec.customization
    seams = _seams(ctx, level)
    listed = ", ".join(seams) if seams else "none"
    text = {
        "low": "every generated file stays managed: `archgen update` merges the team's edits three ways",
        "medium": "the model code archgen can only stub is the team's own",
        "high": "the model, pipeline and training code are the team's own",
    }[level]
    return Outcome(
        level,
        f"customization {level}: {text}; seams `archgen update` never rewrites: {listed}",
        [("customization",)],
        [(other, "not the customization the spec asks for") for other in ("low", "medium", "high") if other != level],
        value=seams,
    )


# ---------------------------------------------------------------- findings
GPULESS_PLATFORMS = ("heroku",)


def _gpu_paths(ctx: RuleContext) -> list[ReqPath]:
    """Every requirement that asks for a GPU: the training accelerator, each GPU model's."""
    spec = ctx.spec
    out: list[ReqPath] = []
    if spec.training.resources.accelerator == "gpu":
        out.append(("training", "resources", "accelerator"))
    out += [
        ("serving", "models", i, "accelerator") for i, m in enumerate(spec.serving.models) if m.accelerator == "gpu"
    ]
    return out


@finding("resources.gpu_platform_without_gpus", "error", title="GPU requirement on a platform without GPUs")
def gpu_platform_without_gpus(ctx: RuleContext) -> Iterator[Conflict]:
    """Heroku offers no GPUs; a GPU training job or GPU model cannot run there."""
    gpus, platform = _gpu_paths(ctx), ctx.spec.existing.platform
    if gpus and platform in GPULESS_PLATFORMS:
        yield Conflict(
            f"GPUs are required but platform {platform} has none",
            [*gpus, PLATFORM],
            "use a platform with GPUs (kubernetes with GPU nodes, sagemaker, a local GPU machine) or set "
            "accelerator: cpu",
        )


@finding("resources.gpu_on_single_machine", "warning", title="GPU requirement on one machine")
def gpu_on_single_machine(ctx: RuleContext) -> Iterator[Conflict]:
    """On local/docker-compose the machine itself must have an NVIDIA GPU and the container toolkit; archgen
    cannot check that.
    """
    gpus, platform = _gpu_paths(ctx), ctx.spec.existing.platform
    if gpus and platform in ("local", "docker-compose"):
        yield Conflict(
            f"GPUs are required on one machine ({platform}): it must have an NVIDIA GPU and the container toolkit",
            [*gpus, PLATFORM],
            "check `nvidia-smi` on the machine, then waive this warning",
        )


@finding("deployment.platform_not_generated", "warning", title="Deployment for this platform is not generated")
def platform_not_generated(ctx: RuleContext) -> Iterator[Conflict]:
    """SageMaker and Heroku deployments are not generated; archgen writes the docker-compose bundle and its
    images, which the team wires into the platform.
    """
    platform = ctx.spec.existing.platform
    if platform in CLOUD_PLATFORMS:
        yield Conflict(
            f"platform {platform}: archgen generates a docker-compose bundle, not a {platform} deployment",
            [PLATFORM],
            "deploy the generated images to the platform by hand, then waive this warning",
        )


RULES = (delivery, deployment, customization)
FINDINGS = (gpu_platform_without_gpus, gpu_on_single_machine, platform_not_generated)
