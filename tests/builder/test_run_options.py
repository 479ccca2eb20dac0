"""run -- CMD, --env, --subdir and --user-id/--user-name: the pure parts."""

import pytest

from dsbuild.builder.errors import ConfigError, RunFailed, SourceError
from dsbuild.builder.facts import RepoFacts
from dsbuild.builder.plan import BaseFacts, BuildOptions, NotebookUser, PythonInstall, plan
from dsbuild.builder.render import render_dockerfile
from dsbuild.builder.run import RunOptions, Volume, container_config, docker_run_args, parse_env
from dsbuild.builder.service import subfolder
from dsbuild.builder.names import image_name
from dsbuild.builder.source import LocalSource, validate_subdir

BASE = BaseFacts("dsbuild-base:bookworm", (PythonInstall("3.11", "/usr/bin/python3.11"),), "3.11")


def test_env_values_stay_off_the_command_line():
    options = RunOptions(env=(parse_env("TOKEN=s3cret=x"), parse_env("EMPTY=")), command=("python", "-V"))
    args = docker_run_args("img:1", options, None)
    assert "s3cret=x" not in " ".join(args) and args.count("--env") == 2
    assert args[-4:] == ["--", "img:1", "python", "-V"] and "--publish" not in args
    assert dict(options.env) == {"TOKEN": "s3cret=x", "EMPTY": ""}


def test_the_api_start_has_the_same_settings_as_docker_run(tmp_path):
    options = RunOptions(volumes=(Volume(tmp_path, "/data", True),), cpus=1.5, memory="1.5g", uid=1234,
                         env=(parse_env("A=1"),))
    args = " ".join(docker_run_args("img:1", options, 9999))
    config = container_config("img:1", options, 9999, {"A": "1", "JUPYTER_TOKEN": "t"})
    host = config["HostConfig"]
    assert "--user 1234:1234" in args and config["User"] == "1234:1234"
    assert "--init" in args and host["Init"] is True
    assert "--cap-drop ALL" in args and host["CapDrop"] == ["ALL"]
    assert "--security-opt no-new-privileges" in args and host["SecurityOpt"] == ["no-new-privileges"]
    assert "--pids-limit 1024" in args and host["PidsLimit"] == 1024
    assert "--publish 127.0.0.1:9999:8888" in args
    assert host["PortBindings"] == {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9999"}]}
    assert f"--volume {tmp_path}:/data:ro" in args and host["Binds"] == [f"{tmp_path}:/data:ro"]
    assert host["NanoCpus"] == 1_500_000_000 and host["Memory"] == int(1.5 * 2**30)
    assert config["Env"] == ["A=1", "JUPYTER_TOKEN=t"] and config["Cmd"] is None and config["Image"] == "img:1"
    assert container_config("img:1", RunOptions(memory="512"), 1, {})["HostConfig"]["Memory"] == 512
    assert container_config("img:1", RunOptions(gpus="all"), 1, {}) is None  # --gpus: the CLI starts it


@pytest.mark.parametrize("text", ["NOVALUE", "1X=2", "A B=1", "=x", "JUPYTER_TOKEN=mine"])
def test_bad_env_is_refused(text):
    with pytest.raises(RunFailed, match="--env"):
        parse_env(text)


@pytest.mark.parametrize("text,expected", [("docs/demo", "docs/demo"), ("./demo/", "demo"), ("a//b", "a/b")])
def test_subdir_is_normalised(text, expected):
    assert validate_subdir(text) == expected


@pytest.mark.parametrize("text", ["/etc", "..", "a/../../b", ".", "", "-x", "a b"])
def test_subdir_outside_or_odd_is_refused(text):
    with pytest.raises(SourceError, match="--subdir"):
        validate_subdir(text)


def test_subdir_names_the_image_and_must_exist(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "escape").symlink_to("/etc")
    mono = LocalSource(tmp_path / "mono")
    assert image_name(mono, subdir="docs/demo").startswith("dsbuild-mono-docs-demo-")
    assert image_name(mono, subdir="docs/demo") not in (image_name(mono), image_name(mono, subdir="docs/other"))
    assert subfolder(tmp_path, "demo") == tmp_path / "demo"
    for bad in ("missing", "escape"):
        with pytest.raises(SourceError, match="no such folder"):
            subfolder(tmp_path, bad)


def test_notebook_user_shapes_the_dockerfile():
    options = BuildOptions(user=NotebookUser(1234, "alice"))
    p = plan(RepoFacts("", {"requirements.txt": "numpy\n", "start": "exec \"$@\"\n"}), BASE, options)
    text = render_dockerfile(p).text
    assert "useradd --no-log-init --create-home --home-dir /home/alice --uid 1234 --gid 1234" in text
    assert "HOME=/home/alice REPO_DIR=/home/alice" in text and "USER 1234" in text and "USER 1000" not in text
    assert 'COPY --chown=1234:1234 ["repo/", "/home/alice/"]' in text and 'DSBUILD_START="/home/alice/start"' in text
    assert "id=dsbuild-uv-" in text and ",uid=1234,gid=1234" in text
    assert p.environment_hash != plan(RepoFacts("", {"requirements.txt": "numpy\n", "start": "x"}), BASE).environment_hash


@pytest.mark.parametrize("uid,name", [(0, "root"), (999, "sys"), (1234, "root"), (1234, "Alice"), (1234, "a;b"), (70000, "x")])
def test_bad_users_are_refused(uid, name):
    with pytest.raises(ConfigError):
        NotebookUser(uid, name)
