"""The decision-to-file contract: which decisions apply, which files each shapes, and how to read it back.

- A decision applies or not by its rule's ``unless`` (given the decided runtime, scope and MLOps level);
  one that does not apply is not made, and ``archgen plan`` lists it with the reason
  (:attr:`Architecture.not_applicable`).
- Every generated file names the decisions that shaped it (:attr:`PlannedFile.decisions`); a file may name
  only decisions that were made (:func:`enforce`): a file that no applicable decision asks for is not
  generated. Traceability tables and ADR file lists are built from the same field.
- Probes (:mod:`generator.probes`) read each decided value back from the files it shaped; ``archgen check``
  runs them against the repository's own spec copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .architecture import Architecture
from .errors import INTERNAL, ArchgenError

if TYPE_CHECKING:
    from .plan import PlannedFile


class ContractError(ArchgenError):
    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=INTERNAL, hint="a component planned a file for a decision not made")


def enforce(arch: Architecture, files: Iterable[object]) -> None:
    """Refuse a planned file that names a decision the architecture did not make (the contract's file rule)."""
    made = {d.key for d in arch.decisions}
    skipped = {n.key: n.reason for n in arch.not_applicable}
    for f in files:
        keys: tuple[str, ...] = getattr(f, "decisions", ())
        for key in keys:
            if key not in made:
                why = f" (not applicable: {skipped[key]})" if key in skipped else ""
                raise ContractError(
                    f"internal: {getattr(f, 'path', '?')} is shaped by {key!r}, which is not decided{why}"
                )


def only_decided(arch: Architecture, files: Iterable[PlannedFile]) -> list[PlannedFile]:
    """Files whose shared templates name a decision that may not apply: keep only the decisions made.

    For files a runtime-independent template produces (a README naming the online store, a client naming the
    protocol): the decisions that do not apply did not shape them.
    """
    made = {d.key for d in arch.decisions}
    return [
        f if set(f.decisions) <= made else replace(f, decisions=tuple(k for k in f.decisions if k in made))
        for f in files
    ]


@dataclass(frozen=True)
class ContractRow:
    """One decision of the contract, for docs/contract.md: when it applies and what reads it back."""

    key: str
    title: str
    applies: str
    probes: tuple[str, ...]


def rows() -> list[ContractRow]:
    """Every built-in decision with its applicability and the probes that read it back from files."""
    from .probes import PROBES
    from .rules.registry import builtin_registry

    reg = builtin_registry()
    out = []
    for key, rule in reg.rules.items():
        probes = tuple(p.name for p in PROBES if key in p.decisions)
        out.append(ContractRow(key, rule.title, rule.applies or "always", probes))
    return out
