"""Debian's docker-registry on a free loopback port, for the tests; stopped afterwards."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from dsbuild.builder.registry import Registry
from dsbuild.builder.run import free_port

REGISTRY_BIN = "/usr/bin/docker-registry"

CONFIG = """version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


@contextmanager
def local_registry():
    folder = Path(tempfile.mkdtemp(prefix="dsbuild-registry-"))
    port = free_port()
    (folder / "config.yml").write_text(CONFIG.format(root=folder / "data", port=port))
    process = subprocess.Popen([REGISTRY_BIN, "serve", str(folder / "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"docker-registry did not start: {process.stderr.read().decode()[-500:]}")
                time.sleep(0.1)
        yield Registry(f"127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
