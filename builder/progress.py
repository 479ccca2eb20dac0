"""Typed build events, parsed from BuildKit's plain progress output. Pure: feed it lines."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

_VERTEX = re.compile(r"^#(\d+) (.*)$")
_STEP = re.compile(r"^\[(?:([^\]]*?) +)?(\d+)/(\d+)\] (.*)$")
# The build stage that builds the repository's project metadata (templates/Dockerfile.j2):
# BuildKit numbers its steps on their own ([dsbuild-project 2/3]); its phases follow the
# main stage's, so its step k is step len(main) + k here.
PROJECT_STAGE = "dsbuild-project"
PROJECT_PHASE = "project metadata"
# The stage that makes the few files the image gets before its first RUN (/etc/hosts, the
# entrypoint) with one fixed time, so the shared layers are the same bytes on every build.
FILES_STAGE = "dsbuild-files"
FILES_PHASE = "shared files"
STAGE_PHASES = {PROJECT_STAGE: PROJECT_PHASE, FILES_STAGE: FILES_PHASE}  # numbered after the main stage


def main_stage_steps(phases: tuple[str, ...]) -> int:
    """How many of a Dockerfile's steps are the final image's stage's (FROM included): they
    are numbered first, the other stages' after (render.step_phases)."""
    return sum(1 for phase in phases if phase not in STAGE_PHASES.values())


_LOG = re.compile(r"^\d+\.\d+ (.*)$")
_DONE = re.compile(r"^DONE (\d+(?:\.\d+)?)s$")
_EXIT = re.compile(r"exit code: (\d+)")


@dataclass(frozen=True)
class StepStarted:
    step: int
    total: int
    phase: str
    instruction: str


@dataclass(frozen=True)
class StepCached:
    step: int
    phase: str


@dataclass(frozen=True)
class StepDone:
    step: int
    phase: str
    seconds: float


@dataclass(frozen=True)
class LogLine:
    phase: str
    text: str


@dataclass(frozen=True)
class StepFailed:
    step: int
    phase: str
    message: str
    exit_code: int | None
    tail: tuple[str, ...]


@dataclass(frozen=True)
class BuildFinished:
    image_id: str
    cached_steps: tuple[int, ...]
    run_steps: tuple[int, ...]


BuildEvent = StepStarted | StepCached | StepDone | LogLine | StepFailed | BuildFinished


@dataclass
class ProgressParser:
    """Follows `docker build --progress=plain`; `phases[k-1]` names step k's phase."""

    phases: tuple[str, ...]
    tail_lines: int = 25
    offset: int = 0  # steps the output does not number (a FROM given to BuildKit as a named context)
    _steps: dict[int, int] = field(default_factory=dict)  # vertex -> step
    _tails: dict[int, deque] = field(default_factory=dict)
    cached: list[int] = field(default_factory=list)
    ran: list[int] = field(default_factory=list)

    def phase(self, step: int) -> str:
        return self.phases[step - 1] if 0 < step <= len(self.phases) else "build"

    def _is_from(self, step: int) -> bool:
        return step == 1 or any(p in self.phases and step == self.phases.index(p) + 1 for p in STAGE_PHASES.values())

    def step_of(self, vertex: int) -> int | None:
        """The step number of a vertex, once its `[k/N]` line was read."""
        return self._steps.get(vertex)

    def feed(self, line: str) -> list[BuildEvent]:
        match = _VERTEX.match(line.rstrip("\n"))
        if not match:
            return []
        vertex, rest = int(match.group(1)), match.group(2)
        if vertex not in self._steps:
            step = _STEP.match(rest)
            if step:
                number, total = int(step.group(2)) + self.offset, int(step.group(3)) + self.offset
                if (stage := STAGE_PHASES.get(step.group(1) or "")) and stage in self.phases:
                    number, total = self.phases.index(stage) + number, len(self.phases)
                self._steps[vertex] = number
                self._tails[vertex] = deque(maxlen=self.tail_lines)
                return [StepStarted(number, total, self.phase(number), step.group(4))]
            return []
        number = self._steps[vertex]
        phase = self.phase(number)
        if rest == "CACHED":
            self.cached.append(number)
            return [StepCached(number, phase)]
        if done := _DONE.match(rest):
            if number not in self.cached and not self._is_from(number):  # FROM: nothing runs
                self.ran.append(number)
            return [StepDone(number, phase, float(done.group(1)))]
        if rest.startswith("ERROR"):
            message = rest.removeprefix("ERROR:").strip()
            code = _EXIT.search(message)
            tail = tuple(self._tails[vertex])
            return [StepFailed(number, phase, message, int(code.group(1)) if code else None, tail)]
        if log := _LOG.match(rest):
            self._tails[vertex].append(log.group(1))
            return [LogLine(phase, log.group(1))]
        return []
