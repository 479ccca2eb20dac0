import json

import pytest

from dsbuild.builder.errors import ConfigError, UnsupportedConfig
from dsbuild.builder.facts import RepoFacts
from dsbuild.builder.pieces.base import EnvFile, RepoInstall
from dsbuild.builder.pieces.python import PipfilePiece, RequirementsPiece, parse_runtime, refers_to_repo
from dsbuild.builder.pieces.system import parse_apt_txt
from dsbuild.builder.plan import PIECES


def test_apt_txt_names_comments_and_versions():
    text = "# tools\njq\ncurl  # http\nlibgdal-dev=3.6.2+dfsg-1 \n\njq\n"
    assert parse_apt_txt(text) == ("jq", "curl", "libgdal-dev=3.6.2+dfsg-1")


@pytest.mark.parametrize("line", ["jq; rm -rf /", "$(id)", "`id`", "Foo", "-o=APT::x"])
def test_apt_txt_refuses_what_is_not_a_package(line):
    with pytest.raises(ConfigError, match="apt.txt line 1"):
        parse_apt_txt(line)


@pytest.mark.parametrize(
    "text,version,minor",
    [("python-3.11\n", "3.11", "3.11"), ("python-3.12.1", "3.12.1", "3.12"), ("python-3", "3", None), (" python-3.9 \n", "3.9", "3.9")],
)
def test_runtime_txt_forms(text, version, minor):
    request = parse_runtime(text, "binder/runtime.txt")
    assert (request.version, request.minor, request.where) == (version, minor, "binder/runtime.txt")


@pytest.mark.parametrize("text", ["python3", "python-2.7", "python-3.x", "python-3.11.2.1", "python-3.11; rm -rf /"])
def test_runtime_txt_refuses_other_forms(text):
    with pytest.raises(ConfigError, match="expected 'python-3', 'python-3.X' or 'python-3.X.Y'"):
        parse_runtime(text)


def test_runtime_txt_r_needs_cran():
    with pytest.raises(UnsupportedConfig, match="CRAN"):
        parse_runtime("r-4.3-2023-10-01")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("numpy\npandas==2.1\n", False),
        ("-e .\n", True),
        (".\n", True),
        ("-r other.txt\n", True),
        ("-c constraints.txt\n", True),
        ("./pkg\n", True),
        ("--index-url https://mirror.example/simple\nnumpy\n", False),
        ("# -e .\nnumpy\n", False),
        ("pkg @ https://example.org/pkg.whl\n", False),
    ],
)
def test_requirements_that_refer_to_the_repository(text, expected):
    assert refers_to_repo(text) is expected


def test_requirements_naming_the_repository_lock_the_rest_and_install_the_project_after_copy():
    """`-e .` (relative to the repository root, where uv runs) is the project; the other
    lines are an environment file like any other, so they are in the lock."""
    facts = RepoFacts("binder", {"requirements.txt": "numpy>=1.26\n-e .[Dev_Extra]\n./pkgs/two # second\n"})
    part = RequirementsPiece().contribute(facts)
    assert part.env_files == (EnvFile("requirements.txt", "numpy>=1.26\n"),)
    assert part.repo_installs == (RepoInstall("editable", ".", ("dev-extra",)), RepoInstall("local", "pkgs/two"))
    assert part.repo_installs[0].args == ("-e", ".[dev-extra]") and part.repo_installs[1].args == ("./pkgs/two",)


def test_requirements_including_other_files_are_installed_as_they_are_after_copy():
    facts = RepoFacts("binder", {"requirements.txt": "-e .\n-r more.txt\n"})
    part = RequirementsPiece().contribute(facts)
    assert part.env_files == ()
    assert part.repo_installs == (RepoInstall("requirements", "binder/requirements.txt"),)
    assert "outside it" in part.notes[0]


def test_a_project_path_outside_the_repository_is_refused():
    with pytest.raises(ConfigError, match="outside the repository"):
        RequirementsPiece().contribute(RepoFacts("", {"requirements.txt": "-e ../elsewhere\n"}))


def test_plain_requirements_are_an_environment_file():
    part = RequirementsPiece().contribute(RepoFacts("", {"requirements.txt": "numpy\n"}))
    assert part.env_files == (EnvFile("requirements.txt", "numpy\n"),)


