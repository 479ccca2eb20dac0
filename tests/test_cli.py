"""The CLI in-process: help, inspect, and one-line errors with their exit codes."""

import pytest
from click.testing import CliRunner

from dsbuild.cli import main
from tests.conftest import EXAMPLES

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


@pytest.fixture
def cli():
    return CliRunner()


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


def test_help_lists_commands(cli):
    result = cli.invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("inspect", "build", "run", "base"):
        assert command in result.output


@pytest.mark.parametrize("example", ["sketches", "apt-postbuild", "binder-runtime", "setup-py"])
def test_inspect_prints_the_dockerfile(cli, example):
    result = cli.invoke(main, ["inspect", str(EXAMPLES / example)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith("# dsbuild-phase: shared files")
    assert "# dsbuild-phase: base" in result.stdout
    assert "FROM dsbuild-base:bookworm" in result.stdout
    assert "pieces:" in result.stderr


def test_inspect_shows_binder_folder_precedence(cli):
    result = cli.invoke(main, ["inspect", str(EXAMPLES / "binder-runtime")])
    assert "config:   binder/" in result.stderr
    assert "this-package-does-not-exist" not in result.stdout


def test_bad_ref_is_one_line_exit_2(cli, tmp_path):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = cli.invoke(main, ["build", str(tmp_path), "--ref", "no-such-branch"], env=NO_ENGINE)
    assert result.exit_code == 4  # the engine is checked first, and there is none
    result = cli.invoke(main, ["inspect", str(tmp_path), "--ref", "no-such-branch"])
    assert result.exit_code == 2
    assert error_lines(result) == [f"Error: ref 'no-such-branch' not found in {tmp_path.as_uri()} (looked for a branch, a tag and a commit)"]
    assert "Traceback" not in result.output


def test_injection_in_ref_is_refused_before_git_runs(cli, tmp_path):
    result = cli.invoke(main, ["inspect", str(tmp_path), "--ref", "--upload-pack=touch pwned"])
    assert result.exit_code == 2 and "not a valid git ref" in result.stderr
    assert not (tmp_path / "pwned").exists()


def test_missing_engine_is_one_line_exit_4(cli):
    result = cli.invoke(main, ["build", str(EXAMPLES / "sketches")], env=NO_ENGINE)
    assert result.exit_code == 4
    assert error_lines(result) == [
        "Error: cannot reach the Docker engine at unix:///nonexistent/docker.sock; is dockerd running? (scripts/setup.sh starts one)"
    ]


def test_unreachable_configuration_is_named(cli, tmp_path):
    (tmp_path / "environment.yml").write_text("channels: [conda-forge]\ndependencies: [numpy, r-base, gdal=3.6]\n")
    result = cli.invoke(main, ["inspect", str(tmp_path)], env=NO_ENGINE)
    assert result.exit_code == 3
    assert error_lines(result) == [
        "Error: environment.yml: no PyPI or Debian equivalent for r-base, gdal; environment.yml is rendered with "
        "PyPI packages here (conda channels cannot be reached)"
    ]


def test_bad_run_options_are_refused_before_building(cli):
    result = cli.invoke(main, ["run", str(EXAMPLES / "sketches"), "--memory", "lots"], env=NO_ENGINE)
    assert result.exit_code == 6 and "--memory wants a size" in result.stderr
    result = cli.invoke(main, ["run", str(EXAMPLES / "sketches"), "-v", "/nonexistent/x:/data"], env=NO_ENGINE)
    assert result.exit_code == 6 and "does not exist" in result.stderr


def test_inspect_picks_the_base_by_the_python_asked_for(cli, tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "runtime.txt").write_text("python-3.13\n")
    result = cli.invoke(main, ["inspect", str(tmp_path), "--subdir", "demo"], env=NO_ENGINE)
    assert result.exit_code == 0, result.output
    assert "FROM dsbuild-base:trixie" in result.stdout and "python:   3.13 from dsbuild-base:trixie" in result.stderr


def test_exact_python_and_bad_user_are_one_line_errors(cli, tmp_path):
    (tmp_path / "runtime.txt").write_text("python-3.10\n")
    result = cli.invoke(main, ["build", str(tmp_path), "--user-id", "0"], env=NO_ENGINE)
    assert result.exit_code == 3 and error_lines(result) == ["Error: --user-id must be between 1000 and 60000 (not a system user), got 0"]
    result = cli.invoke(main, ["run", str(tmp_path), "--env", "oops", "--", "true"], env=NO_ENGINE)
    assert result.exit_code == 6 and "--env wants KEY=VALUE" in error_lines(result)[0]
    result = cli.invoke(main, ["run", str(tmp_path), "--detach", "--", "true"], env=NO_ENGINE)
    assert result.exit_code == 2 and "a command after -- runs attached" in result.stderr
    result = cli.invoke(main, ["build", str(tmp_path), "--subdir", "../x"], env=NO_ENGINE)
    assert result.exit_code == 2 and "--subdir wants a folder inside the repository" in error_lines(result)[0]


def test_inspect_says_a_committed_lock_wins_and_a_mismatch_is_one_line(cli, tmp_path):
    binder = tmp_path / "binder"
    binder.mkdir()
    (binder / "requirements.txt").write_text("numpy\n")
    (binder / "requirements.lock").write_text("numpy==1.26.4\njupyterlab==4.6.6\njupyterhub==5.5.4\n")
    result = cli.invoke(main, ["inspect", str(tmp_path)], env=NO_ENGINE)
    assert result.exit_code == 0, result.output
    assert "packages: from the committed lock binder/requirements.lock" in result.stderr
    assert "cp /srv/dsbuild/env/requirements.lock /srv/dsbuild/requirements.lock" in result.stdout
    (binder / "requirements.txt").write_text("numpy>=2\n")
    result = cli.invoke(main, ["inspect", str(tmp_path)], env=NO_ENGINE)
    assert result.exit_code == 3
    assert error_lines(result) == [
        "Error: requirements.lock does not match binder/requirements.txt: numpy>=2 but the lock has numpy==1.26.4"]


def test_keep_tests_reaches_the_build_options(cli, tmp_path):
    from dsbuild.cli.build_commands import _request

    common = dict(repo=str(EXAMPLES / "sketches"), ref=None, subdir=None, base_image="dsbuild-base:bookworm", image_name=None,
                  force=False, no_cache=False, ca_cert=None, index_url=None, locked=False, relock=False, as_of=None,
                  exact_python=False, python_downloads=False, user_id=1000, user_name="jovyan", registry=None, push=False,
                  build_timeout=60, trusted=False)
    assert _request(**common, keep_tests=True).options.keep_tests is True
    assert _request(**common).options.keep_tests is False
    assert "--keep-tests" in cli.invoke(main, ["build", "--help"]).output
