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


def test_uv_timings_per_dsbuild_phase_read_from_the_build_log():
    from benchmarks.ways import dsbuild_uv

    log = ("  jupyter | Resolved 98 packages in 1.10s\n  jupyter | Installed 98 packages in 412ms\n"
           "  dependencies | Bytecode compiled 27,120 files in 1m 02s\n  dependencies |  + numpy==2.0.0\n")
    assert dsbuild_uv(log) == {"jupyter": {"Resolved": 1.1, "Installed": 0.41}, "dependencies": {"Bytecode compiled": 62.0}}
