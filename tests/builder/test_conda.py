"""environment.yml rendered through PyPI: names, versions, pip section, Python, what stops."""

import pytest

from dsbuild.builder.errors import ConfigError, UnsupportedConfig
from dsbuild.builder.facts import RepoFacts
from dsbuild.builder.pieces.base import RepoInstall
from dsbuild.builder.pieces.conda import EnvironmentYmlPiece, pypi_version
from dsbuild.builder.plan import BaseFacts, PythonInstall, plan
from dsbuild.builder.pythons import PythonRequest
from dsbuild.builder.service import python_labels

BASE = BaseFacts("dsbuild-base:bookworm", (PythonInstall("3.11", "/usr/bin/python3.11"),), "3.11")

ENV = """name: demo
channels:
  - conda-forge
  - defaults
dependencies:
  - python=3.10
  - numpy=1.26
  - scipy>=1.11,<2
  - conda-forge::pandas==2.1.4=py310h_0
  - matplotlib-base
  - pytorch
  - nodejs
  - tqdm 4.66.*
  - pip
  - pip:
    - requests==2.31.0
    - -e ..
"""


@pytest.mark.parametrize(
    "conda,pypi",
    [("", ""), ("=1.26", "==1.26.*"), ("1.26.*", "==1.26.*"), ("==1.26.4", "==1.26.4"), ("=1.26.4=h123_0", "==1.26.4.*"),
     (">=1.11,<2", ">=1.11,<2"), ("<2", "<2"), ("[version='>=1']", None), ("1.2|1.4", None)],
)
def test_conda_versions_become_pep440_specifiers(conda, pypi):
    assert pypi_version(conda) == pypi


def test_environment_yml_is_rendered_through_pypi():
    part = EnvironmentYmlPiece().contribute(RepoFacts("binder", {"environment.yml": ENV}))
    assert part.env_files[0].content.splitlines() == [
        "numpy==1.26.*", "scipy>=1.11,<2", "pandas==2.1.4", "matplotlib", "torch", "tqdm==4.66.*", "requests==2.31.0",
    ]
    assert part.apt_packages == ("nodejs", "npm")
    assert part.repo_installs == (RepoInstall("editable", "."),)
    assert part.python == PythonRequest("3.10", "binder/environment.yml")
    assert "binder/environment.yml: conda channels ignored: conda-forge, defaults" in part.notes
    assert not any("same name" in n for n in part.notes)


def test_unknown_names_are_assumed_to_be_pypi_names_and_said_so():
    part = EnvironmentYmlPiece().contribute(RepoFacts("", {"environment.yml": "dependencies: [numpy, some-tool=2]\n"}))
    assert part.env_files[0].content == "numpy\nsome-tool==2.*\n"
    assert "environment.yml: assumed to have the same name on PyPI: some-tool" in part.notes


def test_what_cannot_be_mapped_stops_with_one_line_listing_all():
    text = "dependencies:\n  - numpy\n  - r-base=4.3\n  - r-ggplot2\n  - gdal\n  - cudatoolkit=11.8\n  - weird[version='>=1']\n"
    with pytest.raises(UnsupportedConfig) as err:
        EnvironmentYmlPiece().contribute(RepoFacts("", {"environment.yml": text}))
    assert str(err.value).startswith("environment.yml: no PyPI or Debian equivalent for r-base, r-ggplot2, gdal, cudatoolkit, weird[")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "text,match",
    [("- a\n- b\n", "expected a mapping"), ("dependencies: [numpy\n", "not valid YAML"),
     ("dependencies:\n  - {pip: x, other: y}\n", "cannot read the dependency"),
     ("dependencies:\n  - pip: ['x; rm -rf /']\n", "cannot read the pip line"),
     ("dependencies:\n  - pip: ['--index-url http://evil/']\n", "not supported"),
     ("dependencies:\n  - pip: ['-e ../..']\n", "outside the repository"),
     ("dependencies:\n  - python=2.7\n", "Python version")],
)
def test_bad_environment_files_name_the_problem(text, match):
    with pytest.raises(ConfigError, match=match):
        EnvironmentYmlPiece().contribute(RepoFacts("", {"environment.yml": text}))


def test_environment_yml_wins_over_pipfile_and_requirements_and_says_so():
    facts = RepoFacts("binder", {"environment.yml": "dependencies: [numpy]\n", "Pipfile": "[packages]\nx = '*'\n", "requirements.txt": "y"})
    p = plan(facts, BASE)
    assert p.pieces == ("environment.yml",)
    assert "binder/Pipfile, binder/requirements.txt ignored: binder/environment.yml wins, as on mybinder.org" in p.notes


def test_python_bounds_and_plan_notes_and_label():
    facts = RepoFacts("", {"environment.yaml": "channels: [conda-forge]\ndependencies: [python>=3.9, numpy]\n", "requirements.txt": "x"})
    p = plan(facts, BASE)
    assert p.pieces == ("environment.yml",) and p.python.version == "3.11"
    assert p.python_requested == PythonRequest("3.9", "environment.yaml", at_least=True)
    assert not any(n.startswith("warning") for n in p.notes)
    assert p.notes[0] == "environment.yaml is rendered with PyPI packages (no conda)"
    assert python_labels(p)["io.dsbuild.environment"] == "environment.yml rendered with PyPI packages (no conda)"
