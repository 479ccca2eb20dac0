"""`build(request, engine, workspace)`: the one place that sequences the builder's I/O.

decide the target (target.py: resolve, name, is it built?) -> ensure the default base ->
fetch -> scan -> plan -> render -> stage the context -> build on the engine -> label ->
tag -> push. It yields events, so the CLI prints them and the launch service streams
them. The engine and the workspace (cache folder, git fetcher, lock records) come in as
arguments, so tests run it with fakes."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Generator, Iterator

from .append import NotAppendable, append_repository, environment_digest, wanted_labels
from .base_image import base_facts, build_default_base
from .context import locked
from .engine import DockerEngine
from .errors import BuildFailed, SourceError
from .facts import RepoFacts, scan
from .fetch import Resolved, public_url
from .host import HostSettings
from .limits import BuildPolicy
from .increment import DEFAULT_MAX_INCREMENTS
from .locklabel import LockRecords, settle_lock_label
from .names import (
    BASE_CREATED_LABEL,
    BASE_IMAGE_ID_LABEL,
    BASE_IMAGE_LABEL,
    ENVIRONMENT_HASH_LABEL,
    ENVIRONMENT_LAYERS_LABEL,
    INCREMENT_LABEL,
    INCREMENTAL_FROM_LABEL,
    STACK_LABEL,
    ENVIRONMENT_OPTIONS_LABEL,
    LOCK_LABEL,
    LOCK_ORIGIN_LABEL,
    OCI_CREATED,
    OCI_REVISION,
    OCI_SOURCE,
    OPTIONS_LABEL,
    PIECES_LABEL,
    REF_LABEL,
    PYTHON_LABEL,
    PYTHON_REQUESTED_LABEL,
    RENDERING_KIND_LABEL,
    SOURCE_HASH_LABEL,
    SUBDIR_LABEL,
    VERSION_LABEL,
    source_hash,
)
from .pieces.conda import RENDERING_LABEL
from .plan import BuildOptions, BuildPlan, base_image_for, plan, python_request
from .increment import Increment, decide_increment, may_build_upon, stack_hash
from .progress import BuildEvent, BuildFinished, main_stage_steps
from .pythons import SUITE_PYTHONS, base_ref
from .registry import Registry
from .render import dsbuild_version
from .source import GitSource, Source, validate_subdir
from .limits_helper import helper_image
from .staging import Staged, stage_build
from .target import IN_REGISTRY, ON_ENGINE, PRIVATE_TAG, Target, decide_target, previous_image
from .workspace import Workspace


@dataclass(frozen=True)
class BuildRequest:
    source: Source
    options: BuildOptions = BuildOptions()
    host: HostSettings = HostSettings()
    name: str | None = None  # image repository name; default: names.image_name(source)
    force: bool = False
    no_cache: bool = False  # also: a full build, never an incremental one (increment.py)
    registry: Registry | None = None  # names the image HOST:PORT/name:tag
    push: bool = False
    resolved: Resolved | None = None  # the source already resolved (the launch preflight did)
    subdir: str | None = None  # build this folder of the repository (validated by source.validate_subdir)
    policy: BuildPolicy = BuildPolicy()  # deadline, limits, cache sharing (limits.py)
    max_increments: int = DEFAULT_MAX_INCREMENTS  # chains of incremental builds (increment.py); 0: always full


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
    lock_origin: str = ""  # where the package versions came from (plan.LockChoice.describe)
    found: str = ""  # for a skipped build: where the image was (target.IN_REGISTRY or ON_ENGINE)
    built_upon: str = ""  # an incremental build: the earlier image it was built on (increment.py)


Event = Status | BuildEvent | Built


def labels_for(target: Target, plan_: BuildPlan, subdir: str | None = None) -> dict[str, str]:
    """Every label of a built image (their names are in names.py)."""
    resolved = target.resolved
    source = resolved.source
    where = public_url(source.url) if isinstance(source, GitSource) else str(source.path)
    extra = {SUBDIR_LABEL: subdir} if subdir else {}
    return {
        OCI_SOURCE: where,
        OCI_REVISION: resolved.commit or resolved.content_id,
        OCI_CREATED: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        VERSION_LABEL: dsbuild_version(),
        REF_LABEL: getattr(source, "ref", None) or "",
        SOURCE_HASH_LABEL: source_hash(source),
        BASE_IMAGE_LABEL: plan_.base_image,
        BASE_IMAGE_ID_LABEL: target.base_id,
        ENVIRONMENT_HASH_LABEL: plan_.environment_hash,
        ENVIRONMENT_OPTIONS_LABEL: target.environment,
        PIECES_LABEL: ",".join(plan_.pieces),
        LOCK_ORIGIN_LABEL: "the repository's own Dockerfile" if plan_.dockerfile else plan_.lock_origin,
        OPTIONS_LABEL: target.options_hash,
        **python_labels(plan_),
        **extra,
        **({STACK_LABEL: stack} if (stack := stack_hash(plan_)) else {}),
    }


def python_labels(plan_: BuildPlan) -> dict[str, str]:
    """The Python used, and the one asked for (with the file that asked); and whether
    the environment is a PyPI rendering of an environment.yml."""
    labels = {}
    if "environment.yml" in plan_.pieces:
        labels[RENDERING_KIND_LABEL] = RENDERING_LABEL
    if plan_.python:
        labels[PYTHON_LABEL] = plan_.python.version + (" (uv-managed)" if plan_.python.managed else "")
    if plan_.python_requested:
        labels[PYTHON_REQUESTED_LABEL] = str(plan_.python_requested)
    return labels


def ensure_base(engine: DockerEngine, ref: str) -> Iterator[Status]:
    """dsbuild's own bases (dsbuild-base:<Debian release>) are built the first time they are needed."""
    suite = next((s for s in SUITE_PYTHONS if base_ref(s) == ref), None)
    if suite is not None and engine.inspect_image(ref) is None:
        yield Status("base", f"building the base image {ref} from Debian packages (once)")
        messages: list[str] = []
        build_default_base(engine, ref, suite, say=messages.append)
        yield from (Status("base", m) for m in messages)


