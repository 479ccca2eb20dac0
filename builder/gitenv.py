"""git, isolated from the operator and bounded.

Every git command dsbuild runs gets an environment of its own: no system or global
config (so no credential helpers, no `http.extraHeader`, no url rewrites of the
operator's), no SSH agent and no identity file, no terminal prompt, a protocol
allow-list (also for redirects and submodules), a low-speed limit and a deadline.
Network commands share a bounded pool of workers. A fetch is watched WHILE it runs:
when the mirror grows past `max_fetch_bytes` git is killed, so a huge repository, or
a short sha that makes dsbuild fetch all branches, cannot fill the disk first. Output
read into memory is capped too. git's own error lines go to the log, never to the
requester: `describe_failure` turns them into a few fixed sentences."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .errors import SourceError
from .gc import tree_bytes
from .hostguard import HostGuard

log = logging.getLogger("dsbuild.git")


@dataclass(frozen=True)
class GitLimits:
    protocols: tuple[str, ...] = ("https", "http", "ssh", "git", "file")
    low_speed_bytes: int = 1000  # bytes per second ...
    low_speed_seconds: int = 30  # ... for this long, then git gives up
    timeout: float = 600.0  # seconds per git command
    max_fetch_bytes: int = 1 * 2**30  # growth of a mirror during one fetch
    max_files: int = 100_000  # files in the commit that is exported
    max_fetch_objects: int = 400_000  # objects one fetch may bring: one per file and folder of a shallow fetch
    max_tree_bytes: int = 2 * 2**30  # bytes of the files exported
    max_output: int = 32 * 2**20  # bytes of a command's output kept in memory (ls-remote, ls-tree)
    workers: int = 4  # network git commands at once
    wait_for_worker: float = 300.0
    hosts: HostGuard | None = None  # refuse internal hosts and pin git to the checked addresses (hostguard.py)


# git's own progress (not the server's "remote:" lines): the object count is the pack's
# header, which is exactly what git will store.
_OBJECTS = re.compile(rb"(?:^|[\r\n])(?:Receiving|Unpacking) objects:\s+\d+% \(\d+/(\d+)\)")
_pools: dict[int, threading.BoundedSemaphore] = {}
_pools_guard = threading.Lock()


def _pool(size: int) -> threading.BoundedSemaphore:
    with _pools_guard:
        return _pools.setdefault(size, threading.BoundedSemaphore(size))


def git_home() -> Path:
    """An empty HOME for git (no ~/.gitconfig, ~/.netrc, ~/.ssh of the operator's)."""
    path = Path(os.environ.get("DSBUILD_CACHE_DIR") or Path.home() / ".cache" / "dsbuild") / "git-home"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def git_env(limits: GitLimits, home: Path) -> dict[str, str]:
    """The whole environment of a git process (pure): nothing inherited but PATH."""
    ssh = "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityFile=/dev/null -o IdentityAgent=none"
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_SSH_COMMAND": ssh,
        "GIT_ALLOW_PROTOCOL": ":".join(limits.protocols),
        "GIT_HTTP_LOW_SPEED_LIMIT": str(limits.low_speed_bytes),
        "GIT_HTTP_LOW_SPEED_TIME": str(limits.low_speed_seconds),
        **({"GIT_SSL_CAINFO": os.environ["GIT_SSL_CAINFO"]} if os.environ.get("GIT_SSL_CAINFO") else {}),
        **({"SSL_CERT_FILE": os.environ["SSL_CERT_FILE"]} if os.environ.get("SSL_CERT_FILE") else {}),
    }


GIT_OPTIONS = (
    "-c", "credential.helper=", "-c", "core.askPass=", "-c", "http.followRedirects=false",
    "-c", "core.hooksPath=/dev/null", "-c", "fetch.recurseSubmodules=false", "-c", "submodule.recurse=false",
    "-c", "core.fsmonitor=false",
)

_KNOWN = (
    (("not found", "does not exist", "could not read from remote", "repository not found"), "the repository was not found"),
    (("authentication", "could not read username", "terminal prompts disabled", "permission denied", "403", "401"),
     "the repository needs credentials, and this builder sends none"),
    (("could not resolve host", "name or service not known"), "the repository's host name does not resolve"),
    (("timed out", "too slow", "operation too slow", "low speed"), "the repository's server was too slow"),
    (("transport", "not allowed", "unsupported protocol"), "that kind of URL is not allowed here"),
    (("connection refused", "failed to connect", "couldn't connect", "unreachable"), "the repository's server cannot be reached"),
    (("not our ref", "unadvertised object", "no such remote ref", "bad object", "couldn't find remote ref"), "that commit is not in the repository"),
)


