"""A repository that attacks the package cache, the lock and the index credentials.

The hostile repository installs toolz, then (1) its setup.py, run by the editable install
with the repository's package cache mounted, appends code to every Python file in
every cache it can write (with one shared cache, as before, that held toolz), (2) its postBuild does the same, shadows common commands on
PATH with scripts that print a forged lock, tries to overwrite the lock, and searches
the whole filesystem and its environment for the index credentials of the build. Then a
second repository installs the same toolz: its files must match the wheel's RECORD
hashes, the hostile image's lock must be the true one, and the credentials must have
reached the index (the recording server saw them) but never the repository's code."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

import pytest

from dsbuild.builder.host import HostSettings, SYSTEM_CA_BUNDLE, read_host_settings
from dsbuild.builder.lock import LOCK_PATH, lock_digest, parse_lock
from dsbuild.builder.service import LOCK_LABEL, BuildRequest
from dsbuild.builder.source import LocalSource

from .conftest import log_text, reader_containers, run_build, write_repo
from .servers import recording_index

pytestmark = pytest.mark.docker
PACKAGE = "toolz==0.12.1"
DOCKER_BRIDGE = "172.17.0.1"  # where build steps reach this host (the engine's default bridge)

SETUP_PY = """
import os
from setuptools import setup

count = 0
for top in ("/tmp/dsbuild-uv-cache", os.path.expanduser("~/.cache"), "/var/cache", "/tmp"):
    for folder, _, files in os.walk(top):
        for name in files:
            if name.endswith(".py"):  # every package file in every cache it can write
                try:
                    with open(os.path.join(folder, name), "a") as handle:
                        handle.write("\\n# tampered\\n")  # any byte changes the RECORD hash
                    count += 1
                except OSError:
                    pass
with open("/home/jovyan/tampered-by-setup.txt", "w") as handle:
    handle.write(str(count))
setup(name="hostile", version="1.0", py_modules=[])
"""

POSTBUILD = """
#!/bin/bash
n=0
for d in /tmp/dsbuild-uv-cache "$HOME/.cache" /var/cache /tmp /root/.cache; do
  [ -d "$d" ] || continue
  while IFS= read -r f; do echo "# tampered" >> "$f" 2>/dev/null && n=$((n+1)); done \\
    < <(find "$d" -path '*toolz*' -name '*.py' 2>/dev/null)
done
echo "TAMPERED-BY-POSTBUILD $n"
token="__TOKEN_A__""__TOKEN_B__"
canary="__CANARY_A__""__CANARY_B__"
found=$(grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "$token" / 2>/dev/null | head -3 | tr '\\n' ' ')
seen=$(grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "$canary" / 2>/dev/null | head -1)
inenv=$(env | grep -cF "$token")
echo "CREDENTIALS found=[$found] env=$inenv secrets=[$(find /run/secrets -type f -size +0c 2>/dev/null)] canary=[$seen]"
if echo 'forged==6.6.6' > /srv/dsbuild/requirements.lock 2>/dev/null || rm -f /srv/dsbuild/requirements.lock 2>/dev/null; then
  echo "LOCK-FORGED yes"; else echo "LOCK-FORGED no"; fi
for c in cat sh bash python python3 tar ls head cp docker; do
  rm -f "/srv/dsbuild/venv/bin/$c"
  printf '#!/bin/sh\\necho "forged==6.6.6"\\n' > "/srv/dsbuild/venv/bin/$c" && chmod +x "/srv/dsbuild/venv/bin/$c"
done
"""

RECORD_CHECK = """
import base64, hashlib, importlib.metadata as m, pathlib
d = m.distribution("toolz"); bad = []; n = 0
for f in d.files:
    if f.hash is None:
        continue
    n += 1
    data = pathlib.Path(f.locate()).read_bytes()
    if base64.urlsafe_b64encode(hashlib.new(f.hash.mode, data).digest()).rstrip(b"=").decode() != f.hash.value:
        bad.append(str(f))
