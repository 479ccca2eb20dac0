"""The launch service's templates (templates/launch/): HTML pages and the badge with
autoescape on, configuration files with every value passed through `python_literal`."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import jinja2


@lru_cache(maxsize=2)
def _environment(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(files("dsbuild.templates").joinpath("launch"))),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(name: str, **values) -> str:
    """An HTML page or SVG image; every value is escaped."""
    return _environment(True).get_template(name).render(**values)


def render_config(name: str, **values) -> str:
    """A configuration file; callers pass values already made safe (python_literal)."""
    return _environment(False).get_template(name).render(**values)


def read_template(name: str) -> str:
    return files("dsbuild.templates").joinpath("launch", name).read_text(encoding="utf-8")
