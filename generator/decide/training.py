"""Training: the rules (scheduler, training mode, resources, the quality gate) and their findings."""

from __future__ import annotations

from collections.abc import Iterator

from requirements_spec.types import cron_expression

from .context import Conflict, Outcome, ReqPath, RuleContext
from .privacy import KUBERNETES_PLATFORMS
from .registry import finding, rule
from .values import TRAINING_MODE, typed

ORCHESTRATOR: ReqPath = ("existing", "orchestrator")
PLATFORM: ReqPath = ("existing", "platform")
TRIGGER: ReqPath = ("training", "trigger")
SCHEDULERS = {"cron": "crontab", "airflow": "airflow", "prefect": "prefect", "dagster": "dagster"}
SCHEDULERS["kubernetes"] = "kubernetes_cronjob"
SCHEDULER_WORDS = {
    "crontab": "a crontab",
    "airflow": "an Airflow DAG",
    "prefect": "a Prefect flow",
    "dagster": "a Dagster job",
    "kubernetes_cronjob": "Kubernetes CronJobs",
}


@rule(
    "scheduler",
    title="Scheduler: what runs training, materialization and purge jobs",
    reads=("existing.orchestrator", "existing.platform"),
    alternatives=("crontab", "airflow", "prefect", "dagster", "kubernetes_cronjob"),
    choices=("none", "crontab", "airflow", "prefect", "dagster", "kubernetes_cronjob"),
)
def scheduler(ctx: RuleContext) -> Outcome:
    """Reuse the orchestrator the company runs; otherwise CronJobs on Kubernetes, else a crontab.

    Existing infrastructure beats greenfield (the lecture's Airflow example): the team already
    knows how to run, monitor and page on it.
    """
    ex = ctx.spec.existing
    if ex.orchestrator != "none":
        choice = SCHEDULERS[ex.orchestrator]
        return Outcome(
            choice,
            f"the company already runs {ex.orchestrator}: jobs become {SCHEDULER_WORDS[choice]} the team knows "
            "how to run and monitor",
            [ORCHESTRATOR],
            [
                (c, "a second scheduler to run next to the existing one")
                for c in ("crontab", "kubernetes_cronjob")
                if c != choice
            ],
        )
    if ex.platform in ("kubernetes", "openshift"):
        return Outcome(
            "kubernetes_cronjob",
            f"no orchestrator, platform {ex.platform}: Kubernetes CronJobs run where the workloads run",
            [ORCHESTRATOR, PLATFORM],
            [("airflow", "a new service to run for a few jobs"), ("crontab", "tied to one node of the cluster")],
        )
    return Outcome(
        "crontab",
        f"no orchestrator, platform {ex.platform}: a crontab needs no extra service",
        [ORCHESTRATOR, PLATFORM],
        [("airflow", "a new service to run for a few jobs"), ("kubernetes_cronjob", "no Kubernetes here")],
    )


@rule(
    "training_mode",
    title="Training mode: when models are (re)trained",
    reads=(
        "training.trigger",
        "training.schedule",
        "training.label",
        "existing.broker",
        "serving.models[].feature_service",
    ),
    alternatives=("scheduled", "online", "manual"),
    choices=("scheduled", "online", "manual"),
    after=("scheduler",),
)
def training_mode(ctx: RuleContext) -> Outcome:
    """Scheduled retraining on the scheduler, a streaming consumer for online learning, or by hand.

    Scheduled retraining is the common case (cron or an orchestrator). Online training is a
    consumer that updates the model from the broker (Kafka, RabbitMQ). Models with a feature
    service and a label are trained from the feature store; the others are served as given.
    """
    spec = ctx.spec
    tr, models = spec.training, spec.serving.models
    trained = [
        m.name for m in models if m.feature_service is not None and tr.label is not None and m.training != "external"
    ]
    reads: list[ReqPath] = [TRIGGER]
    if tr.label is not None:
        reads.append(("training", "label"))
    value = {
        "trained_models": trained,
        "schedule_cron": cron_expression(tr.schedule) if tr.schedule else None,
        "consumer_broker": None,
    }
    what = ", ".join(trained) or "no model (none has both a feature service and a label)"
    if tr.trigger == "schedule":
        reads.append(("training", "schedule"))
        return Outcome(
            "scheduled",
            f"retrain {what} on {ctx.choice('scheduler')} at `{tr.schedule}`, reading historical features",
            reads,
            [("online", "learning on the fly needs a broker consumer the requirement does not ask for")],
            value=value,
        )
    if tr.trigger == "online":
        broker = spec.existing.broker
        reads.append(("existing", "broker"))
        value["consumer_broker"] = broker if broker != "none" else None
        return Outcome(
            "online",
            f"learn on the fly: a streaming consumer updates {what} from the {broker} broker",
            reads,
            [("scheduled", "the model would lag behind the events by a whole schedule period")],
            value=value,
        )
    return Outcome(
        "manual",
        f"train {what} by hand with `python -m training.train`; nothing schedules it",
        reads,
        [("scheduled", "the trigger is manual")],
        value=value,
    )


