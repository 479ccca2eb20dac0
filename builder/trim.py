"""Remove the test suites that packages ship inside site-packages (`pandas/tests`, ...).

Run inside the build, right after an install step, by the environment's own Python:

    python trim.py SITE_PACKAGES...

so the layer never holds them. A folder named `tests` or `test` inside a package is
removed only when it holds nothing but tests: every Python file directly in it is
`test_*.py`, `*_test.py`, `conftest.py` or `__init__.py`. A package that imports helpers
from its tests folder at run time keeps it (astropy's `tests/runner.py`, tornado's
`test/util.py`), and so does a top-level `tests` package. It prints what it removed and
how many bytes, so each build's log reports the trim. Standard library only: it runs on
whatever Python the image has. `dsbuild build --keep-tests` leaves the suites in."""

from __future__ import annotations

import csv
import os
import shutil
import sys
from pathlib import Path

TEST_FOLDERS = frozenset({"tests", "test"})
_TEST_FILES = ("conftest.py", "__init__.py")


def only_tests(folder: Path) -> bool:
    """Every Python file directly in `folder` is a test module (or conftest/__init__)."""
    for entry in os.scandir(folder):
        name = entry.name
        if not name.endswith(".py") or entry.is_dir(follow_symlinks=False):
            continue
        if not (name in _TEST_FILES or name.startswith("test_") or name.endswith("_test.py")):
            return False
    return True


def folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def removable_folders(site: Path) -> list[Path]:
    """The removable test folders of `site`, outermost only (never one of site's own entries)."""
    found: list[Path] = []
    for package in sorted(os.scandir(site), key=lambda e: e.name):
        if not package.is_dir(follow_symlinks=False) or package.name.endswith((".dist-info", ".egg-info")):
            continue
        for root, dirs, _ in os.walk(package.path):
            dirs.sort()
            for name in list(dirs):
                path = Path(root) / name
                if name in TEST_FOLDERS and not path.is_symlink() and only_tests(path):
                    found.append(path)
                    dirs.remove(name)
    return found


def trim_tests(site: Path) -> tuple[int, int]:
    """Remove the test folders of `site`, and their lines from the packages' RECORD files
    (so the metadata lists only files that exist); returns (folders removed, bytes freed)."""
    folders, freed, removed = 0, 0, []
    for path in removable_folders(site):
        size = folder_bytes(path)
        shutil.rmtree(path)
        folders, freed = folders + 1, freed + size
        removed.append(path.relative_to(site).as_posix() + "/")
    if removed:
        for record in site.glob("*.dist-info/RECORD"):
            forget(record, tuple(removed))
    return folders, freed


def forget(record: Path, prefixes: tuple[str, ...]) -> None:
    """Drop the RECORD rows of files under `prefixes` (paths relative to site-packages)."""
    with open(record, newline="") as handle:
        rows = list(csv.reader(handle))
    kept = [row for row in rows if not (row and row[0].startswith(prefixes))]
    if len(kept) != len(rows):
        with open(record, "w", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(kept)


def main(argv: list[str]) -> int:
    for site in argv:
        if not Path(site).is_dir():
            continue
        folders, freed = trim_tests(Path(site))
        print(f"dsbuild-trim: removed {folders} test folders, {freed} bytes ({freed / 1e6:.1f} MB) from {site}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
