"""Which layers two images share, and how many bytes a node that has the first must pull
for the second ("second repository on the same base", docs/benchmarks.md).

    .venv/bin/python -m benchmarks.layers IMAGE_A IMAGE_B

A layer is named by its diff id (the digest of its uncompressed tar), so two images share
a layer when their builds made the same bytes, whichever engine or cache made them. Sizes
are those of the uncompressed layer tars, read from `docker save` as a stream (nothing is
written to disk, nothing in the image runs)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    diff_id: str
    size: int  # bytes of the uncompressed layer tar
    created_by: str  # the instruction that made it (from the image's history)


def image_layers(cli: str, image: str, timeout: float = 600) -> list[Layer]:
    """The layers of `image`, base first, read from `docker save`."""
    process = subprocess.Popen([cli, "save", image], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    sizes: dict[str, int] = {}
    texts: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
            for member in tar:
                sizes[member.name] = member.size
                if member.isfile() and member.name.endswith(".json") and member.size < 4 * 2**20:
                    handle = tar.extractfile(member)
                    texts[member.name] = handle.read() if handle else b""
    finally:
        process.wait(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"docker save {image} failed")
    manifest = json.loads(texts["manifest.json"])[0]
    config = json.loads(texts[manifest["Config"]])
    made_by = [h.get("created_by", "") for h in config.get("history", []) if not h.get("empty_layer")]
    diff_ids = config["rootfs"]["diff_ids"]
    if len(made_by) != len(diff_ids):
        made_by = [""] * len(diff_ids)
    return [Layer(d, sizes[path], by) for d, path, by in zip(diff_ids, manifest["Layers"], made_by)]


@dataclass(frozen=True)
class SecondImage:
    total: int  # bytes of all the second image's layers
    moved: int  # bytes of its layers the first image does not have
    shared_layers: int
    layers: int

    @property
    def moved_share(self) -> float:
        return self.moved / self.total if self.total else 0.0


def second_image(first: list[Layer], second: list[Layer]) -> SecondImage:
    """What a node holding `first` pulls for `second`: the layers it does not have (pure)."""
    have = {layer.diff_id for layer in first}
    moved = [layer for layer in second if layer.diff_id not in have]
    return SecondImage(total=sum(layer.size for layer in second), moved=sum(layer.size for layer in moved),
                       shared_layers=len(second) - len(moved), layers=len(second))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    first, second = (image_layers("docker", image) for image in argv)
    result = second_image(first, second)
    print(f"{argv[1]} after {argv[0]}: {result.moved / 1e6:.1f} MB of {result.total / 1e6:.1f} MB move "
          f"({result.moved_share:.1%}); {result.shared_layers} of {result.layers} layers shared")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
