"""The incremental dependency layer: incremental or full, and from which image. Pure.

When the engine holds an image of the same source and the same options (found by
`target.previous_image`, with the same test that decides "is it built"), whose dependency
stack (everything the layers under the dependency step depend on: base, Python, apt.txt,
Jupyter pins, the notebook user, the pieces) is this plan's, and whose environment
differs, the build starts FROM that image: the new full lock is resolved exactly as a
full build resolves it and `uv pip sync` brings the earlier environment to it, so only
added or changed packages are installed and removed ones are uninstalled, and the new
layer holds only that difference (render.render_incremental).

Only a plan with nothing of the repository's running after the dependency step can be
built upon or built incrementally: postBuild, start, the repository's own packages
(`-e .`, setup.py) and a repository Dockerfile do things no lock describes, so such a
repository is always built in full (`stack_hash` is None, and its images carry no
stack label, so they are never built upon either)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Mapping

from .names import ENVIRONMENT_HASH_LABEL, INCREMENT_LABEL, OPTIONS_LABEL, SOURCE_HASH_LABEL, STACK_LABEL
from .plan import BuildPlan

# Chains of increments are bounded: after this many, the next change is a full build.
DEFAULT_MAX_INCREMENTS = 5
# Each increment adds INCREMENT_LAYERS layers; overlayfs takes at most 128 per image.
INCREMENT_LAYERS = 6
MAX_LAYERS = 100


@dataclass(frozen=True)
class Previous:
    """An image the engine holds, as the edges found it: its labels and layer count."""

    ref: str
    image_id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    layers: int = 0

    @property
    def depth(self) -> int:
        """How many increments it is from a full build (0: it is one)."""
        value = self.labels.get(INCREMENT_LABEL, "0")
        return int(value) if value.isdigit() else 0


@dataclass(frozen=True)
class Increment:
    """The decision: `previous` is the image to build upon (None: a full build), `why` says why."""

    why: str
    previous: Previous | None = None
    depth: int = 0  # the new image's number of increments from a full build

    @property
    def incremental(self) -> bool:
        return self.previous is not None


def stack_hash(plan: BuildPlan) -> str | None:
    """Names what lies under the dependency step, or None when the repository runs steps
    of its own after it (they cannot be reasoned about incrementally)."""
    if plan.dockerfile or plan.repo_installs or plan.project_metadata or plan.post_build or plan.start:
        return None
    python = plan.python
    data = {
        "base": plan.base_image,
        "python": [python.version, python.path, python.managed] if python else None,
        "python-requested": str(plan.python_requested or ""),
        "apt": list(plan.apt_packages),
        "jupyter": list(plan.jupyter_packages),
        "user": [plan.user.uid, plan.user.name],
        "pieces": list(plan.pieces),
        "keep-tests": plan.keep_tests,
        "env-files": sorted(f.name for f in plan.env_files),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def _full_anyway(plan: BuildPlan, no_cache: bool, max_increments: int) -> str:
    """Why the build is full whatever the engine holds ("" if it may be incremental)."""
    if no_cache:
        return "--no-cache asks for a full build"
    if max_increments <= 0:
        return "incremental builds are off (--max-increments 0)"
    if stack_hash(plan) is None:
        return "the repository runs its own steps after the dependencies (postBuild, start or its own packages)"
    return ""


def may_build_upon(plan: BuildPlan, no_cache: bool = False, max_increments: int = DEFAULT_MAX_INCREMENTS) -> bool:
    """Whether an earlier image could matter, so the edges look for one."""
    return not _full_anyway(plan, no_cache, max_increments)


def decide_increment(plan: BuildPlan, previous: Previous | None, *, source_hash: str, options_hash: str,
                     no_cache: bool = False, max_increments: int = DEFAULT_MAX_INCREMENTS) -> Increment:
    """Incremental from `previous`, or full (and why). `source_hash` and `options_hash` are
    the target's: an image of another source, or built with other options, is never built upon."""
    anyway = _full_anyway(plan, no_cache, max_increments)
    if anyway:
        return Increment(anyway)
    stack = stack_hash(plan)
    if previous is None:
        return Increment("no earlier image of this source to build upon")
    labels = previous.labels
    if labels.get(SOURCE_HASH_LABEL) != source_hash or labels.get(OPTIONS_LABEL) != options_hash:
        return Increment(f"{previous.ref} is another source's or was built with other options")
    if labels.get(STACK_LABEL) != stack:
        return Increment(f"{previous.ref} differs under the dependencies (base, Python, apt.txt, Jupyter, "
                         "configuration files) or ran steps of its own")
    if labels.get(ENVIRONMENT_HASH_LABEL) == plan.environment_hash:
        return Increment(f"the environment is {previous.ref}'s: only the repository's layers change")
    if previous.depth + 1 > max_increments:
        return Increment(f"{previous.ref} is {previous.depth} increments from a full build (--max-increments {max_increments})")
    if previous.layers + INCREMENT_LAYERS > MAX_LAYERS:
        return Increment(f"{previous.ref} has {previous.layers} layers")
    return Increment(f"incremental: installing only the difference on top of {previous.ref} ({previous.image_id[:19]})",
                     previous, previous.depth + 1)
