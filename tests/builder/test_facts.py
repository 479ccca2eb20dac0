import os

import pytest

from dsbuild.builder.errors import ConfigError
from dsbuild.builder.facts import choose_config_dir, scan


def write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_root_configuration(tmp_path):
    write(tmp_path, {"requirements.txt": "numpy\n", "apt.txt": "jq\n", "notes.md": "x"})
    facts = scan(tmp_path)
    assert facts.config_dir == ""
    assert dict(facts.files) == {"requirements.txt": "numpy\n", "apt.txt": "jq\n"}


@pytest.mark.parametrize("folder", ["binder", ".binder"])
def test_binder_folder_wins_and_root_files_are_ignored(tmp_path, folder):
    write(tmp_path, {"requirements.txt": "root\n", f"{folder}/requirements.txt": "binder\n"})
    facts = scan(tmp_path)
    assert facts.config_dir == folder
    assert facts.text("requirements.txt") == "binder\n"
    assert facts.path("requirements.txt") == f"{folder}/requirements.txt"


def test_both_binder_folders_is_an_error():
    with pytest.raises(ConfigError, match="both 'binder/' and '.binder/'"):
        choose_config_dir({"binder", ".binder"})


def test_link_out_of_the_repository_is_refused(tmp_path):
    outside = tmp_path / "secret"
    outside.write_text("x")
    repo = tmp_path / "repo"
    repo.mkdir()
    os.symlink(outside, repo / "requirements.txt")
    with pytest.raises(ConfigError, match="points outside"):
        scan(repo)


def test_huge_configuration_file_is_refused(tmp_path):
    (tmp_path / "requirements.txt").write_bytes(b"a" * (2 << 20))
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        scan(tmp_path)
