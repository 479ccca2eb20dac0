"""Runs -> the markdown table and the aims. Pure: no I/O, so it is unit-tested.

A run is a dict: {"scenario", "way" ("dsbuild" | "handwritten" | "floor"), "repeat",
"value" (seconds or bytes), "unit" ("s" | "bytes"), "detail"}."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

WAYS = ("dsbuild", "handwritten", "floor")


@dataclass(frozen=True)
class Stats:
    median: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Row:
    scenario: str
    label: str
    unit: str  # "s" or "MB"
    floor: str  # what the floor column holds for this row


ROWS = (
    Row("cold_build", "Cold build (s)", "s", "uv, cold cache"),
    Row("warm_build", "Build, package cache warm, no layer cache (s)", "s", "uv, warm cache"),
    Row("code_rebuild", "Rebuild after a notebook edit (s)", "s", "nothing to install"),
    Row("package_rebuild", "Rebuild after adding one package (s)", "s", "uv adds it to the venv"),
    Row("size_reference", "Image size, reference repo (MB)", "MB", "base image + host venv"),
    Row("size_minimal", "Image size, minimal: numpy, pandas, matplotlib (MB)", "MB", "base image + host venv"),
    Row("size_minimal_node", "Image size, minimal + a postBuild that runs npm (Node.js added) (MB)", "MB", "—"),
    Row("second_repo_moves", "A second repository on the same base (the minimal one, after the reference): bytes it does not share (MB)", "MB", "—"),
    Row("start_to_ready", "Start to ready (s)", "s", "trivial container"),
    Row("start_container", "Start to ready, `docker run` + poll (s)", "s", "trivial container"),
    Row("launch_link", "Launch link to JupyterLab through the hub, new commit, environment cached (s)", "s", "—"),
)


def summarize(runs: Iterable[Mapping]) -> dict[tuple[str, str], Stats]:
    values: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        values.setdefault((run["scenario"], run["way"]), []).append(float(run["value"]))
    return {key: Stats(statistics.median(v), min(v), max(v), len(v)) for key, v in values.items()}


def _scaled(value: float, unit: str) -> float:
    return value / 1e6 if unit == "MB" else value


def _number(value: float, unit: str) -> str:
    if unit == "MB":
        return f"{value:.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def cell(stats: Stats | None, unit: str) -> str:
    """`median (min–max)`, or just the value when every run gave the same number."""
    if stats is None:
        return "—"
    median, low, high = (_scaled(v, unit) for v in (stats.median, stats.low, stats.high))
    text = _number(median, unit)
    if stats.n > 1 and _number(low, unit) != _number(high, unit):
        text += f" ({_number(low, unit)}–{_number(high, unit)})"
    return text


def ratio(a: Stats | None, b: Stats | None) -> float | None:
    if a is None or b is None or b.median <= 0:
        return None
    return a.median / b.median


def ratio_text(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}x" if value < 1 else f"{value:.1f}x" if value < 10 else f"{value:.0f}x"


@dataclass(frozen=True)
class Aim:
    label: str
    target: str
    measured: str
    met: bool | None  # None: not measured


def _get(stats: Mapping[tuple[str, str], Stats], scenario: str, way: str) -> Stats | None:
    return stats.get((scenario, way))


def aims(stats: Mapping[tuple[str, str], Stats]) -> list[Aim]:
    """The issue's aims, each with what was measured (medians) and whether it is met."""
    s = lambda scenario, way: _get(stats, scenario, way)  # noqa: E731
    result: list[Aim] = []

    def add(label: str, target: str, value: float | None, fmt: Callable[[float], str], ok: Callable[[float], bool]) -> None:
        result.append(Aim(label, target, "not measured" if value is None else fmt(value), None if value is None else ok(value)))

    code = s("code_rebuild", "dsbuild")
    add("Code-only rebuild", "under 0.5 s", code and code.median, lambda v: f"{v:.2f} s", lambda v: v < 0.5)
    speedup = ratio(s("code_rebuild", "handwritten"), code)
    add("Code-only rebuild vs hand-written", "at least 10x faster", speedup, lambda v: f"{v:.1f}x faster", lambda v: v >= 10)
    package = ratio(s("package_rebuild", "dsbuild"), s("package_rebuild", "floor"))
    add("One-package rebuild", "within 1.5x the host install of that package", package, ratio_text, lambda v: v <= 1.5)
    cold = ratio(s("cold_build", "dsbuild"), s("cold_build", "floor"))
    add("Cold build", "within 1.3x the floor (uv, cold cache)", cold, ratio_text, lambda v: v <= 1.3)
    minimal = s("size_minimal", "dsbuild")
    add("Minimal image", "under 450 MB", minimal and minimal.median, lambda v: f"{v / 1e6:.0f} MB", lambda v: v < 450e6)
    minimal_ratio = ratio(minimal, s("size_minimal", "handwritten"))
    add("Minimal image vs hand-written", "at most 0.6x", minimal_ratio, ratio_text, lambda v: v <= 0.6)
    sizes = [ratio(s(row, "dsbuild"), s(row, "handwritten")) for row in ("size_reference", "size_minimal")]
    sizes = [r for r in sizes if r is not None]
    add("Every image vs hand-written", "at most 0.6x", max(sizes) if sizes else None,
        lambda v: "largest ratio " + ratio_text(v), lambda v: v <= 0.6)
    start = s("start_to_ready", "dsbuild")
    add("Start to ready", "under 1 s", start and start.median, lambda v: f"{v:.2f} s", lambda v: v < 1.0)
    moved, minimal_size = s("second_repo_moves", "dsbuild"), s("size_minimal", "dsbuild")
    add("Second repository on the same base", "moves only the layers that differ (reported)",
        moved and moved.median, lambda v: f"{v / 1e6:.0f} MB" + (
            f" of {minimal_size.median / 1e6:.0f} MB ({v / minimal_size.median:.0%})" if minimal_size else ""),
        lambda v: minimal_size is not None and v < minimal_size.median)
    launch = s("launch_link", "dsbuild")
    result.append(Aim("Launch link to JupyterLab, new commit, environment cached", "under 1.5 s through the hub",
                      f"{launch.median:.2f} s" if launch else "not measured by this run: `python -m benchmarks.launch_link`"
                      " (a link through the local hub) measures it", None if launch is None else launch.median < 1.5))
    return result


