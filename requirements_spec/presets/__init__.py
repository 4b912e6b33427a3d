"""Preset specs: `archgen init --preset NAME` writes one as a commented starting point.

Each preset is a complete, valid spec whose first line is a ``# ...`` summary (shown by
``archgen init --list``). ``reference`` and ``realtime`` are byte-identical copies of the
design's example specs.
"""

from __future__ import annotations

from importlib import resources

#: the preset `archgen init` writes when none is named
STARTER = "starter"

# the two design examples must stay byte-identical to the design's copies, so their
# one-line summaries live here rather than in their first comment line
_SUMMARIES = {
    "reference": "Reference: driver ranking, precomputed features from files, one sklearn model served online.",
    "realtime": "Real-time fraud scoring: request-time features, a two-model pipeline, 15 ms p99 on Kubernetes.",
}


def names() -> list[str]:
    """Every preset name, sorted."""
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def text(name: str) -> str:
    """The preset's YAML text. Unknown names raise :class:`KeyError`."""
    if name not in names():
        raise KeyError(name)
    return resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")


def summary(name: str) -> str:
    """The first comment line of a preset: what it shows."""
    if name in _SUMMARIES:
        return _SUMMARIES[name]
    for line in text(name).splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""
