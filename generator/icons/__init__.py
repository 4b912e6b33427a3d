"""archgen's own diagram icons (Feast, Triton, SQLite, cron, model, workflow): the ``diagrams`` package has none.

The PNGs are drawn by :mod:`tools.draw_icons` (``python -m tools.draw_icons`` rewrites them) and ship as
package data. Only names listed in :data:`NAMES` exist.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ("cron", "feast", "model", "sqlite", "triton", "workflow")


def icon_path(name: str) -> Path:
    """The absolute path of one shipped icon (for graphviz; never written into output)."""
    if name not in NAMES:
        raise KeyError(name)
    return HERE / f"{name}.png"
