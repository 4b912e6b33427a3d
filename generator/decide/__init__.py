"""Decide stage: Spec -> Architecture. Pure; no I/O.

Rules are small functions, one decided key each, with their metadata beside them
(:mod:`.feature_store`, :mod:`.training`, :mod:`.serving`, :mod:`.privacy`); every number they
compare with lives in :mod:`.thresholds`. Checks in :mod:`.findings` turn conflicting or
infeasible requirements into findings; warnings can be waived in the spec, errors stop
generation (:func:`require_feasible`). Packages add rules through the ``archgen.rules`` entry
point group (:mod:`.registry`).
"""

from __future__ import annotations

from .context import Outcome, RuleContext
from .engine import (
    FIELD_TO_TENSOR,
    TRITON_DTYPES,
    InfeasibleSpec,
    decide,
    finding_diagnostics,
    require_feasible,
)
from .registry import (
    ENTRY_POINT_GROUP,
    Check,
    FindingKind,
    Registry,
    Rule,
    RuleError,
    builtin_registry,
    check,
    default_registry,
    load_registry,
    rule,
)
from .serving import BACKENDS
from .thresholds import THRESHOLDS

__all__ = [
    "BACKENDS",
    "ENTRY_POINT_GROUP",
    "FIELD_TO_TENSOR",
    "THRESHOLDS",
    "TRITON_DTYPES",
    "Check",
    "FindingKind",
    "InfeasibleSpec",
    "Outcome",
    "Registry",
    "Rule",
    "RuleContext",
    "RuleError",
    "builtin_registry",
    "check",
    "decide",
    "default_registry",
    "finding_diagnostics",
    "load_registry",
    "require_feasible",
    "rule",
]
