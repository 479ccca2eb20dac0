"""The `dsbuild` click group. Each part of the product adds its own commands here."""

from __future__ import annotations

import click

from importlib.metadata import version


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("dsbuild"), prog_name="dsbuild")
def main() -> None:
    """Turn a repository of Binder configuration files into a JupyterLab image,
    run it, and launch it for JupyterHub users on Kubernetes.

    \b
    Quick start:
      dsbuild inspect examples/sketches   # what would be built, no build
      dsbuild run examples/sketches       # build if needed, then open JupyterLab
    """


def _register() -> None:
    from . import build_commands, gc_commands, repro_commands  # noqa: F401  (add their commands to main)

    from dsbuild.launch.cli import register  # adds `serve`, and `up`/`down`/`status` to `hub`
    from dsbuild.spawner.cli import hub  # imports neither JupyterHub nor KubeSpawner

    main.add_command(hub)
    register(main, hub)


_register()
