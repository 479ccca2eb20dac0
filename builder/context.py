"""Stage the build context: the repository's files plus dsbuild's own small files.

The context folder is kept per image name, and files are only rewritten when they
changed, so BuildKit sends only what changed and a code-only rebuild stays fast."""

from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import uv

from .host import HostSettings, build_env, notebook_config
from .limits import LIMITS_SCRIPT
from .plan import BuildPlan
from .render import Dockerfile, render_entrypoint

TRIM_SCRIPT = Path(__file__).with_name("trim.py")  # run inside the build (standard library only)
BYTECODE_SCRIPT = Path(__file__).with_name("bytecode.py")  # likewise


@contextmanager
def locked(folder: Path) -> Iterator[Path]:
    """One build at a time per context folder (a second one waits)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield folder


def write_if_changed(path: Path, data: bytes, mode: int = 0o644) -> None:
    if not (path.is_file() and not path.is_symlink() and path.read_bytes() == data):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    if path.stat().st_mode & 0o777 != mode:
        path.chmod(mode)


def sync_tree(src: Path, dest: Path, skip: frozenset[str] = frozenset({".git"})) -> None:
    """Make `dest` a copy of `src` (symlinks kept as links), touching only what differs."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {e.name for e in os.scandir(src) if e.name not in skip}
    for entry in os.scandir(dest):
        if entry.name not in wanted:
            _remove(Path(entry.path))
    for name in sorted(wanted):
        s, d = src / name, dest / name
        if s.is_symlink():
            if not d.is_symlink() or os.readlink(d) != os.readlink(s):
                _remove(d)
                os.symlink(os.readlink(s), d)
        elif s.is_dir():
            if d.is_symlink() or (d.exists() and not d.is_dir()):
                _remove(d)
            sync_tree(s, d, frozenset())
        else:
            st = s.stat()
            if d.is_symlink() or d.is_dir():
                _remove(d)
            if not d.exists() or (d.stat().st_size, d.stat().st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                shutil.copy2(s, d)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _link_uv(dest: Path) -> None:
    binary = Path(uv.find_uv_bin())
    if dest.exists() and dest.stat().st_ino == binary.stat().st_ino:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    try:
        os.link(binary, dest)
    except OSError:
        shutil.copy2(binary, dest)


def stage_context(folder: Path, repo: Path, plan: BuildPlan, dockerfile: Dockerfile, host: HostSettings) -> Path:
    """Fill `folder` as the build context; returns the Dockerfile's path inside it."""
    sync_tree(repo, folder / "repo")
    own = folder / ".dsbuild"
    env = own / "env"
    env.mkdir(parents=True, exist_ok=True)
    names = {f.name for f in plan.env_files}
    for stale in env.iterdir():
        if stale.name not in names:
            _remove(stale)
    for env_file in plan.env_files:
        write_if_changed(env / env_file.name, env_file.content.encode())
    _link_uv(own / "bin" / "uv")
    write_if_changed(own / "bin" / "limits.sh", LIMITS_SCRIPT.encode(), 0o755)
    write_if_changed(own / "bin" / "trim.py", TRIM_SCRIPT.read_bytes())
    write_if_changed(own / "bin" / "bytecode.py", BYTECODE_SCRIPT.read_bytes())
    ca = host.ca_bundle.read_bytes() if host.ca_bundle else b""
    write_if_changed(own / "ca.crt", ca)
    write_if_changed(own / "build.env", build_env(host).encode())
    for name, text in notebook_config(host).items():
        write_if_changed(own / "notebook" / name, text.encode())
    write_if_changed(own / "entrypoint", render_entrypoint().encode(), 0o755)
    write_if_changed(own / "Dockerfile", dockerfile.text.encode())
    return own / "Dockerfile"
