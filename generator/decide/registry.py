"""The rule registry: rules (one decided key each), finding kinds and the checks that raise them.

Registration is explicit: each area module (:data:`AREAS`) lists its rules in ``RULES`` and its
findings in ``FINDINGS``, and :func:`builtin_registry` reads those lists. The decorators
:func:`rule`, :func:`finding` and :func:`check` only make the objects; importing (or reloading) a
module registers nothing. Third-party packages add theirs through the ``archgen.rules``
entry-point group: an entry point names a :class:`Rule`, a :class:`Check`, or an iterable of them.
Two rules deciding one key are refused, unless the newcomer says ``overrides=True`` and the key
already has a built-in rule (a company standard replacing ours).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from ..errors import INTERNAL, ArchgenError

if TYPE_CHECKING:
    from .context import Outcome, RuleContext

ENTRY_POINT_GROUP = "archgen.rules"
#: the area modules of generator.decide, in the order their decisions are listed (feature store -> training ->
#: serving -> privacy/delivery); each lists its rules in ``RULES`` and its findings in ``FINDINGS``
AREAS = ("feature_store", "training", "serving", "pipelines", "privacy", "delivery", "waivers")

RuleFn = Callable[["RuleContext"], "Outcome | None"]
# when a key applies: None, or the reason it does not (given the decided runtime, scope and MLOps level)
ApplyFn = Callable[["RuleContext"], "str | None"]
# yields the findings of a check: Conflict (a one-code check made by @finding) or Finding (ctx.finding)
CheckFn = Callable[["RuleContext"], Iterable[Any]]
Severity = Literal["error", "warning"]


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
    # a first-match decision table (generator.decide.table): each row's condition in words and its choice
    table: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FindingKind:
    """A finding code: what it means and how bad it is."""

    code: str
    severity: Literal["error", "warning"]
    title: str
    doc: str
    origin: str = "archgen"
    # an error that a waiver with a justification accepts (the finding then stays, as a waived warning)
    waivable: bool = False
    defined_by: str = ""  # module.function of the check that reports it (docs/rules.md)


@dataclass(frozen=True)
class Check:
    """Looks at the spec and the decisions; yields findings of the kinds it declares.

    A check made by :func:`finding` declares one kind and yields :class:`~generator.decide.context.Conflict`
    (the engine adds the code); one made by :func:`check` may declare several and yields ``ctx.finding(...)``.
    A ``late`` check runs after every other one and reads their findings in ``ctx.findings`` (the waivers).
    """

    name: str
    kinds: tuple[FindingKind, ...]
    fn: CheckFn
    origin: str = "archgen"
    late: bool = False


@dataclass
class Registry:
    """Rules by decided key, finding kinds by code, and the checks that report them."""

    rules: dict[str, Rule] = field(default_factory=dict)
    kinds: dict[str, FindingKind] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    # ------------------------------------------------------------ registration
    def add_rule(self, rule: Rule) -> None:
        """Add a rule; a second rule for a key is refused unless it says ``overrides=True``."""
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
        """Add a check and its finding kinds; a code declared twice is refused."""
        for kind in check.kinds:
            if kind.code in self.kinds:
                raise RuleError(f"finding code {kind.code!r} is declared twice ({check.name}, {check.origin})")
        for kind in check.kinds:
            self.kinds[kind.code] = kind
        self.checks.append(check)

    def add(self, item: Any, origin: str) -> None:
        """Add what an entry point gave: a Rule, a Check, or an iterable of them."""
        if isinstance(item, Rule):
            self.add_rule(item if item.origin != "archgen" else _with_origin(item, origin))
        elif isinstance(item, Check):
            self.add_check(item if item.origin != "archgen" else _with_origin(item, origin))
        elif isinstance(item, Iterable) and not isinstance(item, str | bytes):
            for sub in item:
                self.add(sub, origin)
        else:
            raise RuleError(f"entry point {origin} gave {type(item).__name__}; expected a Rule, a Check or a list")

    def add_area(self, module: Any) -> None:
        """The rules and findings an area module lists (``RULES``, ``FINDINGS``): each one, and nothing else."""
        listed: list[Any] = [*module.RULES, *module.FINDINGS]
        for name, obj in vars(module).items():
            if isinstance(obj, Rule | Check) and obj.fn.__module__ == module.__name__ and obj not in listed:
                raise RuleError(
                    f"{module.__name__}.{name} is a {type(obj).__name__.lower()} no list names",
                    hint=f"add it to {'RULES' if isinstance(obj, Rule) else 'FINDINGS'} in {module.__name__}",
                )
        for r in module.RULES:
            self.add_rule(r)
        for c in module.FINDINGS:
            self.add_check(c)

    def copy(self) -> Registry:
        """A copy to add to without changing this registry."""
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
    return replace(item, origin=origin)


def _with_choices(rule: Rule, choices: tuple[str, ...]) -> Rule:
    return replace(rule, choices=choices)


# ---------------------------------------------------------------- decorators used by the rule modules
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
    unless: ApplyFn | None = None,
    applies: str = "",
    table: Iterable[Any] = (),
) -> Callable[[RuleFn], Rule]:
    """Make a function a :class:`Rule`; its docstring is the rule's documentation.

    Nothing is registered: an area module lists the Rule in its ``RULES``, a plugin exposes it through
    its entry point. ``table``: the rows of the first-match table the rule runs (:mod:`generator.decide.table`),
    shown in its documentation.
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
            table=tuple((row.when, row.choice) for row in table),
        )
        return made

    return wrap


def finding(
    code: str, severity: Severity, *, title: str, late: bool = False, waivable: bool = False
) -> Callable[[CheckFn], Check]:
    """Make a function the :class:`Check` of one finding code; its docstring is the finding's documentation.

    The function yields a :class:`~generator.decide.context.Conflict` for each occurrence (message, the
    requirement paths involved, the fix); the engine gives it the code and severity. ``late``: it runs after
    every other check, with their findings in ``ctx.findings``. ``waivable``: an error that a waiver with a
    justification accepts (it then stays as a waived warning).
    """

    def wrap(fn: CheckFn) -> Check:
        doc = " ".join((fn.__doc__ or "").split())
        where = f"{fn.__module__}.{fn.__name__}"
        kind = FindingKind(code, severity, title, doc, waivable=waivable, defined_by=where)
        return Check(name=fn.__name__, kinds=(kind,), fn=fn, late=late)

    return wrap


def check(*kinds: FindingKind) -> Callable[[CheckFn], Check]:
    """Make a function a :class:`Check` of several declared kinds; it yields ``ctx.finding(code, ...)``."""

    def wrap(fn: CheckFn) -> Check:
        where = f"{fn.__module__}.{fn.__name__}"
        return Check(name=fn.__name__, kinds=tuple(replace(k, defined_by=k.defined_by or where) for k in kinds), fn=fn)

    return wrap


def _dedent(text: str) -> str:
    return inspect.cleandoc(text)


# ---------------------------------------------------------------- loading
def builtin_registry() -> Registry:
    """The rules and checks archgen ships: the lists of every area module, in :data:`AREAS` order."""
    reg = Registry()
    for area in AREAS:
        reg.add_area(importlib.import_module(f"{__package__}.{area}"))
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
    """Forget the default registry: the next :func:`default_registry` reads the entry points again."""
    global _cached
    _cached = None
