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


def test_shared_bytes_counts_what_follows_the_shared_layers(monkeypatch):
    histories = {
        "a": [("FROM base", 100), ("RUN jupyter", 50), ("RUN deps a", 30), ("COPY repo", 1)],
        "b": [("FROM base", 100), ("RUN jupyter", 50), ("RUN deps b", 20), ("ENV X", 0), ("COPY repo", 2)],
    }
    layers = {"a": ["l-base", "l-jupyter", "l-deps-a", "l-repo-a"], "b": ["l-base", "l-jupyter", "l-deps-b", "l-repo-b"]}
    monkeypatch.setattr(profile, "_history", histories.__getitem__)
    monkeypatch.setattr(profile, "_layers", layers.__getitem__)
    got = profile.shared_bytes("a", "b")
    assert got["moved_bytes"] == 22 and got["shared_bytes"] == 150 and got["second_image_bytes"] == 172
    assert got["moved_steps"] == [["RUN deps b", 20], ["COPY repo", 2]]


def test_the_same_instruction_with_other_content_is_not_shared(monkeypatch):
    """A --no-cache rebuild runs the same steps but makes new layers (new file times)."""
    history = [("FROM base", 100), ("RUN jupyter", 50), ("COPY repo", 1)]
    monkeypatch.setattr(profile, "_history", lambda image: history)
    monkeypatch.setattr(profile, "_layers", lambda image: ["l-base", f"l-jupyter-{image}", f"l-repo-{image}"])
    got = profile.shared_bytes("a", "b")
    assert got["moved_bytes"] == 51 and got["shared_layers"] == 1


def test_uv_timings_per_dsbuild_phase_read_from_the_build_log():
    from benchmarks.ways import dsbuild_uv

    log = ("  jupyter | Resolved 98 packages in 1.10s\n  jupyter | Installed 98 packages in 412ms\n"
           "  dependencies | Bytecode compiled 27,120 files in 1m 02s\n  dependencies |  + numpy==2.0.0\n")
    assert dsbuild_uv(log) == {"jupyter": {"Resolved": 1.1, "Installed": 0.41}, "dependencies": {"Bytecode compiled": 62.0}}
