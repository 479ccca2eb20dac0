"""The `dsbuild` click group, bare. Command modules add to it; `app.py` assembles them."""

from __future__ import annotations

from importlib.metadata import version
from typing import Callable

import click


class LazyGroup(click.Group):
    """A click group some of whose commands are imported only when asked for (or listed)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loaders: dict[str, Callable[[], dict]] = {}

    def lazy_commands(self, names: tuple[str, ...], loader: Callable[[], dict]) -> None:
        """`loader()` makes the commands `names` ({name: command} it returns are added; a
        module whose commands decorate this group may return {}); it runs at most once."""
        self._loaders.update(dict.fromkeys(names, loader))

    def _load(self, name: str) -> None:
        loader = self._loaders.get(name)
        if loader is not None:
            self._loaders = {n: other for n, other in self._loaders.items() if other is not loader}
            for command in loader().values():
                self.add_command(command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._loaders))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._load(name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("dsbuild"), prog_name="dsbuild")
def main() -> None:
    """Turn a repository of Binder configuration files into a JupyterLab image,
    run it, and launch it for JupyterHub users on Kubernetes.

    \b
    Quick start:
      dsbuild inspect examples/sketches   # what would be built, no build
      dsbuild run examples/sketches       # build if needed, then open JupyterLab
    """
