"""inspect, build, run and base: the builder's commands."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
from click import UsageError
from rich.text import Text

from dsbuild.builder.base_image import base_facts, build_default_base
from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.errors import EngineUnavailable, ConfigError
from dsbuild.builder.facts import scan
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.plan import DEFAULT_BASE_IMAGE, BaseFacts, BuildOptions, PythonInstall, plan
from dsbuild.builder.render import render_dockerfile
from dsbuild.builder.run import RunOptions, Volume, start_server
from dsbuild.builder.registry import Registry
from dsbuild.builder.service import BuildRequest, Built, build
from dsbuild.builder.source import parse_source
from dsbuild.builder.target import decide_target
from dsbuild.builder.workspace import Workspace

from .group import main
from .output import Progress, err_console, user_errors

# What the default base offers, for `inspect` when no engine answers.
ASSUMED_DEFAULT_BASE = BaseFacts(DEFAULT_BASE_IMAGE, (PythonInstall("3.11", "/usr/bin/python3.11"),), "3.11")


def source_options(command):
    """REPO, --ref and the options that shape what gets built."""
    for decorator in reversed(
        [
            click.argument("repo"),
            click.option("--ref", help="Branch, tag or commit to build (git sources). Default: the remote's HEAD."),
            click.option(
                "--base-image",
                default=DEFAULT_BASE_IMAGE,
                show_default=True,
                help="Any Debian-family image with python3. The default is built locally by `dsbuild base`.",
            ),
        ]
    ):
        command = decorator(command)
    return command


def build_options(command):
    for decorator in reversed(
        [
            click.option("--image-name", help="Image repository name. Default: dsbuild-<repo name>-<8 hex of the source URL>."),
            click.option("--force", is_flag=True, help="Build even if the image for this commit exists."),
            click.option("--no-cache", is_flag=True, help="Do not reuse Docker's layer cache."),
            click.option(
                "--ca-cert",
                type=click.Path(dir_okay=False, path_type=Path),
                help="CA bundle trusted during the build. Default: the host's (SSL_CERT_FILE, PIP_CERT, system bundle).",
            ),
            click.option("--index-url", help="Python package index for the build. Default: the host's pip/uv setting."),
            click.option("--locked", is_flag=True, help="Install exactly the repository's requirements.lock (see `dsbuild lock`)."),
            click.option(
                "--as-of",
                metavar="DATE|commit",
                help="Resolve unpinned requirements as they were on DATE (2023-06-30), or on the commit's date.",
            ),
            click.option("--registry", metavar="HOST:PORT", help="Name the image HOST:PORT/NAME:TAG; skip the build if the registry has it."),
            click.option("--push", is_flag=True, help="Push the image to --registry after building."),
            click.option("-q", "--quiet", is_flag=True, help="Print only errors and the result."),
        ]
    ):
        command = decorator(command)
    return command


def _request(repo, ref, base_image, image_name, force, no_cache, ca_cert, index_url, locked, as_of, registry, push) -> BuildRequest:
    if push and not registry:
        raise UsageError("--push needs --registry HOST:PORT")
    return BuildRequest(
        source=parse_source(repo, ref),
        options=BuildOptions(base_image=base_image, locked=locked, as_of=as_of),
        host=read_host_settings(ca_cert, index_url),
        name=image_name,
        force=force,
        no_cache=no_cache,
        registry=Registry(registry) if registry else None,
        push=push,
    )


def _build(request: BuildRequest, quiet: bool) -> Built:
    show = Progress(quiet)
    result = None
    for event in build(request, DockerEngine()):
        show(event)
        result = event if isinstance(event, Built) else result
    assert result is not None
    return result


@main.command()
@source_options
@user_errors
def inspect(repo, ref, base_image):
    """Show what REPO would be built from, and the generated Dockerfile. Builds nothing.

    REPO is a local folder, a git URL (https://, file://, ssh) or gh:ORG/NAME.
    The Dockerfile goes to stdout, the summary to stderr:

        dsbuild inspect examples/sketches > Dockerfile
    """
    source = parse_source(repo, ref)
    workspace = Workspace.default()
    request = BuildRequest(source, BuildOptions(base_image=base_image), read_host_settings())
    engine = _engine_or_none()
    if engine is None:
        resolved, image = workspace.resolve(source), None
    else:
        target = decide_target(request, workspace, engine)
        resolved, image = target.resolved, f"{target.ref} ({'to build' if target.needs_build else 'built'})"
    with tempfile.TemporaryDirectory(prefix="dsbuild-src-") as tmp:
        folder = workspace.export(resolved, Path(tmp))
        facts = scan(folder)
        base = _inspect_base(engine, base_image)
        the_plan = plan(facts, base, BuildOptions(base_image=base_image))
        err_console.print(Text(f"source:   {source.display}"))
        err_console.print(Text(f"commit:   {resolved.commit or resolved.content_id}"))
        if image:
            err_console.print(Text(f"image:    {image}"))
        err_console.print(Text(f"config:   {facts.config_dir or '(repository root)'}/ " + " ".join(sorted(facts.files))))
        err_console.print(Text(f"pieces:   {', '.join(the_plan.pieces) or 'none'}"))
        for note in the_plan.notes:
            err_console.print(Text(f"note:     {note}"))
        if the_plan.dockerfile:
            click.echo((folder / the_plan.dockerfile).read_text(), nl=False)
        else:
            click.echo(render_dockerfile(the_plan).text, nl=False)


def _engine_or_none() -> DockerEngine | None:
    """`inspect` works without an engine: it then assumes the default base."""
    engine = DockerEngine()
    try:
        engine.ping()
    except EngineUnavailable:
        return None
    return engine


def _inspect_base(engine: DockerEngine | None, base_image: str) -> BaseFacts:
    try:
        if engine is None:
            raise EngineUnavailable("no engine")
        return base_facts(engine, base_image)
    except (EngineUnavailable, ConfigError):
        if base_image != DEFAULT_BASE_IMAGE:
            raise
        err_console.print(Text("note:     base image not available; assuming the default base (Python 3.11)"))
        return ASSUMED_DEFAULT_BASE


@main.command("build")
@source_options
@build_options
@user_errors
def build_command(repo, ref, base_image, image_name, force, no_cache, ca_cert, index_url, locked, as_of, registry, push, quiet):
    """Build a JupyterLab image from REPO, tagged NAME:<commit sha, 12 characters>.

    Builds with --as-of, --locked, another base image or index get a tag suffix
    (-<8 hex>, explained by `dsbuild show`), so they never replace each other.
    Skipped when that tag already exists (built from the same source with the same
    options), or when --registry already holds it (asked without pulling), unless --force.
    Prints the image reference on stdout.
    """
    request = _request(repo, ref, base_image, image_name, force, no_cache, ca_cert, index_url, locked, as_of, registry, push)
    result = _build(request, quiet)
    click.echo(result.image)


@main.command("run")
@source_options
@build_options
@click.option("--port", type=int, help="Host port for JupyterLab (on 127.0.0.1). Default: a free one.")
@click.option("--volume", "-v", "volumes", multiple=True, metavar="HOST:CONTAINER[:ro]", help="Mount a host folder. Repeatable.")
@click.option("--cpus", type=float, help="CPU limit for the container, e.g. 1.5.")
@click.option("--memory", help="Memory limit, e.g. 4g.")
@click.option("--gpus", help="GPUs to pass in: 'all', a count, or device=0,1 (needs the NVIDIA runtime).")
@click.option("--detach", "-d", is_flag=True, help="Leave JupyterLab running and return once it answers.")
@click.option("--timeout", default=90, show_default=True, help="Seconds to wait for JupyterLab to answer.")
@user_errors
def run_command(
    repo, ref, base_image, image_name, force, no_cache, ca_cert, index_url, locked, as_of, registry, push, quiet,
    port, volumes, cpus, memory, gpus, detach, timeout,
):
    """Build REPO if needed, start JupyterLab in it and print its URL.

    Without --detach, JupyterLab's log follows until Ctrl-C, which stops and removes
    the container. With --detach, the container keeps running; stop it with
    `docker rm -f CONTAINER`.
    """
    options = RunOptions(port=port, volumes=tuple(Volume.parse(v) for v in volumes), cpus=cpus, memory=memory, gpus=gpus)
    request = _request(repo, ref, base_image, image_name, force, no_cache, ca_cert, index_url, locked, as_of, registry, push)
    result = _build(request, quiet)
    engine = DockerEngine()
    if result.skipped and engine.inspect_image(result.image) is None:
        raise UsageError(f"{result.image} is in the registry but not on this engine; `docker pull` it first")
    if not quiet:
        err_console.print(Text.assemble(("[launching] ", "bold cyan"), result.image))
    server = start_server(engine, result.image, options, timeout=timeout)
    click.echo(server.url)
    if detach:
        err_console.print(Text(f"container {server.container[:12]} is running; stop it with: docker rm -f {server.container[:12]}"))
        return
    err_console.print(Text("JupyterLab is running; Ctrl-C stops it.", style="dim"))
    follower = engine.follow_logs(server.container)
    try:
        follower.wait()
    except KeyboardInterrupt:
        pass
    finally:
        follower.terminate()
        engine.remove_container(server.container)
        err_console.print(Text("stopped and removed the container.", style="dim"))


@main.command("base")
@click.option("--tag", default=DEFAULT_BASE_IMAGE, show_default=True, help="Name of the image to create.")
@click.option("--force", is_flag=True, help="Rebuild even if the image exists.")
@user_errors
def base_command(tag, force):
    """Build the default base image from Debian packages (debootstrap, then docker import).

    No image registry can be reached from these machines, so the base is made locally
    from the host's Debian mirror: a minimal Debian with Python 3. Needs root and
    debootstrap. Builds reuse it; `--base-image` picks another.
    """
    engine = DockerEngine()
    engine.ping()
    if engine.inspect_image(tag) is not None and not force:
        err_console.print(Text(f"{tag} exists (use --force to rebuild)"))
    else:
        build_default_base(engine, tag, say=lambda m: err_console.print(Text.assemble(("[base] ", "bold cyan"), m)))
    click.echo(tag)
