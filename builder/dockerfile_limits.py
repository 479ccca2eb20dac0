"""A repository's own Dockerfile, rewritten so that every RUN step starts with dsbuild's
limits helper (limits_helper.py) and gets the same cgroup limits as a generated build.
Pure.

    RUN make all                 ->  RUN --mount=type=bind,from=dsbuild-limits:H,source=/limits,target=/.dsbuild-limits \
                                         ["/.dsbuild-limits", "/bin/sh", "-c", "make all"]
    RUN ["python3", "x.py"]      ->  RUN --mount=... ["/.dsbuild-limits", "python3", "x.py"]

The exec form is what makes it hold: the helper (static, from dsbuild's own image, not
the build context) is the step's first process, so nothing in the image, not even a /bin/sh that an
earlier step replaced, runs before the limits are in force. The shell is the stage's
SHELL (default /bin/sh -c). Line continuations (with the escape directive's character)
and comment lines inside them are joined as Docker's parser joins them. ONBUILD is
refused: its RUN steps would run in a later stage without the helper."""

from __future__ import annotations

import json
import re

from .errors import ConfigError

HELPER = "/.dsbuild-limits"


def mount(image: str) -> str:
    """The RUN flag that puts the helper (the one file of `image`) at HELPER."""
    return f"--mount=type=bind,from={image},source=/limits,target={HELPER}"

DEFAULT_SHELL = ["/bin/sh", "-c"]
_DIRECTIVE = re.compile(r"^\s*#\s*(\w+)\s*=\s*(\S*)\s*$")
_INSTRUCTION = re.compile(r"^\s*([A-Za-z]+)(?:\s+(.*))?$", re.DOTALL)
_FLAG = re.compile(r"^--[A-Za-z-]+(=\S*)?$")


def _escape_char(lines: list[str]) -> str:
    for line in lines:
        match = _DIRECTIVE.match(line)
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("`", "\\"):
            return match.group(2)
    return "\\"


def logical_lines(text: str) -> list[tuple[str, list[str]]]:
    """(joined instruction, its physical lines) in order; comments and blank lines alone
    are kept as they are (pure)."""
    lines = text.splitlines()
    escape = _escape_char(lines)
    out: list[tuple[str, list[str]]] = []
    joined, physical = "", []
    for line in lines:
        if physical and re.match(r"^\s*#", line):  # a comment inside a continuation: dropped
            physical.append(line)
            continue
        physical.append(line)
        stripped = line.rstrip()
        if stripped.endswith(escape) and not re.match(r"^\s*#", line):
            joined += stripped[:-1]
            continue
        joined += line
        out.append((joined, physical))
        joined, physical = "", []
    if physical:
        out.append((joined, physical))
    return out


def _split_flags(rest: str) -> tuple[list[str], str]:
    flags = []
    rest = rest.strip()
    while rest.startswith("--"):
        token, _, after = rest.partition(" ")
        if not _FLAG.match(token):
            break
        flags.append(token)
        rest = after.strip()
    return flags, rest


def _exec_form(command: str) -> list[str] | None:
    if not command.startswith("["):
        return None
    try:
        value = json.loads(command)
    except ValueError:
        return None
    return value if isinstance(value, list) and value and all(isinstance(v, str) for v in value) else None


def limit_runs(text: str, image: str) -> str:
    """The Dockerfile with every RUN step started by the limits helper of `image` (pure)."""
    out: list[str] = []
    shell, stage_shells = list(DEFAULT_SHELL), {}
    stage: str | None = None
    for joined, physical in logical_lines(text):
        match = _INSTRUCTION.match(joined) if not re.match(r"^\s*(#|$)", joined) else None
        keyword = match.group(1).upper() if match else ""
        rest = (match.group(2) or "") if match else ""
        if keyword == "ONBUILD":
            raise ConfigError("Dockerfile: ONBUILD is not allowed on this builder (its steps would run without "
                              "the build limits)")
        if keyword == "FROM":
            words = rest.split()
            base = next((w for w in words if not w.startswith("--")), "")
            shell = list(stage_shells.get(base.lower(), DEFAULT_SHELL))
            stage = words[-1].lower() if len(words) >= 3 and words[-2].upper() == "AS" else None
            if stage:
                stage_shells[stage] = shell
            out.extend(physical)
            continue
        if keyword == "SHELL":
            parsed = _exec_form(rest.strip())
            if parsed:
                shell = parsed
                if stage:
                    stage_shells[stage] = shell
            out.extend(physical)
            continue
        if keyword != "RUN":
            out.extend(physical)
            continue
        flags, command = _split_flags(rest)
        argv = _exec_form(command)
        argv = [HELPER, *(argv if argv is not None else [*shell, command])]
        out.append(" ".join(["RUN", *flags, mount(image), json.dumps(argv)]))
    return "\n".join(out) + "\n"
