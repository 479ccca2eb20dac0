"""The lock digest label, without a second build when nothing changed.

The label must be passed when the build starts, but the lock is written during it.
So the digest is predicted from what the last build of the same environment recorded,
and checked afterwards against the layer that holds the lock (its diff id names its
content exactly). Only when the prediction is missing or wrong is the lock read from
the image and the label rewritten (a metadata-only build)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .engine import DockerEngine
from .lock import LOCK_PATH, lock_digest
from .errors import BuildFailed


@dataclass(frozen=True)
class KnownLock:
    digest: str
    layer: str  # diff id of the dependency layer


class LockRecords:
    def __init__(self, folder: Path):
        self.folder = folder

    @staticmethod
    def key(environment_hash: str, options_hash: str) -> str:
        return hashlib.sha256(f"{environment_hash}:{options_hash}".encode()).hexdigest()[:32]

    def get(self, key: str) -> KnownLock | None:
        try:
            data = json.loads((self.folder / f"{key}.json").read_text())
            return KnownLock(data["digest"], data["layer"])
        except (OSError, ValueError, KeyError):
            return None

    def put(self, key: str, known: KnownLock) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f"{key}.json.tmp"
        tmp.write_text(json.dumps({"digest": known.digest, "layer": known.layer}))
        tmp.replace(self.folder / f"{key}.json")


def settle_lock_label(
    engine: DockerEngine, image_id: str, layer_index: int, known: KnownLock | None,
    records: LockRecords, key: str, label: str, scratch_ref: str,
) -> str:
    """The image id whose `label` is the digest of the lock inside it."""
    layers = ((engine.inspect_image(image_id) or {}).get("RootFS") or {}).get("Layers") or []
    layer = layers[layer_index] if 0 <= layer_index < len(layers) else ""
    if known is not None and layer and layer == known.layer:
        return image_id
    lock = engine.read_file(image_id, LOCK_PATH)
    if lock is None:
        raise BuildFailed(f"the build wrote no {LOCK_PATH}")
    digest = lock_digest(lock)
    if layer:
        records.put(key, KnownLock(digest, layer))
    if known is not None and known.digest == digest:
        return image_id
    return engine.add_labels(image_id, {label: digest}, scratch_ref)
