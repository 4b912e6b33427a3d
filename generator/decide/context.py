"""What a rule sees (the spec, earlier decisions, requirement lookup) and what it returns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from requirements_spec.errors import PathItem, format_path
from requirements_spec.loader import SourceMap
from requirements_spec.models import Spec

from .architecture import Decision, Finding, NotApplicable, Requirement
from .registry import FindingKind, Registry
from .values import RuleValue

ReqPath = tuple[PathItem, ...]


@dataclass(frozen=True)
class Outcome:
    """A rule's answer: the choice, why, what it read, what it turned down, and data for the components."""

    choice: str
    rationale: str
    reads: Sequence[ReqPath]
    alternatives: Sequence[tuple[str, str]] = ()
    value: RuleValue = None


@dataclass(frozen=True)
class Conflict:
    """One occurrence of a finding, as a finding function yields it: the engine adds the code and severity."""

    message: str
    reads: Sequence[ReqPath]  # the requirement paths involved, the one to change first
    fix: str


@dataclass
class RuleContext:
    """What rules and findings see: the spec, the decisions so far and, for late checks, the findings."""

    spec: Spec
    source_map: SourceMap | None
    registry: Registry
    decisions: dict[str, Decision] = field(default_factory=dict)
    values: dict[str, RuleValue] = field(default_factory=dict)
    not_applicable: dict[str, NotApplicable] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)  # of every check but the late ones, once they ran

    # ------------------------------------------------------------ decisions made so far
    def choice(self, key: str) -> str | None:
        """The choice of decision ``key``, or None when it was not made (yet)."""
        d = self.decisions.get(key)
        return d.choice if d is not None else None

    def value(self, key: str) -> RuleValue:
        """The raw value of a decision; read it typed with :func:`generator.decide.values.typed`."""
        return self.values.get(key)

    # ------------------------------------------------------------ requirements
    def req(self, path: ReqPath) -> Requirement:
        """The spec value at ``path`` with its line and column, as a decision or finding cites it."""
        value = resolve(self.spec, path)
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        elif isinstance(value, list):
            value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
        at = self.source_map.values.get(tuple(path)) if self.source_map is not None else None
        line, column = at if at is not None else (0, 0)
        return Requirement(path=format_path(path), line=line, column=column, value=value)

    def reqs(self, paths: Iterable[ReqPath]) -> list[Requirement]:
        """The requirements at ``paths``, each path once."""
        out: list[Requirement] = []
        seen: set[str] = set()
        for p in paths:
            r = self.req(p)
            if r.path not in seen:
                seen.add(r.path)
                out.append(r)
        return out

    # ------------------------------------------------------------ findings
    def finding(self, code: str, message: str, paths: Iterable[ReqPath], fix: str) -> Finding:
        """A finding of a declared ``code``, citing the requirements at ``paths`` (the first is the place to change)."""
        kind: FindingKind | None = self.registry.kinds.get(code)
        if kind is None:
            raise KeyError(f"finding code {code!r} is not declared by any check")
        return Finding(code=code, severity=kind.severity, message=message, requirements=self.reqs(paths), fix=fix)

    # ------------------------------------------------------------ spec lookups rules share
    def pii_fields(self) -> list[tuple[ReqPath, str]]:
        """Every field marked pii: its path and ``view.field`` reference."""
        out: list[tuple[ReqPath, str]] = []
        f = self.spec.features
        if f is not None:
            for i, v in enumerate(f.views):
                out += [
                    (("features", "views", i, "fields", j, "pii"), f"{v.name}.{x.name}")
                    for j, x in enumerate(v.fields)
                    if x.pii
                ]
            for i, o in enumerate(f.on_demand):
                out += [
                    (("features", "on_demand", i, "fields", j, "pii"), f"{o.name}.{x.name}")
                    for j, x in enumerate(o.fields)
                    if x.pii
                ]
        return out


def resolve(spec: Any, path: ReqPath) -> Any:
    """The value at a requirement path, or raise KeyError when the spec has no such node."""
    value: Any = spec
    for item in path:
        if isinstance(item, int):
            if not isinstance(value, list) or not 0 <= item < len(value):
                raise KeyError(format_path(path))
            value = value[item]
        else:
            if not isinstance(value, BaseModel) or item not in type(value).__pydantic_fields__:
                raise KeyError(format_path(path))
            value = getattr(value, item)
    return value
