"""The rule registry: rules (one decided key each), finding kinds and the checks that raise them.

Built-in rules register themselves at import; third-party packages add theirs through the
``archgen.rules`` entry-point group. An entry point names a :class:`Rule`, a :class:`Check`, or
an iterable of them. Two rules deciding one key are refused, unless the newcomer says
``overrides=True`` and the key already has a built-in rule (a company standard replacing ours).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import INTERNAL, ArchgenError

if TYPE_CHECKING:
    from .context import Outcome, RuleContext

ENTRY_POINT_GROUP = "archgen.rules"
MODULE_ORDER = ("feature_store", "training", "serving", "pipelines", "privacy", "delivery")

RuleFn = Callable[["RuleContext"], "Outcome | None"]
# when a key applies: None, or the reason it does not (given the decided runtime, scope and MLOps level)
ApplyFn = Callable[["RuleContext"], "str | None"]
CheckFn = Callable[["RuleContext"], Iterable[Any]]


class RuleError(ArchgenError):
    """A rule or finding could not be registered (duplicate key, bad plugin)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, exit_code=INTERNAL, hint=hint)


@dataclass(frozen=True)
class Rule:
    """Decides one key. ``fn(ctx)`` returns an :class:`Outcome`, or ``None`` when the key does not apply."""

    key: str
    title: str
    reads: tuple[str, ...]  # requirement paths it reads (documentation; `[]` means every item)
    fn: RuleFn
    doc: str
    alternatives: tuple[str, ...] = ()  # every choice it may reject
    choices: tuple[str, ...] = ()  # allowed choices when the key feeds a component ('' = free text)
    after: tuple[str, ...] = ()  # keys whose decisions it reads
    thresholds: tuple[str, ...] = ()
    overrides: bool = False
    origin: str = "archgen"  # "archgen" or the entry point that added it
    # when the key applies: ``unless(ctx)`` gives the reason it does not (the decision is then not made)
    unless: ApplyFn | None = None
    applies: str = ""  # when it applies, in words (docs/contract.md)


@dataclass(frozen=True)
class FindingKind:
    """A finding code: what it means and how bad it is."""

    code: str
    severity: Literal["error", "warning"]
    title: str
    doc: str
    origin: str = "archgen"


@dataclass(frozen=True)
class Check:
    """Looks at the spec and the decisions; yields findings of the kinds it declares."""

    name: str
    kinds: tuple[FindingKind, ...]
    fn: CheckFn
    origin: str = "archgen"


@dataclass
class Registry:
    rules: dict[str, Rule] = field(default_factory=dict)
    kinds: dict[str, FindingKind] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    # ------------------------------------------------------------ registration
    def add_rule(self, rule: Rule) -> None:
        old = self.rules.get(rule.key)
        if old is not None:
            if not rule.overrides:
                raise RuleError(
                    f"two rules decide {rule.key!r}: {old.fn.__qualname__} ({old.origin}) and "
                    f"{rule.fn.__qualname__} ({rule.origin})",
                    hint="a rule that replaces another must say so: rule(..., overrides=True)",
                )
            if rule.choices == () and old.choices:
                rule = _with_choices(rule, old.choices)
        elif rule.overrides:
            raise RuleError(
                f"rule {rule.fn.__qualname__} ({rule.origin}) overrides {rule.key!r}, which no rule decides"
            )
        self.rules[rule.key] = rule

    def add_check(self, check: Check) -> None:
        for kind in check.kinds:
            if kind.code in self.kinds:
                raise RuleError(f"finding code {kind.code!r} is declared twice ({check.name}, {check.origin})")
        for kind in check.kinds:
            self.kinds[kind.code] = kind
        self.checks.append(check)

    def add(self, item: Any, origin: str) -> None:
        if isinstance(item, Rule):
            self.add_rule(item if item.origin != "archgen" else _with_origin(item, origin))
        elif isinstance(item, Check):
            self.add_check(item if item.origin != "archgen" else _with_origin(item, origin))
        elif isinstance(item, Iterable) and not isinstance(item, str | bytes):
            for sub in item:
                self.add(sub, origin)
        else:
            raise RuleError(f"entry point {origin} gave {type(item).__name__}; expected a Rule, a Check or a list")

    def copy(self) -> Registry:
        return Registry(dict(self.rules), dict(self.kinds), list(self.checks))

    # ------------------------------------------------------------ order
    def ordered(self) -> list[Rule]:
        """Rules in registration order, each after the keys it reads."""
        done: dict[str, Rule] = {}
        visiting: set[str] = set()

        def visit(rule: Rule) -> None:
            if rule.key in done:
                return
            if rule.key in visiting:
                raise RuleError(f"rules depend on each other in a cycle through {rule.key!r}")
            visiting.add(rule.key)
            for dep in rule.after:
                if dep in self.rules:
                    visit(self.rules[dep])
            visiting.discard(rule.key)
            done[rule.key] = rule

        for rule in self.rules.values():
            visit(rule)
        return list(done.values())


