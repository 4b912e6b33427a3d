"""Render stage: FilePlan -> file contents in memory. No writes.

Jinja2 with StrictUndefined; templates come only from archgen's own ``templates/`` folder, and
user values from the spec are passed as data, never as template source or template names.
Filters turn values into safe literals of the target language (``py``, ``yaml``, ``sh``).
"""

from __future__ import annotations

import json
import re
import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .architecture import Architecture
from .errors import INTERNAL, ArchgenError
from .plan import FilePlan, PlannedFile

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


_PLAIN = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII without quote and backslash: nothing to escape


def _py(value: Any) -> str:
    """A Python literal for a str/int/float/bool/None/list/dict value (never code)."""
    if isinstance(value, str):
        if _PLAIN.fullmatch(value):
            return f'"{value}"'
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid Python string literal
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Python literal for {type(value).__name__}")


def _yaml(value: Any) -> str:
    """A YAML flow scalar: JSON is valid YAML, and a JSON string cannot break out of its quotes."""
    return json.dumps(value, ensure_ascii=False)


def _toml(value: Any) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in str(value):
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif code < 0x20 or 0x7F <= code <= 0x9F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _comment(value: Any) -> str:
    """Free text on one comment line."""
    return " ".join(str(value).split())


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#!~])")


def _md(value: Any) -> str:
    """Free text as inline Markdown: one line, HTML and Markdown syntax escaped (shown literally)."""
    flat = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", flat.replace("&", "&amp;"))


def _md_code(value: Any) -> str:
    """A value as a Markdown code span (backticks inside become quotes: a span cannot hold them)."""
    flat = " ".join(str(value).split()).replace("`", "'")
    return f"`{flat}`" if flat else "` `"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py"] = _py
    env.filters["yaml"] = _yaml
    env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)
    env.filters["sh"] = lambda v: shlex.quote(str(v))
    env.filters["comment"] = _comment
    env.filters["md"] = _md
    env.filters["mdcode"] = _md_code
    env.filters["toml"] = _toml
    return env


def render_file(f: PlannedFile, arch: Architecture) -> bytes:
    if f.content is not None:
        return f.content.encode("utf-8") if isinstance(f.content, str) else f.content
    if f.producer is not None:
        return f.producer()
    assert f.template is not None
    try:
        template = environment().get_template(f.template)
        text = template.render(arch=arch, spec=arch.spec, path=f.path, **dict(f.context))
    except jinja2.TemplateError as exc:
        raise ArchgenError(f"internal: template {f.template} ({f.path}): {exc}", exit_code=INTERNAL) from None
    return text.encode("utf-8")


def render_plan(plan: FilePlan, arch: Architecture) -> dict[str, bytes]:
    return {f.path: render_file(f, arch) for f in plan.files}
