"""The environment inside the image: Node.js when scripts use it, pip/uv settings for notebooks."""

import pytest

from dsbuild.builder.errors import ConfigError
from dsbuild.builder.facts import RepoFacts
from dsbuild.builder.host import HostSettings, host_settings, notebook_config, without_credentials
from dsbuild.builder.pieces.system import NodePiece
from dsbuild.builder.plan import BaseFacts, PythonInstall, plan

BASE = BaseFacts("dsbuild-base:bookworm", (PythonInstall("3.11", "/usr/bin/python3.11"),), "3.11")


@pytest.mark.parametrize(
    "script,packages",
    [("#!/bin/bash\nnpm install -g foo\n", ("nodejs", "npm")), ("jlpm install && jlpm build", ("nodejs",)),
     ("npx tsc\n", ("nodejs", "npm")), ("yarn\n", ("nodejs", "npm")), ("node build.js\n", ("nodejs",)),
     ("set -e\ncd ext && npm ci", ("nodejs", "npm")), ("exec node server.js \"$@\"", ("nodejs",))],
)
def test_node_is_added_when_a_script_runs_node_tools(script, packages):
    facts = RepoFacts("", {"postBuild": script})
    assert NodePiece().detect(facts)
    p = plan(facts, BASE)
    assert "node.js" in p.pieces and p.apt_packages == packages


@pytest.mark.parametrize(
    "script",
    ["#!/bin/bash\n# npm install would be nice\npip install x\n", "jupyter labextension list\n",
     "python -m nodeenv\n", "cp npm-shrinkwrap.json x\n", "echo node_modules\n"],
)
def test_node_is_not_added_otherwise(script):
    assert not NodePiece().detect(RepoFacts("", {"postBuild": script, "start": "exec \"$@\"\n"}))


def test_node_from_start_and_apt_txt_are_merged_once():
    p = plan(RepoFacts("", {"apt.txt": "jq\nnodejs\n", "start": "node x.js &\nexec \"$@\"\n", "postBuild": "npx x"}), BASE)
    assert p.apt_packages == ("jq", "nodejs", "npm")


def test_notebook_settings_carry_index_and_ca_but_never_credentials():
    settings = HostSettings(None, "https://user:secret@mirror.example/simple", ("https://tok@extra.example/simple",))
    files = notebook_config(settings)
    assert "secret" not in "".join(files.values()) and "tok@" not in "".join(files.values())
    assert files["pip.conf"].splitlines() == [
        "[global]",
        "cert = /srv/dsbuild/ca-certificates.crt",
        "disable-pip-version-check = true",
        "index-url = https://mirror.example/simple",
        "extra-index-url = https://extra.example/simple",
    ]
    assert files["uv.toml"] == 'index-url = "https://mirror.example/simple"\nextra-index-url = ["https://extra.example/simple"]\n'


def test_notebook_settings_without_an_index_keep_the_tools_defaults():
    files = notebook_config(HostSettings())
    assert "index-url" not in files["pip.conf"] and files["uv.toml"] == "\n"


def test_urls_that_could_break_a_config_file_are_refused():
    assert without_credentials("https://mirror.example/simple") == "https://mirror.example/simple"
    with pytest.raises(ConfigError):
        host_settings({"PIP_INDEX_URL": "https://mirror.example/simple\n[global]"}, system_bundle=None)
