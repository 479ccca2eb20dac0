"""The pure parts of a code-only rebuild without a build (builder/append.py), and the
file digests remembered by stat (builder/digests.py)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time

import pytest

from dsbuild.builder.append import NotAppendable, appended_config, environment_digest, history_layers, write_layer
from dsbuild.builder.digests import FileDigests

# `docker history` as the engine answers it: newest first, no empty_layer flag.
HISTORY = [
    {"Created": 30, "CreatedBy": "COPY --chown=1000:1000 repo/ /home/jovyan/ # buildkit", "Size": 120, "Comment": "buildkit.dockerfile.v0"},
    {"Created": 20, "CreatedBy": "USER 1000", "Size": 0},
    {"Created": 20, "CreatedBy": "WORKDIR /home/jovyan", "Size": 0},  # a layer, though of no bytes
    {"Created": 10, "CreatedBy": "ENV A=1", "Size": 0},
    {"Created": 5, "CreatedBy": "/bin/sh -c #(nop)  CMD [\"bash\"]", "Size": 0},
    {"Created": 1, "CreatedBy": "", "Size": 1000, "Comment": "Imported from -"},
]


def test_history_keeps_every_entry_before_the_repository_layer_with_empty_layers_marked():
    entries = history_layers(HISTORY, 3)
    assert [e.get("created_by", "") for e in entries] == ["", '/bin/sh -c #(nop)  CMD ["bash"]', "ENV A=1", "WORKDIR /home/jovyan", "USER 1000"]
    assert [bool(e.get("empty_layer")) for e in entries] == [False, True, True, False, True]
    assert entries[0]["created"] == "1970-01-01T00:00:01Z" and entries[0]["comment"] == "Imported from -"


def test_history_that_does_not_account_for_the_layers_is_refused():
    assert history_layers(HISTORY, 4) is None
    assert history_layers(HISTORY[1:], 2) is None  # the last layer is not the repository's COPY


def test_the_config_replaces_the_last_layer_and_the_labels():
    info = {"Architecture": "amd64", "Os": "linux", "RootFS": {"Layers": ["sha256:a", "sha256:b", "sha256:old"]},
            "Config": {"User": "1000", "Env": ["A=1"], "Labels": {"old": "1"}, "Hostname": "", "AttachStdin": False}}
    config = appended_config(info, [{"created": "x"}], {"new": "2"}, "sha256:new", "2026-01-01T00:00:00Z", "COPY it")
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:a", "sha256:b", "sha256:new"]}
    assert config["config"] == {"User": "1000", "Env": ["A=1"], "Labels": {"new": "2"}}
    assert config["history"][-1]["created_by"] == "COPY it" and config["created"] == "2026-01-01T00:00:00Z"


def test_the_layer_holds_the_tree_under_home_owned_by_the_user(tmp_path):
    tree = tmp_path / "repo"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(tree / "sub" / "run.sh", 0o755)
    os.symlink("../a.txt", tree / "sub" / "link")
    out = io.BytesIO()
    diff_id = write_layer(tree, "/home/ana", 1234, out)
    assert diff_id == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()
    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(out.getvalue()))}
    assert list(members) == ["home", "home/ana", "home/ana/a.txt", "home/ana/sub", "home/ana/sub/link", "home/ana/sub/run.sh"]
    assert (members["home"].uid, members["home"].mode) == (0, 0o755)
    assert all(m.uid == m.gid == 1234 for name, m in members.items() if name != "home")
    assert members["home/ana/sub/run.sh"].mode == 0o755 and members["home/ana/sub/link"].linkname == "../a.txt"


def test_a_special_file_is_left_to_a_build(tmp_path):
    tree = tmp_path / "repo"
    tree.mkdir()
    os.mkfifo(tree / "pipe")
    with pytest.raises(NotAppendable):
        write_layer(tree, "/home/jovyan", 1000, io.BytesIO())


def _old(path):
    past = time.time() - 10
    os.utime(path, (past, past))


def test_the_environment_digest_follows_content_and_mode(tmp_path):
    own = tmp_path / ".dsbuild"
    (own / "bin").mkdir(parents=True)
    (own / "Dockerfile").write_text("FROM x\n")
    (own / "bin" / "tool").write_text("v1")
    first = environment_digest(own, FileDigests())
    assert environment_digest(own, FileDigests()) == first
    os.chmod(own / "bin" / "tool", 0o755)
    assert environment_digest(own, FileDigests()) != first
    (own / "Dockerfile").write_text("FROM y\n")
    assert environment_digest(own, FileDigests()) != first


def test_digests_are_remembered_by_stat_and_not_trusted_for_a_changed_file(tmp_path, monkeypatch):
    data = tmp_path / "data.bin"
    data.write_bytes(b"one")
    record = tmp_path / "record.json"
    digests = FileDigests(record)
    assert digests.digest(data, "data.bin") == hashlib.sha256(b"one").hexdigest()
    digests.save()
    assert not record.exists() or "data.bin" not in record.read_text()  # too new to be remembered
    monkeypatch.setattr(time, "time_ns", lambda: os.stat(data).st_ctime_ns + 5_000_000_000)
    digests = FileDigests(record)
    digests.digest(data, "data.bin")
    digests.save()
    assert "data.bin" in record.read_text()
    reads = []
    monkeypatch.setattr("dsbuild.builder.digests.sha256_file", lambda p: reads.append(p) or "x")
    assert FileDigests(record).digest(data, "data.bin") == hashlib.sha256(b"one").hexdigest() and reads == []
    data.write_bytes(b"two")  # a new ctime: read again
    assert FileDigests(record).digest(data, "data.bin") == "x" and reads == [data]
