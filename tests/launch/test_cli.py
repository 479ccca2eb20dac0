"""The launch commands as the CLI shows them."""

from __future__ import annotations

import json

from click.testing import CliRunner
from dsbuild.cli import main


def test_commands_are_registered():
    runner = CliRunner()
    assert "serve" in runner.invoke(main, ["--help"]).output
    hub_help = runner.invoke(main, ["hub", "--help"]).output
    for command in ("config", "up", "down", "status"):
        assert command in hub_help
    assert "--allow-scheme [https|http|git|ssh|file]" in runner.invoke(main, ["serve", "--help"]).output


def test_serve_without_a_hub_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["serve", "--hub-state", str(tmp_path)])
    assert result.exit_code == 8
    assert "run `dsbuild hub up`" in result.output


def test_serve_checks_its_settings(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--hub-url", "http://127.0.0.1:8000/", "--hub-state", str(tmp_path),
                                       "--hub-token-file", str(tmp_path / "missing")])
    assert result.exit_code == 8 and "cannot read the hub token file" in result.output
    (tmp_path / "token").write_text("t\n")
    result = CliRunner().invoke(main, ["serve", "--hub-url", "http://127.0.0.1:8000/", "--hub-state", str(tmp_path),
                                       "--hub-token-file", str(tmp_path / "token"), "--max-repo-size", "lots"])
    assert result.exit_code == 8 and "--max-repo-size" in result.output
    result = CliRunner().invoke(main, ["serve", "--hub-url", "http://127.0.0.1:8000/", "--hub-state", str(tmp_path),
                                       "--hub-token-file", str(tmp_path / "token"), "--user-option", "cpu"])
    assert result.exit_code == 8 and "--user-option wants KEY=VALUE, got 'cpu'" in result.output


def test_hub_status_and_down_when_nothing_runs(tmp_path):
    status = json.loads(CliRunner().invoke(main, ["hub", "status", "--state-dir", str(tmp_path)]).output)
    assert status["hub_pid"] is None and status["proxy_pid"] is None
    result = CliRunner().invoke(main, ["hub", "down", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0 and "JupyterHub was not running" in result.output
