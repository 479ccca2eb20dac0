"""The benchmark's table and aims, from made-up runs (no Docker needed)."""

from benchmarks.run import END_MARK, START_MARK, update_docs
from benchmarks.table import Stats, aims, cell, render, summarize


def run(scenario, way, value, repeat=1, unit="s"):
    return {"scenario": scenario, "way": way, "repeat": repeat, "value": value, "unit": unit, "detail": {}}


def runs_for(scenario, way, values, unit="s"):
    return [run(scenario, way, v, i + 1, unit) for i, v in enumerate(values)]


RUNS = (
    runs_for("cold_build", "dsbuild", [40.0, 44.0, 42.0])
    + runs_for("cold_build", "handwritten", [60.0, 50.0, 55.0])
    + runs_for("cold_build", "floor", [10.0, 12.0, 11.0])
    + runs_for("code_rebuild", "dsbuild", [0.5, 0.4, 0.3])
    + runs_for("code_rebuild", "handwritten", [50.0, 52.0, 51.0])
    + runs_for("package_rebuild", "dsbuild", [6.0, 6.0, 6.0])
    + runs_for("package_rebuild", "floor", [0.5, 0.4, 0.6])
    + runs_for("size_reference", "dsbuild", [500e6] * 3, "bytes")
    + runs_for("size_reference", "handwritten", [1000e6] * 3, "bytes")
    + runs_for("size_minimal", "dsbuild", [420e6], "bytes")
    + runs_for("size_minimal", "handwritten", [600e6], "bytes")
    + runs_for("start_to_ready", "dsbuild", [2.5, 2.4, 2.6])
    + runs_for("second_repo_moves", "dsbuild", [300e6], "bytes")
)
MACHINE = {"date": "2026-01-01 00:00 UTC", "cpus": 2, "memory_bytes": 8 * 2**30, "docker_server": "20.10.24", "dsbuild": "0.1.0"}


def test_summarize_takes_median_min_and_max_per_scenario_and_way():
    stats = summarize(RUNS)
    assert stats[("cold_build", "dsbuild")] == Stats(42.0, 40.0, 44.0, 3)
    assert stats[("cold_build", "handwritten")] == Stats(55.0, 50.0, 60.0, 3)
    assert ("warm_build", "dsbuild") not in stats


def test_cells_show_the_median_then_the_range_and_sizes_in_megabytes():
    assert cell(Stats(42.0, 40.0, 44.0, 3), "s") == "42.0 (40.0–44.0)"
    assert cell(Stats(0.8, 0.7, 0.9, 3), "s") == "0.80 (0.70–0.90)"
    assert cell(Stats(500e6, 500e6, 500e6, 3), "MB") == "500"  # no range when every run agrees
    assert cell(None, "s") == "—"


def test_table_rows_hold_the_three_ways_and_ratios_of_medians():
    table = render({"machine": MACHINE, "settings": {"repeat": 3}, "runs": RUNS})
    cold = next(line for line in table.splitlines() if line.startswith("| Cold build"))
    cells = [c.strip() for c in cold.strip("|").split("|")]
    assert cells[1:4] == ["42.0 (40.0–44.0)", "55.0 (50.0–60.0)", "11.0 (10.0–12.0)"]
    assert cells[5] == "0.76x"  # 42 / 55
    assert cells[6] == "3.8x"  # 42 / 11
    assert "2 CPUs" in table and "8.0 GiB RAM" in table and "Docker engine 20.10.24" in table
    assert "Build, package cache warm" not in table  # no runs, no row


def test_aims_are_judged_on_medians():
    by_label = {aim.label: aim for aim in aims(summarize(RUNS))}
    assert by_label["Code-only rebuild"].met is True  # 0.4 s < 0.5 s
    assert by_label["Code-only rebuild vs hand-written"].met is True  # 51 / 0.4 = 128x
    assert by_label["One-package rebuild"].met is False  # 6 / 0.5 = 12x > 1.5x
    assert by_label["Cold build"].met is False  # 42 / 11 = 3.8x > 1.3x
    assert by_label["Minimal image"].met is True  # 420 MB
    size = by_label["Every image vs hand-written"]
    assert size.met is False and "0.70x" in size.measured  # the minimal image's 420/600 is the worst
    assert by_label["Start to ready"].met is False and by_label["Start to ready"].measured == "2.50 s"
    sharing = by_label["Second repository on the same base"]
    assert sharing.met is True and sharing.measured == "300 MB of 420 MB (71%)"


def test_the_raised_aims_for_rebuilds_and_starts():
    by_label = {aim.label: aim for aim in aims(summarize(runs_for("code_rebuild", "dsbuild", [0.6])
                                                          + runs_for("start_to_ready", "dsbuild", [0.9])))}
    assert by_label["Code-only rebuild"].met is False and by_label["Code-only rebuild"].target == "under 0.5 s"
    assert by_label["Start to ready"].met is True and by_label["Start to ready"].target == "under 1 s"


def test_an_aim_without_runs_is_reported_as_not_measured():
    by_label = {aim.label: aim for aim in aims(summarize(runs_for("cold_build", "dsbuild", [40.0])))}
    assert by_label["Cold build"].met is None and by_label["Cold build"].measured == "not measured"
    assert "| Cold build | within 1.3x the floor (uv, cold cache) | not measured | — |" in render({"runs": runs_for("cold_build", "dsbuild", [40.0])})


def test_docs_keep_their_text_around_the_results(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nintro\n\n{START_MARK}\nold table\n{END_MARK}\n\n## Notes\nkept\n")
    update_docs("| new | table |\n", doc)
    text = doc.read_text()
    assert "old table" not in text and "| new | table |" in text
    assert text.startswith("# Benchmarks\n\nintro") and text.endswith("## Notes\nkept\n")


def test_every_aim_of_issue_14_has_a_row_and_the_launch_row_says_where_it_is_measured():
    by_label = {aim.label: aim for aim in aims(summarize(RUNS))}
    assert by_label["Minimal image vs hand-written"].measured == "0.70x" and by_label["Minimal image vs hand-written"].met is False
    launch = by_label["Launch link to JupyterLab, new commit, environment cached"]
    assert launch.met is None and "benchmarks.launch_link" in launch.measured and launch.target == "under 1.5 s through the hub"
    measured = {a.label: a for a in aims(summarize(runs_for("launch_link", "dsbuild", [1.2, 1.4, 1.6])))}
    assert measured["Launch link to JupyterLab, new commit, environment cached"].met is True  # median 1.4 s


def test_the_cold_build_profile_splits_the_median_run_by_phase_and_by_uv():
    cold = [dict(run("cold_build", "dsbuild", value, i + 1),
                 detail={"phases": {"jupyter": value / 4, "dependencies": value / 2},
                         "uv": {"jupyter": {"Prepared": 2.0, "Bytecode compiled": 3.0}}})
            for i, value in enumerate([40.0, 48.0, 44.0])]
    table = render({"runs": cold + runs_for("cold_build", "floor", [10.0, 12.0, 11.0])})
    assert "where dsbuild's 44.0 s went" in table and "took 11.0 s" in table
    assert "| jupyter | 11.0 | — | 2.0 | — | 3.0 |" in table
    assert "| dependencies | 22.0 | — | — | — | — |" in table
    assert "| not in a step: CLI, context upload, layer export, tags | 11.0 |" in table