def build(request: BuildRequest, engine: DockerEngine, workspace: Workspace | None = None) -> Iterator[Event]:
    """Build the request's image unless `decide_target` finds it; the last event is `Built`."""
    workspace = workspace or Workspace.default()
    engine.ping()
    yield Status("resolving", f"resolving {request.source.display}")
    target = decide_target(request, workspace, engine)
    resolved = target.resolved
    if resolved.commit:
        yield Status("resolving", f"commit {resolved.commit}")
    if target.options.as_of != request.options.as_of:
        yield Status("resolving", f"resolving packages as of {target.options.as_of}")
    if target.found == IN_REGISTRY:
        yield Status("skipped", f"{target.ref} is already in the registry (use --force to build again)")
        yield Built(target.ref, "", resolved, skipped=True, found=IN_REGISTRY)
        return
    if not target.base_id:
        yield from ensure_base(engine, target.options.base_image)
        target = decide_target(replace(request, resolved=resolved, options=target.options), workspace, engine)
    if not target.needs_build:
        yield Status("skipped", f"{target.ref} is already built (use --force to build again)")
        yield from _push(request, engine, target.ref)
        origin = (engine.image_labels(target.ref) or {}).get(LOCK_ORIGIN_LABEL, "")
        yield Built(target.ref, (engine.inspect_image(target.ref) or {}).get("Id", ""), resolved, skipped=True,
                    lock_origin=origin, found=ON_ENGINE)
        return
    with (locked(workspace.context_folder(target.name)) as folder,
          tempfile.TemporaryDirectory(prefix="dsbuild-src-") as tmp):
        yield from _build_new(request, engine, workspace, target, folder, Path(tmp))