NOTES = (
    "**Cold** means nothing cached for that build: dsbuild runs with `--no-cache`, a new alias of the base "
    "image (dsbuild names its uv cache mount after the base image, so the mount is new and empty) and a new "
    "dsbuild cache folder (so the whole context is uploaded); the hand-written Dockerfile runs with "
    "`--no-cache` (apt and pip download everything, pip has no cache); the floor uses a new, empty uv cache "
    "and a new venv. All three download through the same proxy.",
    "**Package cache warm**: dsbuild with `--no-cache` but its uv cache mount filled; the floor: a new venv "
    "from a filled uv cache.",
    "**Notebook edit**: a markdown cell appended to the notebook (a different one each repetition), starting "
    "from the reference as built. **One package**: `seaborn==0.13.2` appended to requirements.txt; it is "
    "downloaded in the first repetition and comes from the package cache afterwards, for dsbuild and the "
    "floor alike (the hand-written Dockerfile has no package cache); the floor installs the new "
    "requirements into the existing venv.",
    "**Sizes**: `docker image inspect` (uncompressed, base image included); the floor is the base image "
    "plus the bytes of the host venv (uv's defaults: hard links, no bytecode). The minimal example is built once.",
    "**Start to ready**: until `GET /api/status` answers. dsbuild: `dsbuild run --detach` on a built image "
    "(CLI start, image check, `docker run`, wait); hand-written: `docker run -d` then polling; floor: "
    "`docker run --rm <base> true`.",
    "**Code-only rebuild**: when only the repository changed and an image with the same environment "
    "layers exists, dsbuild adds the repository's layer without a build (builder/append.py, "
    "docs/builder.md); the hand-written Dockerfile is rebuilt by `docker build` with its cache. dsbuild "
    "runs byte-compiled, as an installed tool does (the run compiles what is missing first).",
    "dsbuild and the floor install JupyterLab and JupyterHub (dsbuild's pinned Jupyter packages); the "
    "hand-written Dockerfile installs `jupyterlab` only.",
)


