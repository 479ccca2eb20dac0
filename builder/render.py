"""`render_dockerfile(plan) -> Dockerfile`: pure text from the Jinja templates in templates/."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass
from importlib.metadata import version as _dist_version

from dsbuild.templates import environment

from .errors import ConfigError
from .names import validate_image_ref
from .plan import BuildPlan
from .pieces.project import REQUIRES_FILE
from .progress import FILES_STAGE, PROJECT_STAGE, STAGE_PHASES

# Instructions that BuildKit counts as steps ([k/N] in its progress output).
_STEP = re.compile(r"^(FROM|RUN|COPY|ADD|WORKDIR)\b")
_PHASE = re.compile(r"^# dsbuild-phase: (.+)$")
# The one time given to every file the shared steps (base, notebook settings, jupyter)
# change, so that their layers are the same bytes on every build: 1980-01-01, the
# earliest time a zip file can hold.
LAYER_EPOCH = 315532800
_PACKAGE_SPEC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?([<>=!~]=?[A-Za-z0-9.*+!-]+,?)*$")


@dataclass(frozen=True)
class Dockerfile:
    text: str
    phases: tuple[str, ...]  # phase of BuildKit step k is phases[k - 1]


def _environment():
    env = environment("", autoescape=False, trim=False)  # Dockerfiles are not HTML: values are quoted by filters
    env.filters["sh"] = lambda value: shlex.quote(str(value))
    env.filters["json"] = lambda value: json.dumps(str(value))
    return env


def dsbuild_version() -> str:
    return _dist_version("dsbuild")


def step_phases(text: str) -> tuple[str, ...]:
    """The phase of each BuildKit step: the main stage's, then those of the other stages
    (progress.STAGE_PHASES), which come first in the text but are numbered after."""
    stages: dict[str, list[str]] = {"": []}
    current, steps = "base", stages[""]
    for line in text.splitlines():
        if match := _PHASE.match(line):
            current = match.group(1)
        elif _STEP.match(line):
            if line.startswith("FROM "):
                name = line.rsplit(" AS ", 1)[1] if " AS " in line else ""
                steps = stages.setdefault(name if name in STAGE_PHASES else "", [])
            steps.append(current)
    return tuple(phase for steps in stages.values() for phase in steps)


def render_dockerfile(plan: BuildPlan, source_scope: str = "", limits: bool = False) -> Dockerfile:
    """`source_scope` names the package cache of the repository's own installs
    (names.source_hash), and then the dependency step gets one per environment; ""
    shares one per base image for all. `limits`: those steps wait
    for dsbuild's cgroup limits before running anything (limits.py)."""
    if plan.dockerfile:
        raise ValueError("the repository's own Dockerfile is not rendered")
    for spec in plan.jupyter_packages:
        if not _PACKAGE_SPEC.match(spec):
            raise ConfigError(f"not a package requirement: {spec!r}")
    scope = hashlib.sha256(plan.base_image.encode()).hexdigest()[:12]
    if source_scope and not re.fullmatch(r"[0-9a-f]{8,64}", source_scope):
        raise ValueError(f"not a cache scope: {source_scope!r}")
    text = _environment().get_template("Dockerfile.j2").render(
        plan=plan, version=dsbuild_version(), cache_scope=scope,
        source_scope=f"-src-{source_scope}" if source_scope else "",
        env_scope=f"-env-{plan.environment_hash[:16]}" if source_scope else "", limits=limits,
        project_stage=PROJECT_STAGE, files_stage=FILES_STAGE, requires_file=REQUIRES_FILE, layer_epoch=LAYER_EPOCH,
    )
    return Dockerfile(text=text.rstrip("\n") + "\n", phases=step_phases(text))


# Where the full build's steps that an incremental build repeats begin (Dockerfile.j2).
INCREMENT_FROM_PHASE = "# dsbuild-phase: environment files"


def render_incremental(plan: BuildPlan, previous: str, source_scope: str = "", limits: bool = False) -> Dockerfile:
    """The incremental dependency layer (increment.py): templates/incremental.j2 on top of
    `previous` (an image reference: BuildKit's FROM does not take a bare image id), then the full build's own steps from the environment files on,
    so both install the same lock the same way."""
    validate_image_ref(previous, "earlier image")
    full = render_dockerfile(plan, source_scope, limits).text
    if plan.project_metadata or full.count(INCREMENT_FROM_PHASE) != 1:
        raise ValueError("this plan cannot be built incrementally")
    head = _environment().get_template("incremental.j2").render(plan=plan, version=dsbuild_version(), previous=previous)
    text = head + full[full.index(INCREMENT_FROM_PHASE):]
    return Dockerfile(text=text, phases=step_phases(text))


def render_entrypoint() -> str:
    return _environment().get_template("entrypoint.sh.j2").render()


def templates_digest() -> str:
    """Names the templates' text: an image built from other templates is not reused."""
    from dsbuild.templates import read_template

    text = read_template("", "Dockerfile.j2") + read_template("", "entrypoint.sh.j2") + read_template("", "incremental.j2")
    return hashlib.sha256(text.encode()).hexdigest()[:16]
