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
    assert [f.name for f in p.env_files] == ["requirements.txt"]
    assert p.repo_installs == (RepoInstall("editable", "."),)
    assert p.post_build == ("postBuild",) and p.start == "start"


def test_default_python_is_the_bases_python3():
    assert plan(RepoFacts("", {}), BASE).python.version == "3.11"


def test_missing_python_version_lists_what_the_base_has():
    with pytest.raises(ConfigError, match=r"Python 3\.8 was asked for.*has Python 3\.11, 3\.12"):
        plan(RepoFacts("", {"runtime.txt": "python-3.8"}), BASE)


def test_own_dockerfile_wins_and_other_files_are_noted():
    p = plan(RepoFacts("binder", {"Dockerfile": "FROM x", "environment.yml": "x", "requirements.txt": "y"}), BASE)
    assert p.dockerfile == "binder/Dockerfile" and p.pieces == ("Dockerfile",)
    assert "ignored: environment.yml, requirements.txt" in p.notes[0]


def test_unreachable_file_stops_the_plan():
    with pytest.raises(UnsupportedConfig, match="environment.yml needs conda"):
        plan(RepoFacts("", {"environment.yml": "x", "requirements.txt": "y"}), BASE)


def test_empty_repository_still_gets_jupyterlab():
    p = plan(RepoFacts("", {}), BASE)
    assert p.pieces == () and p.env_files == () and "JupyterLab only" in p.notes[0]


def test_environment_hash_ignores_code_but_not_environment():
    a = plan(RepoFacts("", {"requirements.txt": "numpy\n", "postBuild": "a"}), BASE)
    b = plan(RepoFacts("", {"requirements.txt": "numpy\r\n", "postBuild": "b"}), BASE)
    c = plan(RepoFacts("", {"requirements.txt": "numpy\npandas\n"}), BASE)
    assert a.environment_hash == b.environment_hash != c.environment_hash