print(n, len(bad), bad[:3])
"""


def _docker_bridge_up() -> bool:
    done = subprocess.run(["ip", "-4", "addr", "show", "docker0"], capture_output=True, text=True)
    return f"inet {DOCKER_BRIDGE}/" in done.stdout


@pytest.fixture(scope="module")
def attack(engine, prefix, tmp_path_factory):
    """Build the hostile repository (with index credentials), then an innocent one."""
    if not _docker_bridge_up():
        pytest.skip(f"the recording index listens on the engine's bridge {DOCKER_BRIDGE}, which this engine does not have")
    token_a, token_b = f"tok{uuid.uuid4().hex[:10]}", uuid.uuid4().hex[:10]
    canary_a, canary_b = f"CANARY{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("hostile")
    postbuild = (POSTBUILD.replace("__TOKEN_A__", token_a).replace("__TOKEN_B__", token_b)
                 .replace("__CANARY_A__", canary_a).replace("__CANARY_B__", canary_b))
    hostile = write_repo(root / "hostile", {
        "requirements.txt": PACKAGE + "\n", "setup.py": SETUP_PY, "postBuild": postbuild,
        "canary.txt": canary_a + canary_b + "\n",
    })
    # Another environment (so its dependency step really runs, with its own cache)
    innocent = write_repo(root / "innocent", {"requirements.txt": PACKAGE + "\n# the innocent one\n"})
    base = read_host_settings()
    with recording_index(DOCKER_BRIDGE) as (port, seen):
        host = HostSettings(base.ca_bundle or SYSTEM_CA_BUNDLE, base.index_url,
                            (f"http://dsbuild:{token_a}{token_b}@{DOCKER_BRIDGE}:{port}/simple",))
        request = BuildRequest(LocalSource(hostile), host=host, name=f"{prefix}-hostile", force=True)
        hostile_built, hostile_events, error = run_build(request, engine)
        assert error is None, f"{error}\n" + "\n".join(getattr(error, "log_tail", ()))
    victim_request = BuildRequest(LocalSource(innocent), host=base, name=f"{prefix}-innocent", force=True)
    victim, _, error = run_build(victim_request, engine)
    assert error is None, str(error)
    return {"hostile": hostile_built, "log": log_text(hostile_events), "token": token_a + token_b,
            "canary": canary_a + canary_b, "seen": seen, "victim": victim}


def _line(log: str, word: str) -> str:
    return next(line for line in log.splitlines() if line.startswith(word))


def test_the_tampering_was_real(engine, attack):
    """The attack reached a cache it could write (its own: with a shared one, the next test fails)."""
    count = engine.read_file(attack["hostile"].image, "/home/jovyan/tampered-by-setup.txt")
    assert count is not None and int(count) > 0, "setup.py found no cached file to tamper with"
    # postBuild has no package cache at all: nothing it can reach holds toolz files
    assert _line(attack["log"], "TAMPERED-BY-POSTBUILD") == "TAMPERED-BY-POSTBUILD 0"


def test_another_repository_installs_pristine_files(engine, attack):
    out = subprocess.run([engine.cli, "run", "--rm", "--network=none", "--entrypoint", "/srv/dsbuild/venv/bin/python",
                          attack["victim"].image, "-c", RECORD_CHECK], capture_output=True, text=True, timeout=120)
    checked, bad, examples = out.stdout.split(" ", 2)
    assert int(checked) > 10 and int(bad) == 0, f"tampered files installed: {examples}"


def test_the_lock_cannot_be_forged_by_postbuild(engine, attack):
    image = attack["hostile"].image
    assert _line(attack["log"], "LOCK-FORGED") == "LOCK-FORGED no"
    lock = engine.read_file(image, LOCK_PATH)  # docker create + cp: no command of the image runs
    pins = parse_lock(lock)
    assert pins.get("toolz") == "0.12.1" and "forged" not in pins
    assert (engine.image_labels(image) or {}).get(LOCK_LABEL) == lock_digest(lock)
    assert reader_containers(engine) == [], "a container made to read the lock was left behind"


def test_lock_command_prints_the_true_lock(engine, attack):
    dsbuild = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "dsbuild"
    out = subprocess.run([str(dsbuild), "lock", attack["hostile"].image], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "toolz==0.12.1" in out.stdout and "forged" not in out.stdout


def test_credentials_reach_the_index_but_not_the_repository(attack):
    expected = "Basic " + base64.b64encode(f"dsbuild:{attack['token']}".encode()).decode()
    assert any(r.get("authorization") == expected for r in attack["seen"]), "the install steps never used the credentials"
    line = _line(attack["log"], "CREDENTIALS")
    assert "found=[]" in line and "env=0" in line and "secrets=[]" in line, line
    assert "canary=[/home/jovyan/canary.txt]" in line, f"the search itself does not work: {line}"
    assert attack["token"] not in attack["log"]
