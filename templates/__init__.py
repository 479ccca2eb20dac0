"""Jinja templates (package data), and the one function that loads them.

jinja2 is imported on first use, so commands that render nothing start quickly."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files


@lru_cache(maxsize=None)
def environment(folder: str, autoescape: bool, trim: bool = True):
    """A Jinja environment over templates/<folder>. Undefined values are errors;
    `autoescape` is for HTML and SVG; configuration templates quote their values
    themselves (filters, or values made safe by the caller). Compiled templates are kept
    in Jinja's own bytecode cache (a folder of this user's under the temporary folder, keyed
    by each template's source), so a build does not compile the Dockerfile template again."""
    import jinja2

    root = files(__name__).joinpath(folder) if folder else files(__name__)
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=trim,
        lstrip_blocks=trim,
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
    )


def read_template(folder: str, name: str) -> str:
    return files(__name__).joinpath(folder, name).read_text(encoding="utf-8")
