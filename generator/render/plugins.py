"""Plugin components: packages that add files to the generated repository.

A package declares an entry point in the ``archgen.components`` group; it names a module or object with

- ``plan(arch) -> Iterable[PlannedFile]`` (required): the files it adds, each with ``component`` equal to
  the entry point's name and ``decisions`` naming the decided keys that shape it (its own, added through
  the ``archgen.rules`` group, or archgen's) -- the decision-to-file contract holds for plugins too;
- ``finalize(arch, files)`` (optional): like a built-in component's, after every component has planned;
- ``TEMPLATES`` (optional): a folder of Jinja templates, named ``<entry point name>/<file>`` in
  ``PlannedFile.template`` and rendered like archgen's (same filters, same context);
- ``check(root, report)`` (optional): a probe ``archgen check`` runs on a generated repository that holds
  the plugin's files; it reports each problem with ``report.add(code, file, message, line=0)`` (a
  :class:`~requirements_spec.errors.Diagnostic` in ``report.problems``) and counts
  what it checked with ``report.count(...)``.

Entry points are read once per process, sorted by name; a plugin that cannot be loaded, plans a path
of another component, or cites a key nothing decided is an error (exit 70) naming the entry point.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..decide.architecture import Architecture
from ..errors import INTERNAL, ArchgenError
from ..resources import TEMPLATES

ENTRY_POINT_GROUP = "archgen.components"


def _error(origin: str, message: str) -> ArchgenError:
    return ArchgenError(f"plugin component {origin}: {message}", exit_code=INTERNAL)


@dataclass(frozen=True)
class PluginComponent:
    """An ``archgen.components`` entry point, loaded; it plans like a module of :mod:`generator.plan`."""

    name: str
    origin: str
    obj: Any
    templates: Path | None

    def plan(self, arch: Architecture) -> list[Any]:
        """The files the plugin plans, checked."""
        return self._checked(arch, self.obj.plan(arch))

    def finalize(self, arch: Architecture, files: Any) -> list[Any]:
        """The files the plugin's ``finalize`` adds, checked (none without one)."""
        hook = getattr(self.obj, "finalize", None)
        return self._checked(arch, hook(arch, files)) if hook is not None else []

    @property
    def probe(self) -> Callable[[Path, Any], None] | None:
        """The plugin's probe for `archgen check`, if it has one."""
        return getattr(self.obj, "check", None)

    def _checked(self, arch: Architecture, files: Iterable[Any]) -> list[Any]:
        from ..plan.plan import PlannedFile

        decided = {d.key for d in arch.decisions}
        out = list(files)
        for f in out:
            if not isinstance(f, PlannedFile):
                raise _error(self.origin, f"plan() returned {type(f).__name__}, not a PlannedFile")
            if f.component != self.name:
                raise _error(self.origin, f"{f.path} is planned as component {f.component!r}, not {self.name!r}")
            unknown = sorted(set(f.decisions) - decided)
            if unknown:
                raise _error(self.origin, f"{f.path} cites decisions nothing decided: {', '.join(unknown)}")
        return out


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, ep.value))


@lru_cache(maxsize=1)
def plugin_components() -> tuple[PluginComponent, ...]:
    """Every ``archgen.components`` entry point, loaded and checked (once per process)."""
    from ..plan.plan import COMPONENTS

    reserved = set(COMPONENTS) | {"archgen"} | {p.name for p in TEMPLATES.iterdir() if p.is_dir()}
    out = []
    for ep in _entry_points():
        origin = f"{ep.name} = {ep.value}"
        if ep.name in reserved or ep.name.startswith("overlay:"):
            raise _error(origin, f"the name {ep.name!r} is archgen's own")
        try:
            obj = ep.load()
        except Exception as exc:
            raise _error(origin, f"cannot be loaded: {type(exc).__name__}: {exc}") from exc
        if not callable(getattr(obj, "plan", None)):
            raise _error(origin, "has no plan(arch) function")
        raw = getattr(obj, "TEMPLATES", None)
        templates = Path(raw) if raw is not None else None
        if templates is not None and not templates.is_dir():
            raise _error(origin, f"TEMPLATES {templates} is not a folder")
        out.append(PluginComponent(ep.name, origin, obj, templates))
    return tuple(out)


def template_folders() -> dict[str, str]:
    """Template prefix (the entry point's name) -> its folder, for the Jinja loader."""
    return {p.name: str(p.templates) for p in plugin_components() if p.templates is not None}


def check_plugins(root: Path, report: Any, components: set[str]) -> None:
    """Run the probe of every plugin whose files the repository's manifest lists."""
    from ..checks.checks import PLUGIN_CODE

    for plugin in plugin_components():
        if plugin.name not in components or plugin.probe is None:
            continue
        try:
            plugin.probe(root, report)
        except Exception as exc:
            what = f"probe of {plugin.origin} failed: {type(exc).__name__}: {exc}"
            report.add(PLUGIN_CODE, plugin.name, what)
