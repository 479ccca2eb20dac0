"""Images in a registry, read and retagged over the registry HTTP API (no engine, and
nothing run): what the BuildKit engine uses instead of `docker inspect`, `docker tag`
and `docker create` + `cp`, since its images live only in the registry.

An image is named by reference: HOST[:PORT]/NAME:TAG or HOST[:PORT]/NAME@sha256:HEX.
Reads are capped (manifests and configs at 4 MiB, a file at the caller's cap); a layer
is streamed and decompressed once, never stored."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import urllib.request
from dataclasses import dataclass
from typing import IO

from .errors import BuildFailed, SourceError
from .image_files import DEFAULT_MAX_BYTES, ImageFile, ImageFileTooLarge
from .registry import Registry, docker_auth, send

_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
_INDEX_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
_META_CAP = 4 * 2**20
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REF = re.compile(rf"^(?P<host>[^/]+)/(?P<name>{_COMPONENT}(?:/{_COMPONENT})*)"
                  r"(?::(?P<tag>[\w][\w.-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))$")


@dataclass(frozen=True)
class ImageRef:
    registry: Registry
    name: str
    reference: str  # a tag or a sha256: digest

    @staticmethod
    def parse(ref: str) -> ImageRef:
        match = _REF.match(ref)
        if not match:
            raise SourceError(f"not a registry image reference: {ref!r}")
        return ImageRef(Registry(match["host"]), match["name"], match["tag"] or match["digest"])

    def with_reference(self, reference: str) -> ImageRef:
        return ImageRef(self.registry, self.name, reference)

    def __str__(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry.host}/{self.name}{sep}{self.reference}"


@dataclass(frozen=True)
class Manifest:
    raw: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.raw).hexdigest()

    @property
    def data(self) -> dict:
        return json.loads(self.raw)


def _read(response: IO[bytes], cap: int, what: str) -> bytes:
    data = response.read(cap + 1)
    if len(data) > cap:
        raise BuildFailed(f"{what} is larger than {cap} bytes")
    return data


def _call(ref: ImageRef, path: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    url = f"{ref.registry.base_url}/v2/{ref.name}/{path}"
    return send(ref.registry, urllib.request.Request(url, data=body, method=method, headers=headers or {}),
                docker_auth(ref.registry.host))


def get_manifest(ref: ImageRef, follow_index: bool = True) -> Manifest | None:
    """The image manifest (an index is followed to its linux/amd64 entry unless
    `follow_index` is false); None if missing."""
    accept = ", ".join(_MANIFEST_TYPES + _INDEX_TYPES)
    response = _call(ref, f"manifests/{ref.reference}", headers={"Accept": accept})
    if response is None:
        return None
    with response:
        manifest = Manifest(_read(response, _META_CAP, f"the manifest of {ref}"),
                            response.headers.get("Content-Type", "").split(";")[0])
    if follow_index and (manifest.media_type in _INDEX_TYPES or "manifests" in manifest.data):
        entries = [m for m in manifest.data.get("manifests", [])
                   if (m.get("platform") or {}).get("architecture") in ("amd64", None)
                   and m.get("mediaType") in _MANIFEST_TYPES]
        return get_manifest(ref.with_reference(entries[0]["digest"])) if entries else None
    return manifest


def get_blob(ref: ImageRef, digest: str, cap: int = _META_CAP) -> bytes:
    response = _call(ref, f"blobs/{digest}")
    if response is None:
        raise BuildFailed(f"the registry {ref.registry.host} has no blob {digest} for {ref.name}")
    with response:
        data = _read(response, cap, f"blob {digest}")
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise BuildFailed(f"blob {digest} from {ref.registry.host} does not match its digest")
    return data


def inspect(ref: ImageRef) -> dict | None:
    """What `docker image inspect` says of an image, for the fields dsbuild reads: Id (the
    config digest, as Docker names it), Created, Config.Labels, RootFS.Layers (diff ids)."""
    manifest = get_manifest(ref)
    if manifest is None:
        return None
    config_digest = manifest.data["config"]["digest"]
    config = json.loads(get_blob(ref, config_digest))
    return {
        "Id": config_digest,
        "RepoDigests": [str(ref.with_reference(manifest.digest))],
        "Created": config.get("created", ""),
        "Config": {"Labels": (config.get("config") or {}).get("Labels") or {}},
        "RootFS": {"Layers": (config.get("rootfs") or {}).get("diff_ids") or []},
    }


def put_blob(ref: ImageRef, data: bytes) -> str:
    """Upload `data` as one blob (a monolithic upload); returns its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if _call(ref, f"blobs/{digest}", method="HEAD") is not None:
        return digest
    response = _call(ref, "blobs/uploads/", method="POST", body=b"")
    if response is None:
        raise BuildFailed(f"the registry {ref.registry.host} refused an upload to {ref.name}")
    with response:
        location = response.headers["Location"]
    if location.startswith("/"):
        location = ref.registry.base_url + location
    url = location + ("&" if "?" in location else "?") + f"digest={digest}"
    request = urllib.request.Request(url, data=data, method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
    done = send(ref.registry, request, docker_auth(ref.registry.host))
    if done is None:
        raise BuildFailed(f"uploading a blob to {ref.registry.host}/{ref.name} failed")
    done.close()
    return digest


def put_manifest(ref: ImageRef, manifest: Manifest) -> None:
    """Store `manifest` under `ref` (a tag, or its own digest)."""
    done = _call(ref, f"manifests/{ref.reference}", method="PUT",
                 headers={"Content-Type": manifest.media_type}, body=manifest.raw)
    if done is None:
        raise BuildFailed(f"the registry {ref.registry.host} refused the manifest for {ref}")
    done.close()


def with_labels(ref: ImageRef, labels: dict[str, str]) -> ImageRef:
    """A new image in the same repository: `ref` with `labels` added to its config (no
    layer changes, nothing built); returned by digest."""
    manifest = get_manifest(ref)
    if manifest is None:
        raise BuildFailed(f"{ref} is not in the registry")
    data = manifest.data
    config = json.loads(get_blob(ref, data["config"]["digest"]))
    inner = config.setdefault("config", {})
    inner["Labels"] = {**(inner.get("Labels") or {}), **labels}
    raw = json.dumps(config, separators=(",", ":")).encode()
    data["config"] = {**data["config"], "digest": put_blob(ref, raw), "size": len(raw)}
    new = Manifest(json.dumps(data, separators=(",", ":")).encode(), manifest.media_type)
    target = ref.with_reference(new.digest)
    put_manifest(target, new)
    return target


def retag(ref: ImageRef, tag: str) -> ImageRef:
    """Point `tag` of the same repository at the image `ref` names."""
    manifest = get_manifest(ref)
    if manifest is None:
        raise BuildFailed(f"{ref} is not in the registry")
    target = ref.with_reference(tag)
    put_manifest(target, manifest)
    return target


def read_file(ref: ImageRef, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> ImageFile | None:
    """The regular file at absolute `path` in the image, read from its layers, top first
    (a whiteout above hides it). Nothing is run; at most `max_bytes` are kept."""
    if not path.startswith("/") or "\0" in path:
        raise ValueError(f"not an absolute path: {path!r}")
    manifest = get_manifest(ref)
    if manifest is None:
        raise BuildFailed(f"cannot read {path} from {ref}: the image is not in the registry")
    member = path.lstrip("/")
    folder, _, base = member.rpartition("/")
    whiteout = f"{folder}/.wh.{base}" if folder else f".wh.{base}"
    for layer in reversed(manifest.data.get("layers") or []):
        found = _find_in_layer(ref, layer, member, whiteout, max_bytes)
        if found is not None:
            return ImageFile(path, found) if isinstance(found, bytes) else None
    return None


def _find_in_layer(ref: ImageRef, layer: dict, member: str, whiteout: str, max_bytes: int) -> bytes | bool | None:
    """The file's bytes, False when the layer hides or replaces it with a non-file, None when absent."""
    response = _call(ref, f"blobs/{layer['digest']}")
    if response is None:
        raise BuildFailed(f"the registry {ref.registry.host} has no layer {layer['digest']}")
    with response:
        stream = gzip.GzipFile(fileobj=response) if "gzip" in layer.get("mediaType", "gzip") else response
        import tarfile  # only here: a CLI start does not pay for it

        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for entry in tar:
                name = entry.name.removeprefix("./")
                if name == whiteout:
                    return False
                if name != member:
                    continue
                if not entry.isreg():
                    return False
                if entry.size > max_bytes:
                    raise ImageFileTooLarge(f"/{member} in the image is larger than {max_bytes} bytes")
                handle = tar.extractfile(entry)
                return handle.read() if handle else b""
    return None
