"""The CLI loads the launch service and the hub commands only when they are asked for."""

import subprocess
import sys

from click.testing import CliRunner

from dsbuild.cli import main


def _modules_after(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                          capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_build_and_run_do_not_import_the_launch_commands():
    loaded = _modules_after("from dsbuild.cli import main; main.get_command(None, 'build'); main.get_command(None, 'run')")
    assert "dsbuild.cli.build_commands" in loaded
    assert not {"dsbuild.launch.cli", "dsbuild.spawner.cli", "traitlets", "dsbuild.cli.gc_commands",
                "dsbuild.cli.repro_commands", "dsbuild.cli.verify_commands"} & loaded


def test_build_and_run_start_without_rich_jinja_or_tarfile():
    """What `build`/`run` import before they work: rich (tables only), jinja2 (only when a
    Dockerfile is rendered) and tarfile (only for `dsbuild base` and a layer) come later."""
    loaded = _modules_after("from dsbuild.cli import main; main.get_command(None, 'build'); main.get_command(None, 'run')")
    assert not {"rich", "jinja2", "tarfile"} & loaded


def test_the_lazy_commands_are_listed_and_work():
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0
    listed = [line.split()[0] for line in top.output.split("Commands:")[1].splitlines() if line.strip()]
    assert {"build", "run", "inspect", "base", "serve", "hub", "gc", "lock", "show", "diff", "verify"} <= set(listed)
    for name in ("gc", "lock", "show", "diff", "verify"):
        assert runner.invoke(main, [name, "--help"]).exit_code == 0, name
    hub = runner.invoke(main, ["hub", "--help"])
    assert hub.exit_code == 0 and all(name in hub.output for name in ("config", "up", "down", "status"))
    serve = runner.invoke(main, ["serve", "--help"])
    assert serve.exit_code == 0 and "--max-builds" in serve.output
    assert runner.invoke(main, ["no-such-command"]).exit_code == 2
