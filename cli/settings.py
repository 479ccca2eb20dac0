"""Click options generated from traitlets settings, so a setting's default and help are
declared once, on its trait (launch/config.py, launch/hubconfig.py), as in JupyterHub.

    @setting(LaunchConfig, "max_builds")                 # --max-builds, int, default 2
    @setting(LaunchConfig, "mode", default=None)         # the trait's help, no default shown
"""

from __future__ import annotations

from typing import Any

import click
from traitlets import Bool, Enum, Float, Int, List, Unicode
from traitlets.config import Configurable


def _click_type(trait: Any) -> Any:
    if isinstance(trait, Enum):
        return click.Choice(list(trait.values))
    if isinstance(trait, Bool):
        return bool
    if isinstance(trait, Int):
        return int
    if isinstance(trait, Float):
        return float
    if isinstance(trait, List):
        return _click_type(trait._trait) if trait._trait is not None else str
    if isinstance(trait, Unicode):
        return str
    raise TypeError(f"no command-line type for {type(trait).__name__}")


def setting(cls: type[Configurable], name: str, *decls: str, **kwargs: Any):
    """`click.option` for the trait `cls.name`: its type, default and help unless given.
    The parameter is named like the trait, so the command can pass it on unchanged."""
    trait = cls.class_traits()[name]
    kwargs.setdefault("help", " ".join(trait.help.split()))
    if "type" not in kwargs and not kwargs.get("is_flag"):
        kwargs["type"] = _click_type(trait)
    if isinstance(trait, List):
        kwargs.setdefault("multiple", True)
    if "default" not in kwargs:
        default = trait.default()
        if default not in (None, "", []):
            kwargs["default"] = tuple(default) if isinstance(trait, List) else default
            kwargs.setdefault("show_default", True)
    return click.option(*(decls or (f"--{name.replace('_', '-')}",)), name, **kwargs)
