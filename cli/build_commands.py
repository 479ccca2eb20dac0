"""inspect, build, run and base: the builder's commands."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import click
from click import UsageError

from dsbuild.builder.base_image import base_facts, build_default_base
from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.errors import EngineUnavailable, ConfigError
from dsbuild.builder.facts import scan
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.increment import DEFAULT_MAX_INCREMENTS
from dsbuild.builder.limits import BuildPolicy
from dsbuild.builder.plan import (
    DEFAULT_BASE_IMAGE, BaseFacts, BuildOptions, NotebookUser, PythonInstall, base_image_for, plan, python_request,
)
from dsbuild.builder.pythons import DEFAULT_SUITE, SUITE_PYTHONS, base_ref
from dsbuild.builder.render import render_dockerfile
from dsbuild.builder.run import RunOptions, Volume, parse_env, start_server
from dsbuild.builder.run import run_command as run_in_image
from dsbuild.builder.registry import Registry
from dsbuild.builder.service import BuildRequest, Built, build, subfolder
from dsbuild.builder.source import parse_source, validate_subdir
from dsbuild.builder.target import decide_target
from dsbuild.builder.workspace import Workspace

from .group import main
from .output import Progress, say, user_errors


def source_options(command):
    """REPO, --ref and the options that shape what gets built."""
    for decorator in reversed(
        [
            click.argument("repo"),
            click.option("--ref", help="Branch, tag or commit to build (git sources). Default: the remote's HEAD."),
            click.option("--subdir", metavar="PATH", help="Build this folder of the repository, as if it were the repository."),
            click.option(
                "--base-image",
                default=DEFAULT_BASE_IMAGE,
                show_default=True,
                help="Any Debian-family image with python3. The default is built locally by `dsbuild base`, "
                "from the Debian release whose Python the repository asks for.",
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
            click.option("--no-cache", is_flag=True,
                         help="Do not reuse Docker's layer cache, nor build upon an earlier image: a full build."),
            click.option("--max-increments", type=click.IntRange(min=0), default=DEFAULT_MAX_INCREMENTS, show_default=True,
                         help="When only the Python packages changed, install just the difference on top of this "
                              "source's newest image, at most this many times in a row; then a full build. "
                              "0: always a full build (docs/builder.md, \"Incremental dependency layer\")."),
            click.option(
                "--ca-cert",
                type=click.Path(dir_okay=False, path_type=Path),
                help="CA bundle trusted during the build. Default: the host's (SSL_CERT_FILE, PIP_CERT, system bundle).",
            ),
            click.option("--index-url", help="Python package index for the build. Default: the host's pip/uv setting."),
            click.option("--locked", is_flag=True,
                         help="Stop unless the repository holds requirements.lock, made on this very base image. "
                              "A committed lock is installed exactly even without this flag (see `dsbuild lock`)."),
            click.option("--relock", is_flag=True,
                         help="Resolve the requirements again, ignoring the repository's requirements.lock."),
            click.option(
                "--as-of",
                metavar="DATE|commit",
                help="Resolve unpinned requirements as they were on DATE (2023-06-30), or on the commit's date.",
            ),
            click.option(
                "--exact-python",
                is_flag=True,
                help="Stop if the exact Python asked for (runtime.txt, Pipfile, environment.yml) cannot be had, "
                "instead of building with the nearest newer one.",
            ),
            click.option(
                "--python-downloads",
                is_flag=True,
                help="Install a Python no Debian base has with uv (`uv python install`). Needs uv's Python "
                "download or UV_PYTHON_INSTALL_MIRROR; not reachable from every machine.",
            ),
            click.option(
                "--user-id",
                type=int,
                default=1000,
                show_default=True,
                help="uid the image runs as (1000-60000); give yours so that mounted host folders keep their owner.",
            ),
            click.option("--user-name", default="jovyan", show_default=True, help="Its login name; the repository is in /home/NAME."),
            click.option("--registry", metavar="HOST:PORT", help="Name the image HOST:PORT/NAME:TAG; skip the build if the registry has it."),
            click.option("--push", is_flag=True, help="Push the image to --registry after building."),
            click.option("--build-timeout", type=click.IntRange(min=1), default=3600, show_default=True,
                         help="Seconds the build may take; then it is cancelled and nothing is tagged."),
            click.option("--trusted", is_flag=True,
                         help="The repository is trusted: no build limits, one package cache shared with other "
                              "repositories, RUN --mount allowed in its Dockerfile (docs/security.md)."),
            click.option("--keep-tests", is_flag=True,
                         help="Keep the test suites that packages ship (pandas/tests, scipy's ...); "
                              "by default they are removed while installing, which makes images smaller."),
            click.option("-q", "--quiet", is_flag=True, help="Print only errors and the result."),
        ]
    ):
        command = decorator(command)
    return command


def _request(
    repo, ref, subdir, base_image, image_name, force, no_cache, ca_cert, index_url, locked, relock, as_of, exact_python,
    python_downloads, user_id, user_name, registry, push, build_timeout, trusted, keep_tests=False,
    max_increments=DEFAULT_MAX_INCREMENTS,
) -> BuildRequest:
    """The BuildRequest that the options of `build_options` and `source_options` describe."""
    if push and not registry:
        raise UsageError("--push needs --registry HOST:PORT")
    policy = replace(BuildPolicy.trusted(), deadline=build_timeout) if trusted else BuildPolicy(deadline=build_timeout)
    return BuildRequest(
        source=parse_source(repo, ref),
        options=BuildOptions(
            base_image=base_image, locked=locked, relock=relock, as_of=as_of, exact_python=exact_python, python_downloads=python_downloads,
            user=NotebookUser(user_id, user_name), keep_tests=keep_tests,
        ),
        host=read_host_settings(ca_cert, index_url),
        name=image_name,
        force=force,
        no_cache=no_cache,
        registry=Registry(registry) if registry else None,
        push=push,
        subdir=validate_subdir(subdir) if subdir else None,
        policy=policy,
        max_increments=max_increments,
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
def inspect(repo, ref, subdir, base_image):
    """Show what REPO would be built from, and the generated Dockerfile. Builds nothing.

    REPO is a local folder, a git URL (https://, file://, ssh) or gh:ORG/NAME.
    The Dockerfile goes to stdout, the summary to stderr:

        dsbuild inspect examples/sketches > Dockerfile
    """
    source = parse_source(repo, ref)
    workspace = Workspace.default()
    request = BuildRequest(source, BuildOptions(base_image=base_image), read_host_settings(),
                           subdir=validate_subdir(subdir) if subdir else None)
    engine = _engine_or_none()
    if engine is None:
        resolved, image = workspace.resolve(source), None
    else:
        target = decide_target(request, workspace, engine)
        resolved, image = target.resolved, f"{target.ref} ({'to build' if target.needs_build else 'built'})"
    with tempfile.TemporaryDirectory(prefix="dsbuild-src-") as tmp:
        folder = workspace.export(resolved, Path(tmp))
        if subdir:
            folder = subfolder(folder, subdir)
        facts = scan(folder)
        options = BuildOptions(base_image=base_image)
        options = replace(options, base_image=base_image_for(options, python_request(facts)))
        the_plan = plan(facts, _inspect_base(engine, options.base_image), options)
        say(f"source:   {source.display}")
        say(f"commit:   {resolved.commit or resolved.content_id}")
        if image:
            say(f"image:    {image}")
        say(f"config:   {facts.config_dir or '(repository root)'}/ " + " ".join(sorted(facts.files)))
        say(f"pieces:   {', '.join(the_plan.pieces) or 'none'}")
        if the_plan.python:
            say(f"python:   {the_plan.python.version} from {the_plan.base_image}")
        if not the_plan.dockerfile:
            say(f"packages: {the_plan.lock_origin}")
        for note in the_plan.notes:
            say(f"note:     {note}")
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
        suite = next((s for s in SUITE_PYTHONS if base_ref(s) == base_image), None)
        if suite is None:
            raise
        version = SUITE_PYTHONS[suite]
        say(f"note:     {base_image} is not built yet; assuming its Python {version}")
        return BaseFacts(base_image, (PythonInstall(version, f"/usr/bin/python{version}"),), version)


@main.command("build")
@source_options
@build_options
@user_errors
def build_command(quiet, **options):
    """Build a JupyterLab image from REPO, tagged NAME:<commit sha, 12 characters>.

    A repository that holds requirements.lock (root, binder/ or .binder/) is built
    from it: exactly those versions, and the Debian versions it records for apt.txt;
    --relock resolves again. Builds with --as-of, --relock, --locked, another base
    image or index get a tag suffix (-<8 hex>, explained by `dsbuild show`), so they
    never replace each other.
    Skipped when that tag already exists (built from the same source with the same
    options), or when --registry already holds it (asked without pulling), unless --force.
    When only the Python packages changed (and the repository has no postBuild, start or
    packages of its own), the new lock is installed on top of this source's newest image:
    only the difference (--max-increments bounds the chain; --no-cache builds in full).
    Prints the image reference on stdout.
    """
    request = _request(**options)
    result = _build(request, quiet)
    click.echo(result.image)


@main.command("run")
@source_options
@build_options
@click.option("--port", type=int, help="Host port for JupyterLab (on 127.0.0.1). Default: a free one.")
@click.option("--volume", "-v", "volumes", multiple=True, metavar="HOST:CONTAINER[:ro]", help="Mount a host folder. Repeatable.")
@click.option("--env", "-e", "env", multiple=True, metavar="KEY=VALUE", help="Set an environment variable in the container. Repeatable.")
@click.option("--cpus", type=float, help="CPU limit for the container, e.g. 1.5.")
@click.option("--memory", help="Memory limit, e.g. 4g.")
@click.option("--gpus", help="GPUs to pass in: 'all', a count, or device=0,1 (needs the NVIDIA runtime).")
@click.option("--detach", "-d", is_flag=True, help="Leave JupyterLab running and return once it answers.")
@click.option("--timeout", default=90, show_default=True, help="Seconds to wait for JupyterLab to answer.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@user_errors
def run_command(
    quiet, port, volumes, env, cpus, memory, gpus, detach, timeout, command, **build_opts,
):
    """Build REPO if needed, start JupyterLab in it and print its URL.

    Without --detach, JupyterLab's log follows until Ctrl-C, which stops and removes
    the container. With --detach, the container keeps running; stop it with
    `docker rm -f CONTAINER`.

    With a command after `--`, that command runs instead of JupyterLab, attached to
    this terminal, and dsbuild exits with its exit code (the container is removed):

        dsbuild run ./analysis -- python make_figures.py --all
    """
    request = _request(**build_opts)
    options = RunOptions(
        port=port, volumes=tuple(Volume.parse(v) for v in volumes), cpus=cpus, memory=memory, gpus=gpus,
        command=tuple(command), env=tuple(parse_env(e) for e in env), uid=request.options.user.uid,
    )
    if command and (detach or port):
        raise UsageError("a command after -- runs attached and publishes no port: drop --detach and --port")
    result = _build(request, quiet)
    engine = DockerEngine()
    if result.skipped and engine.inspect_image(result.image) is None:
        raise UsageError(f"{result.image} is in the registry but not on this engine; `docker pull` it first")
    if not quiet:
        say(result.image + " ".join(("",) + options.command), "launching")
    if options.command:
        sys.exit(run_in_image(engine, result.image, options))
    _serve(engine, result.image, options, detach, timeout)


def _serve(engine: DockerEngine, image: str, options: RunOptions, detach: bool, timeout: float) -> None:
    server = start_server(engine, image, options, timeout=timeout)
    click.echo(server.url)
    if detach:
        say(f"container {server.container[:12]} is running; stop it with: docker rm -f {server.container[:12]}")
        return
    say("JupyterLab is running; Ctrl-C stops it.", style="dim")
    follower = engine.follow_logs(server.container)
    try:
        follower.wait()
    except KeyboardInterrupt:
        pass
    finally:
        follower.terminate()
        engine.remove_container(server.container)
        say("stopped and removed the container.", style="dim")


@main.command("base")
@click.option(
    "--suite",
    type=click.Choice(list(SUITE_PYTHONS)),
    default=DEFAULT_SUITE,
    show_default=True,
    help="Debian release: " + ", ".join(f"{s} has Python {v}" for s, v in SUITE_PYTHONS.items()) + ".",
)
@click.option("--tag", help="Name of the image to create. Default: dsbuild-base:SUITE.")
@click.option("--force", is_flag=True, help="Rebuild even if the image exists.")
@user_errors
def base_command(suite, tag, force):
    """Build a base image from Debian packages (debootstrap, then docker import).

    No image registry can be reached from these machines, so the base is made locally
    from the host's Debian mirror: a minimal Debian with Python 3. Needs root and
    debootstrap. Builds reuse it; `--base-image` picks another.

    With the default --base-image, a build picks the release whose Python the
    repository asks for (runtime.txt python-3.9 -> bullseye) and builds that base
    the first time it is needed; `dsbuild base --suite bullseye` builds it ahead.
    """
    tag = tag or base_ref(suite)
    engine = DockerEngine()
    engine.ping()
    if engine.inspect_image(tag) is not None and not force:
        say(f"{tag} exists (use --force to rebuild)")
    else:
        build_default_base(engine, tag, suite, say=lambda m: say(m, "base"))
    click.echo(tag)
