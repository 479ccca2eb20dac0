"""Byte-compile an environment's Python files, the same bytes on every build.

Run inside the build, by the environment's own Python, right after an install step:

    python bytecode.py SITE_PACKAGES...

Every `.py` file under SITE_PACKAGES that has no bytecode for this Python yet is compiled
with hash-based invalidation, unchecked (PEP 552): the `.pyc` holds a hash of its source,
never the source's time, so the file is the same on every build and stays valid when the
step sets every file's time to one fixed value (templates/Dockerfile.j2). Files that
already have bytecode are left alone, so a later step's layer holds only its own files.
It prints how many files and bytes it wrote. Standard library only."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def sources(site: Path) -> list[str]:
    """The `.py` files under `site` without bytecode for this interpreter, sorted."""
    found = []
    for folder, dirs, files in os.walk(site):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                if not os.path.exists(importlib.util.cache_from_source(path)):
                    found.append(path)
    return found


def compile_one(path: str) -> int:
    """Bytes of the `.pyc` written for `path` (0 when the file does not compile, e.g. a
    template with Python 2 syntax: Python then compiles nothing for it either)."""
    try:
        target = py_compile.compile(path, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except (py_compile.PyCompileError, OSError, ValueError):
        return 0
    return os.path.getsize(target) if target else 0


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: bytecode.py SITE_PACKAGES...", file=sys.stderr)
        return 2
    paths = [p for site in argv for p in sources(Path(site))]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        sizes = list(pool.map(compile_one, paths, chunksize=64))
    written = sum(1 for s in sizes if s)
    print(f"dsbuild-bytecode: compiled {written} of {len(paths)} files, {sum(sizes)} bytes ({sum(sizes) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
