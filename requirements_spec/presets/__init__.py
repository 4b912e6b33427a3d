"""Preset specs: `archgen init --preset NAME` writes one as a commented starting point."""

from __future__ import annotations

from importlib import resources

STARTER = "reference"


def names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def text(name: str) -> str:
    if name == "starter":
        name = STARTER
    if name not in names():
        raise KeyError(name)
    return resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")


def summary(name: str) -> str:
    """The first comment line of a preset: what it shows."""
    for line in text(name).splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""
