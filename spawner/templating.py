"""Rendering the Jinja templates shipped in dsbuild.templates/hub/."""

from __future__ import annotations

from dsbuild.templates import environment


def render_html(name: str, **values) -> str:
    """Render an HTML template; every value is HTML-escaped."""
    return environment("hub", autoescape=True).get_template(name).render(**values)


def render_text(name: str, **values) -> str:
    """Render a config template; callers pass only values already made safe
    for the target language (see hub_config.py)."""
    return environment("hub", autoescape=False).get_template(name).render(**values)
