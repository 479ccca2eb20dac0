"""The benchmark's one command: build, rebuild, size and start-up of the reference
repository (examples/benchmark-reference), three ways, side by side.

    python -m benchmarks.run                 # 3 repetitions, about 20 minutes on 2 cores
    python -m benchmarks.run --quick         # 1 repetition
    python -m benchmarks.run --write-docs    # also put the table into docs/benchmarks.md

Prints the markdown table on stdout (progress on stderr) and writes every run, the
machine and the versions to a JSON file. Everything it creates (images, containers,
base-image aliases, BuildKit cache records, temporary folders) is removed at the end,
also on Ctrl-C."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.common import CommandFailed, Janitor, build_cache_bytes, build_cache_records, docker, log, machine_info  # noqa: E402
from benchmarks.scenarios import Bench  # noqa: E402
from benchmarks.table import render  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"
START_MARK = "<!-- benchmark-results:start -->"
END_MARK = "<!-- benchmark-results:end -->"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, metavar="N", help="repetitions of each measurement (default 3)")
    parser.add_argument("--quick", action="store_true", help="one repetition (same as --repeat 1)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="where to write the runs (default benchmarks/results/<date>.json)")
    parser.add_argument("--write-docs", action="store_true", help=f"replace the results section of {DOCS.relative_to(ROOT)}")
    parser.add_argument("--no-profile", action="store_true", help="skip the profile of dsbuild's build (saves about a minute)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def update_docs(table: str, path: Path = DOCS) -> None:
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START_MARK}\n{END_MARK}\n"
    if START_MARK not in text or END_MARK not in text:
        text += f"\n{START_MARK}\n{END_MARK}\n"
    head, rest = text.split(START_MARK, 1)
    _, tail = rest.split(END_MARK, 1)
    path.write_text(f"{head}{START_MARK}\n{table}{END_MARK}{tail}")


def compile_bytecode() -> None:
    """dsbuild and its dependencies byte-compiled, as an installed tool is (pip compiles what
    it installs): an editable install under uv, or with PYTHONDONTWRITEBYTECODE set, has no
    bytecode, and every `dsbuild` command would then compile each module it imports again
    (0.2 s of a code-only rebuild). Only what is missing or stale is compiled."""
    import compileall
    import importlib
    import sysconfig

    roots = {Path(sysconfig.get_paths()["purelib"])}
    roots |= {Path(importlib.import_module(f"dsbuild.{part}").__file__).parent
              for part in ("builder", "cli", "launch", "spawner", "templates")}
    for root in sorted(roots):
        compileall.compile_dir(str(root), quiet=1, workers=0)


def _finish(report: dict, janitor: Janitor, work: Path) -> None:
    """Clean up and note the build cache's size; when the engine is gone (dockerd's BuildKit
    can panic under concurrent builds, moby#42414) the report is still written, saying what
    could not be cleaned up, instead of being lost with the traceback."""
    for key, step in (("build_cache_bytes_peak", build_cache_bytes), ("cleanup", janitor.cleanup),
                      ("build_cache_bytes_after", build_cache_bytes)):
        try:
            value = step()
            if value is not None:
                report[key] = value
        except CommandFailed as error:
            report.setdefault("cleanup_errors", []).append(f"{key}: {error}")
            log(f"{key} failed: {error}")
    shutil.rmtree(work, ignore_errors=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    docker("version", "--format", "{{.Server.Version}}")
    log("byte-compiling dsbuild and its dependencies (as installed tools are)")
    compile_bytecode()
    nonce = secrets.token_hex(3)
    janitor = Janitor()
    work = Path(tempfile.mkdtemp(prefix=f"dsbench-{nonce}-", dir="/var/tmp"))
    report: dict = {"settings": {"repeat": args.repeat, "nonce": nonce}, "runs": []}
    started = time.perf_counter()
    interrupted = False
    failure: Exception | None = None
    try:
        report["machine"] = machine_info()
        records = build_cache_records()
        report["build_cache_bytes_before"] = build_cache_bytes(records)
        janitor.cache_before = {r["ID"] for r in records}
        bench = Bench(args.repeat, work, janitor, nonce)
        report["runs"] = bench.runs
        report["profile"] = bench.profile
        log(f"run {nonce}: {args.repeat} repetition(s); work folder {work}")
        bench.all(with_profile=not args.no_profile)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted")
    except Exception as error:  # report what was measured, then fail
        failure = error
        log(f"failed: {error}")
    finally:
        _finish(report, janitor, work)
    report.setdefault("machine", {})["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    report["interrupted"] = interrupted
    report["error"] = str(failure) if failure else None
    table = render(report)
    out = args.json or RESULTS / f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(table)
    log(f"wrote {out} ({report['total_seconds']:.0f} s in all)")
    if args.write_docs and not interrupted and failure is None:
        update_docs(table)
        log(f"updated {DOCS}")
    return 130 if interrupted else 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
