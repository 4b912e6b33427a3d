"""Render stage: planned files -> bytes, through one Jinja environment (:mod:`.render`); company overlays,
plugin components and the export as a cookiecutter template.
"""
