"""Which lock a build installs (plan.lock_choice), and the environment part of the lock."""

import pytest

from dsbuild.builder.envlock import (
    BaseRecord,
    compose_lock,
    outside_lock,
    parse_apt_lock,
    parse_base,
    python_part,
)
from dsbuild.builder.errors import ConfigError
from dsbuild.builder.facts import RepoFacts
from dsbuild.builder.host import HostSettings
from dsbuild.builder.names import environment_options, environment_suffix
from dsbuild.builder.plan import BaseFacts, BuildOptions, PythonInstall, plan
from dsbuild.builder.render import render_dockerfile

BASE = BaseFacts("base:1", (PythonInstall("3.11", "/usr/bin/python3.11"),), "3.11", "sha256:" + "b" * 64, "bookworm")
PY_LOCK = "jupyterlab==4.6.6 \\\n    --hash=sha256:aa\njupyterhub==5.5.4\nnumpy==1.26.4\npip==24.0\n"
RECORD = BaseRecord("base:1", "sha256:" + "b" * 64, "bookworm", "2026-11-20T08:00:00Z")
LOCK = compose_lock(PY_LOCK, "jq=1.6-2.1\nlibjq1=1.6-2.1\n", RECORD)


def test_a_committed_lock_wins_without_any_option():
    facts = RepoFacts("binder", {"requirements.txt": "numpy\n", "apt.txt": "jq\n", "requirements.lock": LOCK})
    p = plan(facts, BASE)
    assert p.locked and p.lock_origin == "from the committed lock binder/requirements.lock"
    assert [f.name for f in p.env_files] == ["requirements.lock"]
    assert p.env_files[0].content == PY_LOCK  # dsbuild's own lines are not given to uv
    assert p.apt_packages == ("jq=1.6-2.1", "libjq1=1.6-2.1")
    text = render_dockerfile(p).text
    assert "install --no-install-recommends jq=1.6-2.1 libjq1=1.6-2.1" in text
    assert "uv pip compile" not in text


def test_relock_and_as_of_resolve_again_and_say_so():
    facts = RepoFacts("", {"requirements.txt": "numpy\n", "apt.txt": "jq\n", "requirements.lock": LOCK})
    fresh = plan(facts, BASE, BuildOptions(relock=True))
    assert not fresh.locked and fresh.lock_origin == "resolved fresh" and fresh.apt_packages == ("jq",)
    dated = plan(facts, BASE, BuildOptions(as_of="2024-01-01"))
    assert not dated.locked and dated.lock_origin == "resolved as of 2024-01-01"
    with pytest.raises(ConfigError, match="exclude each other"):
        BuildOptions(relock=True, locked=True)
    # --relock names another environment, so it gets its own tag suffix
    assert environment_suffix(environment_options(BuildOptions(relock=True), HostSettings())) is not None


def test_a_lock_that_does_not_satisfy_the_requirements_stops_the_build():
    facts = RepoFacts("", {"requirements.txt": "numpy>=2\n", "requirements.lock": LOCK})
    with pytest.raises(ConfigError, match="requirements.lock does not match requirements.txt: numpy>=2"):
        plan(facts, BASE)
    facts = RepoFacts("", {"requirements.txt": "numpy\n", "apt.txt": "jq\ncurl\n", "requirements.lock": LOCK})
    with pytest.raises(ConfigError, match="does not match apt.txt: curl is not in the lock"):
        plan(facts, BASE)
    facts = RepoFacts("", {"requirements.txt": "numpy\n", "apt.txt": "jq=1.7-1\n", "requirements.lock": LOCK})
    with pytest.raises(ConfigError, match="jq=1.7-1 but the lock has jq=1.6-2.1"):
        plan(facts, BASE)


def test_a_lock_made_on_another_debian_release_is_refused_with_the_command():
    facts = RepoFacts("", {"requirements.txt": "numpy\n", "requirements.lock": LOCK})
    trixie = BaseFacts("base:1", BASE.pythons, "3.11", "sha256:" + "c" * 64, "trixie")
    with pytest.raises(ConfigError, match=r"made on Debian bookworm .* `dsbuild base --suite bookworm`"):
        plan(facts, trixie)
    rebuilt = BaseFacts("base:1", BASE.pythons, "3.11", "sha256:" + "c" * 64, "bookworm")
    assert any("base image differs" in n for n in plan(facts, rebuilt).notes)
    assert not any("base image differs" in n for n in plan(facts, BASE).notes)
    with pytest.raises(ConfigError, match=r"--locked: requirements.lock was made on base:1 .* `docker load`"):
        plan(facts, rebuilt, BuildOptions(locked=True))


def test_a_lock_given_by_verify_wins_over_the_committed_one():
    other = PY_LOCK.replace("numpy==1.26.4", "numpy==1.26.3")
    facts = RepoFacts("", {"requirements.txt": "numpy\n", "requirements.lock": LOCK})
    p = plan(facts, BASE, BuildOptions(from_lock=other))
    assert p.env_files[0].content == other and p.lock_origin.startswith("from a given lock")


def test_the_lock_file_round_trips_its_environment_lines():
    assert parse_apt_lock(LOCK) == {"jq": "1.6-2.1", "libjq1": "1.6-2.1"}
    assert parse_base(LOCK) == RECORD
    assert python_part(LOCK) == PY_LOCK
    assert compose_lock(LOCK, None, None) == PY_LOCK


def test_what_is_installed_outside_the_lock():
    installed = "jupyterlab-4.6.6.dist-info\nnumpy-1.26.4.dist-info\nrich_click-1.8.0.dist-info\nnumpy-2.0.0.dist-info\n"
    assert outside_lock(PY_LOCK, installed) == {"numpy": "2.0.0", "rich-click": "1.8.0"}
    assert outside_lock(PY_LOCK, "numpy-1.26.4.dist-info\n") == {}
