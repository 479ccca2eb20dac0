"""Limits on one build: a deadline, a log budget, and cgroup limits (CPU, memory, pids)
on the steps that run a repository's code.

The Docker engines these machines run (Debian's docker.io 20.10, cgroup v1) ignore
`docker build --cgroup-parent`, `--memory` and `--ulimit` under BuildKit: every RUN step
gets its own cgroup under `/docker/buildkit/<id>` with no limit. So a step that runs
repository code starts with a small dsbuild script (`limits.sh`, bind-mounted from the
build context) that prints its cgroup on the step's first log line and then waits until
the limits are in force; dsbuild, reading the build's progress on the host, writes the
limits into that cgroup. Only the FIRST line of a step that dsbuild rendered with the
script is honoured, so a repository cannot name another cgroup: its own code runs only
after that line. A repository's own Dockerfile is rewritten so that every RUN step starts
with a static program of dsbuild's that does the same (limits_helper.py).

`BuildPolicy` is plain data (pure); `CgroupLimiter` is the edge that writes cgroup files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import BuildFailed

MARKER = "dsbuild-limits:"
LIMITED_PHASES = ("project metadata", "dependencies", "repository", "postBuild")
_CGROUP_PATH = re.compile(r"^/[A-Za-z0-9_.:/-]{1,200}$")
_LOG_LINE = re.compile(r"^#(\d+) \d+\.\d+ (.*)$")
_RUN_VERTEX = re.compile(r"^#(\d+) \[[^\]]*\] RUN ")
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class BuildPolicy:
    """What one build may use. The defaults are for a public service (any repository is
    hostile); a trusted deployment can raise or switch them off (docs/security.md)."""

    deadline: float | None = 3600.0  # seconds for the whole build, then it is cancelled
    log_bytes: int | None = 16 * 2**20  # build output read before the build is cancelled
    memory: int | None = 4 * 2**30  # bytes, per step that runs repository code
    cpus: float | None = 2.0
    pids: int | None = 1024
    cgroup_limits: bool = True  # False: no cgroup limits (a remote or rootless engine)
    shared_cache: bool = False  # True: one package cache per base image, shared by all repositories
    dockerfile_mounts: bool = False  # True: a repository's own Dockerfile may use RUN --mount
    every_run: bool = False  # set by staging for a repository's own Dockerfile: EVERY RUN step is limited

    def __post_init__(self) -> None:
        for name in ("deadline", "log_bytes", "memory", "cpus", "pids"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"build limit {name} must be positive, got {value}")
        if self.cgroup_limits and not self.pids:
            raise ValueError("cgroup limits need a pids limit (the step waits for it to be in force)")

    @classmethod
    def trusted(cls) -> "BuildPolicy":
        """For a builder used only by its operator: no deadline, no cgroup limits, shared cache."""
        return cls(deadline=None, log_bytes=None, memory=None, cpus=None, pids=None,
                   cgroup_limits=False, shared_cache=True, dockerfile_mounts=True)


@dataclass(frozen=True)
class CgroupFiles:
    """The files and values that put `policy`'s limits on one cgroup (pure)."""

    writes: tuple[tuple[Path, str], ...]

    @classmethod
    def for_policy(cls, policy: BuildPolicy, cgroup: str, root: Path = CGROUP_ROOT, v2: bool = False) -> "CgroupFiles":
        rel = cgroup.lstrip("/")
        writes: list[tuple[Path, str]] = []
        if v2:
            base = root / rel
            if policy.memory:
                writes += [(base / "memory.max", str(policy.memory)), (base / "memory.swap.max", "0")]
            if policy.cpus:
                writes.append((base / "cpu.max", f"{int(policy.cpus * 100000)} 100000"))
            if policy.pids:
                writes.append((base / "pids.max", str(policy.pids)))
            return cls(tuple(writes))
        if policy.memory:
            writes.append((root / "memory" / rel / "memory.limit_in_bytes", str(policy.memory)))
        if policy.cpus:
            writes += [(root / "cpu" / rel / "cpu.cfs_period_us", "100000"),
                       (root / "cpu" / rel / "cpu.cfs_quota_us", str(int(policy.cpus * 100000)))]
        if policy.pids:  # last: the step goes on once pids.max is set
            writes.append((root / "pids" / rel / "pids.max", str(policy.pids)))
        return cls(tuple(writes))


