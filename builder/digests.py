"""File digests remembered by their stat, so a file that did not change is not read again.

A folder's content id (fetch.content_hash) and the digest of dsbuild's own context files
(append.py) hash every file; a large data file or the 38 MB uv binary would be read on
every build. `FileDigests` remembers each file's sha256 under its size, mtime, ctime,
inode and device, as git's index does. A digest is remembered only when the file's
ctime is more than a second old when it is read: any later write sets the ctime to the
time of that write, so the remembered key cannot match a changed file (git's "racily
clean" case). The record is one JSON file; a lost or damaged record only costs a re-read."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

_SETTLED_NS = 1_000_000_000  # a file whose ctime is older than this is remembered


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


class FileDigests:
    """sha256 of files under one root, remembered in `record` (None: remember nothing)."""

    def __init__(self, record: Path | None = None):
        self.record = record
        self._known: dict[str, list] = {}
        self._seen: dict[str, list] = {}
        if record is not None:
            try:
                self._known = dict(json.loads(record.read_text()))
            except (OSError, ValueError, TypeError):
                self._known = {}

    def digest(self, path: Path, name: str) -> str:
        """The sha256 of the regular file `path`, remembered under `name`."""
        st = os.stat(path)
        key = _key(st)
        known = self._known.get(name)
        if known is not None and known[:-1] == key:
            self._seen[name] = known
            return known[-1]
        value = sha256_file(path)
        if time.time_ns() - st.st_ctime_ns > _SETTLED_NS:
            self._seen[name] = key + [value]
        return value

    def save(self) -> None:
        """Keep what this pass saw (files gone since are forgotten)."""
        if self.record is None or self._seen == self._known:
            return
        try:
            self.record.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.record.with_name(f"{self.record.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._seen))
            tmp.replace(self.record)
        except OSError:
            pass
