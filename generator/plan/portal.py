"""The developer portal: a Backstage ``catalog-info.yaml`` and a TechDocs ``mkdocs.yml`` over ``docs/``.

``catalog-info.yaml`` holds a System (the project) and a Component per part the spec's owners own: the
feature store (data engineering), training and the serving runtime (data science, or the platform team
when the spec names one), each with the TechDocs annotation that points at ``mkdocs.yml``. Owners become
Backstage entity references: a GitHub team ``@org/team`` is ``group:default/team``, a GitHub user
``@name`` is ``user:default/name`` and an e-mail address ``first.last@example.com`` is
``user:default/first.last`` (the names Backstage's GitHub and LDAP providers give them).

``mkdocs.yml`` builds the generated docs with ``mkdocs build --strict``. The docs link to code outside
``docs/`` (``../../serving/README.md``): a small MkDocs hook, ``techdocs/repo_links.py``, turns those links
into links to the repository (``repo_url``, once the team sets it) or into plain text, so links inside
the docs are still checked strictly. TechDocs adds its ``techdocs-core`` plugin when it builds.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .. import __version__
from ..decide.architecture import Architecture
from . import deploy
from .plan import PlannedFile

COMPONENT = "portal"
CATALOG = "catalog-info.yaml"
MKDOCS = "mkdocs.yml"
LINKS_HOOK = "techdocs/repo_links.py"
API_VERSION = "backstage.io/v1alpha1"
TECHDOCS_REF = "backstage.io/techdocs-ref"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def entity_name(raw: str) -> str:
    """A Backstage entity name: letters, digits and ``-_.``, alphanumeric at both ends, at most 63 long."""
    name = _NAME_CHARS.sub("-", raw)[:63].strip("-_.")
    return name or "unnamed"


def tag(raw: str) -> str:
    """A Backstage tag: lowercase words of ``a-z0-9:+#`` joined by single dashes, at most 63 long."""
    return "-".join(w for w in re.split(r"[^a-z0-9:+#]+", raw.lower()) if w)[:63].strip("-") or "none"


def owner_ref(owner: str) -> str:
    """A spec owner (``@org/team``, ``@user`` or an e-mail address) as a Backstage entity reference."""
    if owner.startswith("@"):
        org, _, team = owner[1:].partition("/")
        return f"group:default/{entity_name(team)}" if team else f"user:default/{entity_name(org)}"
    return f"user:default/{entity_name(owner.split('@', 1)[0])}"


def _entity(kind: str, name: str, description: str, spec: dict[str, Any], tags: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "description": description,
            "annotations": {TECHDOCS_REF: "dir:."},
            "tags": sorted({tag(t) for t in tags}),
        },
        "spec": spec,
    }


def entities(arch: Architecture) -> list[dict[str, Any]]:
    """The System and its Components, in a fixed order."""
    project = arch.spec.project
    owners = project.owners
    system = entity_name(deploy.slug(project.name))
    science = owner_ref(owners.data_science)
    runner = owner_ref(owners.platform) if owners.platform else science
    description = project.description or f"The {project.name} ML system."
    out = [_entity("System", system, description, {"owner": science}, ["ml", f"mlops-level-{arch.mlops_level}"])]
    lifecycle = "production" if arch.mlops_level >= 1 else "experimental"
    fs = arch.feature_store
    if fs is not None:
        out.append(
            _entity(
                "Component",
                f"{system}-features",
                f"Feast project {fs.project}: "
                + (f"{fs.online_store} online store, " if fs.online_store else "")
                + f"{fs.offline_store} offline store.",
                {
                    "type": "feature-store",
                    "lifecycle": lifecycle,
                    "owner": owner_ref(owners.data_engineering),
                    "system": system,
                },
                ["feast", *([fs.online_store] if fs.online_store else []), fs.offline_store],
            )
        )
    tr = arch.training
    out.append(
        _entity(
            "Component",
            f"{system}-training",
            f"Model training: {tr.mode}, scheduled by {tr.scheduler}.",
            {"type": "pipeline", "lifecycle": lifecycle, "owner": science, "system": system},
            ["training", tr.scheduler, tr.accelerator],
        )
    )
    sv = arch.serving
    serving_spec: dict[str, Any] = {"type": "service", "lifecycle": lifecycle, "owner": runner, "system": system}
    if fs is not None:
        serving_spec["dependsOn"] = [f"component:default/{system}-features"]
    out.append(
        _entity(
            "Component",
            f"{system}-serving",
            f"{sv.mode.capitalize()} serving with {sv.runtime}"
            + (f" over {sv.protocol}" if sv.protocol else " (in process)")
            + "; models: "
            + ", ".join(m.name for m in sv.models)
            + ".",
            serving_spec,
            ["serving", sv.runtime.replace("_", "-"), *([sv.protocol] if sv.protocol else [])],
        )
    )
    return out


