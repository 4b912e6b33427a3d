"""Typed values of rule outcomes: what a decision hands the components besides its choice.

A rule's :attr:`Outcome.value` is plain data (:data:`RuleValue`: strings, numbers, booleans, lists and
mappings of them), never ``Any``. Whoever reads a value reads it through a typed accessor, which checks its
shape (a pydantic ``TypeAdapter``) so a rule from a plugin that returns the wrong shape fails loudly at
decision time instead of deep in a template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic validates TypedDicts from typing_extensions on Python < 3.12

from ..errors import INTERNAL, ArchgenError

if TYPE_CHECKING:
    from .context import RuleContext

RuleValue: TypeAlias = "str | int | float | bool | Sequence[RuleValue] | Mapping[str, RuleValue] | None"


class Materialization(TypedDict):
    """The value of ``materialization``: its cron and interval."""

    cron: str  # 5-field, at most the freshness interval
    interval_s: int


class TrainingMode(TypedDict):
    """The value of ``training_mode``: the schedule, the models trained, the broker an online trainer consumes."""

    schedule_cron: str | None
    trained_models: list[str]
    consumer_broker: str | None


class Batching(TypedDict):
    """One model's value of ``dynamic_batching``."""

    max_batch_size: int
    dynamic: bool
    preferred: list[int]
    delay_us: int


class Retention(TypedDict):
    """The value of ``retention``: how long data is kept and when the purge runs."""

    retention_s: int | None
    purge_cron: str | None


class ComputeEngine(TypedDict):
    """The value of ``compute_engine``: where the rollups are computed and Feast's engine for materialization."""

    engine: str  # local | spark | postgres: where the rollups are computed
    batch_engine: str  # Feast's batch_engine type: local | spark.engine
    views: list[str]  # the views whose rollups it computes
    events_per_run: int | None


class Deployment(TypedDict):
    """The value of ``deployment``."""

    gpu_nodes: bool


T = TypeVar("T")

MATERIALIZATION: TypeAdapter[Materialization] = TypeAdapter(Materialization)
TRAINING_MODE: TypeAdapter[TrainingMode] = TypeAdapter(TrainingMode)
BATCHING: TypeAdapter[dict[str, Batching]] = TypeAdapter(dict[str, Batching])
INSTANCE_GROUPS: TypeAdapter[dict[str, tuple[str, int]]] = TypeAdapter(dict[str, tuple[str, int]])
RETENTION: TypeAdapter[Retention] = TypeAdapter(Retention)
DEPLOYMENT: TypeAdapter[Deployment] = TypeAdapter(Deployment)
COMPUTE_ENGINE: TypeAdapter[ComputeEngine] = TypeAdapter(ComputeEngine)
NAMES: TypeAdapter[list[str]] = TypeAdapter(list[str])
BY_NAME: TypeAdapter[dict[str, str]] = TypeAdapter(dict[str, str])
COUNT: TypeAdapter[int] = TypeAdapter(int)
PERMISSIONS: TypeAdapter[list[tuple[str, list[str]]]] = TypeAdapter(list[tuple[str, list[str]]])
FLAG: TypeAdapter[bool] = TypeAdapter(bool)


def typed(ctx: RuleContext, key: str, adapter: TypeAdapter[T]) -> T | None:
    """The value of decision ``key`` in its declared shape, or None when the key was not decided."""
    raw = ctx.values.get(key)
    if raw is None:
        return None
    try:
        return adapter.validate_python(raw, strict=False)
    except ValidationError as exc:
        raise ArchgenError(
            f"internal: the value of decision {key!r} has the wrong shape: {exc.errors()[0].get('msg', exc)}",
            exit_code=INTERNAL,
        ) from None
