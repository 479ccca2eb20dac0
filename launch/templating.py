"""The launch service's templates (templates/launch/): HTML pages and the badge with
autoescape on, configuration files with every value passed through `python_literal`."""

from __future__ import annotations

from dsbuild.templates import environment, read_template as _read


def render_page(name: str, **values) -> str:
    """An HTML page or SVG image; every value is escaped."""
    return environment("launch", autoescape=True).get_template(name).render(**values)


def render_config(name: str, **values) -> str:
    """A configuration file; callers pass values already made safe (python_literal)."""
    return environment("launch", autoescape=False).get_template(name).render(**values)


def read_template(name: str) -> str:
    return _read("launch", name)
