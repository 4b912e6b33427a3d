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
    cron: str  # 5-field, at most the freshness interval
    interval_s: int


class TrainingMode(TypedDict):
    schedule_cron: str | None
    trained_models: list[str]
    consumer_broker: str | None


class Batching(TypedDict):
    max_batch_size: int
    dynamic: bool
    preferred: list[int]
    delay_us: int


class Retention(TypedDict):
    retention_s: int | None
    purge_cron: str | None


class Deployment(TypedDict):
    gpu_nodes: bool


T = TypeVar("T")

MATERIALIZATION: TypeAdapter[Materialization] = TypeAdapter(Materialization)
TRAINING_MODE: TypeAdapter[TrainingMode] = TypeAdapter(TrainingMode)
BATCHING: TypeAdapter[dict[str, Batching]] = TypeAdapter(dict[str, Batching])
INSTANCE_GROUPS: TypeAdapter[dict[str, tuple[str, int]]] = TypeAdapter(dict[str, tuple[str, int]])
RETENTION: TypeAdapter[Retention] = TypeAdapter(Retention)
DEPLOYMENT: TypeAdapter[Deployment] = TypeAdapter(Deployment)
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
