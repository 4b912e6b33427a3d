"""Where archgen's own data lies: the Jinja templates of the generated repository.

The templates live in ``templates/`` at the top of a source checkout (the design card's layout); a wheel
ships them inside the package, as ``generator/templates`` (pyproject.toml maps the one to the other). The
installed location is looked at first, so an installed archgen never reads a ``templates`` folder that
happens to sit beside its package.
"""

from __future__ import annotations

from pathlib import Path

#: the ``generator`` package folder
PACKAGE_DIR = Path(__file__).resolve().parent


def _templates() -> Path:
    installed = PACKAGE_DIR / "templates"
    return installed if installed.is_dir() else PACKAGE_DIR.parent / "templates"


#: archgen's Jinja templates, one folder per component: the only templates archgen renders of its own
TEMPLATES = _templates()
