"""A code-only rebuild without a build: the repository's layer, appended to the layers of
an image that holds the same environment.

When the repository's COPY is the generated Dockerfile's last step (`plan.repository_last`:
no repository installs, no postBuild, no start script), every other layer comes from the
Dockerfile and dsbuild's own context files only. Their digest is the image's
`io.dsbuild.environment-layers` label. If an image of the same source, options and
environment digest is on the engine, BuildKit would find every step but the COPY in its
cache; so the new image is made as that cache hit would make it, without starting a
build: the earlier image's layers but its last, plus a new layer holding the context's
`repo/` folder as the COPY puts it (the same files, modes and times, owned by the notebook
user, under its home), and the earlier image's config with this build's labels, its lock
label (the dependency layer is the same one) and a history entry saying what was done.
The engine gets it through `docker load`, which skips the layers it holds.

Pure parts (the digest's walk aside): `history_layers`, `appended_config`. `write_layer`
reads the context; `append_repository` asks the engine."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Protocol

from .digests import FileDigests
from .names import BASE_IMAGE_ID_LABEL, ENVIRONMENT_LAYERS_LABEL, LOCK_LABEL, OPTIONS_LABEL, SOURCE_HASH_LABEL

# Dockerfile instructions that change only the config: their history entries have no layer.
METADATA_ONLY = frozenset({"ARG", "CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "MAINTAINER",
                           "ONBUILD", "SHELL", "STOPSIGNAL", "USER", "VOLUME"})
_NOP = "/bin/sh -c #(nop) "  # the classic builder's prefix for them


class NotAppendable(Exception):
    """The layer cannot be made here (e.g. a special file in the repository): build instead."""


class AppendingEngine(Protocol):
    def find_images(self, labels: dict[str, str]) -> list[dict]: ...
    def inspect_image(self, ref: str) -> dict | None: ...
    def image_history(self, ref: str) -> list[dict] | None: ...
    def load_image(self, config: bytes, layers: list[str], new_layer: Path) -> str: ...


@dataclass(frozen=True)
class Appended:
    image_id: str
    previous: str  # the image whose environment layers it reuses


def environment_digest(own: Path, digests: FileDigests) -> str:
    """Digest of dsbuild's own context files (`.dsbuild`: the Dockerfile, the environment
    files, uv, the CA bundle, the entrypoint, ...): with the base image and the options
    hash, all that the layers before the repository's are made from."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(own):
        dirs.sort()
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]):
            path = Path(folder, name)
            rel = path.relative_to(own).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                digest.update(f"L {rel} {os.readlink(path)}\n".encode())
            else:
                digest.update(f"F {rel} {st.st_mode & 0o7777:o} {digests.digest(path, rel)}\n".encode())
    digests.save()
    return digest.hexdigest()


def history_layers(history: list[dict], layer_count: int) -> list[dict] | None:
    """The image config's history (oldest first) from the engine's history answer (newest
    first, no `empty_layer`): an entry with bytes has a layer; one without has none when its
    instruction only changes the config. None unless that accounts for exactly
    `layer_count` layers and the last layer is the repository's COPY."""
    entries = []
    for item in reversed(history):
        created_by = str(item.get("CreatedBy") or "")
        word = (created_by.removeprefix(_NOP).split(maxsplit=1) or [""])[0].upper()
        entry: dict = {"created": _iso(int(item.get("Created") or 0))}
        if created_by:
            entry["created_by"] = created_by
        if item.get("Comment"):
            entry["comment"] = item["Comment"]
        if not item.get("Size") and word in METADATA_ONLY:
            entry["empty_layer"] = True
        entries.append(entry)
    with_layers = [i for i, e in enumerate(entries) if not e.get("empty_layer")]
    if len(with_layers) != layer_count or not entries[with_layers[-1]].get("created_by", "").startswith("COPY"):
        return None
    return entries[: with_layers[-1]]