def _machine_line(machine: Mapping) -> str:
    memory = machine.get("memory_bytes", 0) / 2**30
    parts = [
        f"{machine.get('cpus', '?')} CPUs ({machine.get('cpu_model', '?')})",
        f"{memory:.1f} GiB RAM",
        f"Docker engine {machine.get('docker_server', '?')} ({machine.get('storage_driver', '?')}, BuildKit)",
        f"dsbuild {machine.get('dsbuild', '?')}",
        f"{machine.get('uv', 'uv ?')}",
        f"kernel {machine.get('kernel', '?')}",
    ]
    start, end = machine.get("load_average_start"), machine.get("load_average_end")
    if start:
        parts.append(f"load average {start[0]} at the start" + (f" and {end[0]} at the end" if end else ""))
    return ", ".join(parts)


UV_PARTS = (("Resolved", "resolve"), ("Prepared", "download + unpack"), ("Installed", "install"),
            ("Bytecode compiled", "bytecode"))


def cold_profile(runs: Iterable[Mapping]) -> list[str]:
    """Where dsbuild's cold build went, step by step (its median run), beside the floor:
    each phase's seconds as dsbuild reports them (steps of 1 s or more), uv's own split of
    them, and what no step accounts for (the CLI, the context upload, the layer export, tags)."""
    cold = sorted((r for r in runs if r["scenario"] == "cold_build" and r["way"] == "dsbuild"), key=lambda r: r["value"])
    floor = [r["value"] for r in runs if r["scenario"] == "cold_build" and r["way"] == "floor"]
    if not cold or not cold[len(cold) // 2].get("detail", {}).get("phases"):
        return []
    run = cold[len(cold) // 2]
    phases, uv = run["detail"]["phases"], run["detail"].get("uv", {})
    lines = ["", f"Cold build, where dsbuild's {run['value']:.1f} s went (its median run; the floor, "
             f"uv with a cold cache and no bytecode, took {statistics.median(floor):.1f} s):" if floor else
             f"Cold build, where dsbuild's {run['value']:.1f} s went (its median run):", "",
             "| Phase | Seconds | " + " | ".join(label for _, label in UV_PARTS) + " |",
             "|---|---:|" + "---:|" * len(UV_PARTS)]
    for phase, seconds in phases.items():
        split = uv.get(phase, {})
        lines.append(f"| {phase} | {seconds:.1f} | " + " | ".join(
            f"{split[key]:.1f}" if key in split else "—" for key, _ in UV_PARTS) + " |")
    rest = run["value"] - sum(phases.values())
    lines.append(f"| not in a step: CLI, context upload, layer export, tags | {rest:.1f} |" + " |" * len(UV_PARTS))
    return lines


def render(report: Mapping) -> str:
    """The markdown for a report: machine, the side-by-side table, the aims."""
    stats = summarize(report.get("runs", ()))
    machine = report.get("machine", {})
    settings = report.get("settings", {})
    lines = [
        f"Ran {machine.get('date', '?')} on {_machine_line(machine)}; "
        f"{settings.get('repeat', '?')} repetition{'' if settings.get('repeat') == 1 else 's'} of each measurement, "
        "shown as median (min–max)."
        + (f" The whole run took {report['total_seconds'] / 60:.0f} minutes." if report.get("total_seconds") else ""),
        "",
        "| Scenario | dsbuild | hand-written | floor | floor is | dsbuild / hand-written | dsbuild / floor |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for row in ROWS:
        got = {way: _get(stats, row.scenario, way) for way in WAYS}
        if not any(got.values()):
            continue
        lines.append(
            f"| {row.label} | {cell(got['dsbuild'], row.unit)} | {cell(got['handwritten'], row.unit)} "
            f"| {cell(got['floor'], row.unit)} | {row.floor if got['floor'] else '—'} "
            f"| {ratio_text(ratio(got['dsbuild'], got['handwritten']))} | {ratio_text(ratio(got['dsbuild'], got['floor']))} |"
        )
    lines += cold_profile(report.get("runs", ()))
    lines += [""] + [f"- {note}" for note in NOTES]
    lines += ["", "| Aim | Target | Measured (medians) | Met |", "|---|---|---|---|"]
    for aim in aims(stats):
        met = "—" if aim.met is None else "yes" if aim.met else "**no**"
        lines.append(f"| {aim.label} | {aim.target} | {aim.measured} | {met} |")
    return "\n".join(lines) + "\n"
