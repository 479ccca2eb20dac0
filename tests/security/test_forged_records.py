"""A postBuild that tries to forge what the image says about itself: the Python lock, the
Debian packages of apt.txt, the base record, the repository's own packages and the list
of what is installed outside the lock.

It installs a package outside the lock, writes forged records where they live, and puts
look-alike commands (find, sort, install, sh, grep, ...) in ~/.local/bin and the venv's
bin, the first folders on PATH, which would rewrite every record if the build's last
step (root's, after postBuild) ever ran them. `show`, `lock` and `verify` must still
report the truth: the records are root's, written before postBuild or by a step that runs
with the system's PATH only, and read without running the image. One build, and one
rebuild for verify; everything is named under the session's prefix."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dsbuild.builder.envlock import APT_LOCK_PATH, INSTALLED_PATH, PROJECT_PATH, parse_apt_lock, parse_installed
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.lock import LOCK_PATH, parse_lock
from dsbuild.builder.service import BuildRequest
from dsbuild.builder.source import LocalSource
from dsbuild.cli import main

from .conftest import log_text, run_build, write_repo

pytestmark = pytest.mark.docker
MARK = "/var/lib/dsbuild/forged-as-root"  # written only if a look-alike command ran as root

POSTBUILD = r"""
#!/bin/bash
set -e
pip install --quiet --no-deps tabulate==0.9.0
forge='#!/bin/sh
if [ "$(/usr/bin/id -u)" = 0 ]; then
  echo "forged==6.6.6" > /srv/dsbuild/requirements.lock
  echo "jq=9.9.9" > /var/lib/dsbuild/apt.lock
  echo "forged-6.6.6.dist-info" > /var/lib/dsbuild/installed.txt
  echo "forged-6.6.6.dist-info" > /var/lib/dsbuild/project.txt
  echo "ran as root: $0" > /var/lib/dsbuild/forged-as-root
fi
echo forged-6.6.6.dist-info'
mkdir -p "$HOME/.local/bin"
for c in find sort install sh bash dash grep basename env cat dpkg-query chmod chown mkdir tee; do
  printf '%s\n' "$forge" > "$HOME/.local/bin/$c"
  /bin/chmod +x "$HOME/.local/bin/$c"
  /bin/cp "$HOME/.local/bin/$c" "/srv/dsbuild/venv/bin/$c"
done
for f in /srv/dsbuild/requirements.lock /var/lib/dsbuild/apt.lock /var/lib/dsbuild/project.txt \
         /var/lib/dsbuild/installed.txt; do
  if { echo "forged==6.6.6" > "$f"; } 2>/dev/null; then echo "RECORD-WRITTEN $f"; fi
done
echo "POSTBUILD-DONE"
"""

PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "forger"
version = "0.1.0"
dependencies = ["toolz==0.12.1"]

[tool.setuptools]
py-modules = ["forger"]
"""


@pytest.fixture(scope="module")
def forged(engine, prefix, tmp_path_factory):
    repo = write_repo(tmp_path_factory.mktemp("forger") / "repo", {
        "apt.txt": "jq\n", "pyproject.toml": PYPROJECT, "forger.py": "VALUE = 1\n", "postBuild": POSTBUILD,
    })
    request = BuildRequest(LocalSource(repo), host=read_host_settings(), name=f"{prefix}-forger", force=True)
    built, events, error = run_build(request, engine)
    assert error is None, f"{error}\n" + "\n".join(getattr(error, "log_tail", ()))
    return built, log_text(events)


def test_postbuild_ran_but_wrote_no_record_and_no_look_alike_ran_as_root(engine, forged):
    built, log = forged
    assert "POSTBUILD-DONE" in log and "RECORD-WRITTEN" not in log
    assert engine.read_file(built.image, MARK) is None, engine.read_file(built.image, MARK)
    lock = parse_lock(engine.read_file(built.image, LOCK_PATH))
    assert lock["toolz"] == "0.12.1" and "forged" not in lock  # the project's dependency, in the lock
    installed = parse_installed(engine.read_file(built.image, INSTALLED_PATH))
    assert installed["tabulate"] == "0.9.0" and installed["forger"] == "0.1.0" and "forged" not in installed
    assert parse_installed(engine.read_file(built.image, PROJECT_PATH)) == {"forger": "0.1.0"}
    assert parse_apt_lock(engine.read_file(built.image, APT_LOCK_PATH))["jq"] != "9.9.9"


def test_show_tells_the_truth(engine, forged):
    built, _ = forged
    result = CliRunner().invoke(main, ["show", built.image])
    assert result.exit_code == 0, result.output
    assert "the repository's own code: 1" in result.output and "forger" in result.output
    assert "installed outside the lock: 1" in result.output and "tabulate" in result.output
    assert "forged" not in result.output and "9.9.9" not in result.output
    jq = parse_apt_lock(engine.read_file(built.image, APT_LOCK_PATH))["jq"]
    assert jq in result.output


def test_lock_prints_the_true_lock_with_the_true_base(engine, forged):
    built, _ = forged
    result = CliRunner().invoke(main, ["lock", built.image])
    assert result.exit_code == 0, result.output
    assert "toolz==0.12.1" in result.output and "forged" not in result.output and "jq=9.9.9" not in result.output
    base_id = (engine.inspect_image(built.plan.base_image) or {})["Id"]
    assert f"# dsbuild-base: image={built.plan.base_image} id={base_id}" in result.output


def test_verify_rebuilds_the_true_lock(forged):
    built, _ = forged
    result = CliRunner().invoke(main, ["verify", built.image])
    assert result.exit_code == 0, result.output
    assert "same packages" in result.output
