"""The profile's parsers, from made-up BuildKit output (no Docker needed)."""

from benchmarks import profile


def test_trim_lines_give_the_bytes_per_step():
    progress = "\n".join([
        "#9 [jupyter 1/1] RUN uv pip install jupyterlab",
        "#9 12.3 dsbuild-trim: removed 4 test folders, 2000000 bytes (2.0 MB) from /srv/dsbuild/venv/lib/python3.11/site-packages",
        "#9 DONE 30.1s",
        "#12 [dependencies 1/1] RUN uv pip sync",
        "#12 40.0 dsbuild-trim: removed 60 test folders, 116000000 bytes (116.0 MB) from /srv/x",
        "#12 DONE 50.0s",
    ])
    parsed = profile.parse_build(progress)
    assert parsed["trim"] == {"[jupyter 1/1] RUN uv pip install jupyter": 2000000, "[dependencies 1/1] RUN uv pip sync": 116000000}


def test_shared_bytes_counts_what_follows_the_common_history(monkeypatch):
    histories = {
        "a": [("FROM base", "t0", 100), ("RUN jupyter", "t1", 50), ("RUN deps a", "t2", 30), ("COPY repo", "t3", 1)],
        "b": [("FROM base", "t0", 100), ("RUN jupyter", "t1", 50), ("RUN deps b", "t4", 20), ("ENV X", "t4", 0), ("COPY repo", "t5", 2)],
    }
    monkeypatch.setattr(profile, "_history", histories.__getitem__)
    got = profile.shared_bytes("a", "b")
    assert got["moved_bytes"] == 22 and got["shared_bytes"] == 150 and got["second_image_bytes"] == 172
    assert got["moved_steps"] == [["RUN deps b", 20], ["COPY repo", 2]]