def _build_new(request: BuildRequest, engine: DockerEngine, workspace: Workspace, target: Target,
               folder: Path, tmp: Path) -> Iterator[Event]:
    """Fetch, plan, stage, build, label, tag: the image does not exist yet."""
    resolved = target.resolved
    if isinstance(resolved.source, GitSource):
        yield Status("fetching", f"fetching {resolved.commit}")
    repo = tmp / "repo"  # beside it, tmp/private (the secret): never part of the build context
    repo.mkdir()
    repo = workspace.export(resolved, repo)
    if request.subdir:
        repo = subfolder(repo, request.subdir)
    facts = scan(repo)
    options, target = yield from _pick_base(target.options, engine, target, facts)
    base = base_facts(engine, options.base_image)
    the_plan = plan(facts, base, options)
    for note in the_plan.notes:
        yield Status("planning", note)
    yield Status("planning", f"pieces: {', '.join(the_plan.pieces) or 'none'}")
    if not the_plan.dockerfile:
        yield Status("planning", f"packages: {the_plan.lock_origin}")
    increment = _increment(request, engine, target, the_plan)
    if not the_plan.dockerfile:
        yield Status("planning", increment.why if increment.incremental else f"full build: {increment.why}")
    labels = labels_for(target, the_plan, request.subdir) | _increment_labels(increment)
    created = (engine.inspect_image(options.base_image) or {}).get("Created", "")
    if created:
        labels[BASE_CREATED_LABEL] = created[:19] + "Z"
    records = workspace.locks
    lock_key = LockRecords.key(the_plan.environment_hash, target.options_hash)
    known = None if the_plan.dockerfile else records.get(lock_key)
    if known is not None:
        labels[LOCK_LABEL] = known.digest
    policy = request.policy if engine.step_limits else replace(request.policy, cgroup_limits=False)
    helper = helper_image(engine, workspace.root) if the_plan.dockerfile and policy.cgroup_limits else None
    with _pinned(engine, target, increment) as pin:
        staged = stage_build(the_plan, repo, folder, tmp / "private", request.host, policy,
                             source_hash(resolved.source)[:16], helper, previous=pin)
        if the_plan.repository_last and increment.previous is None:
            labels[ENVIRONMENT_LAYERS_LABEL] = environment_digest(folder / ".dsbuild",
                                                                  workspace.digests(f"context-{target.name}"))
            if (yield from _append(request, engine, target, the_plan, staged, labels)):
                return
        yield Status("building", f"building {target.ref}")
        finished = None
        for event in engine.build(staged.context, staged.dockerfile, staged.phases, labels, request.no_cache,
                                  staged.policy or policy, staged.secrets, repository=target.ref.rpartition(":")[0],
                                  base=None if the_plan.dockerfile else (pin or options.base_image)):
            finished = event if isinstance(event, BuildFinished) else finished
            yield event
    if finished is None:
        raise BuildFailed("the build ended without an image")
    image_id = finished.image_id
    if not the_plan.dockerfile:
        # Each step after FROM adds one layer: the lock is in the dependency step's.
        under = increment.previous.layers if increment.previous else target.base_layers
        index = under + staged.phases.index("dependencies") - 1
        scratch = f"{target.name}:dsbuild-scratch-{target.tag}"
        image_id = settle_lock_label(engine, image_id, index, known, records, lock_key, LOCK_LABEL, scratch)
    yield from _finish(request, engine, target, image_id)
    yield Built(target.ref, image_id, resolved, False, the_plan, finished.cached_steps, finished.run_steps,
                labels[LOCK_ORIGIN_LABEL], built_upon=increment.previous.ref if increment.previous else "")


def _increment(request: BuildRequest, engine: DockerEngine, target: Target, the_plan: BuildPlan) -> Increment:
    """Incremental or full (increment.py decides); the engine is asked for an earlier
    image only when one could matter."""
    wanted = may_build_upon(the_plan, request.no_cache, request.max_increments)
    previous = previous_image(target, engine) if wanted else None
    return decide_increment(the_plan, previous, source_hash=source_hash(target.resolved.source),
                            options_hash=target.options_hash, no_cache=request.no_cache,
                            max_increments=request.max_increments)


def _increment_labels(increment: Increment) -> dict[str, str]:
    """An incremental image says how far it is from a full build and what it was built on
    (its other labels are its own, as a full build's: the lock label is the full lock's)."""
    if increment.previous is None:
        return {}
    return {INCREMENT_LABEL: str(increment.depth),
            INCREMENTAL_FROM_LABEL: f"{increment.previous.ref}@{increment.previous.image_id}"}


