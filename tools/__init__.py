"""Scripts of archgen's own repository, not shipped: the demo, the reference regeneration and the icon drawing.

Run from the repository root: ``python -m tools.demo``, ``python -m tools.reference``, ``python -m tools.draw_icons``.
"""
