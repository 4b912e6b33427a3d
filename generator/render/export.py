"""`archgen export-template SPEC -o DIR`: the decided architecture as a cookiecutter template.

Another team copies the pattern with ``cookiecutter DIR``: ``cookiecutter.json`` holds the values a team
would change (the project name, the owners, the image registry and the domain of the staging and
production environments), and every generated file is a template in which each occurrence of those
values (and the forms archgen derives from them: ``driver-ranking``, ``DRIVER_RANKING``,
``DriverRanking``, Backstage owner references) is a cookiecutter variable; the rest is literal, inside
``{% raw %}`` where it holds Jinja syntax of its own. A form is turned into a variable only where the
variable's expression gives back exactly the same text, so ``cookiecutter DIR --no-input`` yields the
files ``archgen new`` writes, byte for byte. A post-generation hook (standard library only) recomputes
the hashes of ``.archgen/manifest.json``, so ``archgen check`` and ``archgen update`` work on a
repository made with other values too. Binary files (diagram images) are copied as they are.

What the template cannot change is what archgen decides: which files exist, and every value the spec
decides (stores, models, service levels); for another architecture, write a spec.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .. import __version__
from ..decide.architecture import Architecture
from ..generate import generate
from ..write.write import write_repository

TOP = "{{cookiecutter.project_name}}"
REGISTRY = "registry.example.internal"
DOMAIN = "example.internal"
_JINJA = ("{{", "{%", "{#")
_ENDRAW = re.compile(r"\{%-?\s*endraw\s*-?%\}")

HOOK = '''\
"""Recompute the hashes in .archgen/manifest.json for the values this repository was made with."""

import hashlib
import json
from pathlib import Path


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


manifest = Path(".archgen/manifest.json")
data = json.loads(manifest.read_text(encoding="utf-8"))
for path, entry in data["files"].items():
    entry["sha256"] = sha256(path)
data["spec"]["sha256"] = sha256(data["spec"]["path"])
text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\\n"
manifest.write_bytes(text.encode("utf-8"))
'''


def variables(arch: Architecture) -> dict[str, str]:
    """cookiecutter.json: the values another team would change, with this spec's as defaults."""
    owners = arch.spec.project.owners
    out = {"project_name": arch.spec.project.name}
    out["owner_data_engineering"] = owners.data_engineering
    out["owner_data_science"] = owners.data_science
    if owners.platform:
        out["owner_platform"] = owners.platform
    out["registry"] = REGISTRY
    out["environment_domain"] = DOMAIN
    return out


def _candidates(arch: Architecture, values: dict[str, str]) -> list[tuple[str, str]]:
    """(literal, cookiecutter expression) pairs: each value and the forms archgen derives from it."""
    from ..plan import deploy, portal

    name = values["project_name"]
    pairs = [
        (name, "{{ cookiecutter.project_name }}"),
        (deploy.slug(name), "{{ cookiecutter.project_name | replace('_', '-') }}"),
        (name.upper(), "{{ cookiecutter.project_name | upper }}"),
        (name.replace("_", "\\_"), "{{ cookiecutter.project_name | replace('_', '\\\\_') }}"),  # Markdown
        ("".join(w.capitalize() for w in name.split("_")), "{{ cookiecutter.project_name.title().replace('_', '') }}"),
        (values["registry"], "{{ cookiecutter.registry }}"),
        (values["environment_domain"], "{{ cookiecutter.environment_domain }}"),
    ]
    keys = [k for k in ("owner_data_engineering", "owner_data_science", "owner_platform") if k in values]
    # every owner at once, as CODEOWNERS lists them (sorted, each once)
    everyone = ", ".join(f"cookiecutter.{k}" for k in keys)
    pairs.append((" ".join(sorted({values[k] for k in keys})), f"{{{{ [{everyone}] | unique | sort | join(' ') }}}}"))
    for key in keys:
        owner = values.get(key)
        if owner is None:
            continue
        pairs.append((owner, f"{{{{ cookiecutter.{key} }}}}"))
        ref = portal.owner_ref(owner)
        if owner.startswith("@") and "/" in owner:
            pairs.append((ref, f"group:default/{{{{ cookiecutter.{key}.split('/')[1] }}}}"))
        elif owner.startswith("@"):
            pairs.append((ref, f"user:default/{{{{ cookiecutter.{key}[1:] }}}}"))
        else:
            pairs.append((ref, f"user:default/{{{{ cookiecutter.{key}.split('@')[0] }}}}"))
    return pairs


