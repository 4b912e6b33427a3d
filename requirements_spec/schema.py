"""JSON Schema of the spec, for editors (`# yaml-language-server: $schema=...`) and CI."""

from __future__ import annotations

import json
from typing import Any

from .models import Spec

SCHEMA_ID = "https://archgen.dev/schema/spec-v1.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the spec (draft 2020-12)."""
    schema = Spec.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "archgen requirements spec"
    return schema


def json_schema_text() -> str:
    """The JSON Schema as the text `archgen schema` writes."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
