"""The Python a repository asks for, the Debian base picked for it, and uv-managed Pythons."""

import pytest

from dsbuild.builder.base_image import mirror_for, parse_apt_sources, sources_list
from dsbuild.builder.diagnose import explain_failure
from dsbuild.builder.errors import ConfigError
from dsbuild.builder.facts import RepoFacts
from dsbuild.builder.host import build_env, host_settings
from dsbuild.builder.pieces.pipfile import pipfile_python
from dsbuild.builder.plan import DEFAULT_BASE_IMAGE, BaseFacts, BuildOptions, base_image_for, plan, python_request
from dsbuild.builder.progress import StepFailed
from dsbuild.builder.pythons import PythonInstall, PythonRequest, suite_for
from dsbuild.builder.render import render_dockerfile
from dsbuild.builder.service import python_labels

BOOKWORM = BaseFacts("dsbuild-base:bookworm", (PythonInstall("3.11", "/usr/bin/python3.11"),), "3.11")


@pytest.mark.parametrize(
    "version,suite",
    [("3", "bookworm"), ("3.9", "bullseye"), ("3.9.18", "bullseye"), ("3.8", "bullseye"), ("3.10", "bookworm"),
     ("3.11", "bookworm"), ("3.12", "trixie"), ("3.13.1", "trixie"), ("3.14", "bookworm")],
)
def test_the_debian_release_is_picked_by_the_python_asked_for(version, suite):
    assert suite_for(PythonRequest(version, "runtime.txt")) == suite


def test_no_request_and_at_least_requests_keep_the_default_release():
    assert suite_for(None) == "bookworm"
    assert suite_for(PythonRequest("3.9", "environment.yml", at_least=True)) == "bookworm"
    assert suite_for(PythonRequest("3.12", "environment.yml", at_least=True)) == "trixie"


def test_downloads_keep_the_default_release_for_a_version_no_release_has():
    assert suite_for(PythonRequest("3.10", "runtime.txt"), downloads=True) == "bookworm"
    assert suite_for(PythonRequest("3.9", "runtime.txt"), downloads=True) == "bullseye"


def test_only_the_default_base_is_picked_automatically():
    request = PythonRequest("3.9", "runtime.txt")
    assert base_image_for(BuildOptions(), request) == "dsbuild-base:bullseye"
    assert base_image_for(BuildOptions(base_image="mine:1"), request) == "mine:1"
    assert base_image_for(BuildOptions(), None) == DEFAULT_BASE_IMAGE


def test_runtime_txt_wins_over_pipfile():
    facts = RepoFacts("", {"runtime.txt": "python-3.9", "Pipfile": "[requires]\npython_version = '3.13'\n"})
    assert python_request(facts) == PythonRequest("3.9", "runtime.txt")
    facts = RepoFacts(".binder", {"Pipfile": "[requires]\npython_version = '3.13'\n"})
    assert python_request(facts) == PythonRequest("3.13", ".binder/Pipfile")
    assert python_request(RepoFacts("", {"Dockerfile": "FROM x", "runtime.txt": "python-3.9"})) is None


def test_pipfile_full_version_wins_and_bad_versions_name_the_file():
    assert pipfile_python("[requires]\npython_version = '3.10'\npython_full_version = '3.10.4'\n", "Pipfile").version == "3.10.4"
    with pytest.raises(ConfigError, match=r"binder/Pipfile: '2\.7' is not a Python 3 version"):
        pipfile_python("[requires]\npython_version = '2.7'\n", "binder/Pipfile")


def test_any_python_3_takes_the_bases_default_without_warning():
    p = plan(RepoFacts("", {"runtime.txt": "python-3"}), BOOKWORM)
    assert p.python.version == "3.11" and not [n for n in p.notes if n.startswith("warning")]


def test_downloads_give_a_uv_managed_python_and_a_python_phase():
    options = BuildOptions(python_downloads=True)
    p = plan(RepoFacts("", {"runtime.txt": "python-3.10.4"}), BOOKWORM, options)
    assert p.python == PythonInstall("3.10", "3.10.4", managed=True) and not p.notes
    dockerfile = render_dockerfile(p)
    assert "uv python install 3.10.4" in dockerfile.text and "uv venv --system-site-packages --python 3.10.4" in dockerfile.text
    assert "python" in dockerfile.phases and dockerfile.phases.index("python") < dockerfile.phases.index("jupyter")
    plain = plan(RepoFacts("", {"runtime.txt": "python-3.10"}), BOOKWORM)
    assert p.environment_hash != plan(RepoFacts("", {"runtime.txt": "python-3.10"}), BOOKWORM, options).environment_hash
    assert "uv python install" not in render_dockerfile(plain).text


def test_downloads_do_not_replace_a_python_the_base_has():
    p = plan(RepoFacts("", {"runtime.txt": "python-3.11"}), BOOKWORM, BuildOptions(python_downloads=True))
    assert p.python == PythonInstall("3.11", "/usr/bin/python3.11")


def test_a_failed_python_download_is_explained_in_one_line():
    tail = (
        "error: Failed to install cpython-3.10.19-linux-x86_64-gnu",
        "  Caused by: Request failed after 3 retries",
        "  cause: failed to lookup address information: Name or service not known",
    )
    line = explain_failure(StepFailed(3, "python", "exit code: 2", 2, tail))
    assert line.startswith("installing a uv-managed Python failed (exit code 2): failed to lookup address")
    assert "--python-downloads needs uv's Python download" in line and "\n" not in line


def test_uv_python_mirror_is_taken_from_uvs_own_setting():
    settings = host_settings({"UV_PYTHON_INSTALL_MIRROR": "https://mirror.example/python"}, system_bundle=None)
    assert "export UV_PYTHON_INSTALL_MIRROR=https://mirror.example/python" in build_env(settings)
    with pytest.raises(ConfigError):
        host_settings({"UV_PYTHON_INSTALL_MIRROR": "file:///etc"}, system_bundle=None)


def test_uv_python_mirror_from_uv_toml_the_first_that_sets_it():
    from dsbuild.builder.host import uv_python_mirror

    assert uv_python_mirror(["not = [toml", 'index-url = "x"\n', 'python-install-mirror = "https://m.example/py"\n']) == "https://m.example/py"
    assert uv_python_mirror(['python-install-mirror = ""\n']) is None


def test_labels_record_requested_and_used_python():
    p = plan(RepoFacts("binder", {"runtime.txt": "python-3.10"}), BOOKWORM)
    assert python_labels(p) == {"io.dsbuild.python": "3.11", "io.dsbuild.python-requested": "3.10 (binder/runtime.txt)"}
    assert python_labels(plan(RepoFacts("", {}), BOOKWORM)) == {"io.dsbuild.python": "3.11"}


HOST_SOURCES = """Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: https://vendor.example/apt
Suites: nodistro
Components: main
"""


def test_other_releases_come_from_the_hosts_debian_mirror():
    sources = parse_apt_sources([HOST_SOURCES, "deb https://vendor.example/apt cloud-bookworm main\n"])
    assert mirror_for(sources, "bullseye") == "http://mirror.example/debian"
    assert sources_list(sources, "trixie").splitlines() == [
        "deb http://mirror.example/debian trixie main",
        "deb http://mirror.example/debian trixie-updates main",
        "deb http://mirror.example/debian-security trixie-security main",
    ]
    assert sources_list(sources, "bookworm").splitlines()[0] == "deb http://mirror.example/debian bookworm main"
    with pytest.raises(ConfigError, match="no Debian apt source"):
        mirror_for(parse_apt_sources(["deb https://vendor.example/apt nodistro main\n"]), "trixie")
