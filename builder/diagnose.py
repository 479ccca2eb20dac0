"""Turn a failed build step into one line a user can act on. Pure."""

from __future__ import annotations

import re

from .progress import StepFailed

_UV_CAUSE = re.compile(r"(?:╰─▶|\|->|^\s*cause:)\s*(.*)")


def uv_failure(tail: tuple[str, ...]) -> str | None:
    """The reason uv gives for a failed resolution or install, on one line."""
    for index, line in enumerate(tail):
        cause = _UV_CAUSE.search(line)
        if cause:
            rest = [cause.group(1).strip()] + [l.strip() for l in tail[index + 1 : index + 4] if l.startswith("      ")]
            return " ".join(part for part in rest if part)
    errors = [line.strip() for line in tail if line.strip().startswith(("error:", "×"))]
    return errors[-1].lstrip("×").strip() if errors else None


# What Docker 20.10's BuildKit says when its cache points at layers that are gone (after
# an engine crash, or images removed under it): every build that reuses them fails.
_DAMAGED_CACHE = ("layer does not exist", "/committed: no such file or directory")


def damaged_cache(lines: tuple[str, ...] | list[str]) -> str | None:
    """One line for a build the engine's damaged cache broke, or None."""
    for line in lines:
        if any(mark in line for mark in _DAMAGED_CACHE):
            return ("the engine's build cache is damaged (it refers to layers that are gone); "
                    "`dsbuild gc` or `docker builder prune` clears it, or build with --no-cache")
    return None


def explain_failure(failure: StepFailed) -> str:
    if damaged := damaged_cache((failure.message, *failure.tail)):
        return damaged
    phase = failure.phase
    code = f" (exit code {failure.exit_code})" if failure.exit_code is not None else ""
    if failure.exit_code == 137:  # SIGKILL: the kernel's OOM killer, at the build's memory limit
        code = " (exit code 137: killed, most likely out of memory at the build's memory limit)"
    if phase in ("jupyter", "dependencies", "repository") and (reason := uv_failure(failure.tail)):
        return f"installing the Python packages failed{code}: {reason}"
    if phase == "python":
        reason = uv_failure(failure.tail) or _last(failure.tail)
        return (
            f"installing a uv-managed Python failed{code}: {reason}; --python-downloads needs uv's Python "
            "download (or a mirror in UV_PYTHON_INSTALL_MIRROR); without it the nearest newer Debian Python is used"
        )
    if phase == "system packages":
        missing = next((l.strip() for l in reversed(failure.tail) if "Unable to locate package" in l), None)
        return f"installing apt.txt packages failed{code}: {missing or _last(failure.tail)}"
    if phase == "postBuild":
        return f"postBuild failed{code}; its last line: {_last(failure.tail)}"
    return f"build step {failure.step} ({phase}) failed{code}: {_last(failure.tail) if failure.tail else failure.message}"


def _last(tail: tuple[str, ...]) -> str:
    return next((line.strip() for line in reversed(tail) if line.strip()), "no output")
