"""Is it built already? `decide_target()` is the one answer, for every caller.

`dsbuild inspect`, `build()` (so `dsbuild build`/`run`/`lock`) and the launch service's
preflight and build all call it, so they agree on: the commit (resolved once: a request
may carry it already resolved), the image name and tag (names.py), and whether the
image must be built or is there already, in the registry or on the engine with the same
source and the same options hash (dsbuild's version, templates, base image id, options).
A launch counts a build against --max-builds exactly when `needs_build` says so."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .host import HostSettings
from .names import (
    BASE_IMAGE_ID_LABEL,
    BASE_IMAGE_LABEL,
    OCI_CREATED,
    OPTIONS_LABEL,
    SOURCE_HASH_LABEL,
    describe_options,
    environment_options,
    environment_suffix,
    image_name,
    image_tag,
    source_hash,
    validate_image_ref,
)
from .increment import Previous
from .plan import BuildOptions
from .registry import docker_auth, manifest_exists
from .render import dsbuild_version, templates_digest

if TYPE_CHECKING:
    from .engine import DockerEngine
    from .fetch import Resolved
    from .service import BuildRequest
    from .workspace import Workspace

MISSING, ON_ENGINE, IN_REGISTRY = "missing", "on the engine", "in the registry"


@dataclass(frozen=True)
class Target:
    """What a build produces and whether it must run: known before anything is fetched."""

    name: str  # image repository name, without the registry
    tag: str
    ref: str  # what the build tags: [REGISTRY/]NAME:TAG
    resolved: Resolved
    options: BuildOptions  # as built: `--as-of commit` replaced by the commit's date
    base_id: str  # "" while the base image is not on the engine
    base_layers: int
    options_hash: str
    environment: str  # the non-default environment options the tag's suffix stands for
    found: str = MISSING  # MISSING, ON_ENGINE or IN_REGISTRY

    @property
    def needs_build(self) -> bool:
        return self.found == MISSING


def options_hash(options: BuildOptions, base_id: str, host: HostSettings, subdir: str | None = None) -> str:
    """Everything that decides the image besides the source: an image is reused only
    when this matches (so a dsbuild upgrade or a new base image rebuilds)."""
    data = [
        dsbuild_version(), templates_digest(), base_id, list(options.jupyter_packages),
        host.index_url, list(host.extra_index_urls),
        options.locked, options.as_of, options.relock, options.from_lock, options.python_downloads, options.user.uid, options.user.name, subdir,
    ] + ([options.keep_tests] if options.keep_tests else [])
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


def reusable(labels: dict[str, str], target: Target, engine: DockerEngine) -> bool:
    """An existing image is the target only if it was built from the same source with the
    same options (a name and tag alone could be another source's, given --image-name),
    and on a base that is still the same image (a base picked for the repository's Python
    is not the requested one, so its id is checked here, not in the options hash)."""
    return (bool(target.base_id) and labels.get(OPTIONS_LABEL) == target.options_hash
            and labels.get(SOURCE_HASH_LABEL) == source_hash(target.resolved.source)
            and base_unchanged(engine, labels))


def base_unchanged(engine: DockerEngine, labels: dict[str, str]) -> bool:
    """The base image an existing image was built on is still the image it was then."""
    used = labels.get(BASE_IMAGE_LABEL)
    if not used:
        return True
    return (engine.inspect_image(used) or {}).get("Id") == labels.get(BASE_IMAGE_ID_LABEL)


def decide_target(request: BuildRequest, workspace: Workspace, engine: DockerEngine) -> Target:
    """Resolve (unless the request carries the commit), name, and look for the image.
    Raises SourceError for a ref that does not exist; builds and fetches nothing."""
    options = request.options
    validate_image_ref(options.base_image, "base image")
    resolved = request.resolved or workspace.resolve(request.source)
    if options.as_of == "commit":
        options = replace(options, as_of=workspace.commit_date(resolved))
    chosen = environment_options(options, request.host)
    name = request.name or image_name(request.source, subdir=request.subdir)
    tag = image_tag(resolved.tag, environment_suffix(chosen))
    registry = request.registry
    ref = validate_image_ref(registry.image(name, tag) if registry else f"{name}:{tag}")
    base = engine.inspect_image(options.base_image) or {}
    base_id = base.get("Id", "")
    target = Target(name, tag, ref, resolved, options, base_id, len((base.get("RootFS") or {}).get("Layers") or []),
                    options_hash(options, base_id, request.host, request.subdir), describe_options(chosen))
    if request.force:
        return target
    if registry and manifest_exists(registry, name, tag, docker_auth(registry.host)):
        return replace(target, found=IN_REGISTRY)
    labels = engine.image_labels(ref)
    if labels is not None and reusable(labels, target, engine):
        return replace(target, found=ON_ENGINE)
    return target


# dsbuild's own short-lived tags (the scratch tag of a relabel, the pin of an incremental build).
PRIVATE_TAG = "dsbuild-"
# Candidates looked at, newest first (`docker images` lists newest first).
PREVIOUS_CANDIDATES = 20


def previous_image(target: Target, engine: DockerEngine) -> Previous | None:
    """The newest image of the target's repository on the engine that `reusable` accepts
    but for its tag (same source, same options, same base): the image an incremental
    build may start from (increment.py decides). Engines that keep no images (BuildKit)
    have none."""
    listing = getattr(engine, "image_refs", None)
    if listing is None or not target.base_id:
        return None
    repository = target.ref.rpartition(":")[0]
    newest: tuple[str, str, dict[str, str]] | None = None
    for ref in listing([f"reference={repository}"])[:PREVIOUS_CANDIDATES]:
        if ref.rpartition(":")[0] != repository or ref.rpartition(":")[2].startswith(PRIVATE_TAG):
            continue
        labels = engine.image_labels(ref)
        if labels is None or not reusable(labels, target, engine):
            continue
        created = labels.get(OCI_CREATED, "")
        if newest is None or created > newest[0]:
            newest = (created, ref, labels)
    if newest is None:
        return None
    info = engine.inspect_image(newest[1]) or {}
    layers = len((info.get("RootFS") or {}).get("Layers") or [])
    return Previous(newest[1], info.get("Id", ""), newest[2], layers)
