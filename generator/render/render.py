"""Render stage: FilePlan -> file contents in memory. No writes.

Jinja2 with StrictUndefined; templates come only from archgen's own ``templates/`` folder, and
user values from the spec are passed as data, never as template source or template names.
Filters turn values into safe literals of the target language (``py``, ``yaml``, ``sh``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
from functools import lru_cache
from typing import Any

import jinja2

from ..decide.architecture import Architecture
from ..errors import INTERNAL, ArchgenError
from ..plan.plan import FilePlan, PlannedFile
from ..resources import TEMPLATES

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


_ONE_LINE = re.compile(r"[^\s`]+(?: [^\s`]+)*")  # words split by single spaces, no backtick: nothing to flatten


def _md(value: Any) -> str:
    """Free text as inline Markdown: one line, HTML and Markdown syntax escaped (shown literally)."""
    flat = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", flat.replace("&", "&amp;"))


def _md_code(value: Any) -> str:
    """A value as a Markdown code span (backticks inside become quotes: a span cannot hold them)."""
    text = str(value)
    if _ONE_LINE.fullmatch(text):  # the common case, and thousands of calls on a large spec
        return f"`{text}`"
    flat = " ".join(text.split()).replace("`", "'")
    return f"`{flat}`" if flat else "` `"


def _md_cited(requirements: Any) -> str:
    """Requirements a decision read, on one Markdown line: `path` = `value` (line N); ...

    A filter rather than a template loop: a decision over a thousand views cites thousands of them.
    """
    return "; ".join(
        f"{_md_code(r.path)} = {_md_code(r.value)} ({f'line {r.line}' if r.line else 'default'})" for r in requirements
    )


def _md_codes(values: Any) -> str:
    """Values as Markdown code spans, comma separated."""
    return _md_codes_of(tuple(values))


def _md_links(paths: Any, prefix: str = "") -> str:
    """Repository files as Markdown links, comma separated (``prefix`` leads from the document to the root)."""
    return _md_links_of(tuple(paths), prefix)


# traceability lists the same few decision and file sets for thousands of requirements: format each once
@lru_cache(maxsize=1024)
def _md_codes_of(values: tuple[Any, ...]) -> str:
    return ", ".join(_md_code(v) for v in values)


@lru_cache(maxsize=1024)
def _md_links_of(paths: tuple[str, ...], prefix: str) -> str:
    return ", ".join(f"[{p}]({prefix}{p})" for p in paths)


_DICT_ATTRIBUTES = frozenset(dir(dict))


class Environment(jinja2.Environment):
    """Jinja's environment, with ``item.name`` on a plain dict looked up without a failed attribute lookup.

    Jinja resolves ``x.name`` by trying the attribute first and the key second, so every field read on a
    dict raises and catches an AttributeError; templates over a thousand views read a few hundred thousand.
    A plain dict has no attributes but dict's own, so reading the key directly when it is present and is
    not one of those names gives exactly the same result.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Attribute access in templates: a dict's keys as attributes, never a method of the dict."""
        if type(obj) is dict:
            if attribute in obj and attribute not in _DICT_ATTRIBUTES:
                return obj[attribute]
        else:
            try:
                return getattr(obj, attribute)
            except AttributeError:
                pass
        return super().getattr(obj, attribute)


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between runs, so a command does not compile ~60 templates each time.

    Jinja checks every entry against the checksum of its template source and the Python version, so
    an edited template or another interpreter simply compiles again. The cache is a convenience: an
    unreadable, unwritable or damaged entry is ignored and the template is compiled as usual.
    """

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # damaged or foreign file: compile instead
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def template_cache() -> jinja2.BytecodeCache | None:
    """``$XDG_CACHE_HOME/archgen/templates`` (``~/.cache`` by default); none when ``ARCHGEN_NO_CACHE`` is set."""
    if os.environ.get("ARCHGEN_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(base, "archgen", "templates")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.stat(directory)
    except OSError:
        return None
    # compiled code is loaded from here: only from a folder that this user owns and nobody else can write
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        return None
    return _TemplateCache(directory)


def _loader() -> jinja2.BaseLoader:
    """archgen's templates; a plugin component's as ``<its entry point name>/<file>`` (:mod:`.plugins`)."""
    from .plugins import template_folders

    own = jinja2.FileSystemLoader(str(TEMPLATES))
    folders = template_folders()
    if not folders:
        return own
    prefixed = jinja2.PrefixLoader({name: jinja2.FileSystemLoader(path) for name, path in folders.items()})
    return jinja2.ChoiceLoader([own, prefixed])


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one Jinja environment of the templates: strict undefined, the filters, the cached bytecode."""
    env = Environment(
        loader=_loader(),
        bytecode_cache=template_cache(),
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
    env.filters["md_cited"] = _md_cited
    env.filters["md_codes"] = _md_codes
    env.filters["md_links"] = _md_links
    env.filters["toml"] = _toml
    return env


def render_file(f: PlannedFile, arch: Architecture) -> bytes:
    """The bytes of one planned file: its content, its producer's output, or its rendered template."""
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
    """Every planned file rendered, by path."""
    return {f.path: render_file(f, arch) for f in plan.files}
