"""`dsbuild show` and `dsbuild diff` over a fake engine (the real one: tests/integration/test_committed_lock.py)."""

import pytest
from click.testing import CliRunner

from dsbuild.builder.envlock import APT_LOCK_PATH, INSTALLED_PATH
from dsbuild.builder.lock import LOCK_PATH
from dsbuild.builder.host import HostSettings
from dsbuild.builder.names import describe_options, environment_options
from dsbuild.builder.plan import BuildOptions
from dsbuild.cli import main, repro_commands
from dsbuild.cli.repro_commands import build_note, environment_note


def test_show_explains_the_suffix_or_its_absence():
    dated = describe_options(environment_options(BuildOptions(as_of="2024-01-01"), HostSettings()))
    assert "as-of=2024-01-01" in environment_note(dated) and "never replaces" in environment_note(dated)
    assert "commit (or folder content) alone" in environment_note("defaults")
    assert "older dsbuild" in environment_note(None)


def test_show_says_whether_the_image_was_built_in_full_or_on_top_of_another():
    assert build_note({}) == "built: in full"
    note = build_note({"io.dsbuild.increment": "2", "io.dsbuild.incremental-from": "x:1@sha256:ab"})
    assert "incrementally, 2 increment(s) from a full build, on top of x:1@sha256:ab" in note


class FakeEngine:
    """Images as labels and files; `read_file` stands for docker create + cp."""

    IMAGES = {
        "a:1": ({"io.dsbuild.lock-origin": "from the committed lock binder/requirements.lock"},
                {LOCK_PATH: "numpy==1.26.2\njupyterlab==4.0.9\n", APT_LOCK_PATH: "jq=1.6-2.1\nlibjq1=1.6-2.1\n",
                 INSTALLED_PATH: "numpy-1.26.2.dist-info\njupyterlab-4.0.9.dist-info\ntabulate-0.9.0.dist-info\n"}),
        "b:1": ({}, {LOCK_PATH: "numpy==1.26.3\njupyterlab==4.0.9\n", APT_LOCK_PATH: "jq=1.6-2.2\n"}),
    }

    def ping(self):
        pass

    def inspect_image(self, ref):
        return {"Id": "sha256:1"} if ref in self.IMAGES else None

    def image_labels(self, ref):
        return dict(self.IMAGES[ref][0]) if ref in self.IMAGES else None

    def read_file(self, image, path):
        return self.IMAGES[image][1].get(path)


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(repro_commands, "DockerEngine", FakeEngine)


def test_show_says_where_the_versions_came_from_and_what_is_outside_the_lock(fake):
    result = CliRunner().invoke(main, ["show", "a:1"])
    assert result.exit_code == 0, result.output
    assert "packages: from the committed lock binder/requirements.lock" in result.output
    assert "2 Debian packages installed for apt.txt" in result.output
    assert "installed outside the lock: 1" in result.output and "tabulate" in result.output
    result = CliRunner().invoke(main, ["show", "b:1"])
    assert "origin not recorded" in result.output and "installed outside the lock: not recorded" in result.output


def test_diff_reports_python_then_debian_changes(fake):
    result = CliRunner().invoke(main, ["diff", "a:1", "b:1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["~ numpy 1.26.2 -> 1.26.3", "- apt:libjq1=1.6-2.1", "~ apt:jq 1.6-2.1 -> 1.6-2.2"]
