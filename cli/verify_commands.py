"""verify: rebuild an image from its own lock, without the layer cache, and compare."""

from __future__ import annotations


from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.envlock import diff_environment
from dsbuild.builder.errors import BuildFailed, SourceError
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.names import BASE_IMAGE_LABEL, OCI_REVISION, OCI_SOURCE, SUBDIR_LABEL, is_sha
from dsbuild.builder.plan import BuildOptions
from dsbuild.builder.service import BuildRequest
from dsbuild.builder.source import Source, parse_source

from .build_commands import _build
from .group import main
from .output import err_console, user_errors
from .repro_commands import _image_for, _lock_of, print_changes, quiet_option, ref_option, target_argument


def source_of(labels: dict[str, str]) -> Source:
    """The source an image was built from, by its provenance labels."""
    where, revision = labels.get(OCI_SOURCE), labels.get(OCI_REVISION, "")
    if not where:
        raise SourceError("the image does not say where it was built from (no org.opencontainers.image.source label)")
    return parse_source(where, revision if is_sha(revision) else None)


def verify_request(image: str, labels: dict[str, str], lock: str) -> BuildRequest:
    """Rebuild IMAGE's source with IMAGE's whole lock, no layer cache, under the same name
    (the given lock gives the tag its own suffix, so IMAGE is not replaced)."""
    name = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    options = BuildOptions(from_lock=lock)
    if labels.get(BASE_IMAGE_LABEL):
        options = BuildOptions(base_image=labels[BASE_IMAGE_LABEL], from_lock=lock)
    return BuildRequest(source=source_of(labels), options=options, host=read_host_settings(), name=name,
                        force=True, no_cache=True, subdir=labels.get(SUBDIR_LABEL) or None)


@main.command()
@target_argument
@ref_option
@quiet_option
@user_errors
def verify(target, ref, quiet):
    """Rebuild IMAGE_OR_REPO from its own lock with no layer cache, and report any
    difference in its Python and Debian packages (as `dsbuild diff` does).

    Exits 0 when the rebuild has exactly the same packages, 1 when they differ or the
    locked versions cannot be installed any more (a Debian version gone from the mirror,
    a Python release yanked). A repository is built first if needed. The rebuilt image
    is kept, tagged with its own suffix, so it can be compared further.
    """
    engine = DockerEngine()
    engine.ping()
    image = _image_for(engine, target, ref, quiet)
    labels = engine.image_labels(image) or {}
    lock = _lock_of(engine, image)
    try:
        rebuilt = _build(verify_request(image, labels, lock), quiet).image
    except BuildFailed as error:
        err_console.print(f"{image}: the rebuild from its lock failed, so it cannot be reproduced: {error}")
        raise SystemExit(1) from None
    python, apt = diff_environment(lock, _lock_of(engine, rebuilt))
    print_changes(python, apt)
    if python.empty and apt.empty:
        err_console.print(f"{image}: reproduced as {rebuilt}, same packages")
        return
    err_console.print(f"{image}: the rebuild {rebuilt} differs from it")
    raise SystemExit(1)