def describe_failure(stderr: str) -> str:
    """One of a few fixed sentences for git's error output (pure): never git's own text,
    which may name internal hosts, addresses or paths."""
    low = stderr.lower()
    for needles, sentence in _KNOWN:
        if any(n in low for n in needles):
            return sentence
    return "git could not read the repository"


class GitFailed(SourceError):
    """A git command failed; str() is a fixed sentence, `detail` git's output (for logs)."""

    def __init__(self, message: str, detail: str = "", too_large: bool = False):
        super().__init__(message)
        self.detail = detail
        self.too_large = too_large


def run_git(args: Sequence[str], limits: GitLimits, cwd: Path | None = None, network: bool = False,
            watch: Path | None = None, check: bool = True, url: str | None = None) -> subprocess.CompletedProcess:
    """Run git with the isolated environment; `network` commands take a worker from the
    pool and, with a host guard, are pinned to `url`'s checked addresses (resolved now,
    so a DNS answer that changes later is not used); `watch` is a folder whose growth is
    capped at `max_fetch_bytes` while git runs."""
    pin: tuple[str, ...] = ()
    if network and limits.hosts is not None:
        if url is None:
            raise GitFailed("git cannot check where this command connects", "run_git: a network command without its URL")
        pin = limits.hosts.pin(url)
    pool = _pool(limits.workers) if network else None
    if pool is not None and not pool.acquire(timeout=limits.wait_for_worker):
        raise GitFailed("too many repositories are being fetched right now; try again later")
    try:
        return _run(args, limits, cwd, watch, check, pin)
    finally:
        if pool is not None:
            pool.release()


def _run(args: Sequence[str], limits: GitLimits, cwd: Path | None, watch: Path | None, check: bool,
         pin: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    cmd = ["git", *GIT_OPTIONS, *pin, *args]
    try:
        process = subprocess.Popen(cmd, cwd=cwd, env=git_env(limits, git_home()), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except FileNotFoundError:
        raise SourceError("git is not installed; install it (apt-get install git)") from None
    stopped: list[str] = []
    start_size = tree_bytes(watch) if watch is not None else 0
    done = threading.Event()

    def guard() -> None:
        deadline = time.monotonic() + limits.timeout
        while not done.wait(0.2):
            if time.monotonic() > deadline:
                stopped.append(f"git took longer than {limits.timeout:.0f} s")
            elif watch is not None and tree_bytes(watch) - start_size > limits.max_fetch_bytes:
                stopped.append(f"the repository is larger than {limits.max_fetch_bytes // 2**20} MiB")
            if stopped:
                _kill(process)
                return

    watcher = threading.Thread(target=guard, daemon=True)
    watcher.start()
    stderr_chunks: list[bytes] = []

    def drain() -> None:  # keep the last 64 KiB of stderr; never let git block on it
        while chunk := process.stderr.read1(65536):
            count = fetched_objects(b"".join(stderr_chunks[-1:])[-200:] + chunk) if watch is not None else 0
            stderr_chunks[:] = [b"".join(stderr_chunks[-1:])[-65536:], chunk]
            if count > limits.max_fetch_objects and not stopped:
                stopped.append(f"the repository has {count} objects to fetch, more than this builder takes "
                               f"({limits.max_fetch_objects})")
                _kill(process)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        out = process.stdout.read(limits.max_output + 1)
        if len(out) > limits.max_output:
            stopped.append(f"git printed more than {limits.max_output // 2**20} MiB")
            _kill(process)
        code = process.wait()
    finally:
        done.set()
        if process.poll() is None:
            _kill(process)
            process.wait()
    reader.join(5)
    err = b"".join(stderr_chunks).decode(errors="replace")
    if not stopped and watch is not None and tree_bytes(watch) - start_size > limits.max_fetch_bytes:
        stopped.append(f"the repository is larger than {limits.max_fetch_bytes // 2**20} MiB")
    if stopped:
        log.info("git %s stopped: %s", args[0], stopped[0])
        raise GitFailed(stopped[0], err, too_large="larger than" in stopped[0] or "objects to fetch" in stopped[0])
    if check and code != 0:
        log.info("git %s failed (%s): %s", args[0], code, err.strip()[-2000:])
        raise GitFailed(describe_failure(err), err)
    return subprocess.CompletedProcess(cmd, code, out, err.encode())


def fetched_objects(progress: bytes) -> int:
    """The largest object count in git's own progress lines (pure); 0 when there is none."""
    return max((int(n) for n in _OBJECTS.findall(progress)), default=0)


def _kill(process: subprocess.Popen) -> None:
    """Kill git and its helpers (index-pack, remote-https: its own session's group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()
