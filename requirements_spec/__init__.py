"""The archgen spec language: models, loader with line index, JSON Schema, presets."""

from .errors import Diagnostic, SpecError, SpecUnreadable
from .models import Spec
from .validate import LoadedSpec, load_spec, parse_spec

__all__ = ["Diagnostic", "LoadedSpec", "Spec", "SpecError", "SpecUnreadable", "load_spec", "parse_spec"]
