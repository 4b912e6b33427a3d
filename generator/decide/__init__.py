"""Decide stage: Spec -> Architecture. Pure; no I/O.

Each area module (:mod:`.feature_store`, :mod:`.training`, :mod:`.serving`, :mod:`.pipelines`,
:mod:`.privacy`, :mod:`.delivery`, :mod:`.waivers`) holds its rules, small functions that decide one
key each, and its findings, one small function per code that turns conflicting or infeasible
requirements into findings; each with its metadata and documentation beside it, and each listed in
the module's ``RULES`` and ``FINDINGS``, which the registry reads (:mod:`.registry`). Every number they
compare with lives in :mod:`.thresholds`. Warnings can be waived in the spec, errors stop generation
(:func:`require_feasible`). Packages add rules and findings through the ``archgen.rules`` entry point
group.
"""

from __future__ import annotations

from .context import Conflict, Outcome, RuleContext
from .engine import (
    FIELD_TO_TENSOR,
    TRITON_DTYPES,
    InfeasibleSpec,
    decide,
    finding_diagnostic,
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
    finding,
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
    "Conflict",
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
    "finding",
    "finding_diagnostic",
    "finding_diagnostics",
    "load_registry",
    "require_feasible",
    "rule",
]
