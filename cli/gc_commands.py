"""gc: remove old git mirrors, build contexts, images and build cache."""

from __future__ import annotations

import click
from rich.text import Text

from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.gc import GcPolicy, collect_garbage, collect_registry_garbage, parse_age, parse_bytes
from dsbuild.builder.registry import Registry, docker_auth
from dsbuild.builder.workspace import cache_dir

from .group import main
from .output import err_console, user_errors


def _convert(parse, value, name):
    try:
        return parse(value)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint=name) from None


@main.command("gc")
@click.option("--max-age", default="7d", show_default=True, help="Remove what was not used for this long (30m, 12h, 7d).")
@click.option("--max-disk", default="50g", show_default=True,
              help="Then remove the oldest until each kind (mirrors, contexts, images) uses at most this much.")
@click.option("--images/--no-images", default=True, show_default=True, help="Also remove images dsbuild built (never base images, never images a container uses).")
@click.option("--build-cache/--no-build-cache", default=True, show_default=True,
              help="Also prune the engine's BuildKit cache (layers and package caches) by the same age and size; not with --only or --dry-run.")
@click.option("--only", metavar="PATTERN", help="Only images whose name matches this `docker images --filter reference=` "
              "pattern (with --registry: whose repository name starts with it).")
@click.option("--registry", metavar="HOST:PORT",
              help="Collect the dsbuild images in this registry instead, through its API (it needs delete enabled; "
                   "its own garbage-collect then frees the disk). Credentials: the Docker config's.")
@click.option("--dry-run", is_flag=True, help="Print what would be removed; remove nothing.")
@user_errors
def gc_command(max_age, max_disk, images, build_cache, only, registry, dry_run):
    """Remove old git mirrors, build contexts and images dsbuild made, and trim the
    engine's build cache.

    Mirrors and contexts live under ~/.cache/dsbuild (DSBUILD_CACHE_DIR); they go when
    unused for --max-age, then oldest first while a kind uses more than --max-disk.
    Images go by their build date. A context being built, or an image a container
    uses, is kept. The build cache (BuildKit's layers and the per-source package caches,
    which grow with every repository built) is pruned by the same age, then down to
    --max-disk. The launch service can run the same collection on a timer.

    \b
    With --registry, the same rules for the images dsbuild pushed to a registry:
      dsbuild gc --registry registry.example.org:5000 --max-age 14d --max-disk 200g
    """
    policy = GcPolicy(
        max_age=_convert(parse_age, max_age, "--max-age"),
        max_bytes=_convert(parse_bytes, max_disk, "--max-disk"),
        images=images, only_images=only, build_cache=build_cache and not only, dry_run=dry_run,
    )
    if registry:
        target = Registry(registry)
        report = collect_registry_garbage(target, policy, auth=docker_auth(target.host))
    else:
        engine = DockerEngine() if images or policy.build_cache else None
        if engine is not None:
            engine.ping()
        report = collect_garbage(cache_dir(), engine, policy)
    verb = "would remove" if dry_run else "removed"
    for entry in report.removed:
        click.echo(entry.label)
    cache = f", build cache {report.build_cache_freed / 2**20:.1f} MiB" if report.build_cache_freed else ""
    err_console.print(Text(f"{verb} {len(report.removed)} ({report.freed / 2**20:.1f} MiB{cache}), kept {report.kept}"))
