"""The `dsbuild` click group, bare. Command modules add to it; `app.py` assembles them."""

from __future__ import annotations

from importlib.metadata import version

import click


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