@contextmanager
def _pinned(engine: DockerEngine, target: Target, increment: Increment) -> Iterator[str | None]:
    """The earlier image under a tag of this build's own for the build's FROM (which takes
    no bare image id), so a retag of its usual name meanwhile changes nothing; untagged after."""
    if increment.previous is None:
        yield None
        return
    pin = f"{target.ref.rpartition(':')[0]}:{PRIVATE_TAG}from-{target.tag}"
    engine.tag(increment.previous.image_id, pin)
    try:
        yield pin
    finally:
        engine.remove_unused_image(pin)


def _append(request: BuildRequest, engine: DockerEngine, target: Target, plan_: BuildPlan, staged: Staged,
            labels: dict[str, str]) -> Generator[Event, None, bool]:
    """A code-only change: the repository's layer added to an image with the same
    environment layers, without a build (append.py), tagged and announced as built; False
    when there is no such image, the engine cannot add layers, or --no-cache asks for a build."""
    if request.no_cache or not getattr(engine, "appends_layers", False):
        return False
    last = main_stage_steps(staged.phases)  # the repository's COPY, the final stage's last step
    layer_count = target.base_layers + last - 1  # every step after FROM adds one layer
    try:
        appended = append_repository(engine, wanted_labels(labels), layer_count, staged.context, labels,
                                     plan_.user.home, plan_.user.uid)
    except (NotAppendable, BuildFailed, OSError) as err:
        yield Status("building", f"the repository's layer could not be added without a build ({err}); building")
        return False
    if appended is None:
        return False
    yield Status("building", f"only the repository changed: its layer added to the environment of "
                             f"{appended.previous.removeprefix('sha256:')[:12]}, without a build")
    yield from _finish(request, engine, target, appended.image_id)
    cached = tuple(step for step in range(1, len(staged.phases) + 1) if step != last)
    yield Built(target.ref, appended.image_id, target.resolved, False, plan_, cached, (last,),
                labels[LOCK_ORIGIN_LABEL])
    return True


def _finish(request: BuildRequest, engine: DockerEngine, target: Target, image_id: str) -> Iterator[Status]:
    """Tag the new image, then push it. A push that fails (or is abandoned) puts the tag
    back as it was, so a failed `--push` leaves no half-made result: a tag this build made
    is removed, a tag that named an earlier image names it again. (Engines whose tags live
    in the registry, as BuildKit's, tag by pushing: there is nothing local to undo.)"""
    undo = request.push and request.registry and getattr(engine, "tags_locally", False)
    before = (engine.inspect_image(target.ref) or {}).get("Id") if undo else None
    engine.tag(image_id, target.ref)
    try:
        yield from _push(request, engine, target.ref)
    except BaseException:
        if undo:
            _restore_tag(engine, target.ref, before)
        raise


def _restore_tag(engine: DockerEngine, ref: str, image_id: str | None) -> None:
    """`ref` names `image_id` again, or nothing when it named nothing (the image goes too
    when no other tag or container holds it)."""
    if image_id:
        engine.tag(image_id, ref)
    else:
        engine.remove_unused_image(ref)


def _pick_base(
    options: BuildOptions, engine: DockerEngine, target: Target, facts: RepoFacts
) -> Generator[Status, None, tuple[BuildOptions, Target]]:
    """The default base becomes the Debian release whose Python the repository asks for
    (built once); returns the options and target with that base."""
    picked = replace(options, base_image=base_image_for(options, python_request(facts)))
    if picked.base_image == options.base_image:
        return options, target
    yield from ensure_base(engine, picked.base_image)
    info = engine.inspect_image(picked.base_image) or {}
    layers = len((info.get("RootFS") or {}).get("Layers") or [])
    yield Status("planning", f"base image {picked.base_image}, picked for the Python the repository asks for")
    return picked, replace(target, base_id=info.get("Id", ""), base_layers=layers)


def subfolder(repo: Path, subdir: str) -> Path:
    """The --subdir folder of a fetched repository; it must be a folder inside it."""
    folder = repo / validate_subdir(subdir)
    if not folder.is_dir() or not folder.resolve().is_relative_to(repo.resolve()):
        raise SourceError(f"--subdir {subdir}: no such folder in the repository")
    return folder


def _push(request: BuildRequest, engine: DockerEngine, ref: str) -> Iterator[Status]:
    if request.push and request.registry:
        yield Status("pushing", f"pushing {ref}")
        engine.push(ref)
        yield Status("pushing", f"pushed {ref}")
