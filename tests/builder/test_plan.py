import pytest

from dsbuild.builder.errors import ConfigError, UnsupportedConfig
from dsbuild.builder.facts import RepoFacts
from dsbuild.builder.pieces.base import RepoInstall
from dsbuild.builder.plan import BaseFacts, BuildOptions, PythonInstall, plan

BASE = BaseFacts(
    "base:1",
    (PythonInstall("3.11", "/usr/bin/python3.11"), PythonInstall("3.12", "/usr/local/bin/python3.12")),
    "3.11",
)


def test_every_python_piece_composes_in_layer_order():
    facts = RepoFacts(
        "",
        {
            "requirements.txt": "numpy\n",
            "apt.txt": "jq\n",
            "postBuild": "x",
            "start": "x",
            "runtime.txt": "python-3.12",
            "setup.py": "",
        },
    )
    p = plan(facts, BASE, BuildOptions(base_image="base:1"))
    assert p.pieces == ("runtime.txt", "apt.txt", "requirements.txt", "setup.py", "postBuild", "start")
    assert p.python == PythonInstall("3.12", "/usr/local/bin/python3.12")
    assert p.apt_packages == ("jq",)
    assert [f.name for f in p.env_files] == ["requirements.txt", "dsbuild-notebook.in", "dsbuild-overrides.txt"]
    assert p.env_files[1].content == "jupyterlab==4.6.6\njupyterhub==5.5.4\npip\n"
    assert not p.env_files[2].install and "rfc3987-syntax ; sys_platform == 'never'" in p.env_files[2].content
    assert p.repo_installs == (RepoInstall("editable", "."),)
    assert p.post_build == ("postBuild",) and p.start == "start"


def test_default_python_is_the_bases_python3():
    assert plan(RepoFacts("", {}), BASE).python.version == "3.11"


def test_missing_python_version_builds_with_the_nearest_newer_and_warns_once():
    p = plan(RepoFacts("", {"runtime.txt": "python-3.8"}), BASE)
    assert p.python.version == "3.11" and p.python_requested.version == "3.8"
    warnings = [n for n in p.notes if n.startswith("warning:")]
    assert warnings == ["warning: Python 3.8 (runtime.txt) was asked for; building with Python 3.11, "
                        "the nearest newer one available (--exact-python refuses instead)"]


def test_exact_python_refuses_and_lists_what_the_base_has():
    with pytest.raises(ConfigError, match=r"Python 3\.8 \(runtime.txt\) was asked for.*has Python 3\.11, 3\.12 and --exact-python"):
        plan(RepoFacts("", {"runtime.txt": "python-3.8"}), BASE, BuildOptions(base_image="base:1", exact_python=True))


def test_newer_than_the_base_has_is_refused():
    with pytest.raises(ConfigError, match=r"3\.14.*has no newer one.*3\.9 \(bullseye\), 3\.11 \(bookworm\), 3\.13 \(trixie\)"):
        plan(RepoFacts("", {"runtime.txt": "python-3.14"}), BASE)


def test_own_dockerfile_wins_and_other_files_are_noted():
    p = plan(RepoFacts("binder", {"Dockerfile": "FROM x", "environment.yml": "x", "requirements.txt": "y"}), BASE)
    assert p.dockerfile == "binder/Dockerfile" and p.pieces == ("Dockerfile",)
    assert "ignored: environment.yml, requirements.txt" in p.notes[0]


def test_unreachable_file_stops_the_plan():
    with pytest.raises(UnsupportedConfig, match="install.R needs CRAN"):
        plan(RepoFacts("", {"install.R": "x", "requirements.txt": "y"}), BASE)


def test_empty_repository_still_gets_jupyterlab():
    p = plan(RepoFacts("", {}), BASE)
    assert p.pieces == () and [f.name for f in p.env_files] == ["dsbuild-notebook.in", "dsbuild-overrides.txt"]
    assert "JupyterLab only" in p.notes[0]


def test_environment_hash_ignores_code_but_not_environment():
    a = plan(RepoFacts("", {"requirements.txt": "numpy\n", "postBuild": "a"}), BASE)
    b = plan(RepoFacts("", {"requirements.txt": "numpy\r\n", "postBuild": "b"}), BASE)
    c = plan(RepoFacts("", {"requirements.txt": "numpy\npandas\n"}), BASE)
    assert a.environment_hash == b.environment_hash != c.environment_hash


def test_as_of_floats_the_jupyter_packages_and_is_validated():
    p = plan(RepoFacts("", {"requirements.txt": "numpy\n"}), BASE, BuildOptions(as_of="2023-06-30"))
    assert p.exclude_newer == "2023-06-30"
    assert p.env_files[-2].content == "jupyterlab\njupyterhub\npip\n"
    with pytest.raises(ConfigError, match="--as-of wants .commit. or a date"):
        BuildOptions(as_of="yesterday; rm -rf /")
    with pytest.raises(ConfigError, match="exclude each other"):
        BuildOptions(as_of="2023-06-30", locked=True)


LOCK = "jupyterlab==4.6.6 \\\n    --hash=sha256:aa\njupyterhub==5.5.4\nnumpy==1.26.4\npip==24.0\n"


def test_locked_installs_the_lock_only():
    facts = RepoFacts("", {"requirements.txt": "numpy>=1.20\n", "requirements.lock": LOCK})
    p = plan(facts, BASE, BuildOptions(locked=True))
    assert p.locked and [f.name for f in p.env_files] == ["requirements.lock"]
    assert p.env_files[0].content == LOCK


def test_locked_refuses_a_lock_that_does_not_match():
    facts = RepoFacts("binder", {"requirements.txt": "numpy>=2\n", "requirements.lock": LOCK})
    with pytest.raises(ConfigError, match=r"does not match binder/requirements.txt: numpy>=2 but the lock has numpy==1.26.4"):
        plan(facts, BASE, BuildOptions(locked=True))
    with pytest.raises(ConfigError, match="pandas is not in the lock"):
        plan(RepoFacts("", {"requirements.txt": "pandas\n", "requirements.lock": LOCK}), BASE, BuildOptions(locked=True))
    with pytest.raises(ConfigError, match="--locked needs requirements.lock"):
        plan(RepoFacts("", {"requirements.txt": "numpy\n"}), BASE, BuildOptions(locked=True))