class CgroupLimiter:
    """Applies a policy to the cgroups that dsbuild's limited steps announce in the log.
    `limited_steps` None: every RUN step (a repository's own Dockerfile, rewritten by
    dockerfile_limits.py) must announce itself, and a RUN step whose first line is
    anything else stops the build."""

    def __init__(self, policy: BuildPolicy, limited_steps: frozenset[int] | None, root: Path = CGROUP_ROOT):
        self.policy = policy
        self.limited_steps = limited_steps
        self.root = root
        self.v2 = (root / "cgroup.controllers").exists()
        self._seen: set[int] = set()  # vertices whose first log line was read
        self._runs: set[int] = set()  # RUN vertices (when every RUN step is limited)
        self.applied: list[str] = []

    def feed(self, line: str, step_of_vertex) -> None:
        """Look at one progress line; `step_of_vertex(n)` is the step number of vertex n."""
        if self.limited_steps is None and (run := _RUN_VERTEX.match(line)):
            self._runs.add(int(run.group(1)))
        match = _LOG_LINE.match(line)
        if not match:
            return
        vertex = int(match.group(1))
        if vertex in self._seen:
            return
        self._seen.add(vertex)
        text = match.group(2)
        if self.limited_steps is None:
            if vertex not in self._runs:
                return
            if not text.startswith(MARKER):
                raise BuildFailed("a RUN step of the repository's Dockerfile did not start with the build limits; "
                                  "the build was stopped")
        elif step_of_vertex(vertex) not in self.limited_steps or not text.startswith(MARKER):
            return
        self.apply(text.removeprefix(MARKER).strip())

    def apply(self, cgroup: str) -> None:
        if not _CGROUP_PATH.match(cgroup) or ".." in cgroup or cgroup == "/":
            raise BuildFailed(f"cannot apply the build limits: the step's cgroup {cgroup[:80]!r} is not one dsbuild can limit")
        try:
            for path, value in CgroupFiles.for_policy(self.policy, cgroup, self.root, self.v2).writes:
                path.write_text(value)
        except OSError as err:
            raise BuildFailed(
                f"cannot apply the build limits to {cgroup} ({err.strerror}); dsbuild needs root and a local "
                "Docker engine for them (a trusted builder can turn them off, docs/security.md)"
            ) from None
        self.applied.append(cgroup)


def limiter_for(policy: BuildPolicy, phases: tuple[str, ...]) -> CgroupLimiter | None:
    """The limiter a build needs: none without cgroup limits; every RUN step for a
    repository's own Dockerfile; else the steps whose phase runs repository code."""
    if not policy.cgroup_limits:
        return None
    if policy.every_run:
        return CgroupLimiter(policy, None)
    return CgroupLimiter(policy, limited_steps(phases)) if phases else None


def limited_steps(phases: tuple[str, ...]) -> frozenset[int]:
    """BuildKit step numbers (1-based) whose phase runs repository code (pure)."""
    return frozenset(k for k, phase in enumerate(phases, start=1) if phase in LIMITED_PHASES)


LIMITS_SCRIPT = f"""#!/bin/sh
# dsbuild: say which cgroup this build step runs in, then wait until dsbuild (on the host)
# has put the build's limits on it. Runs before any of the repository's code in this step;
# an earlier step may have put look-alike commands on PATH, so PATH is the system's only.
PATH=/usr/bin:/bin
export PATH
cg=$(sed -n 's/^[0-9]*:pids:\\(.*\\)$/\\1/p' /proc/self/cgroup)
[ -n "$cg" ] || cg=$(sed -n 's/^0::\\(.*\\)$/\\1/p' /proc/self/cgroup)
echo "{MARKER} $cg"
for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max; do [ -r "$f" ] && break; done
i=0
while [ "$(cat "$f" 2>/dev/null)" = max ] || [ ! -r "$f" ]; do
    i=$((i + 1))
    if [ "$i" -gt 600 ]; then echo "dsbuild: the build limits were not applied" >&2; exit 97; fi
    sleep 0.1
done
"""
