"""Builder events -> the JSON events of a launch's stream. Pure.

Every event has a `phase` and a `message`:

    resolving   the ref is being resolved to a commit
    fetching    the commit's files are being exported
    building    build progress; `log: true` marks a line of the build's own output,
                `step`/`total` a step starting
    pushing     the image is being pushed to a registry
    launching   JupyterHub is starting the server
    ready       the server answers; `url` is where to go
    failed      the launch stopped; `reason` names the kind of failure

The stream is Server-Sent Events: one `data: {json}` line per event."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from dsbuild.builder.errors import (
    BuildFailed,
    ConfigError,
    DsbuildError,
    EngineUnavailable,
    SourceError,
)
from dsbuild.builder.progress import (
    BuildFinished,
    LogLine,
    StepCached,
    StepDone,
    StepFailed,
    StepStarted,
)
from dsbuild.builder.service import Built, Event, Status

from .errors import LaunchError

PHASES = ("resolving", "fetching", "building", "pushing", "launching", "ready", "failed")
_STATUS_PHASES = {"resolving": "resolving", "fetching": "fetching", "pushing": "pushing"}
MAX_MESSAGE = 2000
MAX_STEP = 160  # a step's instruction as shown; the whole RUN line is in the Dockerfile


@dataclass(frozen=True)
class StreamEvent:
    phase: str
    message: str
    log: bool = False
    step: int | None = None
    total: int | None = None
    url: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"unknown phase {self.phase!r}")

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and v is not False}

    def sse(self) -> str:
        return f"data: {json.dumps(self.to_json())}\n\n"


def _short(text: str) -> str:
    text = text.replace("\r", "")
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def from_builder(event: Event) -> StreamEvent | None:
    """The stream event for one builder event; None for events not worth showing."""
    match event:
        case Status(phase, message):
            return StreamEvent(_STATUS_PHASES.get(phase, "building"), _short(message))
        case StepStarted(step, total, phase, instruction):
            first = " ".join(instruction.split())
            first = first if len(first) <= MAX_STEP else first[: MAX_STEP - 3] + "..."
            return StreamEvent("building", _short(f"step {step}/{total} ({phase}): {first}"), step=step, total=total)
        case StepCached(step, phase):
            return StreamEvent("building", f"step {step} ({phase}): cached")
        case StepDone(step, phase, seconds) if seconds >= 1:
            return StreamEvent("building", f"step {step} ({phase}): done in {seconds:.1f}s")
        case LogLine(_, text):
            return StreamEvent("building", _short(text), log=True)
        case StepFailed(step, phase, message, _, _):
            return StreamEvent("building", _short(f"step {step} ({phase}) failed: {message}"))
        case Built(image, _, _, skipped, _, cached, ran, origin):
            packages = f"; packages {origin}" if origin else ""
            if skipped:
                return StreamEvent("building", f"using {image}, built before{packages}")
            return StreamEvent("building", f"built {image} ({len(ran)} steps run, {len(cached)} cached){packages}")
        case BuildFinished() | StepDone():
            return None
    return None


def reason_of(error: BaseException) -> str:
    if isinstance(error, LaunchError):
        return error.reason
    for kind, reason in ((SourceError, "source"), (BuildFailed, "build"), (ConfigError, "config"),
                         (EngineUnavailable, "engine"), (DsbuildError, "error")):
        if isinstance(error, kind):
            return reason
    return "internal"


def failed(error: BaseException) -> StreamEvent:
    """The last event of a stream that stopped; internal errors do not leak details."""
    if isinstance(error, DsbuildError):
        return StreamEvent("failed", _short(str(error)) or type(error).__name__, reason=reason_of(error))
    return StreamEvent("failed", "internal error in the launch service; see its log", reason="internal")


def ready(url: str, message: str = "JupyterLab is ready") -> StreamEvent:
    return StreamEvent("ready", message, url=url)


def launching(message: str) -> StreamEvent:
    return StreamEvent("launching", _short(message))


KEEPALIVE = ": keepalive\n\n"
