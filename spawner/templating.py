"""Rendering the Jinja templates shipped in dsbuild.templates/hub/."""

from __future__ import annotations

from importlib.resources import files

import jinja2


def _environment(autoescape: bool) -> jinja2.Environment:
    root = files("dsbuild.templates").joinpath("hub")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(name: str, **values) -> str:
    """Render an HTML template; every value is HTML-escaped."""
    return _environment(autoescape=True).get_template(name).render(**values)


def render_text(name: str, **values) -> str:
    """Render a config template; callers pass only values already made safe
    for the target language (see hub_config.py)."""
    return _environment(autoescape=False).get_template(name).render(**values)