def _with_origin(item: Any, origin: str) -> Any:
    from dataclasses import replace

    return replace(item, origin=origin)


def _with_choices(rule: Rule, choices: tuple[str, ...]) -> Rule:
    from dataclasses import replace

    return replace(rule, choices=choices)


# ---------------------------------------------------------------- decorators used by the rule modules
_BUILTIN = Registry()


def rule(
    key: str,
    *,
    title: str,
    reads: Iterable[str],
    alternatives: Iterable[str] = (),
    choices: Iterable[str] = (),
    after: Iterable[str] = (),
    thresholds: Iterable[str] = (),
    overrides: bool = False,
    register: bool = True,
    unless: ApplyFn | None = None,
    applies: str = "",
) -> Callable[[RuleFn], Rule]:
    """Make a function a :class:`Rule`; its docstring is the rule's documentation.

    Built-in modules register into the built-in registry; a plugin passes ``register=False`` and
    exposes the returned Rule through its entry point.
    """

    def wrap(fn: RuleFn) -> Rule:
        made = Rule(
            key=key,
            title=title,
            reads=tuple(reads),
            fn=fn,
            doc=_dedent(fn.__doc__ or ""),
            alternatives=tuple(alternatives),
            choices=tuple(choices),
            after=tuple(after),
            thresholds=tuple(thresholds),
            overrides=overrides,
            unless=unless,
            applies=applies,
        )
        if register:
            _BUILTIN.add_rule(made)
        return made

    return wrap


def check(*kinds: FindingKind, register: bool = True) -> Callable[[CheckFn], Check]:
    def wrap(fn: CheckFn) -> Check:
        made = Check(name=fn.__name__, kinds=tuple(kinds), fn=fn)
        if register:
            _BUILTIN.add_check(made)
        return made

    return wrap


def _dedent(text: str) -> str:
    import inspect

    return inspect.cleandoc(text)


# ---------------------------------------------------------------- loading
def builtin_registry() -> Registry:
    """The rules and checks archgen ships (importing the rule modules registers them)."""
    from . import delivery, feature_store, findings, pipelines, privacy, serving, training  # noqa: F401

    # decisions are listed feature store -> training -> serving -> privacy/delivery, whatever the import order
    order = [f"{__package__}.{m}" for m in MODULE_ORDER]
    reg = Registry(kinds=dict(_BUILTIN.kinds), checks=list(_BUILTIN.checks))
    rules = list(_BUILTIN.rules.values())
    for r in sorted(rules, key=lambda r: (order.index(r.fn.__module__), rules.index(r))):
        reg.rules[r.key] = r
    return reg


def _entry_points() -> Iterator[importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    yield from sorted(eps, key=lambda ep: (ep.name, ep.value))


def load_registry(*, plugins: bool = True) -> Registry:
    """The built-in registry plus every ``archgen.rules`` entry point (sorted by name)."""
    reg = builtin_registry()
    if not plugins:
        return reg
    for ep in _entry_points():
        origin = f"entry point {ep.name} = {ep.value}"
        try:
            item = ep.load()
        except Exception as exc:
            raise RuleError(f"cannot load {origin}: {type(exc).__name__}: {exc}") from exc
        reg.add(item, origin)
    return reg


_cached: Registry | None = None


def default_registry() -> Registry:
    """The registry :func:`generator.decide.decide` uses; entry points are read once per process."""
    global _cached
    if _cached is None:
        _cached = load_registry()
    return _cached


def reset_default_registry() -> None:
    global _cached
    _cached = None
