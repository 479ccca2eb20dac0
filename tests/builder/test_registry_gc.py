"""The registry's garbage collection (`dsbuild gc --registry`, the chart's registry
cleaner): which images are candidates (pure), and one real run against Debian's
docker-registry with delete enabled, started here on a free loopback port."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from dsbuild.builder.gc import BUILT_LABEL, GcPolicy, collect_registry_garbage, plan_removals, registry_image_entry
from dsbuild.builder.registry import Registry, list_repositories

LAYERS = {"layers": [{"size": 100}, {"size": 23}], "config": {"digest": "sha256:c"}}


def config(created: str, labels: dict | None) -> dict:
    return {"created": created, "config": {"Labels": labels}}


def test_a_dsbuild_image_is_a_candidate_by_digest_with_all_its_tags():
    entry = registry_image_entry("reg:5000", "dsbuild-x", ["b", "a"], "sha256:d", LAYERS,
                                 config("2024-06-01T12:00:00.123456789Z", {BUILT_LABEL: "1"}))
    assert entry.key == "dsbuild-x@sha256:d" and entry.label == "reg:5000/dsbuild-x:a,b"
    assert entry.size == 123
    assert entry.last_used == 1717243200.0  # UTC, whatever the machine's time zone


@pytest.mark.parametrize("labels, manifest, digest", [
    (None, LAYERS, "sha256:d"),  # not built by dsbuild (a base image, the hub's image)
    ({"other": "1"}, LAYERS, "sha256:d"),
    ({BUILT_LABEL: "1"}, {"manifests": []}, "sha256:d"),  # a manifest list
    ({BUILT_LABEL: "1"}, LAYERS, ""),  # no digest to delete by
])
def test_what_is_never_a_candidate(labels, manifest, digest):
    assert registry_image_entry("r", "n", ["t"], digest, manifest, config("2024-06-01T12:00:00Z", labels)) is None


def test_registry_images_go_by_age_then_by_disk_use_oldest_first():
    built = config("2024-06-01T00:00:00Z", {BUILT_LABEL: "1"})
    old, mid, new = (registry_image_entry("r", n, ["t"], "sha256:" + n, LAYERS, built) for n in ("old", "mid", "new"))
    old, mid, new = (e.__class__(e.key, t, e.size, e.label) for e, t in ((old, 0), (mid, 500), (new, 900)))
    assert [e.key for e in plan_removals([new, old, mid], now=1000, max_age=700, max_bytes=None)] == ["old@sha256:old"]
    assert [e.key for e in plan_removals([new, old, mid], now=1000, max_age=7000, max_bytes=200)] == [
        "old@sha256:old", "mid@sha256:mid"]


# -- a real registry ---------------------------------------------------------------


@pytest.fixture
def registry(tmp_path):
    from dsbuild.builder.run import free_port

    binary = Path("/usr/bin/docker-registry")
    if not binary.exists():
        pytest.skip("Debian's docker-registry is not installed (scripts/setup.sh installs it)")
    port = free_port()
    (tmp_path / "config.yml").write_text(
        f"version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {tmp_path}/data}}\n"
        f"  delete: {{enabled: true}}\nhttp: {{addr: \"127.0.0.1:{port}\"}}\n")
    process = subprocess.Popen([str(binary), "serve", str(tmp_path / "config.yml")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    host = f"localhost:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield Registry(host)
    finally:
        process.terminate()
        process.wait(10)


def push(host: str, name: str, tags: list[str], labels: dict, folder: Path) -> None:
    """A one-file image FROM scratch, pushed under each tag; the engine's tags removed."""
    from dsbuild.builder.engine import find_docker_cli

    docker = find_docker_cli()
    folder.mkdir()
    (folder / "f").write_text(name)
    label_lines = "".join(f"LABEL {k}={v}\n" for k, v in labels.items())
    (folder / "Dockerfile").write_text(f"FROM scratch\nCOPY f /f\n{label_lines}")
    refs = [f"{host}/{name}:{tag}" for tag in tags]
    subprocess.run([docker, "build", "-q", *(a for r in refs for a in ("-t", r)), str(folder)], check=True,
                   capture_output=True, env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"})
    try:
        for ref in refs:
            subprocess.run([docker, "push", "-q", ref], check=True, capture_output=True)
    finally:
        subprocess.run([docker, "image", "rm", *refs], capture_output=True)


def tags(registry: Registry, name: str) -> list[str]:
    import json

    try:
        with urllib.request.urlopen(f"{registry.base_url}/v2/{name}/tags/list", timeout=5) as answer:
            return sorted(json.load(answer).get("tags") or [])
    except urllib.error.HTTPError as err:
        assert err.code == 404
        return []


@pytest.mark.docker
def test_old_dsbuild_images_are_deleted_from_a_real_registry(registry, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    built, other = f"dsbuild-gc-{suffix}", f"not-dsbuild-{suffix}"
    push(registry.host, built, ["abc", "latest"], {BUILT_LABEL: "x"}, tmp_path / "built")
    push(registry.host, other, ["1"], {}, tmp_path / "other")
    assert tags(registry, built) == ["abc", "latest"]
    assert sorted(list_repositories(registry, page=1)) == sorted([built, other])  # page by page

    dry = collect_registry_garbage(registry, GcPolicy(max_age=86400, max_bytes=None, dry_run=True), now=time.time() + 2 * 86400)
    assert [e.label for e in dry.removed] == [f"{registry.host}/{built}:abc,latest"]
    assert tags(registry, built) == ["abc", "latest"]  # a dry run deletes nothing

    young = collect_registry_garbage(registry, GcPolicy(max_age=86400, max_bytes=None))
    assert young.removed == [] and young.kept == 1 and tags(registry, built) == ["abc", "latest"]

    report = collect_registry_garbage(registry, GcPolicy(max_age=86400, max_bytes=None), now=time.time() + 2 * 86400)
    assert [e.key.split("@")[0] for e in report.removed] == [built] and report.freed > 0
    assert tags(registry, built) == []  # both tags of the one image
    assert tags(registry, other) == ["1"]  # never what dsbuild did not build