def appended_config(info: dict, history: list[dict], labels: dict[str, str], diff_id: str,
                    created: str, created_by: str) -> dict:
    """The new image's config: `info` (the earlier image, as the engine inspects it) with its
    last layer replaced by `diff_id`, `labels` as the labels, and one history entry more."""
    layers = list((info.get("RootFS") or {}).get("Layers") or [])
    config = {k: v for k, v in (info.get("Config") or {}).items() if v not in (None, "", False, [], {})}
    config["Labels"] = dict(labels)
    image = {
        "architecture": info.get("Architecture", "amd64"),
        "os": info.get("Os", "linux"),
        "config": config,
        "created": created,
        "history": history + [{"created": created, "created_by": created_by, "comment": "dsbuild: code-only rebuild"}],
        "rootfs": {"type": "layers", "diff_ids": layers[:-1] + [diff_id]},
    }
    if info.get("Variant"):
        image["variant"] = info["Variant"]
    return image


def write_layer(tree: Path, home: str, uid: int, out: IO[bytes]) -> str:
    """The layer `COPY --chown=UID:UID tree/ HOME/` makes, written to `out`; its diff id.
    HOME's parents are root's, mode 755, as the base image has them; HOME gets `tree`'s mode.
    NotAppendable for a file that is not a regular file, folder or symbolic link."""
    import tarfile  # only here: a CLI start does not pay for it

    hasher = _Hashing(out)
    with tarfile.open(fileobj=hasher, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        parts = home.strip("/").split("/")
        for depth in range(1, len(parts)):
            info = tarfile.TarInfo("/".join(parts[:depth]))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        _add(tar, tree, "/".join(parts), uid)
        for folder, dirs, files in os.walk(tree):
            dirs.sort()
            for name in sorted(dirs + files):
                path = Path(folder, name)
                _add(tar, path, "/".join(parts) + "/" + path.relative_to(tree).as_posix(), uid)
    return "sha256:" + hasher.digest.hexdigest()


def _add(tar, path: Path, name: str, uid: int) -> None:
    info = tar.gettarinfo(str(path), name)  # a tarfile.TarInfo
    if not (info.isfile() or info.isdir() or info.issym()):
        raise NotAppendable(f"{path.name} is neither a file, a folder nor a link")
    info.uid = info.gid = uid
    info.uname = info.gname = ""
    if info.isfile():
        with open(path, "rb") as handle:
            tar.addfile(info, handle)
    else:
        tar.addfile(info)


class _Hashing:
    def __init__(self, out: IO[bytes]):
        self.out = out
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.out.write(data)


def append_repository(engine: AppendingEngine, wanted: dict[str, str], layer_count: int, context: Path,
                      labels: dict[str, str], home: str, uid: int) -> Appended | None:
    """The new image, when an image with the labels `wanted` (source, options, base image,
    environment digest) has `layer_count` layers ending with the repository's; None when
    there is none. Its labels are a build's: the base image's, then `labels`, then the lock's."""
    base = engine.inspect_image(wanted[BASE_IMAGE_ID_LABEL]) or {}
    inherited = dict((base.get("Config") or {}).get("Labels") or {})
    for candidate in sorted(engine.find_images(wanted), key=lambda i: i.get("Created", 0), reverse=True):
        previous = str(candidate.get("Id", ""))
        info = engine.inspect_image(previous) or {}
        layers = (info.get("RootFS") or {}).get("Layers") or []
        lock = ((info.get("Config") or {}).get("Labels") or {}).get(LOCK_LABEL)
        history = history_layers(engine.image_history(previous) or [], layer_count)
        if len(layers) != layer_count or not lock or history is None:
            continue
        with tempfile.TemporaryDirectory(prefix="dsbuild-layer-") as tmp:
            layer = Path(tmp) / "layer.tar"
            with open(layer, "wb") as out:
                diff_id = write_layer(context / "repo", home, uid, out)
            created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            copy = f"COPY --chown={uid}:{uid} repo/ {home}/ # dsbuild: the repository's layer, added without a build"
            config = appended_config(info, history, {**inherited, **labels, LOCK_LABEL: lock}, diff_id, created, copy)
            image_id = engine.load_image(json.dumps(config, separators=(",", ":")).encode(), layers[:-1], layer)
        return Appended(image_id, previous)
    return None


def wanted_labels(labels: dict[str, str]) -> dict[str, str]:
    """Of a build's labels, those an earlier image must share for its environment layers
    to be this build's: the source, the options hash, the base image's id (a base picked for
    the repository's Python is not in the options hash) and the environment digest."""
    return {name: labels[name] for name in (SOURCE_HASH_LABEL, OPTIONS_LABEL, BASE_IMAGE_ID_LABEL, ENVIRONMENT_LAYERS_LABEL)}


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
