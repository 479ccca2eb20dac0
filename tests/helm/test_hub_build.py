"""deploy/hub/build.sh's tag cleanup, against a recording docker CLI (DSBUILD_DOCKER):
the dsbuild-hub tags this checkout made for earlier sources go once the current one
exists; a tag a container uses stays; the filter names this checkout's label only, so
other checkouts' tags and other images are never listed, let alone removed. (The real
build runs in tests/cluster/test_helm_release.py.)"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deploy" / "hub" / "build.sh"

FAKE_DOCKER = r"""#!/bin/sh
# A docker CLI that answers from files in $FAKE and records what it is asked.
echo "$*" >> "$FAKE/calls"
case "$1 $2" in
    "image inspect") [ "$3" = "-f" ] && echo sha256:base; exit 0 ;;
    "image ls") cat "$FAKE/listed"; exit 0 ;;
    "image rm") grep -qx "$3" "$FAKE/in-use" && exit 1; echo "$3" >> "$FAKE/removed"; exit 0 ;;
esac
exit 3
"""


def test_replaced_hub_tags_of_this_checkout_are_removed_and_in_use_ones_kept(tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    docker = fake / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    # What `image ls` answers (the engine applies the filters; the list stands for its answer).
    (fake / "listed").write_text("dsbuild-hub:0000000000000old\ndsbuild-hub:00000000000inuse\n")
    (fake / "in-use").write_text("dsbuild-hub:00000000000inuse\n")
    env = {**os.environ, "DSBUILD_DOCKER": str(docker), "FAKE": str(fake)}

    done = subprocess.run([str(BUILD)], capture_output=True, text=True, env=env, timeout=120)

    assert done.returncode == 0, done.stderr
    current = done.stdout.strip().splitlines()[-1]
    assert current.startswith("dsbuild-hub:") and current not in (fake / "listed").read_text()
    assert (fake / "removed").read_text().split() == ["dsbuild-hub:0000000000000old"]
    assert "kept dsbuild-hub:00000000000inuse (in use)" in done.stderr
    listing = [c for c in (fake / "calls").read_text().splitlines() if c.startswith("image ls")]
    checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:16]
    assert listing == [f"image ls --filter reference=dsbuild-hub --filter label=io.dsbuild.hub-checkout={checkout} "
                       "--format {{.Repository}}:{{.Tag}}"]
    assert all(c.split()[:2] in (["image", "inspect"], ["image", "ls"], ["image", "rm"])
               for c in (fake / "calls").read_text().splitlines())  # nothing built, tagged or pushed
