"""Read a file out of an image without running anything in it.

Every file dsbuild reads out of an image (the lock, for `lock`, `show`, `diff` and the
lock label) goes through `read_image_file`: `docker create` (which starts nothing), then
`docker cp CONTAINER:PATH -` (a tar stream of that one path), read up to a size cap,
then the container is removed. A repository's postBuild cannot change what this
returns by shadowing commands on PATH, and a huge file cannot fill the caller's memory.
Only a regular file is returned: a symlink or a folder at PATH is refused, so the
image cannot point the read somewhere else."""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass

from .errors import BuildFailed

DEFAULT_MAX_BYTES = 8 * 2**20
READER_LABEL = "io.dsbuild.reader"
_TAR_SLACK = 64 * 1024  # tar headers and padding around one file


class ImageFileTooLarge(BuildFailed):
    """The file is larger than the caller's cap."""


@dataclass(frozen=True)
class ImageFile:
    path: str
    data: bytes

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def _docker(cli: str, env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([cli, *args], env=env, capture_output=True, timeout=timeout)


def read_image_file(cli: str, env: dict, image: str, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> ImageFile | None:
    """The file at absolute `path` in `image`, or None if there is no regular file there.
    Raises ImageFileTooLarge past `max_bytes`, BuildFailed when the engine cannot do it."""
    if not path.startswith("/") or "\0" in path:
        raise ValueError(f"not an absolute path: {path!r}")
    created = _docker(cli, env, "create", "--network=none", "--label", f"{READER_LABEL}=1",
                      "--entrypoint", "/dsbuild-never-run", "--", image)
    if created.returncode != 0:
        raise BuildFailed(f"cannot read {path} from {image}: the image cannot be opened")
    container = created.stdout.decode().strip()
    try:
        return _copy_out(cli, env, container, path, max_bytes)
    finally:
        _docker(cli, env, "rm", "--force", container)


def _copy_out(cli: str, env: dict, container: str, path: str, max_bytes: int) -> ImageFile | None:
    process = subprocess.Popen([cli, "cp", f"{container}:{path}", "-"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    chunks: list[bytes] = []
    total = 0
    try:
        while chunk := process.stdout.read(65536):
            total += len(chunk)
            if total > max_bytes + _TAR_SLACK:
                raise ImageFileTooLarge(f"{path} in the image is larger than {max_bytes} bytes")
            chunks.append(chunk)
    finally:
        if process.poll() is None:
            process.kill()
        code = process.wait()
    if code != 0:
        return None  # no such path
    return _single_file(b"".join(chunks), path, max_bytes)


def _single_file(archive: bytes, path: str, max_bytes: int) -> ImageFile | None:
    """The one regular file in a `docker cp` tar stream, or None (pure)."""
    import tarfile  # only here: a CLI start does not pay for it

    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            members = tar.getmembers()
            if len(members) != 1 or not members[0].isreg():
                return None
            if members[0].size > max_bytes:
                raise ImageFileTooLarge(f"{path} in the image is larger than {max_bytes} bytes")
            handle = tar.extractfile(members[0])
            return ImageFile(path, handle.read() if handle else b"")
    except tarfile.TarError:
        return None