@rule(
    "training_resources",
    title="Training resources: CPU or GPU, and how much",
    reads=("training.resources", "existing.platform"),
    alternatives=("cpu", "gpu"),
    choices=("cpu", "gpu"),
)
def training_resources(ctx: RuleContext) -> Outcome:
    """The training job requests what `training.resources` declares; GPUs become GPU requests.

    On Kubernetes the job asks for `nvidia.com/gpu`; in docker-compose it reserves GPU devices.
    A platform without GPUs is refused by a finding.
    """
    res = ctx.spec.training.resources
    reads: list[ReqPath] = [("training", "resources", "accelerator"), ("training", "resources", "cpus")]
    reads.append(("training", "resources", "memory_gb"))
    if res.accelerator == "gpu":
        reads.append(("training", "resources", "gpus"))
        return Outcome(
            "gpu",
            f"{res.gpus} GPU(s), {res.cpus} CPUs, {res.memory_gb} GB: the job spec requests the GPUs",
            [*reads, PLATFORM],
            [("cpu", "training.resources asks for GPUs")],
        )
    return Outcome(
        "cpu",
        f"{res.cpus} CPUs, {res.memory_gb} GB, no GPU",
        reads,
        [("gpu", "nothing asks for one; GPUs cost more and are scarcer")],
    )


LOWER_IS_BETTER = ("log_loss", "rmse", "mae")


@rule(
    "quality_gate",
    title="Quality gate: the minimum quality a model must reach to ship",
    reads=("training.min_quality",),
    alternatives=("gate", "none"),
)
def quality_gate(ctx: RuleContext) -> Outcome:
    """Training evaluates the model on held-out data and fails, shipping nothing, below the threshold.

    For loss metrics (log_loss, rmse, mae) lower is better, so the gate is an upper bound.
    """
    mq = ctx.spec.training.min_quality
    if mq is None:
        return Outcome(
            "none",
            "no min_quality: every trained model ships, whatever its quality",
            [("training", "min_quality")],
            [("gate", "needs training.min_quality")],
        )
    op = "<=" if mq.metric in LOWER_IS_BETTER else ">="
    return Outcome(
        f"{mq.metric} {op} {mq.threshold}",
        f"training fails and ships nothing unless held-out {mq.metric} {op} {mq.threshold}",
        [("training", "min_quality", "metric"), ("training", "min_quality", "threshold")],
        [("none", "a model worse than the requirement would reach production")],
    )


# ---------------------------------------------------------------- findings
@finding("training.online_without_broker", "error", title="Online training without a broker")
def online_without_broker(ctx: RuleContext) -> Iterator[Conflict]:
    """Learning on the fly consumes events from a broker (Kafka, RabbitMQ, Redis streams); with none there is
    nothing to consume.
    """
    if ctx.spec.training.trigger == "online" and ctx.spec.existing.broker == "none":
        yield Conflict(
            "training.trigger is online but existing.broker is none",
            [TRIGGER, ("existing", "broker")],
            "set existing.broker (kafka, rabbitmq, redis) or use trigger: schedule",
        )


@finding("training.label_missing", "error", title="Training is triggered but no label is declared")
def label_missing(ctx: RuleContext) -> Iterator[Conflict]:
    """A model reading a feature service is trained from historical features joined with a label; without
    training.label a scheduled or online training run has nothing to fit.
    """
    tr = ctx.spec.training
    fs_models = [i for i, m in enumerate(ctx.spec.serving.models) if m.feature_service is not None]
    if tr.trigger != "manual" and tr.label is None and fs_models:
        yield Conflict(
            f"training is triggered ({tr.trigger}) for models reading a feature service, but training.label is not set",
            [TRIGGER, ("training", "label"), *(("serving", "models", i, "feature_service") for i in fs_models)],
            "add training.label: {source: ..., field: ...}, or set training.trigger: manual",
        )


