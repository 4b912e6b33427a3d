"""Plan stage: Architecture -> FilePlan, the list of files to produce. Pure: no I/O.

Each component module (:data:`COMPONENTS`) contributes files through
``plan(arch) -> list[PlannedFile]``. Which files exist is decided from decisions; file names
never go through Jinja, and every path is checked to stay inside the repository.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from types import ModuleType
from typing import TYPE_CHECKING

from ..decide.architecture import Architecture
from ..errors import INTERNAL, ArchgenError

if TYPE_CHECKING:
    from ..render.plugins import PluginComponent

# component -> the module that plans its files, in the order their files are listed: a planner of this
# package, but the docs, which are planned with the other views of the architecture
COMPONENTS = {
    "frame": "generator.plan.frame",
    "feature_repo": "generator.plan.feature_repo",
    "model_repository": "generator.plan.model_repository",
    "serving": "generator.plan.serving",
    "batch": "generator.plan.batch",
    "embedded": "generator.plan.embedded",
    "training": "generator.plan.training",
    "pipelines": "generator.plan.pipelines",
    "deploy": "generator.plan.deploy",
    "security": "generator.plan.security",
    "docs": "generator.views.docs_component",
    "fitness": "generator.plan.fitness",
    "portal": "generator.plan.portal",
}


@dataclass(frozen=True)
class PlannedFile:
    """One file of the generated repository and how to produce it."""

    path: str  # posix, relative to the repository root
    component: str
    template: str | None = None  # a template under templates/, rendered with `arch`, `spec` and `context`
    context: Mapping[str, object] = field(default_factory=dict)
    content: str | bytes | None = None  # literal content (e.g. a protobuf text config)
    producer: Callable[[], bytes] | None = None  # produced at render time (e.g. a diagram image)
    # drawn by another program (graphviz): started before the rest, so it runs while the templates render
    external: bool = False
    executable: bool = False
    decisions: tuple[str, ...] = ()  # decision keys that shaped this file (traceability)
    team_owned: bool = False  # written once for the team to fill in: `archgen update` never rewrites it

    def __post_init__(self) -> None:
        check_relative(self.path)
        if sum(x is not None for x in (self.template, self.content, self.producer)) != 1:
            raise ArchgenError(
                f"internal: {self.path} needs exactly one of template, content, producer", exit_code=INTERNAL
            )


def rendered(
    path: str, component: str, context: Mapping[str, object] | None = None, *, decisions: tuple[str, ...] = ()
) -> PlannedFile:
    """The file at ``path`` rendered from the template named after it, ``templates/<path>.j2``."""
    return PlannedFile(path, component, template=f"{path}.j2", context=context or {}, decisions=decisions)


@dataclass(frozen=True)
class FilePlan:
    """Every file of the repository to render, in a stable order."""

    files: tuple[PlannedFile, ...]

    def paths(self) -> list[str]:
        """The planned paths, in order."""
        return [f.path for f in self.files]

    def by_component(self) -> dict[str, list[PlannedFile]]:
        """The planned files by component."""
        out: dict[str, list[PlannedFile]] = {}
        for f in self.files:
            out.setdefault(f.component, []).append(f)
        return out


def check_relative(path: str) -> str:
    """A generated path must be relative, normalised and free of '..' (checked again at write time)."""
    p = PurePosixPath(path)
    if not path or p.is_absolute() or "\\" in path or any(part in ("..", ".", "") for part in path.split("/")):
        raise ArchgenError(f"internal: unsafe generated path {path!r}", exit_code=INTERNAL)
    return path


def component_modules() -> list[ModuleType | PluginComponent]:
    """The modules of the built-in components, in :data:`COMPONENTS` order, then the plugin components."""
    mods: list[ModuleType | PluginComponent] = []
    for module in COMPONENTS.values():
        try:
            mods.append(importlib.import_module(module))
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    from ..render.plugins import plugin_components  # packages' components (`archgen.components` entry points)

    return mods + list(plugin_components())


def build_plan(arch: Architecture) -> FilePlan:
    """Collect every component's ``plan(arch)``; then each optional ``finalize(arch, files)`` hook.

    A ``finalize`` hook sees the files of the first phase (all components, sorted by path) and adds its own:
    docs use it to trace requirements to every generated file. Hooks do not see each other's files.
    """
    files: dict[str, PlannedFile] = {}
    modules = component_modules()
    for mod in modules:
        _add(files, mod.plan(arch))
    for path in arch.seams:  # the customization decision makes these the team's own (never rewritten by update)
        if path in files and "customization" not in files[path].decisions:
            files[path] = replace(files[path], decisions=(*files[path].decisions, "customization"))
    first = tuple(sorted(files.values(), key=lambda f: f.path))
    for mod in modules:
        finalize = getattr(mod, "finalize", None)
        if finalize is not None:
            _add(files, finalize(arch, first))
    from ..decide.contract import enforce

    planned = tuple(sorted(files.values(), key=lambda f: f.path))
    enforce(arch, planned)
    return FilePlan(planned)


def _add(files: dict[str, PlannedFile], new: Iterable[PlannedFile]) -> None:
    for f in new:
        if f.path in files:
            raise ArchgenError(
                f"internal: {f.path} planned twice ({files[f.path].component}, {f.component})", exit_code=INTERNAL
            )
        files[f.path] = f
