"""The resource catalog: what an admin offers, as frozen dataclasses.

The admin writes the catalog as a plain mapping: a dict in jupyterhub_config.py
(`c.DsbuildSpawner.catalog = {...}`) or a YAML file
(`c.DsbuildSpawner.catalog_file = "/etc/dsbuild/catalog.yaml"`).
`parse_catalog` checks every key and value and raises `CatalogError` naming the
bad key (for example ``catalog.gpu.types.nvidia-a100.node_selector``); unknown
keys are refused so that a typo never silently does nothing. docs/spawner.md
describes every key; examples/hub/catalog.yaml is a complete example.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CatalogError
from .names import (
    check_absolute_path,
    check_choice_name,
    check_dns_label,
    check_dns_subdomain,
    check_hostname,
    check_image,
    check_label_key,
    check_label_value,
    check_qualified_name,
)
from .quantities import Cpu, Memory

MAX_GPUS = 64
ACCESS_MODES = ("ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany")


@dataclass(frozen=True)
class Environment:
    """An image built by dsbuild, offered under a name."""

    name: str
    image: str
    display_name: str
    description: str = ""


@dataclass(frozen=True)
class GitBuilds:
    """Lets users name a git repository instead of a listed environment."""

    allowed_prefixes: tuple[str, ...]
    image_template: str  # with {repo} and {ref}


@dataclass(frozen=True)
class CpuChoice:
    limit: Cpu
    guarantee: Cpu


@dataclass(frozen=True)
class MemoryChoice:
    limit: Memory
    guarantee: Memory


@dataclass(frozen=True)
class GpuType:
    """A kind of GPU; pods asking for it are pinned to its nodes by selector."""

    name: str
    display_name: str
    node_selector: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class GpuCatalog:
    resource: str  # extended resource name, also the toleration key
    counts: tuple[int, ...]
    types: tuple[GpuType, ...]

    def type_named(self, name: str) -> GpuType | None:
        return next((t for t in self.types if t.name == name), None)


@dataclass(frozen=True)
class StorageCatalog:
    mount_path: str
    access_mode: str
    sizes: tuple[Memory, ...]
    classes: tuple[str, ...]  # empty: the cluster's default storage class


@dataclass(frozen=True)
class DataVolume:
    """A shared data set mounted read-only into every notebook."""

    name: str
    mount_path: str
    pvc: str | None = None
    nfs_server: str | None = None
    nfs_path: str | None = None


@dataclass(frozen=True)
class Limits:
    """Maxima; None means this key sets no maximum."""

    cpu: Cpu | None = None
    memory: Memory | None = None
    gpus: int | None = None
    storage: Memory | None = None


@dataclass(frozen=True)
class GroupLimits:
    per_server: Limits = field(default_factory=Limits)
    per_user: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Security:
    uid: int = 1000
    gid: int = 100
    fs_gid: int = 100


@dataclass(frozen=True)
class Defaults:
    environment: str
    cpu: Cpu
    memory: Memory
    storage: Memory
    storage_class: str | None


@dataclass(frozen=True)
class Catalog:
    environments: tuple[Environment, ...]
    cpu: tuple[CpuChoice, ...]
    memory: tuple[MemoryChoice, ...]
    storage: StorageCatalog
    defaults: Defaults
    gpu: GpuCatalog | None = None
    data_volumes: tuple[DataVolume, ...] = ()
    group_limits: tuple[tuple[str, GroupLimits], ...] = ()
    default_limits: GroupLimits = field(default_factory=GroupLimits)
    git_builds: GitBuilds | None = None
    security: Security = field(default_factory=Security)

    def environment_named(self, name: str) -> Environment | None:
        return next((e for e in self.environments if e.name == name), None)


# -- reading helpers ---------------------------------------------------------


def _mapping(value: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> Mapping:
    if not isinstance(value, Mapping):
        raise CatalogError(f"{path}: expected a mapping, got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise CatalogError(f"{path}: unknown key {key!r}; expected one of: {', '.join(allowed)}")
    for key in required:
        if key not in value:
            raise CatalogError(f"{path}: missing required key {key!r}")
    return value


def _named_entries(value: Any, path: str) -> list[tuple[str, Any]]:
    """A mapping of name -> entry; names are checked for safe characters."""
    if not isinstance(value, Mapping) or not value:
        raise CatalogError(f"{path}: expected a non-empty mapping of name -> settings")
    entries = []
    for name, entry in value.items():
        _check(check_choice_name, name, f"{path}: name {name!r}")
        entries.append((str(name), entry))
    return entries


def _list(value: Any, path: str) -> list:
    if not isinstance(value, list) or not value:
        raise CatalogError(f"{path}: expected a non-empty list")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{path}: expected a non-empty string")
    return value


def _int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CatalogError(f"{path}: expected a whole number from {low} to {high}, got {value!r}")
    return value


def _check(checker, value: Any, path: str) -> str:
    try:
        return checker(value)
    except ValueError as e:
        raise CatalogError(f"{path}: {e}") from None


def _cpu(value: Any, path: str) -> Cpu:
    return _check(Cpu.parse, value, path)


def _memory(value: Any, path: str) -> Memory:
    return _check(Memory.parse, value, path)


def _unique(items: list, path: str, what: str) -> None:
    seen = set()
    for item in items:
        if item in seen:
            raise CatalogError(f"{path}: {what} {item} is listed twice")
        seen.add(item)


# -- sections ----------------------------------------------------------------


def _environments(value: Any, path: str) -> tuple[Environment, ...]:
    result = []
    for name, entry in _named_entries(value, path):
        where = f"{path}.{name}"
        entry = _mapping(entry, where, ("image", "display_name", "description"), ("image",))
        result.append(
            Environment(
                name=name,
                image=_check(check_image, entry["image"], f"{where}.image"),
                display_name=_str(entry.get("display_name", name), f"{where}.display_name"),
                description=str(entry.get("description", "")),
            )
        )
    return tuple(result)


def _git_builds(value: Any, path: str) -> GitBuilds:
    value = _mapping(value, path, ("allowed_prefixes", "image_template"), ("allowed_prefixes", "image_template"))
    prefixes = []
    for i, prefix in enumerate(_list(value["allowed_prefixes"], f"{path}.allowed_prefixes")):
        where = f"{path}.allowed_prefixes[{i}]"
        prefix = _str(prefix, where)
        if not prefix.startswith("https://") or not prefix.endswith("/") or prefix.count("/") < 3:
            raise CatalogError(f"{where}: expected an https URL prefix ending in '/', like 'https://github.com/my-org/'")
        prefixes.append(prefix)
    template = _str(value["image_template"], f"{path}.image_template")
    try:
        example = template.format(repo="example-repo-0123abcd", ref="main")
    except (KeyError, IndexError, ValueError):
        raise CatalogError(f"{path}.image_template: may use only {{repo}} and {{ref}}, got {template!r}") from None
    if "{repo}" not in template or "{ref}" not in template:
        raise CatalogError(f"{path}.image_template: must contain both {{repo}} and {{ref}}")
    _check(check_image, example, f"{path}.image_template")
    return GitBuilds(tuple(prefixes), template)


def _cpu_choices(value: Any, path: str) -> tuple[CpuChoice, ...]:
    choices = []
    for i, entry in enumerate(_list(value, path)):
        where = f"{path}[{i}]"
        entry = _mapping(entry, where, ("limit", "guarantee"), ("limit",))
        limit = _cpu(entry["limit"], f"{where}.limit")
        guarantee = _cpu(entry.get("guarantee", entry["limit"]), f"{where}.guarantee")
        if limit.millicores == 0:
            raise CatalogError(f"{where}.limit: must be more than 0")
        if guarantee > limit:
            raise CatalogError(f"{where}.guarantee: {guarantee.k8s()} is more than the limit {limit.k8s()}")
        choices.append(CpuChoice(limit, guarantee))
    _unique([c.limit.k8s() for c in choices], path, "limit")
    return tuple(choices)


def _memory_choices(value: Any, path: str) -> tuple[MemoryChoice, ...]:
    choices = []
    for i, entry in enumerate(_list(value, path)):
        where = f"{path}[{i}]"
        entry = _mapping(entry, where, ("limit", "guarantee"), ("limit",))
        limit = _memory(entry["limit"], f"{where}.limit")
        guarantee = _memory(entry.get("guarantee", entry["limit"]), f"{where}.guarantee")
        if limit.bytes < 2**20:
            raise CatalogError(f"{where}.limit: {limit.bytes} bytes is less than 1Mi; write units, like '4Gi'")
        if guarantee > limit:
            raise CatalogError(f"{where}.guarantee: {guarantee.k8s()} is more than the limit {limit.k8s()}")
        choices.append(MemoryChoice(limit, guarantee))
    _unique([c.limit.k8s() for c in choices], path, "limit")
    return tuple(choices)


def _gpu(value: Any, path: str) -> GpuCatalog:
    value = _mapping(value, path, ("resource", "counts", "types"), ("counts", "types"))
    resource = _check(check_qualified_name, value.get("resource", "nvidia.com/gpu"), f"{path}.resource")
    counts = tuple(_int(c, f"{path}.counts[{i}]", 1, MAX_GPUS) for i, c in enumerate(_list(value["counts"], f"{path}.counts")))
    _unique(list(counts), f"{path}.counts", "count")
    types = []
    for name, entry in _named_entries(value["types"], f"{path}.types"):
        where = f"{path}.types.{name}"
        entry = _mapping(entry, where, ("display_name", "node_selector"), ("node_selector",))
        selector = entry["node_selector"]
        if not isinstance(selector, Mapping) or not selector:
            raise CatalogError(f"{where}.node_selector: expected a non-empty mapping of node label -> value")
        pairs = tuple(
            (_check(check_label_key, k, f"{where}.node_selector: key {k!r}"),
             _check(check_label_value, v, f"{where}.node_selector.{k}"))
            for k, v in selector.items()
        )
        types.append(GpuType(name, _str(entry.get("display_name", name), f"{where}.display_name"), pairs))
    return GpuCatalog(resource, counts, tuple(types))


def _storage(value: Any, path: str) -> StorageCatalog:
    value = _mapping(value, path, ("mount_path", "access_mode", "sizes", "classes"), ("sizes",))
    mount_path = _check(check_absolute_path, value.get("mount_path", "/home/jovyan"), f"{path}.mount_path")
    access_mode = value.get("access_mode", "ReadWriteOnce")
    if access_mode not in ACCESS_MODES:
        raise CatalogError(f"{path}.access_mode: expected one of {', '.join(ACCESS_MODES)}, got {access_mode!r}")
    sizes = tuple(_memory(s, f"{path}.sizes[{i}]") for i, s in enumerate(_list(value["sizes"], f"{path}.sizes")))
    for i, size in enumerate(sizes):
        if size.bytes < 2**20:
            raise CatalogError(f"{path}.sizes[{i}]: {size.bytes} bytes is less than 1Mi; write units, like '10Gi'")
    _unique([s.k8s() for s in sizes], f"{path}.sizes", "size")
    classes_value = value.get("classes", [])
    if not isinstance(classes_value, list):
        raise CatalogError(f"{path}.classes: expected a list of storage class names")
    classes = tuple(_check(check_dns_subdomain, c, f"{path}.classes[{i}]") for i, c in enumerate(classes_value))
    _unique(list(classes), f"{path}.classes", "class")
    return StorageCatalog(mount_path, access_mode, sizes, classes)


def _data_volumes(value: Any, path: str, home: str) -> tuple[DataVolume, ...]:
    volumes = []
    mount_paths = {home: "catalog.storage.mount_path"}
    for name, entry in _named_entries(value, path):
        where = f"{path}.{name}"
        _check(check_dns_label, f"data-{name}", f"{where}: name {name!r} (used as volume name 'data-{name}')")
        entry = _mapping(entry, where, ("mount_path", "pvc", "nfs"), ("mount_path",))
        mount = _check(check_absolute_path, entry["mount_path"], f"{where}.mount_path")
        for other, owner in mount_paths.items():
            if mount == other or mount.startswith(other.rstrip("/") + "/") or other.startswith(mount.rstrip("/") + "/"):
                raise CatalogError(f"{where}.mount_path: {mount} overlaps {other} ({owner})")
        mount_paths[mount] = where
        if ("pvc" in entry) == ("nfs" in entry):
            raise CatalogError(f"{where}: give exactly one of 'pvc' (an existing claim) or 'nfs' (server and path)")
        if "pvc" in entry:
            volumes.append(DataVolume(name, mount, pvc=_check(check_dns_subdomain, entry["pvc"], f"{where}.pvc")))
        else:
            nfs = _mapping(entry["nfs"], f"{where}.nfs", ("server", "path"), ("server", "path"))
            server = _check(check_hostname, nfs["server"], f"{where}.nfs.server")
            export = _check(check_absolute_path, nfs["path"], f"{where}.nfs.path")
            volumes.append(DataVolume(name, mount, nfs_server=server, nfs_path=export))
    return tuple(volumes)


def _limits(value: Any, path: str) -> Limits:
    value = _mapping(value, path, ("cpu", "memory", "gpus", "storage"))
    return Limits(
        cpu=_cpu(value["cpu"], f"{path}.cpu") if "cpu" in value else None,
        memory=_memory(value["memory"], f"{path}.memory") if "memory" in value else None,
        gpus=_int(value["gpus"], f"{path}.gpus", 0, MAX_GPUS * 16) if "gpus" in value else None,
        storage=_memory(value["storage"], f"{path}.storage") if "storage" in value else None,
    )


def _group_limits(value: Any, path: str) -> GroupLimits:
    value = _mapping(value, path, ("per_server", "per_user"))
    return GroupLimits(
        per_server=_limits(value.get("per_server", {}), f"{path}.per_server"),
        per_user=_limits(value.get("per_user", {}), f"{path}.per_user"),
    )


def _all_limits(value: Any, path: str) -> tuple[tuple[tuple[str, GroupLimits], ...], GroupLimits]:
    value = _mapping(value, path, ("groups", "default"))
    groups = value.get("groups", {})
    if not isinstance(groups, Mapping):
        raise CatalogError(f"{path}.groups: expected a mapping of JupyterHub group name -> limits")
    parsed = tuple((_str(g, f"{path}.groups: name"), _group_limits(v, f"{path}.groups.{g}")) for g, v in groups.items())
    default = _group_limits(value.get("default", {}), f"{path}.default")
    return parsed, default


def _security(value: Any, path: str) -> Security:
    value = _mapping(value, path, ("uid", "gid", "fs_gid"))
    return Security(
        uid=_int(value.get("uid", 1000), f"{path}.uid", 1, 2**31 - 1),
        gid=_int(value.get("gid", 100), f"{path}.gid", 1, 2**31 - 1),
        fs_gid=_int(value.get("fs_gid", 100), f"{path}.fs_gid", 1, 2**31 - 1),
    )


def _defaults(value: Any, path: str, envs, cpu, memory, storage: StorageCatalog) -> Defaults:
    value = _mapping(value, path, ("environment", "cpu", "memory", "storage", "storage_class"))
    env = value.get("environment", envs[0].name)
    if not any(e.name == env for e in envs):
        raise CatalogError(f"{path}.environment: {env!r} is not one of the environments")
    d_cpu = _cpu(value["cpu"], f"{path}.cpu") if "cpu" in value else cpu[0].limit
    if d_cpu not in [c.limit for c in cpu]:
        raise CatalogError(f"{path}.cpu: {d_cpu.k8s()} is not one of the cpu limits")
    d_mem = _memory(value["memory"], f"{path}.memory") if "memory" in value else memory[0].limit
    if d_mem not in [m.limit for m in memory]:
        raise CatalogError(f"{path}.memory: {d_mem.k8s()} is not one of the memory limits")
    d_size = _memory(value["storage"], f"{path}.storage") if "storage" in value else storage.sizes[0]
    if d_size not in storage.sizes:
        raise CatalogError(f"{path}.storage: {d_size.k8s()} is not one of storage.sizes")
    d_class = value.get("storage_class", storage.classes[0] if storage.classes else None)
    if d_class is not None and d_class not in storage.classes:
        raise CatalogError(f"{path}.storage_class: {d_class!r} is not one of storage.classes")
    return Defaults(env, d_cpu, d_mem, d_size, d_class)


TOP_LEVEL_KEYS = (
    "environments", "git_builds", "cpu", "memory", "gpu", "storage",
    "data_volumes", "limits", "security", "defaults",
)


def parse_catalog(data: Any) -> Catalog:
    """Check a plain mapping and turn it into a `Catalog`, or raise `CatalogError`."""
    data = _mapping(data, "catalog", TOP_LEVEL_KEYS, ("environments", "cpu", "memory", "storage"))
    envs = _environments(data["environments"], "catalog.environments")
    cpu = _cpu_choices(data["cpu"], "catalog.cpu")
    memory = _memory_choices(data["memory"], "catalog.memory")
    storage = _storage(data["storage"], "catalog.storage")
    group_limits, default_limits = _all_limits(data.get("limits", {}), "catalog.limits")
    return Catalog(
        environments=envs,
        cpu=cpu,
        memory=memory,
        storage=storage,
        defaults=_defaults(data.get("defaults", {}), "catalog.defaults", envs, cpu, memory, storage),
        gpu=_gpu(data["gpu"], "catalog.gpu") if data.get("gpu") is not None else None,
        data_volumes=(
            _data_volumes(data["data_volumes"], "catalog.data_volumes", storage.mount_path)
            if data.get("data_volumes")
            else ()
        ),
        group_limits=group_limits,
        default_limits=default_limits,
        git_builds=_git_builds(data["git_builds"], "catalog.git_builds") if data.get("git_builds") else None,
        security=_security(data.get("security", {}), "catalog.security"),
    )


def read_catalog_file(path: str | Path) -> Any:
    """Read a catalog YAML (or JSON) file into plain data; errors become `CatalogError`."""
    import yaml  # the spawner extra installs PyYAML

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogError(f"cannot read catalog file {path}: {e.strerror or e}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "cannot parse"
        raise CatalogError(f"catalog file {path} is not valid YAML{where}: {problem}") from None


def load_catalog(path: str | Path) -> Catalog:
    """Read and check a catalog file."""
    return parse_catalog(read_catalog_file(path))
