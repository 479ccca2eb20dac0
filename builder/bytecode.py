"""Byte-compile an environment's Python files, the same bytes on every build.

Run inside the build, by the environment's own Python, right after an install step:

    python bytecode.py [--start] [--requirements FILE...] SITE_PACKAGES...

`.py` files under SITE_PACKAGES that have no bytecode for this Python yet are compiled
with hash-based invalidation, unchecked (PEP 552): the `.pyc` holds a hash of its source,
never the source's time, so the file is the same on every build and stays valid when the
step sets every file's time to one fixed value (templates/Dockerfile.j2). Files that
already have bytecode are left alone, so a later step's layer holds only its own files.

Without options every such file is compiled. With `--start` and/or `--requirements`,
only the modules that a start loads: a child Python (no bytecode written, a throwaway
home) imports what JupyterLab's server (with its extensions), the kernel and the
single-user server load when they start (`--start`), and the top-level modules of the
distributions the requirements files name (`--requirements`); the files of the modules
then in `sys.modules` are compiled, and nothing else. Whatever else is imported later
is compiled by Python on first use (the environment belongs to the notebook user). If
the child fails or takes too long, everything is compiled. It prints how many files and
bytes it wrote. Standard library only."""

from __future__ import annotations

import importlib.util
import json
import os
import py_compile
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# What `jupyter lab` and `jupyterhub-singleuser` import before they answer, and a kernel
# before it runs a cell; the server's own start is run without serving (initialize_server).
START_MODULES = ("jupyterlab.labapp", "jupyter_server.serverapp", "jupyterhub.singleuser", "jupyterhub.singleuser.extension",
                 "ipykernel_launcher", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell",
                 "ipykernel.comm", "ipykernel.debugger", "debugpy.server.api", "psutil", "IPython.core.completer", "nbformat",
                 "jupyter_client.manager")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
PROBE_SECONDS = 300

# The child: import what it is given, start the server's extensions without serving,
# print the files of the modules loaded. Errors of one import do not stop the others.
_PROBE = r"""
import json, os, sys
names, start, out = json.loads(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
compiled = set()  # sources compiled on import, also of imports that then failed (Python writes their bytecode too)
sys.addaudithook(lambda event, args: event == "compile" and isinstance(args[1], str) and compiled.add(args[1]))
for name in names:
    try:
        __import__(name)
    except BaseException:
        pass
if start:
    try:
        from jupyterlab.labapp import LabApp
        LabApp.initialize_server(argv=["--ServerApp.port=0", "--ServerApp.ip=127.0.0.1",
                                       "--ServerApp.open_browser=False", "--ServerApp.token=probe"])
    except BaseException:
        pass
    try:  # a kernel's own start, without running it (its sockets on loopback)
        from ipykernel.kernelapp import IPKernelApp
        IPKernelApp.instance().initialize(["-f", os.path.join(os.path.dirname(out), "kernel.json")])
    except BaseException:
        pass
files = sorted(({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} | compiled) - {""})
with open(out, "w") as handle:
    json.dump(files, handle)
os._exit(0)  # the kernel's threads would keep it alive
"""


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


def requirement_modules(files: list[str]) -> list[str]:
    """The top-level modules of the distributions named in requirements files, as the
    installed distributions' files say (numpy, pandas, matplotlib, PIL for pillow)."""
    wanted = set()
    for name in files:
        for line in Path(name).read_text(errors="replace").splitlines():
            if (match := _NAME.match(line)) and not line.lstrip().startswith(("-", "#")):
                wanted.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    modules = set()
    for dist, names in _top_level().items():
        if dist in wanted:
            modules |= names
    return sorted(modules)


def _top_level() -> dict[str, set[str]]:
    """Each installed distribution's top-level modules, from `top_level.txt`, else the first
    part of its files (what `importlib.metadata.packages_distributions` does, which Python
    3.9, bullseye's, does not have)."""
    from importlib import metadata

    found: dict[str, set[str]] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        top = (dist.read_text("top_level.txt") or "").split()
        for path in () if top else dist.files or ():
            parts = path.parts
            if len(parts) > 1 and "." not in parts[0]:
                top.append(parts[0])
            elif len(parts) == 1 and parts[0].endswith(".py"):
                top.append(parts[0][:-3])
        modules = {module for module in top if module.isidentifier() and not module.startswith("_")}
        if name and modules:
            found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), set()).update(modules)
    return found


def loaded_files(modules: list[str], start: bool) -> set[str] | None:
    """The files of the modules loaded by importing `modules` (and starting the server,
    with `start`) in a child Python; None when the child failed."""
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # never in a layer
    with tempfile.TemporaryDirectory(prefix="dsbuild-bytecode-", dir=shm) as home:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HOME": home, "MPLCONFIGDIR": home,
               "JUPYTER_RUNTIME_DIR": home, "JUPYTER_CONFIG_DIR": home, "IPYTHONDIR": home}
        try:
            out = os.path.join(home, "loaded.json")
            done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(modules), "1" if start else "0", out], cwd=home,
                                  env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_SECONDS)
            files = json.loads(Path(out).read_text()) if done.returncode == 0 else None
        except (subprocess.TimeoutExpired, ValueError, OSError):
            return None
    return None if files is None else {os.path.realpath(f) for f in files}


def compile_one(path: str) -> int:
    """Bytes of the `.pyc` written for `path` (0 when the file does not compile, e.g. a
    template with Python 2 syntax: Python then compiles nothing for it either)."""
    try:
        target = py_compile.compile(path, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except (py_compile.PyCompileError, OSError, ValueError):
        return 0
    return os.path.getsize(target) if target else 0


def main(argv: list[str]) -> int:
    start = "--start" in argv
    argv = [a for a in argv if a != "--start"]
    requirements: list[str] = []
    if "--requirements" in argv:
        at = argv.index("--requirements")
        sites = argv[:at]
        rest = argv[at + 1:]
        requirements = [a for a in rest if not os.path.isdir(a)]
        sites += [a for a in rest if os.path.isdir(a)]
    else:
        sites = argv
    if not sites:
        print("usage: bytecode.py [--start] [--requirements FILE...] SITE_PACKAGES...", file=sys.stderr)
        return 2
    paths = [p for site in sites for p in sources(Path(site))]
    scope = "every file"
    if start or requirements:
        modules = (list(START_MODULES) if start else []) + requirement_modules(requirements)
        loaded = loaded_files(modules, start)
        if loaded is not None:
            paths = [p for p in paths if os.path.realpath(p) in loaded]
            scope = f"the modules {len(modules)} imports load"
        else:
            scope = "every file (the import probe failed)"
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        sizes = list(pool.map(compile_one, paths, chunksize=64))
    written = sum(1 for s in sizes if s)
    print(f"dsbuild-bytecode: compiled {written} of {len(paths)} files ({scope}), {sum(sizes)} bytes ({sum(sizes) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