def test_pipfile_lock_pins_exact_versions_and_skips_requirements():
    lock = {
        "default": {
            "numpy": {"version": "==1.26.4", "hashes": ["sha256:abc"]},
            "requests": {"version": "==2.31.0", "extras": ["socks"], "markers": "python_version >= '3.8'"},
            "mypkg": {"path": ".", "editable": True},
        },
        "develop": {"pytest": {"version": "==8.0.0"}},
    }
    facts = RepoFacts("", {"Pipfile.lock": json.dumps(lock), "Pipfile": "[requires]\npython_version = '3.11'\n", "requirements.txt": "x"})
    assert not RequirementsPiece().detect(facts)
    part = PipfilePiece().contribute(facts)
    lines = part.env_files[0].content.splitlines()
    assert lines == ["numpy==1.26.4", "requests[socks]==2.31.0 ; python_version >= '3.8'", "pytest==8.0.0"]
    assert part.repo_installs == (RepoInstall("editable", "."),)
    assert part.python.version == "3.11" and part.python.where == "Pipfile"


def test_pipfile_without_lock():
    pipfile = '[packages]\nnumpy = "*"\npandas = ">=2"\nlib = {git = "https://example.org/lib.git", ref = "v1"}\n[dev-packages]\npytest = "*"\n'
    part = PipfilePiece().contribute(RepoFacts("", {"Pipfile": pipfile}))
    assert part.env_files[0].content.splitlines() == ["numpy", "pandas>=2", "lib @ git+https://example.org/lib.git@v1", "pytest"]


def test_pipfile_dev_package_named_in_both_keeps_the_packages_entry():
    part = PipfilePiece().contribute(RepoFacts("", {"Pipfile": '[packages]\nnumpy = "==1.26"\n[dev-packages]\nnumpy = "*"\n'}))
    assert part.env_files[0].content == "numpy==1.26\n"


@pytest.mark.parametrize(
    "config_dir,path,editable,expected",
    [("", ".", True, RepoInstall("editable", ".")), (".binder", "..", True, RepoInstall("editable", ".")),
     ("binder", "../pkg", False, RepoInstall("local", "pkg")), ("binder", ".", False, RepoInstall("local", "binder"))],
)
def test_pipfile_paths_are_relative_to_the_pipfiles_folder(config_dir, path, editable, expected):
    entry = f'{{path = "{path}", editable = {str(editable).lower()}}}'
    part = PipfilePiece().contribute(RepoFacts(config_dir, {"Pipfile": f"[packages]\nmine = {entry}\n"}))
    assert part.repo_installs == (expected,)


def test_local_install_arguments_never_read_as_package_names():
    assert RepoInstall("local", "pkg").args == ("./pkg",) and RepoInstall("local", ".").args == (".",)


def test_setup_py_is_installed_with_a_pipfile_only_when_named():
    plain = RepoFacts("", {"Pipfile": '[packages]\nnumpy = "*"\n', "setup.py": ""})
    assert [p.name for p in PIECES if p.detect(plain)] == ["Pipfile"]
    lock_only = RepoFacts("", {"Pipfile.lock": "{}", "requirements.txt": "x", "setup.py": ""})
    assert [p.name for p in PIECES if p.detect(lock_only)] == ["Pipfile"]


def test_pipfile_refuses_paths_outside_and_shell_characters():
    with pytest.raises(ConfigError, match="outside"):
        PipfilePiece().contribute(RepoFacts("", {"Pipfile": '[packages]\nx = {path = "../other"}\n'}))
    with pytest.raises(ConfigError, match="outside"):
        PipfilePiece().contribute(RepoFacts(".binder", {"Pipfile": '[packages]\nx = {path = "../.."}\n'}))
    with pytest.raises(ConfigError, match="outside"):
        PipfilePiece().contribute(RepoFacts("", {"Pipfile": '[packages]\nx = {path = "/etc"}\n'}))
    with pytest.raises(ConfigError, match="unexpected characters"):
        PipfilePiece().contribute(RepoFacts("", {"Pipfile": '[packages]\nx = "==1; id"\n'}))


@pytest.mark.parametrize(
    "name,needs",
    [("install.R", "CRAN"), ("Project.toml", "Julia"), ("default.nix", "Nix")],
)
def test_unreachable_sources_name_the_file_and_why(name, needs):
    facts = RepoFacts("binder", {name: "x", "requirements.txt": "numpy"})
    piece = next(p for p in PIECES if p.detect(facts) and name in getattr(p, "files", (p.name,)))
    with pytest.raises(UnsupportedConfig) as err:
        piece.contribute(facts)
    assert f"binder/{name}" in str(err.value) and needs in str(err.value) and "cannot be reached" in str(err.value)
