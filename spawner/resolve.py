"""(user options, catalog, user) -> `ResourceRequest`, with the limits checked.

Everything here is pure: no Kubernetes, no JupyterHub objects. The spawner
builds a `HubUser` (name, groups, what the user's other servers hold) and
calls `resolve`; a Docker-based hub can do the same and read the resolved
image, CPU, memory and volumes off the `ResourceRequest`.

Limits: a user in one or more of the catalog's limit groups gets, for each
key, the most generous value among those groups; a user in none of them gets
``limits.default``. A key no group sets is not limited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dsbuild.builder.names import is_ref, ref_tag, source_slug
from dsbuild.builder.source import GitSource, git_source

from .catalog import (
    Catalog,
    CpuChoice,
    DataVolume,
    GpuType,
    Limits,
    MemoryChoice,
    Security,
)
from .errors import ChoiceError, LimitExceeded, SpawnRequestError
from .names import check_image
from .options import UserOptions, parse_user_options
from .quantities import Cpu, Memory


@dataclass(frozen=True)
class Usage:
    """Resources held: CPU, memory and GPUs by running servers, storage by volumes."""

    cpu: Cpu = Cpu(0)
    memory: Memory = Memory(0)
    gpus: int = 0
    storage: Memory = Memory(0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cpu + other.cpu, self.memory + other.memory,
                     self.gpus + other.gpus, self.storage + other.storage)


@dataclass(frozen=True)
class HubUser:
    """What resolve needs to know about the user asking."""

    name: str
    groups: frozenset[str] = frozenset()
    # CPU/memory/GPUs of the user's *other running* servers, plus the size of
    # the home volumes of all the user's other servers (volumes outlive pods).
    others: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class GpuRequest:
    type: GpuType
    count: int
    resource: str  # e.g. nvidia.com/gpu; also the toleration key


@dataclass(frozen=True)
class StorageRequest:
    size: Memory
    storage_class: str | None  # None: the cluster's default class
    mount_path: str
    access_mode: str


@dataclass(frozen=True)
class ResourceRequest:
    """Everything needed to start one server, all choices made and checked."""

    environment: str
    image: str
    cpu: CpuChoice
    memory: MemoryChoice
    gpu: GpuRequest | None
    storage: StorageRequest
    data_volumes: tuple[DataVolume, ...]
    security: Security
    git: GitSource | None = None

    def usage(self) -> Usage:
        return Usage(self.cpu.limit, self.memory.limit,
                     self.gpu.count if self.gpu else 0, self.storage.size)

    def summary(self) -> str:
        gpu = f", {self.gpu.count} x {self.gpu.type.display_name}" if self.gpu else ""
        cls = f" ({self.storage.storage_class})" if self.storage.storage_class else ""
        return (f"{self.environment} ({self.image}): {self.cpu.limit}, {self.memory.limit} memory"
                f"{gpu}, {self.storage.size} home volume{cls}")


@dataclass(frozen=True)
class Bound:
    """One effective maximum and where it comes from, for messages."""

    value: Cpu | Memory | int | None
    source: str


@dataclass(frozen=True)
class EffectiveLimits:
    per_server: dict[str, Bound]
    per_user: dict[str, Bound]


LIMIT_KEYS = ("cpu", "memory", "gpus", "storage")


def _most_generous(entries: list[tuple[str, Limits]], key: str, default: Limits) -> Bound:
    if not entries:
        return Bound(getattr(default, key), "the default limits")
    values = [(name, getattr(limits, key)) for name, limits in entries]
    unlimited = [name for name, v in values if v is None]
    if unlimited:
        return Bound(None, f"group '{unlimited[0]}'")
    best = max(v for _, v in values)
    names = [name for name, v in values if v == best]
    return Bound(best, "group " + ", ".join(f"'{n}'" for n in names))


def effective_limits(catalog: Catalog, groups: frozenset[str]) -> EffectiveLimits:
    mine = [(name, gl) for name, gl in catalog.group_limits if name in groups]
    per_server = {k: _most_generous([(n, gl.per_server) for n, gl in mine], k, catalog.default_limits.per_server)
                  for k in LIMIT_KEYS}
    per_user = {k: _most_generous([(n, gl.per_user) for n, gl in mine], k, catalog.default_limits.per_user)
                for k in LIMIT_KEYS}
    return EffectiveLimits(per_server, per_user)


# -- choosing from the catalog ------------------------------------------------


def _listing(items) -> str:
    return ", ".join(str(i) for i in items) or "(none)"


def _git_image(catalog: Catalog, source: GitSource) -> str:
    """The catalog's image template filled with the source's slug and its ref's tag
    (builder/names.py decides both, as for every dsbuild image)."""
    return catalog.git_builds.image_template.format(repo=source_slug(source), ref=ref_tag(source.ref or "HEAD"))


def _choose_git(options: UserOptions, catalog: Catalog) -> tuple[str, str, GitSource]:
    envs = _listing(e.name for e in catalog.environments)
    if catalog.git_builds is None:
        raise ChoiceError(f"this hub does not build from git URLs; choose an environment: {envs}")
    if options.environment:
        raise ChoiceError("give either environment or git_url, not both")
    url = options.git_url or ""
    parts = urlsplit(url)
    if (parts.scheme != "https" or parts.query or parts.fragment or parts.username or parts.password
            or any(c.isspace() for c in url)):
        raise ChoiceError(f"git_url {url!r} must be a plain https URL without query, fragment or credentials")
    if not any(url.startswith(p) for p in catalog.git_builds.allowed_prefixes):
        raise ChoiceError(f"git_url {url!r} is not allowed here; it must start with one of: "
                          f"{_listing(catalog.git_builds.allowed_prefixes)}")
    ref = options.git_ref or "HEAD"
    if not is_ref(ref):
        raise ChoiceError(f"git_ref {ref!r} is not a branch, tag or commit name")
    source = git_source(url, ref)
    image = _git_image(catalog, source)
    try:
        check_image(image)
    except ValueError as e:
        raise ChoiceError(f"git_url {url!r} with git_ref {ref!r} gives no valid image name: {e}") from None
    return url, image, source


def _choose_environment(options: UserOptions, catalog: Catalog) -> tuple[str, str, GitSource | None]:
    if options.git_url:
        return _choose_git(options, catalog)
    if options.git_ref:
        raise ChoiceError("git_ref needs git_url")
    name = options.environment or catalog.defaults.environment
    env = catalog.environment_named(name)
    if env is None:
        raise ChoiceError(f"unknown environment {name!r}; choose one of: "
                          f"{_listing(e.name for e in catalog.environments)}")
    return env.name, env.image, None


def _choose_gpu(options: UserOptions, catalog: Catalog) -> GpuRequest | None:
    gpus, type_name = options.gpus, options.gpu_type
    if catalog.gpu is None:
        if gpus or type_name:
            raise ChoiceError("this hub offers no GPUs; leave gpu_type and gpus out")
        return None
    names = _listing(t.name for t in catalog.gpu.types)
    gpu_type = catalog.gpu.type_named(type_name) if type_name else None
    if type_name and gpu_type is None:
        raise ChoiceError(f"unknown GPU type {type_name!r}; choose one of: {names}")
    if gpus is None:
        gpus = 1 if gpu_type else 0
    if gpus == 0:
        return None
    if gpu_type is None:
        raise ChoiceError(f"gpus={gpus} needs a gpu_type; choose one of: {names}")
    if gpus not in catalog.gpu.counts:
        raise ChoiceError(f"gpus={gpus} is not offered; choose one of: {_listing(catalog.gpu.counts)}")
    return GpuRequest(gpu_type, gpus, catalog.gpu.resource)


def _choose_storage(options: UserOptions, catalog: Catalog) -> StorageRequest:
    storage = catalog.storage
    size = options.storage or catalog.defaults.storage
    if size not in storage.sizes:
        raise ChoiceError(f"storage {size.k8s()} is not offered; choose one of: "
                          f"{_listing(s.k8s() for s in storage.sizes)}")
    cls = options.storage_class or catalog.defaults.storage_class
    if options.storage_class and not storage.classes:
        raise ChoiceError("this hub uses the cluster's default storage class; leave storage_class out")
    if cls is not None and cls not in storage.classes:
        raise ChoiceError(f"storage class {cls!r} does not exist on this hub; choose one of: "
                          f"{_listing(storage.classes)}")
    return StorageRequest(size, cls, storage.mount_path, storage.access_mode)


def choose(options: UserOptions, catalog: Catalog) -> ResourceRequest:
    """Apply the catalog (defaults, offered choices) but not the limits."""
    environment, image, git = _choose_environment(options, catalog)
    cpu_limit = options.cpu or catalog.defaults.cpu
    cpu = next((c for c in catalog.cpu if c.limit == cpu_limit), None)
    if cpu is None:
        raise ChoiceError(f"cpu {cpu_limit.k8s()} is not offered; choose one of: "
                          f"{_listing(c.limit.k8s() for c in catalog.cpu)}")
    mem_limit = options.memory or catalog.defaults.memory
    memory = next((m for m in catalog.memory if m.limit == mem_limit), None)
    if memory is None:
        raise ChoiceError(f"memory {mem_limit.k8s()} is not offered; choose one of: "
                          f"{_listing(m.limit.k8s() for m in catalog.memory)}")
    return ResourceRequest(
        environment=environment,
        image=image,
        cpu=cpu,
        memory=memory,
        gpu=_choose_gpu(options, catalog),
        storage=_choose_storage(options, catalog),
        data_volumes=catalog.data_volumes,
        security=catalog.security,
        git=git,
    )


# -- limits -------------------------------------------------------------------


_LABELS = {"cpu": "CPU", "memory": "memory", "gpus": "GPU", "storage": "storage"}


def _show(key: str, value) -> str:
    if key == "gpus":
        return f"{value} GPU" if value == 1 else f"{value} GPUs"
    return str(value)


def limit_violations(usage: Usage, limits: EffectiveLimits, others: Usage) -> list[str]:
    """One message per limit the request would break; empty when it fits."""
    problems = []
    for key in LIMIT_KEYS:
        wanted, held = getattr(usage, key), getattr(others, key)
        server, user = limits.per_server[key], limits.per_user[key]
        label = _LABELS[key]
        if server.value is not None and wanted > server.value:
            problems.append(f"{_show(key, wanted)} is over the per-server {label} limit of "
                            f"{_show(key, server.value)} ({server.source})")
        elif user.value is not None and held + wanted > user.value and wanted != getattr(Usage(), key):
            what = "your other running servers use" if key != "storage" else "your other home volumes hold"
            problems.append(f"{_show(key, wanted)} plus the {_show(key, held)} {what} is over the "
                            f"per-user {label} limit of {_show(key, user.value)} ({user.source}); "
                            f"stop or remove another server, or choose less")
    return problems


def resolve(options: UserOptions, catalog: Catalog, user: HubUser) -> ResourceRequest:
    """Choose from the catalog and check the user's limits; raise a `SpawnRequestError`."""
    request = choose(options, catalog)
    problems = limit_violations(request.usage(), effective_limits(catalog, user.groups), user.others)
    if problems:
        raise LimitExceeded("refused: " + "; ".join(problems))
    return request


def held_usage(user_options: object, catalog: Catalog, *, running: bool, has_volume: bool) -> Usage:
    """What another of the user's servers holds, from its stored user_options:
    CPU, memory and GPUs while it runs, storage while its volume exists.
    Options the catalog no longer accepts count as nothing."""
    try:
        usage = choose(parse_user_options(user_options), catalog).usage()
    except SpawnRequestError:
        return Usage()
    zero = Usage()
    return Usage(
        cpu=usage.cpu if running else zero.cpu,
        memory=usage.memory if running else zero.memory,
        gpus=usage.gpus if running else zero.gpus,
        storage=usage.storage if has_volume else zero.storage,
    )