def catalog_info(arch: Architecture) -> str:
    """The Backstage ``catalog-info.yaml``: the system and its components, owners from the spec."""
    head = (
        f"# Generated by archgen {__version__} from .archgen/spec.yaml (project, project.owners) and the decisions\n"
        "# online_store, offline_store, scheduler, training_mode, serving_runtime and delivery: the system and its\n"
        "# parts in the company's Backstage catalog. Owners are Backstage entity references made from the spec's\n"
        "# owners; the TechDocs annotation builds mkdocs.yml.\n"
    )
    docs = [yaml.safe_dump(e, sort_keys=False, allow_unicode=True, width=1000) for e in entities(arch)]
    return head + "---\n" + "---\n".join(docs)


def mkdocs_yml(arch: Architecture) -> str:
    """The TechDocs ``mkdocs.yml`` over ``docs/``."""
    project = arch.spec.project
    config: dict[str, Any] = {
        "site_name": project.name,
        "site_description": project.description or f"The {project.name} ML system.",
        "docs_dir": "docs",
        "hooks": [LINKS_HOOK],
        "validation": {
            "nav": {"omitted_files": "warn", "not_found": "warn"},
            "links": {"not_found": "warn", "anchors": "warn", "absolute_links": "warn"},
        },
    }
    head = (
        f"# Generated by archgen {__version__}: TechDocs over docs/ (the architecture, the decisions' ADRs and\n"
        "# onboarding). `mkdocs build --strict` passes; links from the docs to code elsewhere in the repository\n"
        f"# go through {LINKS_HOOK}. Set repo_url (e.g. https://github.com/ORG/REPO) to turn them into links.\n"
    )
    return head + yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=1000)


LINKS_HOOK_SOURCE = '''\
"""MkDocs hook, generated by archgen {version}: links from docs/ to files elsewhere in the repository.

The generated docs link to code (``../../serving/README.md``), which a docs site does not hold. With
``repo_url`` set in mkdocs.yml such a link points at the file in the repository; without it, the link
becomes its text. Links inside docs/ are left alone, so ``mkdocs build --strict`` still checks them.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

LINK = re.compile(r"\\[(?P<text>[^\\]]*)\\]\\((?P<target>[^)\\s]+)\\)")


def outside_docs(page_uri: str, target: str) -> str | None:
    """The repository path of a relative link that leaves docs/, or None."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
        return None
    path = target.split("#", 1)[0]
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(page_uri), path))
    if not resolved.startswith("../"):
        return None
    return posixpath.normpath(posixpath.join("docs", posixpath.dirname(page_uri), path))


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    repo_url = (config.get("repo_url") or "").rstrip("/")

    def replace(match: re.Match[str]) -> str:
        where = outside_docs(page.file.src_uri, match.group("target"))
        if where is None:
            return match.group(0)
        if repo_url:
            fragment = match.group("target").partition("#")[2]
            anchor = f"#{{fragment}}" if fragment else ""
            return f"[{{match.group('text')}}]({{repo_url}}/blob/HEAD/{{where}}{{anchor}})"
        return match.group("text")

    return LINK.sub(replace, markdown)
'''


def plan(arch: Architecture) -> list[PlannedFile]:
    """The portal files (the catalog and the TechDocs config)."""
    from ..decide.contract import only_decided

    return only_decided(
        arch,
        [
            PlannedFile(
                path=CATALOG,
                component=COMPONENT,
                content=catalog_info(arch),
                decisions=(
                    "online_store",
                    "offline_store",
                    "scheduler",
                    "training_mode",
                    "serving_runtime",
                    "delivery",
                ),
            ),
            PlannedFile(path=MKDOCS, component=COMPONENT, content=mkdocs_yml(arch)),
            PlannedFile(path=LINKS_HOOK, component=COMPONENT, content=LINKS_HOOK_SOURCE.format(version=__version__)),
        ],
    )
