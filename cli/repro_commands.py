"""lock, show and diff: what an image is made of and where it came from."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.errors import ConfigError, SourceError
from dsbuild.builder.facts import choose_config_dir, BINDER_DIRS
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.lock import LOCK_FILE, LOCK_PATH, diff_locks, lock_digest, parse_lock
from dsbuild.builder.names import ENVIRONMENT_OPTIONS_LABEL, LABEL_PREFIX, LOCK_LABEL
from dsbuild.builder.service import BuildRequest
from dsbuild.builder.source import LocalSource, parse_source

from .build_commands import _build
from .group import main
from .output import user_errors

out = Console(highlight=False, soft_wrap=True)


def _image_for(engine: DockerEngine, target: str, ref: str | None, quiet: bool) -> str:
    """TARGET is an image on this engine, or a repository to build (or find built)."""
    if not Path(target).exists() and ref is None and engine.inspect_image(target) is not None:
        return target
    request = BuildRequest(source=parse_source(target, ref), host=read_host_settings())
    return _build(request, quiet).image


def _lock_of(engine: DockerEngine, image: str) -> str:
    text = engine.read_file(image, LOCK_PATH)
    if text is None:
        raise ConfigError(f"{image} has no {LOCK_PATH}: it was not built by this version of dsbuild")
    return text


target_argument = click.argument("target", metavar="IMAGE_OR_REPO")
ref_option = click.option("--ref", help="Branch, tag or commit, when TARGET is a git repository.")
quiet_option = click.option("-q", "--quiet", is_flag=True, default=True, help="Hide build progress (the default).")


@main.command()
@target_argument
@ref_option
@click.option("--write", is_flag=True, help=f"Write {LOCK_FILE} into the repository (local folders), beside requirements.txt.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the lock to this file.")
@quiet_option
@user_errors
def lock(target, ref, write, output, quiet):
    """Print the exact package set of an image (name==version with hashes).

    TARGET is an image built by dsbuild, or a repository (built first if needed).
    `--write` puts the lock into a local repository, so `dsbuild build --locked`
    installs exactly it later.
    """
    engine = DockerEngine()
    engine.ping()
    text = _lock_of(engine, _image_for(engine, target, ref, quiet))
    if write:
        source = parse_source(target, ref)
        if not isinstance(source, LocalSource):
            raise SourceError("--write needs a local folder; use -o FILE for images and git repositories")
        folder = source.path / choose_config_dir({d for d in BINDER_DIRS if (source.path / d).is_dir()})
        output = folder / LOCK_FILE
    if output:
        output.write_text(text)
        click.echo(str(output))
    else:
        click.echo(text, nl=False)


def environment_note(options: str | None) -> str:
    """What the tag says about the environment options (builder/names.py decides the tag)."""
    if options is None:
        return "environment options: not recorded (built by an older dsbuild)"
    if options == "defaults":
        return "environment options: defaults, so the tag is the commit (or folder content) alone"
    return (f"environment options: {options}; the tag's last part (-8 hex) names these options, "
            "so this build never replaces the build of the same commit with other options")


@main.command()
@click.argument("image")
@user_errors
def show(image):
    """Show where IMAGE came from (its provenance labels) and what it holds (its lock)."""
    engine = DockerEngine()
    engine.ping()
    labels = engine.image_labels(image)
    if labels is None:
        raise SourceError(f"no image {image} on this engine")
    table = Table(title=f"{image}: provenance", show_header=False, title_justify="left")
    table.add_column("label", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key in sorted(k for k in labels if k.startswith(("org.opencontainers.", LABEL_PREFIX))):
        table.add_row(key, labels[key])
    out.print(table)
    out.print(environment_note(labels.get(ENVIRONMENT_OPTIONS_LABEL)))
    text = engine.read_file(image, LOCK_PATH)
    if text is None:
        out.print(f"no {LOCK_PATH} in this image")
        return
    pins = parse_lock(text)
    verdict = "matches" if labels.get(LOCK_LABEL) == lock_digest(text) else "DOES NOT match"
    packages = Table(title=f"{len(pins)} packages (lock digest {verdict} the label)", title_justify="left")
    packages.add_column("package")
    packages.add_column("version")
    for name, version in sorted(pins.items()):
        packages.add_row(name, version)
    out.print(packages)


@main.command()
@click.argument("first", metavar="IMAGE_A")
@click.argument("second", metavar="IMAGE_B")
@quiet_option
@user_errors
def diff(first, second, quiet):
    """Packages added (+), removed (-) and changed (~) from IMAGE_A to IMAGE_B.

    Each may also be a repository, built first if needed.
    """
    engine = DockerEngine()
    engine.ping()
    a = _lock_of(engine, _image_for(engine, first, None, quiet))
    b = _lock_of(engine, _image_for(engine, second, None, quiet))
    changes = diff_locks(a, b)
    for name, version in changes.added:
        click.echo(f"+ {name}=={version}")
    for name, version in changes.removed:
        click.echo(f"- {name}=={version}")
    for name, old, new in changes.changed:
        click.echo(f"~ {name} {old} -> {new}")
    if changes.empty:
        click.echo("same packages", err=True)
