"""The limits handshake for a repository's own Dockerfile: a tiny static program that
each of its RUN steps starts with (dockerfile_limits.py rewrites them into exec form).

A generated Dockerfile's steps run dsbuild's `limits.sh` with the base image's /bin/sh,
which dsbuild trusts. A repository's Dockerfile chooses its own base and may replace
/bin/sh in an earlier step, so its steps must not depend on anything in the image: this
program is static (no loader, no libc from the image). It prints the step's cgroup on the
step's first log line (`dsbuild-limits: /docker/buildkit/...`), waits until dsbuild has
set pids.max there (at most 60 s, else exits 97), then execs the step's command.

Built once with the host's C compiler (`cc -static`) into the cache folder, and put in a
one-file image `dsbuild-limits:<hash>` (FROM scratch) that the rewritten steps bind-mount
it from: nothing is added to the repository's build context, so its `COPY . .` and its
.dockerignore see only its own files."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import BuildFailed
from .limits import MARKER, BuildPolicy
from .progress import BuildFinished

SOURCE = r"""
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int limited(void) {
    const char *files[] = {"/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        char value[64] = "";
        if (!f) continue;
        if (!fgets(value, sizeof value, f)) value[0] = 0;
        fclose(f);
        return value[0] && strncmp(value, "max", 3) != 0;
    }
    return 0;
}

int main(int argc, char **argv) {
    char line[4096], path[4096] = "";
    FILE *f = fopen("/proc/self/cgroup", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *pids = strstr(line, ":pids:");
        if (pids) { strncpy(path, pids + 6, sizeof path - 1); break; }
        if (strncmp(line, "0::", 3) == 0 && !path[0]) strncpy(path, line + 3, sizeof path - 1);
    }
    if (f) fclose(f);
    path[strcspn(path, "\n")] = 0;
    printf("MARKER %s\n", path);
    fflush(stdout);
    struct timespec tick = {0, 100000000};
    for (int i = 0; !limited(); i++) {
        if (i > 600) { fputs("dsbuild: the build limits were not applied\n", stderr); return 97; }
        nanosleep(&tick, NULL);
    }
    if (argc < 2) return 0;
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    return 127;
}
""".replace("MARKER", MARKER)


def helper_binary(cache: Path) -> Path:
    """The compiled helper (built once per source, kept under `cache`/bin)."""
    digest = hashlib.sha256(SOURCE.encode()).hexdigest()[:16]
    target = cache / "bin" / f"limits-{digest}"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise BuildFailed("a repository's Dockerfile is built with cgroup limits through a small static program, "
                          "and no C compiler is installed to make it (apt-get install gcc libc6-dev)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dsbuild-limits-") as tmp:
        source = Path(tmp) / "limits.c"
        source.write_text(SOURCE)
        done = subprocess.run([compiler, "-static", "-Os", "-o", str(Path(tmp) / "limits"), str(source)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise BuildFailed(f"cannot build the limits helper: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
        os.replace(Path(tmp) / "limits", target)
    return target


def helper_image(engine, cache: Path) -> str:
    """`dsbuild-limits:<hash>`, the helper alone in an image (made once per helper)."""
    binary = helper_binary(cache)
    ref = f"dsbuild-limits:{binary.name.removeprefix('limits-')}"
    if engine.inspect_image(ref) is not None:
        return ref
    with tempfile.TemporaryDirectory(prefix="dsbuild-limits-") as tmp:
        shutil.copy2(binary, Path(tmp) / "limits")
        (Path(tmp) / "Dockerfile").write_text("FROM scratch\nCOPY limits /limits\n")
        image_id = None
        for event in engine.build(Path(tmp), Path(tmp) / "Dockerfile", (), {"io.dsbuild.limits-helper": "1"},
                                  policy=BuildPolicy(deadline=300, cgroup_limits=False)):
            image_id = event.image_id if isinstance(event, BuildFinished) else image_id
    if image_id is None:
        raise BuildFailed("cannot make the limits helper's image")
    engine.tag(image_id, ref)
    return ref
