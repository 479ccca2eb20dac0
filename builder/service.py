"""`build(request)`: the one place that sequences the builder's I/O.

resolve the source -> skip if the image exists -> fetch -> scan -> plan -> render ->
stage the context -> build on the engine -> tag. It yields events, so the CLI prints
them and the launch service streams them."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from .base_image import base_facts, build_default_base
from .context import locked
from .engine import DockerEngine
from .errors import BuildFailed, ConfigError
from .facts import scan
from .fetch import GitFetcher, Resolved, local_commit_date, public_url, resolve_local
from .host import HostSettings
from .limits import BuildPolicy
from .locklabel import LockRecords, settle_lock_label
from .registry import Registry, docker_auth, manifest_exists
from .plan import DEFAULT_BASE_IMAGE, BuildOptions, BuildPlan, plan
from .progress import BuildEvent, BuildFinished
from .staging import stage_build
from .render import dsbuild_version, templates_digest
from .source import GitSource, Source, image_name, validate_image_ref

LABEL_PREFIX = "io.dsbuild."
OPTIONS_LABEL = LABEL_PREFIX + "options-hash"
LOCK_LABEL = LABEL_PREFIX + "lock-sha256"


def cache_dir() -> Path:
    return Path(os.environ.get("DSBUILD_CACHE_DIR") or Path.home() / ".cache" / "dsbuild")


@dataclass(frozen=True)
class BuildRequest:
    source: Source
    options: BuildOptions = BuildOptions()
    host: HostSettings = HostSettings()
    name: str | None = None  # image repository name; default dsbuild-<repo>
    force: bool = False
    no_cache: bool = False
    registry: Registry | None = None  # names the image HOST:PORT/name:tag
    push: bool = False
    policy: BuildPolicy = BuildPolicy()  # deadline, limits, cache sharing (limits.py)


@dataclass(frozen=True)
class Status:
    phase: str
    message: str


@dataclass(frozen=True)
class Built:
    image: str  # name:tag
    image_id: str
    resolved: Resolved
    skipped: bool = False
    plan: BuildPlan | None = None
    cached_steps: tuple[int, ...] = field(default=())
    run_steps: tuple[int, ...] = field(default=())


Event = Status | BuildEvent | Built


def resolve(source: Source) -> Resolved:
    if isinstance(source, GitSource):
        return GitFetcher(cache_dir() / "git").resolve(source)
    return resolve_local(source)


def options_hash(options: BuildOptions, base_id: str, host: HostSettings) -> str:
    data = [
        dsbuild_version(), templates_digest(), base_id, list(options.jupyter_packages),
        host.index_url, list(host.extra_index_urls),
        options.locked, options.as_of,
    ]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


def labels_for(resolved: Resolved, plan_: BuildPlan, base_id: str, opts_hash: str) -> dict[str, str]:
    source = resolved.source
    where = public_url(source.url) if isinstance(source, GitSource) else str(source.path)
    return {
        "org.opencontainers.image.source": where,
        "org.opencontainers.image.revision": resolved.commit or resolved.content_id,
        "org.opencontainers.image.created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        LABEL_PREFIX + "version": dsbuild_version(),
        LABEL_PREFIX + "ref": getattr(source, "ref", None) or "",
        LABEL_PREFIX + "base-image": plan_.base_image,
        LABEL_PREFIX + "base-image-id": base_id,
        LABEL_PREFIX + "environment-hash": plan_.environment_hash,
        LABEL_PREFIX + "pieces": ",".join(plan_.pieces),
        OPTIONS_LABEL: opts_hash,
    }


def ensure_base(engine: DockerEngine, ref: str) -> Iterator[Status]:
    if ref == DEFAULT_BASE_IMAGE and engine.inspect_image(ref) is None:
        yield Status("base", f"building the default base image {ref} from Debian packages (once)")
        messages: list[str] = []
        build_default_base(engine, ref, say=messages.append)
        yield from (Status("base", m) for m in messages)


@dataclass(frozen=True)
class _Target:
    """What a build produces and what decides it: known before anything is fetched."""

    name: str
    ref: str
    resolved: Resolved
    base_id: str
    base_layers: int
    options_hash: str


def build(request: BuildRequest, engine: DockerEngine) -> Iterator[Event]:
    engine.ping()
    validate_image_ref(request.options.base_image, "base image")
    yield Status("resolving", f"resolving {request.source.display}")
    resolved = resolve(request.source)
    if resolved.commit:
        yield Status("resolving", f"commit {resolved.commit}")
    if request.options.as_of == "commit":
        request = replace(request, options=replace(request.options, as_of=commit_date(resolved)))
        yield Status("resolving", f"resolving packages as of {request.options.as_of}")
    name = request.name or image_name(request.source)
    ref = validate_image_ref(request.registry.image(name, resolved.tag) if request.registry else f"{name}:{resolved.tag}")
    registry = request.registry
    if registry and not request.force and manifest_exists(registry, name, resolved.tag, docker_auth(registry.host)):
        yield Status("skipped", f"{ref} is already in the registry (use --force to build again)")
        yield Built(ref, "", resolved, skipped=True)
        return
    yield from ensure_base(engine, request.options.base_image)
    base_info = engine.inspect_image(request.options.base_image) or {}
    base_id = base_info.get("Id", "")
    layers = len((base_info.get("RootFS") or {}).get("Layers") or [])
    target = _Target(name, ref, resolved, base_id, layers, options_hash(request.options, base_id, request.host))
    existing = engine.image_labels(ref)
    if existing is not None and existing.get(OPTIONS_LABEL) == target.options_hash and not request.force:
        yield Status("skipped", f"{ref} is already built (use --force to build again)")
        yield from _push(request, engine, ref)
        yield Built(ref, (engine.inspect_image(ref) or {}).get("Id", ""), resolved, skipped=True)
        return
    with locked(cache_dir() / "contexts" / name) as folder, tempfile.TemporaryDirectory(prefix="dsbuild-src-") as tmp:
        yield from _build_new(request, engine, target, folder, Path(tmp))


def _build_new(request: BuildRequest, engine: DockerEngine, target: _Target, folder: Path, tmp: Path) -> Iterator[Event]:
    """Fetch, plan, stage, build, label, tag: the image does not exist yet."""
    resolved = target.resolved
    if isinstance(request.source, GitSource):
        yield Status("fetching", f"fetching {resolved.commit}")
        repo = tmp / "repo"
        repo.mkdir()
        GitFetcher(cache_dir() / "git").export(resolved, repo)
    else:
        repo = request.source.path
    the_plan = plan(scan(repo), base_facts(engine, request.options.base_image), request.options)
    for note in the_plan.notes:
        yield Status("planning", note)
    yield Status("planning", f"pieces: {', '.join(the_plan.pieces) or 'none'}")
    labels = labels_for(resolved, the_plan, target.base_id, target.options_hash)
    records = LockRecords(cache_dir() / "locks")
    lock_key = LockRecords.key(the_plan.environment_hash, target.options_hash)
    known = None if the_plan.dockerfile else records.get(lock_key)
    if known is not None:
        labels[LOCK_LABEL] = known.digest
    staged = stage_build(the_plan, repo, folder, tmp / "private", request.host, request.policy,
                         labels["org.opencontainers.image.source"])
    yield Status("building", f"building {target.ref}")
    finished = None
    for event in engine.build(staged.context, staged.dockerfile, staged.phases, labels, request.no_cache,
                              request.policy, staged.secrets):
        finished = event if isinstance(event, BuildFinished) else finished
        yield event
    if finished is None:
        raise BuildFailed("the build ended without an image")
    image_id = finished.image_id
    if not the_plan.dockerfile:
        # Each step after FROM adds one layer: the lock is in the dependency step's.
        index = target.base_layers + staged.phases.index("dependencies") - 1
        scratch = f"{target.name}:dsbuild-scratch-{resolved.tag}"
        image_id = settle_lock_label(engine, image_id, index, known, records, lock_key, LOCK_LABEL, scratch)
    engine.tag(image_id, target.ref)
    yield from _push(request, engine, target.ref)
    yield Built(target.ref, image_id, resolved, False, the_plan, finished.cached_steps, finished.run_steps)


def _push(request: BuildRequest, engine: DockerEngine, ref: str) -> Iterator[Status]:
    if request.push and request.registry:
        yield Status("pushing", f"pushing {ref}")
        engine.push(ref)
        yield Status("pushing", f"pushed {ref}")


def commit_date(resolved: Resolved) -> str:
    """--as-of commit: the committer date of the resolved commit."""
    if resolved.commit is None:
        raise ConfigError("--as-of commit needs a commit, but this folder has uncommitted changes; give a date instead")
    if isinstance(resolved.source, GitSource):
        return GitFetcher(cache_dir() / "git").commit_date(resolved)
    return local_commit_date(resolved.source.path, resolved.commit)
