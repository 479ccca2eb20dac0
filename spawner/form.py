"""The spawn form: only the choices this user may make.

`offer` works out, from the catalog and the user's limits (including what
the user's other servers already hold), which choices fit; `spawn_form`
renders them with templates/hub/spawn_form.html.j2. Both are pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Catalog, CpuChoice, Environment, GpuType, MemoryChoice
from .options import UserOptions
from .quantities import Memory
from .resolve import HubUser, Usage, effective_limits, limit_violations
from .templating import render_html


@dataclass(frozen=True)
class Offer:
    environments: tuple[Environment, ...]
    git_builds: bool
    cpu: tuple[CpuChoice, ...]
    memory: tuple[MemoryChoice, ...]
    gpu_types: tuple[GpuType, ...]
    gpu_counts: tuple[int, ...]
    storage_sizes: tuple[Memory, ...]
    storage_classes: tuple[str, ...]
    blocked: tuple[str, ...]  # why a required choice has nothing left


def offer(catalog: Catalog, user: HubUser, *, can_build: bool = False) -> Offer:
    limits = effective_limits(catalog, user.groups)

    def fits(usage: Usage) -> bool:
        return not limit_violations(usage, limits, user.others)

    cpu = tuple(c for c in catalog.cpu if fits(Usage(cpu=c.limit)))
    memory = tuple(m for m in catalog.memory if fits(Usage(memory=m.limit)))
    sizes = tuple(s for s in catalog.storage.sizes if fits(Usage(storage=s)))
    counts = tuple(n for n in catalog.gpu.counts if fits(Usage(gpus=n))) if catalog.gpu else ()
    gpu_types = catalog.gpu.types if counts else ()
    blocked = []
    for what, choices, smallest in (
        ("CPU", cpu, min(c.limit for c in catalog.cpu)),
        ("memory", memory, min(m.limit for m in catalog.memory)),
        ("storage", sizes, min(catalog.storage.sizes)),
    ):
        if not choices:
            key = {"CPU": "cpu"}.get(what, what)
            usage = Usage(**{key: smallest})
            blocked.append(f"No {what} choice fits your limits: " + "; ".join(limit_violations(usage, limits, user.others)))
    return Offer(
        environments=catalog.environments,
        git_builds=can_build and catalog.git_builds is not None,
        cpu=cpu,
        memory=memory,
        gpu_types=gpu_types,
        gpu_counts=counts,
        storage_sizes=sizes,
        storage_classes=catalog.storage.classes,
        blocked=tuple(blocked),
    )


def _pick(wanted, default, offered):
    """The value to preselect: the user's last choice, else the default, else the first offered."""
    for candidate in (wanted, default):
        if candidate is not None and candidate in offered:
            return candidate
    return offered[0] if offered else None


def spawn_form(catalog: Catalog, user: HubUser, previous: UserOptions | None = None,
               *, can_build: bool = False) -> str:
    """The HTML of the spawn form (JupyterHub adds the <form> and the button).

    `can_build`: the hub has an image builder, so the catalog's git_builds
    option is shown."""
    previous = previous or UserOptions()
    choices = offer(catalog, user, can_build=can_build)
    using_git = bool(previous.git_url) and choices.git_builds
    env_names = tuple(e.name for e in choices.environments)
    selected = {
        "environment": None if using_git else _pick(previous.environment, catalog.defaults.environment, env_names),
        "cpu": _pick(previous.cpu, catalog.defaults.cpu, tuple(c.limit for c in choices.cpu)),
        "memory": _pick(previous.memory, catalog.defaults.memory, tuple(m.limit for m in choices.memory)),
        "gpu_type": previous.gpu_type if previous.gpus != 0 and previous.gpu_type in {t.name for t in choices.gpu_types} else "",
        "gpus": _pick(previous.gpus, 1, choices.gpu_counts),
        "storage": _pick(previous.storage, catalog.defaults.storage, choices.storage_sizes),
        "storage_class": _pick(previous.storage_class, catalog.defaults.storage_class, choices.storage_classes),
        "git_url": previous.git_url or "" if choices.git_builds else "",
        "git_ref": previous.git_ref or "" if choices.git_builds else "",
    }
    return render_html(
        "spawn_form.html.j2",
        offer=choices,
        selected=selected,
        data_volumes=catalog.data_volumes,
        home=catalog.storage.mount_path,
    )
