"""The pure parts of the builder's containment: Dockerfile checks, cgroup limits, the
limits handshake, reading one file out of a tar stream, garbage-collection plans."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from dsbuild.builder.dockerfile_check import check_repo_dockerfile
from dsbuild.builder.errors import BuildFailed, ConfigError
from dsbuild.builder.gc import Entry, parse_age, parse_bytes, plan_removals
from dsbuild.builder.image_files import ImageFileTooLarge, _single_file
from dsbuild.builder.limits import BuildPolicy, CgroupFiles, CgroupLimiter, limited_steps


@pytest.mark.parametrize("text", [
    "FROM x\nRUN --mount=type=cache,id=dsbuild-uv-1,target=/c true\n",
    "FROM x\nRUN --mo\\\nunt=type=cache,target=/c true\n",
    "FROM x\nRUN --mo\\\n# a comment inside the continuation\nunt=type=cache,target=/c true\n",
    "# escape=`\nFROM x\nRUN --mo`\nunt=type=secret,id=dsbuild-index cat /run/secrets/dsbuild-index\n",
    "FROM x\nRUN   --MOUNT=type=bind,target=/x true\n",
])
def test_repository_dockerfiles_may_not_mount(text):
    with pytest.raises(ConfigError, match="RUN --mount is not allowed"):
        check_repo_dockerfile(text)


def test_repository_dockerfiles_may_not_pick_a_frontend():
    with pytest.raises(ConfigError, match="syntax"):
        check_repo_dockerfile("# syntax=evil.example/frontend\nFROM x\n")


def test_plain_dockerfiles_pass():
    check_repo_dockerfile("# a comment with --mount in it\nFROM x\nRUN pip install -r requirements.txt\nUSER 1000\n")


def test_cgroup_v1_files_end_with_pids():
    files = CgroupFiles.for_policy(BuildPolicy(memory=2**30, cpus=1.5, pids=100), "/docker/buildkit/abc", Path("/cg"))
    writes = [(str(path), value) for path, value in files.writes]
    assert ("/cg/memory/docker/buildkit/abc/memory.limit_in_bytes", str(2**30)) in writes
    assert ("/cg/cpu/docker/buildkit/abc/cpu.cfs_quota_us", "150000") in writes
    assert writes[-1] == ("/cg/pids/docker/buildkit/abc/pids.max", "100")  # the step waits for this one


def test_cgroup_v2_files():
    files = CgroupFiles.for_policy(BuildPolicy(memory=2**30, cpus=2, pids=50), "/x/y", Path("/cg"), v2=True)
    assert dict((str(p), v) for p, v in files.writes) == {
        "/cg/x/y/memory.max": str(2**30), "/cg/x/y/memory.swap.max": "0", "/cg/x/y/cpu.max": "200000 100000", "/cg/x/y/pids.max": "50",
    }


def _limiter(tmp_path: Path) -> CgroupLimiter:
    for ctrl in ("memory", "cpu", "pids"):
        (tmp_path / ctrl / "docker/buildkit/good").mkdir(parents=True)
        (tmp_path / ctrl / "docker/buildkit/other").mkdir(parents=True)
    return CgroupLimiter(BuildPolicy(pids=64), frozenset({9}), tmp_path)


def test_only_the_first_line_of_a_limited_step_names_its_cgroup(tmp_path):
    limiter = _limiter(tmp_path)
    steps = {5: 9, 6: 3}.get
    limiter.feed("#6 0.10 dsbuild-limits: /docker/buildkit/other", steps)  # not a limited step
    limiter.feed("#5 0.10 dsbuild-limits: /docker/buildkit/good", steps)
    limiter.feed("#5 0.20 dsbuild-limits: /docker/buildkit/other", steps)  # the repository's code, later
    assert limiter.applied == ["/docker/buildkit/good"]
    assert (tmp_path / "pids/docker/buildkit/good/pids.max").read_text() == "64"
    assert not (tmp_path / "pids/docker/buildkit/other/pids.max").exists()


def test_a_step_whose_first_line_is_not_the_marker_gets_no_say(tmp_path):
    limiter = _limiter(tmp_path)
    limiter.feed("#5 0.10 hello", {5: 9}.get)
    limiter.feed("#5 0.20 dsbuild-limits: /docker/buildkit/other", {5: 9}.get)
    assert limiter.applied == []


@pytest.mark.parametrize("bad", ["/", "/docker/../../etc", "relative", "/a b"])
def test_odd_cgroup_paths_are_refused(tmp_path, bad):
    with pytest.raises(BuildFailed):
        _limiter(tmp_path).apply(bad)


def test_limited_steps_are_the_ones_running_repository_code():
    phases = ("base", "base", "jupyter", "environment files", "dependencies", "dependencies", "repository", "postBuild", "start")
    assert limited_steps(phases) == frozenset({5, 6, 7, 8})


def _tar(name: str, data: bytes | None = None, link: str | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        if link is not None:
            info.type, info.linkname = tarfile.SYMTYPE, link
            tar.addfile(info)
        else:
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data or b""))
    return out.getvalue()


def test_one_regular_file_is_read_from_a_copy_stream():
    assert _single_file(_tar("requirements.lock", b"a==1\n"), "/x", 100).data == b"a==1\n"
    assert _single_file(_tar("requirements.lock", link="/etc/shadow"), "/x", 100) is None
    with pytest.raises(ImageFileTooLarge):
        _single_file(_tar("big", b"x" * 200), "/x", 100)


def test_gc_plan_by_age_then_by_size():
    entries = [Entry("a", 100, 10), Entry("b", 900, 10), Entry("c", 950, 10), Entry("d", 990, 10)]
    assert [e.key for e in plan_removals(entries, now=1000, max_age=500, max_bytes=None)] == ["a"]
    assert [e.key for e in plan_removals(entries, now=1000, max_age=500, max_bytes=15)] == ["a", "b", "c"]
    assert parse_age("7d") == 7 * 86400 and parse_age("90") == 90 and parse_bytes("50g") == 50 * 2**30
    with pytest.raises(ValueError):
        parse_age("soon")