@finding("training.quality_gate_missing", "warning", title="No minimum quality at MLOps level 1 or 2")
def quality_gate_missing(ctx: RuleContext) -> Iterator[Conflict]:
    """An automated pipeline ships whatever it trains unless training.min_quality stops it."""
    tr, level = ctx.spec.training, ctx.spec.delivery.mlops_level
    if level >= 1 and tr.min_quality is None and tr.trigger != "manual":
        yield Conflict(
            f"MLOps level {level} ships every trained model: no training.min_quality",
            [("delivery", "mlops_level"), ("training", "min_quality")],
            "add training.min_quality: {metric: roc_auc, threshold: 0.7} (or the metric that fits)",
        )


@finding("training.manual_at_mlops_level", "warning", title="Manual training at an automated MLOps level")
def manual_at_mlops_level(ctx: RuleContext) -> Iterator[Conflict]:
    """MLOps level 1 and 2 automate the training pipeline, but trigger manual means nothing runs it."""
    spec, level = ctx.spec, ctx.spec.delivery.mlops_level
    if spec.training.trigger == "manual" and level >= 1 and any(m.feature_service for m in spec.serving.models):
        yield Conflict(
            f"MLOps level {level} automates training, but training.trigger is manual",
            [TRIGGER, ("delivery", "mlops_level")],
            "set training.trigger: schedule with a schedule, or delivery.mlops_level: 0",
        )


@finding(
    "training.schedule_at_mlops_level_0", "warning", title="A training schedule that nothing runs at MLOps level 0"
)
def schedule_at_mlops_level_0(ctx: RuleContext) -> Iterator[Conflict]:
    """MLOps level 0 generates no pipeline: training is a manual step (`make train`). A training.schedule
    would be promised in the docs and run by no scheduler.
    """
    tr = ctx.spec.training
    mode = typed(ctx, "training_mode", TRAINING_MODE)
    trained = mode["trained_models"] if mode is not None else []
    if ctx.spec.delivery.mlops_level == 0 and tr.trigger == "schedule" and tr.schedule is not None and trained:
        yield Conflict(
            f"training.schedule {tr.schedule!r} is set, but MLOps level 0 generates no scheduler entry for training",
            [("training", "schedule"), ("delivery", "mlops_level")],
            "set delivery.mlops_level: 1 to run training on the schedule, or remove training.schedule "
            "(training stays a manual `make train`)",
        )


@finding("training.cronjobs_off_the_platform", "warning", title="Jobs on a cluster, the system served elsewhere")
def cronjobs_off_the_platform(ctx: RuleContext) -> Iterator[Conflict]:
    """existing.orchestrator kubernetes schedules the jobs as CronJobs on a cluster; an online system on
    another platform is deployed elsewhere (docker-compose), which runs the same jobs on its own
    scheduler. What the CronJobs write (a model on the cluster's volume, features materialized from the
    cluster) never reaches the deployment. A batch system has no server: its jobs and their image are
    deployed on the cluster (the deployment decision); an embedded one deploys nothing.
    """
    platform = ctx.spec.existing.platform
    if (
        ctx.choice("scheduler") == "kubernetes_cronjob"
        and platform not in KUBERNETES_PLATFORMS
        and ctx.spec.serving.mode not in ("batch", "embedded")
    ):
        yield Conflict(
            f"the jobs run as Kubernetes CronJobs (existing.orchestrator kubernetes) but the system is deployed on "
            f"{platform}, which runs the same jobs on its own scheduler: the models and features the CronJobs "
            "write never reach it",
            [ORCHESTRATOR, PLATFORM],
            "set existing.platform: kubernetes to deploy the whole system on the cluster, or "
            "existing.orchestrator: none (or cron) to schedule the jobs where the system runs",
        )


RULES = (scheduler, training_mode, training_resources, quality_gate)
FINDINGS = (
    online_without_broker,
    label_missing,
    quality_gate_missing,
    manual_at_mlops_level,
    schedule_at_mlops_level_0,
    cronjobs_off_the_platform,
)
