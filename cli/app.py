"""The whole `dsbuild` command: the bare group (group.py) with every part's commands.

Imports only go one way: command modules import `group` and `output`, never this
module, so `dsbuild.launch.cli` can use `dsbuild.cli.output` without an import circle.

Every command but `build`, `run`, `inspect` and `base` is loaded only when it is asked
for, or when the commands are listed: `dsbuild build` and `dsbuild run` do not pay for
importing the launch service and the hub (traitlets, Tornado's settings, the catalog),
which was most of the CLI's start-up, nor `gc`, `lock`/`show`/`diff` and `verify`
(docs/benchmarks.md)."""

from __future__ import annotations

from . import build_commands  # noqa: F401  (its commands decorate the group)
from .group import main


def _module(name: str):
    """A loader for a command module whose commands decorate the group when imported."""

    def load() -> dict:
        __import__(f"{__package__}.{name}")
        return {}

    return load


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
main.lazy_commands(("gc",), _module("gc_commands"))
main.lazy_commands(("lock", "show", "diff"), _module("repro_commands"))
main.lazy_commands(("verify",), _module("verify_commands"))

__all__ = ["main"]
