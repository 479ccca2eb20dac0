import os

from dsbuild.builder.context import stage_context, sync_tree
from dsbuild.builder.facts import RepoFacts
from dsbuild.builder.host import HostSettings
from dsbuild.builder.plan import BaseFacts, PythonInstall, plan
from dsbuild.builder.render import render_dockerfile

BASE = BaseFacts("b", (PythonInstall("3.11", "/usr/bin/python3.11"),), "3.11")


def test_sync_copies_changes_removes_extras_keeps_links(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "a.py").write_text("a")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("x")
    os.symlink("pkg/a.py", src / "link")
    sync_tree(src, dest)
    assert (dest / "pkg" / "a.py").read_text() == "a"
    assert os.readlink(dest / "link") == "pkg/a.py"
    assert not (dest / ".git").exists()
    before = (dest / "pkg" / "a.py").stat().st_ino
    (dest / "stale.txt").write_text("old")
    sync_tree(src, dest)
    assert not (dest / "stale.txt").exists()
    assert (dest / "pkg" / "a.py").stat().st_ino == before  # unchanged files are not rewritten
    (src / "pkg" / "a.py").write_text("changed")
    sync_tree(src, dest)
    assert (dest / "pkg" / "a.py").read_text() == "changed"


def test_stage_context_writes_dsbuild_files_and_only_environment_files(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text("numpy\n")
    ca = tmp_path / "ca.pem"
    ca.write_text("CERT")
    the_plan = plan(RepoFacts("", {"requirements.txt": "numpy\n"}), BASE)
    ctx = tmp_path / "ctx"
    dockerfile = stage_context(ctx, repo, the_plan, render_dockerfile(the_plan), HostSettings(ca, None, ()))
    assert dockerfile == ctx / ".dsbuild" / "Dockerfile"
    assert sorted(p.name for p in (ctx / ".dsbuild" / "env").iterdir()) == ["dsbuild-notebook.in", "dsbuild-overrides.txt", "requirements.txt"]
    assert (ctx / ".dsbuild" / "ca.crt").read_text() == "CERT"
    assert os.access(ctx / ".dsbuild" / "entrypoint", os.X_OK)
    assert os.access(ctx / ".dsbuild" / "bin" / "uv", os.X_OK)
    assert (ctx / "repo" / "requirements.txt").exists()
    mtime = (ctx / ".dsbuild" / "build.env").stat().st_mtime_ns
    stage_context(ctx, repo, the_plan, render_dockerfile(the_plan), HostSettings(ca, None, ()))
    assert (ctx / ".dsbuild" / "build.env").stat().st_mtime_ns == mtime
