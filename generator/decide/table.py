"""First-match decision tables: a rule written as ordered rows, each a condition and the outcome it gives.

A rule whose answer is "the first of these cases that holds" computes its facts once, then asks
:func:`first_match`. Each :class:`Row` says its condition in words and the choice it makes; the rule
passes its rows to ``@rule(..., table=ROWS)``, so docs/rules.md and ``archgen explain`` show the table
as it runs. The last row of a table holds always (:func:`always`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from .registry import RuleError

if TYPE_CHECKING:
    from .context import Outcome

Facts = TypeVar("Facts")


@dataclass(frozen=True)
class Row(Generic[Facts]):
    """One case of a table: when it holds (``test``, said in ``when``), the choice, and the outcome to give."""

    when: str
    choice: str
    test: Callable[[Facts], bool]
    then: Callable[[Facts], Outcome]


def always(facts: object) -> bool:
    """The condition of a table's last row: it holds whatever the facts."""
    return True


def first_match(rows: Sequence[Row[Facts]], facts: Facts) -> Outcome:
    """The outcome of the first row whose condition holds for ``facts``."""
    for row in rows:
        if row.test(facts):
            out = row.then(facts)
            if out.choice != row.choice:
                raise RuleError(f"the row {row.when!r} says it chooses {row.choice!r} but chose {out.choice!r}")
            return out
    raise RuleError(f"no row holds (the last row of a table tests `always`): {[r.when for r in rows]}")
