"""The whole `dsbuild` command: the bare group (group.py) with every part's commands.

Imports only go one way: command modules import `group` and `output`, never this
module, so `dsbuild.launch.cli` can use `dsbuild.cli.output` without an import circle.

`serve` and `hub` (the launch service, the local hub, the spawner's config) are loaded
only when one of them is asked for, or when the commands are listed: `dsbuild build`
and `dsbuild run` do not pay for importing them (traitlets, Tornado's settings, the
catalog), which is most of the CLI's start-up (docs/benchmarks.md)."""

from __future__ import annotations

from . import build_commands, gc_commands, repro_commands, verify_commands  # noqa: F401  (their commands decorate the group)
from .group import main


def _launch_commands() -> dict:
    from dsbuild.launch.cli import register  # adds `serve`, and `up`/`down`/`status` to `hub`
    from dsbuild.spawner.cli import hub  # imports neither JupyterHub nor KubeSpawner

    commands = {"hub": hub}
    register(_Collect(commands), hub)
    return commands


class _Collect:
    """Stands in for the group in `register`, to receive the top-level commands it adds."""

    def __init__(self, into: dict):
        self.into = into

    def add_command(self, command) -> None:
        self.into[command.name] = command


main.lazy_commands(("hub", "serve"), _launch_commands)

__all__ = ["main"]
