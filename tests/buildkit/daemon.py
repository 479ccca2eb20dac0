"""A private buildkitd for the tests: its own root, socket, config and CNI bridge, run
with Debian's runc (the OCI worker), trusting the host's CA, pushing to a plain-HTTP
registry on the loopback address. Stopped, and its folder removed, afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from dsbuild.builder.buildkit import buildkitd_config
from dsbuild.builder.registry import Registry

HERE = Path(__file__).parent
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"


def buildkit_bin() -> Path | None:
    """The cached buildkitd/buildctl folder, if tests/buildkit/build.sh has built them."""
    done = subprocess.run([str(HERE / "build.sh"), "--print-dir"], capture_output=True, text=True)
    folder = Path(done.stdout.strip())
    return folder if (folder / "buildkitd").exists() and (folder / "buildctl").exists() else None


def build_buildkit() -> tuple[Path | None, str]:
    """Run tests/buildkit/build.sh (the cache makes it instant after the first time); the
    folder, or None and its last line of output."""
    done = subprocess.run([str(HERE / "build.sh")], capture_output=True, text=True)
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or ["build.sh failed"])[-1]
    return buildkit_bin(), ""


@contextmanager
def private_buildkitd(registry: Registry, bin_dir: Path) -> Iterator[str]:
    """Start buildkitd; yields its address (unix://...)."""
    folder = Path(tempfile.mkdtemp(prefix="dsbuild-buildkitd-"))
    socket = f"unix://{folder}/buildkitd.sock"
    tag = os.urandom(2).hex()
    subnet = f"10.{200 + int(tag[0], 16) % 50}.{int(tag[1:], 16) % 250}.0/24"
    (folder / "buildkitd.toml").write_text(buildkitd_config(str(folder / "root"), [socket], [registry.host],
                                                            f"dsbk{tag}", subnet))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SSL_CERT_FILE": HOST_CA}
    log = open(folder / "buildkitd.log", "wb")
    process = subprocess.Popen([str(bin_dir / "buildkitd"), "--config", str(folder / "buildkitd.toml")],
                               stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait(process, bin_dir, socket, folder)
        yield socket
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        _remove(folder / "root")
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(["ip", "link", "delete", f"dsbk{tag}"], capture_output=True)
        _remove_ipam_state()


def _remove_ipam_state() -> None:
    """The CNI host-local state of buildkitd's "buildkit" network, once no address is held."""
    state = Path("/var/lib/cni/networks/buildkit")
    if state.is_dir() and all(p.name == "lock" or p.name.startswith("last_reserved_ip") for p in state.iterdir()):
        shutil.rmtree(state, ignore_errors=True)


def _wait(process: subprocess.Popen, bin_dir: Path, socket: str, folder: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        done = subprocess.run([str(bin_dir / "buildctl"), "--addr", socket, "debug", "workers"], capture_output=True)
        if done.returncode == 0:
            return
        if process.poll() is not None or time.monotonic() > deadline:
            log = (folder / "buildkitd.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"buildkitd did not start:\n{log}")
        time.sleep(0.3)


def _remove(root: Path) -> None:
    """buildkitd's root may keep overlay mounts of a killed daemon: unmount, then remove."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    inside = [line.split()[1] for line in mounts if line.split()[1].startswith(str(root))]
    for point in sorted(inside, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)