def substitutions(arch: Architecture, values: dict[str, str]) -> list[tuple[str, str]]:
    """The pairs whose expression renders back to exactly the literal, longest literal first."""
    from cookiecutter.environment import StrictEnvironment

    env = StrictEnvironment(keep_trailing_newline=True)
    kept: dict[str, str] = {}
    for literal, expr in _candidates(arch, values):
        if len(literal) >= 3 and literal not in kept and env.from_string(expr).render(cookiecutter=values) == literal:
            kept[literal] = expr
    return sorted(kept.items(), key=lambda p: (-len(p[0]), p[0]))


def _literal(text: str) -> str:
    """Text that renders to itself: raw where it holds Jinja syntax (an `endraw` in it is printed apart)."""
    if not any(m in text for m in _JINJA):
        return text
    out = []
    pos = 0
    for m in _ENDRAW.finditer(text):
        out.append(f"{{% raw %}}{text[pos : m.start()]}{{% endraw %}}{{{{ {m.group(0)!r} }}}}")
        pos = m.end()
    out.append(f"{{% raw %}}{text[pos:]}{{% endraw %}}")
    return "".join(out)


def templatize(text: str, subs: list[tuple[str, str]]) -> str:
    """``text`` as a cookiecutter template: each literal of ``subs`` replaced by its Jinja expression."""
    if not subs:
        return _literal(text)
    pattern = re.compile("|".join(re.escape(lit) for lit, _ in subs))
    exprs = dict(subs)
    out, pos = [], 0
    for m in pattern.finditer(text):
        out.append(_literal(text[pos : m.start()]))
        out.append(exprs[m.group(0)])
        pos = m.end()
    out.append(_literal(text[pos:]))
    return "".join(out)


def _is_binary(data: bytes) -> bool:
    from binaryornot.helpers import is_binary_string

    return bool(is_binary_string(data[:1024]))


def template_files(spec: Path) -> tuple[dict[str, bytes], dict[str, int]]:
    """The files and modes of the cookiecutter template of ``spec``."""
    gen = generate(spec)
    values = variables(gen.arch)
    subs = substitutions(gen.arch, values)
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    for path, data in gen.files.items():
        dest = f"{TOP}/{templatize(path, subs)}"
        if _is_binary(data):
            files[dest] = data  # cookiecutter copies binary files as they are
        else:
            text = templatize(data.decode("utf-8"), subs).encode("utf-8")
            if _is_binary(text):  # pragma: no cover - a text file that cookiecutter would take for binary
                raise ValueError(f"{path}: its template would be copied, not rendered")
            files[dest] = text
        modes[dest] = gen.modes[path]
    meta: dict[str, Any] = dict(values)
    meta["_archgen_version"] = __version__  # not asked for: records which archgen exported the template
    files["cookiecutter.json"] = (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    modes["cookiecutter.json"] = 0o644
    files["hooks/post_gen_project.py"] = HOOK.encode("utf-8")
    modes["hooks/post_gen_project.py"] = 0o644
    return files, modes


def run(spec: Path, output: Path, force: bool = False) -> int:
    """Write the cookiecutter template of ``spec`` to ``output``."""
    files, modes = template_files(spec)
    write_repository(output, files, modes, force=force, spec_path=spec)
    print(f"Wrote a cookiecutter template of {spec} to {output} ({len(files) - 2} files).")
    print(f"  cookiecutter {output}            # asks for the project name, owners, registry and domain")
    print(f"  cookiecutter {output} --no-input # the same files as `archgen new {spec}`")
    return 0
