"""Delivery and deployment rules: MLOps level and where the system runs."""

from __future__ import annotations

from .context import Outcome, ReqPath, RuleContext
from .registry import rule

PLATFORM: ReqPath = ("existing", "platform")


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
    configs, trains, gates and deploys."""
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


@rule(
    "deployment",
    title="Deployment target",
    reads=("existing.platform", "training.resources.accelerator", "serving.models[].accelerator"),
    alternatives=("docker_compose", "kubernetes"),
    choices=("docker_compose", "kubernetes"),
)
def deployment(ctx: RuleContext) -> Outcome | None:
    """docker-compose for one machine (local, docker-compose); Kubernetes manifests (Triton
    Deployment with autoscaling, Redis, the Feast feature server, CronJobs) on Kubernetes and
    OpenShift. SageMaker and Heroku get the docker-compose bundle and a finding: their deployment
    is not generated."""
    spec = ctx.spec
    if spec.serving.mode == "embedded":
        return None  # the model runs inside the application: nothing of this system is deployed as a service
    platform = spec.existing.platform
    gpu = spec.training.resources.accelerator == "gpu" or any(m.accelerator == "gpu" for m in spec.serving.models)
    if platform in ("kubernetes", "openshift") and spec.serving.mode == "batch":
        return Outcome(
            "kubernetes",
            f"platform {platform}: the train -> score job runs as pods of the app image with the model volume; "
            "no server, autoscaler or feature server (nothing answers requests)",
            [PLATFORM, ("serving", "mode")],
            [("docker_compose", "one machine; the cluster is already there")],
            value={"gpu_nodes": gpu},
        )
    if platform in ("kubernetes", "openshift"):
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
