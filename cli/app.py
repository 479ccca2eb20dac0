"""The whole `dsbuild` command: the bare group (group.py) with every part's commands.

Imports only go one way: command modules import `group` and `output`, never this
module, so `dsbuild.launch.cli` can use `dsbuild.cli.output` without an import circle."""

from __future__ import annotations

from dsbuild.launch.cli import register  # adds `serve`, and `up`/`down`/`status` to `hub`
from dsbuild.spawner.cli import hub  # imports neither JupyterHub nor KubeSpawner

from . import build_commands, gc_commands, repro_commands, verify_commands  # noqa: F401  (their commands decorate the group)
from .group import main

main.add_command(hub)
register(main, hub)

__all__ = ["main"]
