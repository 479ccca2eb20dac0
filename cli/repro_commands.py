"""lock, show, diff and verify: what an image is made of and where it came from."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.envlock import (
    APT_LOCK_PATH,
    INSTALLED_PATH,
    PROJECT_PATH,
    BaseRecord,
    compose_lock,
    diff_environment,
    own_and_outside,
    parse_apt_lock,
)
from dsbuild.builder.errors import ConfigError, SourceError
from dsbuild.builder.facts import choose_config_dir, BINDER_DIRS
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.lock import LOCK_FILE, LOCK_PATH, LockDiff, lock_digest, parse_lock
from dsbuild.builder.names import (
    BASE_CREATED_LABEL,
    BASE_IMAGE_ID_LABEL,
    BASE_IMAGE_LABEL,
    BASE_SUITE_LABEL,
    ENVIRONMENT_OPTIONS_LABEL,
    INCREMENT_LABEL,
    INCREMENTAL_FROM_LABEL,
    LABEL_PREFIX,
    LOCK_LABEL,
    LOCK_ORIGIN_LABEL,
)
from dsbuild.builder.plan import BuildOptions
from dsbuild.builder.service import BuildRequest
from dsbuild.builder.source import LocalSource, parse_source

from .build_commands import _build
from .group import main
from .output import user_errors

out = Console(highlight=False, soft_wrap=True)


def _image_for(engine: DockerEngine, target: str, ref: str | None, quiet: bool,
               options: BuildOptions = BuildOptions()) -> str:
    """TARGET is an image on this engine, or a repository to build (or find built)."""
    if not Path(target).exists() and ref is None and engine.inspect_image(target) is not None:
        return target
    request = BuildRequest(source=parse_source(target, ref), options=options, host=read_host_settings())
    return _build(request, quiet).image


def _lock_of(engine: DockerEngine, image: str) -> str:
    """The image's whole lock: its Python lock, the base it was built on, and the Debian
    packages its apt.txt step installed (all read without running the image)."""
    text = engine.read_file(image, LOCK_PATH)
    if text is None:
        raise ConfigError(f"{image} has no {LOCK_PATH}: it was not built by this version of dsbuild")
    labels = engine.image_labels(image) or {}
    base = None
    if labels.get(BASE_IMAGE_LABEL) and labels.get(BASE_IMAGE_ID_LABEL):
        base = BaseRecord(labels[BASE_IMAGE_LABEL], labels[BASE_IMAGE_ID_LABEL],
                          labels.get(BASE_SUITE_LABEL, ""), labels.get(BASE_CREATED_LABEL, ""))
    return compose_lock(text, engine.read_file(image, APT_LOCK_PATH), base)


target_argument = click.argument("target", metavar="IMAGE_OR_REPO")
ref_option = click.option("--ref", help="Branch, tag or commit, when TARGET is a git repository.")
quiet_option = click.option("-q", "--quiet", is_flag=True, default=True, help="Hide build progress (the default).")


@main.command()
@target_argument
@ref_option
@click.option("--write", is_flag=True,
              help=f"Resolve again (--relock) and write {LOCK_FILE} into the repository (local folders), "
                   "beside requirements.txt; builds then install exactly it.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the lock to this file.")
@quiet_option
@user_errors
def lock(target, ref, write, output, quiet):
    """Print the exact package set of an image (name==version with hashes), the base
    image it was built on and the Debian packages of its apt.txt (`# dsbuild-` lines).

    TARGET is an image built by dsbuild, or a repository (built first if needed).
    `--write` resolves the repository again and puts the lock into it: from then on
    `build`, `run` and launch links install exactly it (`--relock` resolves again).
    """
    engine = DockerEngine()
    engine.ping()
    text = _lock_of(engine, _image_for(engine, target, ref, quiet, BuildOptions(relock=write)))
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


def build_note(labels: dict[str, str]) -> str:
    """Whether the image was built in full or on top of an earlier one (builder/increment.py)."""
    upon = labels.get(INCREMENTAL_FROM_LABEL)
    if not upon:
        return "built: in full"
    return (f"built: incrementally, {labels.get(INCREMENT_LABEL, '?')} increment(s) from a full build, on top of "
            f"{upon}; the lock above is the full lock, and the environment is exactly it")


@main.command()
@click.argument("image")
@user_errors
def show(image):
    """Show where IMAGE came from (its provenance labels) and what it holds: its lock,
    its Debian packages from apt.txt, the repository's own code (its package, installed
    with --no-deps: its dependencies are in the lock), and what was installed outside
    the lock (by postBuild, or a requirements file that includes others)."""
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
    out.print(f"packages: {labels.get(LOCK_ORIGIN_LABEL, 'origin not recorded (built by an older dsbuild)')}")
    out.print(build_note(labels))
    text = engine.read_file(image, LOCK_PATH)
    if text is None:
        out.print(f"no {LOCK_PATH} in this image")
        return
    pins = parse_lock(text)
    verdict = "matches" if labels.get(LOCK_LABEL) == lock_digest(text) else "DOES NOT match"
    _table(f"{len(pins)} packages (lock digest {verdict} the label)", pins)
    apt = parse_apt_lock(engine.read_file(image, APT_LOCK_PATH) or "")
    if apt:
        _table(f"{len(apt)} Debian packages installed for apt.txt", apt)
    _show_outside(text, engine.read_file(image, INSTALLED_PATH), engine.read_file(image, PROJECT_PATH) or "")


def _table(title: str, pins: dict[str, str]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("package")
    table.add_column("version")
    for name, version in sorted(pins.items()):
        table.add_row(name, version)
    out.print(table)


def _show_outside(lock: str, installed: str | None, own: str) -> None:
    if installed is None:
        out.print("installed outside the lock: not recorded (built by an older dsbuild)")
        return
    mine, outside = own_and_outside(lock, installed, own)
    if mine:
        _table(f"the repository's own code: {len(mine)} (installed from its folder with --no-deps; "
               "its dependencies are in the lock)", mine)
    if not outside:
        out.print("installed outside the lock: nothing")
        return
    _table(f"installed outside the lock: {len(outside)} (postBuild, or an install after the lock)", outside)


def print_changes(python: LockDiff, apt: LockDiff) -> None:
    """The report of `diff` and `verify`: + added, - removed, ~ changed (Debian ones as apt:NAME)."""
    for prefix, changes, sep in (("", python, "=="), ("apt:", apt, "=")):
        for name, version in changes.added:
            click.echo(f"+ {prefix}{name}{sep}{version}")
        for name, version in changes.removed:
            click.echo(f"- {prefix}{name}{sep}{version}")
        for name, old, new in changes.changed:
            click.echo(f"~ {prefix}{name} {old} -> {new}")


@main.command()
@click.argument("first", metavar="IMAGE_A")
@click.argument("second", metavar="IMAGE_B")
@quiet_option
@user_errors
def diff(first, second, quiet):
    """Packages added (+), removed (-) and changed (~) from IMAGE_A to IMAGE_B: Python
    packages, then the Debian packages of apt.txt (apt:NAME).

    Each may also be a repository, built first if needed.
    """
    engine = DockerEngine()
    engine.ping()
    a = _lock_of(engine, _image_for(engine, first, None, quiet))
    b = _lock_of(engine, _image_for(engine, second, None, quiet))
    python, apt = diff_environment(a, b)
    print_changes(python, apt)
    if python.empty and apt.empty:
        click.echo("same packages", err=True)
