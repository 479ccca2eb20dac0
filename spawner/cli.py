"""`dsbuild hub ...`: commands for JupyterHub admins.

The main CLI adds this group with ``main.add_command(hub)``. It must import
without JupyterHub or KubeSpawner installed, so nothing here imports them.
"""

from __future__ import annotations

from pathlib import Path

import click

from .catalog import parse_catalog, read_catalog_file
from .errors import CatalogError
from .hub_config import FORMATS, render_hub_config


def _catalog_failure(message: str) -> click.ClickException:
    """A catalog error as click shows it: one line, the catalog's exit code."""
    failure = click.ClickException(message)
    failure.exit_code = CatalogError.exit_code
    return failure


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def hub() -> None:
    """JupyterHub for dsbuild images: `config` for a hub on Kubernetes, `up`/`down`
    for a local hub whose servers are containers on this machine's Docker engine.

    An admin describes what users may choose (environments, CPU, memory,
    GPUs, home volume size, shared data) and the limits per JupyterHub group
    in a catalog file; see docs/spawner.md and examples/hub/catalog.yaml.
    """


@hub.command("config")
@click.option(
    "--catalog", "catalog_path", required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The resource catalog (YAML). It is checked first; errors name the bad key.",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="jupyterhub", show_default=True,
    help="jupyterhub: lines for jupyterhub_config.py. "
         "z2jh: Helm values for an existing Zero-to-JupyterHub install.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write here instead of standard output.",
)
def config(catalog_path: Path, fmt: str, output: Path | None) -> None:
    """Check a catalog and print the hub configuration that uses it.

    \b
    Examples:
      dsbuild hub config --catalog examples/hub/catalog.yaml
      dsbuild hub config --catalog catalog.yaml --format z2jh -o dsbuild-values.yaml
      helm upgrade --install jhub jupyterhub/jupyterhub -f values.yaml -f dsbuild-values.yaml

    The output sets the spawner to "dsbuild" and embeds the checked catalog, so
    the hub needs dsbuild installed (pip install "dsbuild[spawner]").
    """
    try:
        data = read_catalog_file(catalog_path)  # its errors name the file
    except ModuleNotFoundError as e:
        raise click.ClickException(f"{e.name} is needed to read catalogs: pip install \"dsbuild[spawner]\"") from None
    except CatalogError as e:
        raise _catalog_failure(str(e)) from None
    try:
        catalog = parse_catalog(data)
    except CatalogError as e:
        raise _catalog_failure(f"{catalog_path}: {e}") from None
    text = render_hub_config(catalog, fmt, source=str(catalog_path))
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        raise click.ClickException(f"cannot write {output}: {e.strerror or e}") from None
    click.echo(f"Wrote {fmt} configuration to {output}", err=True)
