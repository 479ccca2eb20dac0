"""The scenarios, in the order they run. Every measurement is appended to `Bench.runs`.

Repetitions are interleaved (dsbuild, hand-written, floor within each repetition), so
that a slow minute on a shared machine hits all three ways alike."""

from __future__ import annotations

import shutil
from pathlib import Path

from . import layers, profile, startup
from .common import Janitor, docker, image_size, log
from .ways import Dsbuild, Floor, HandWritten, floor_image_bytes
from .workspace import Workspace


class Bench:
    def __init__(self, repeat: int, work: Path, janitor: Janitor, nonce: str):
        self.repeat = repeat
        self.work = work
        self.janitor = janitor
        self.nonce = nonce
        self.ws = Workspace(work)
        self.dsbuild = Dsbuild(janitor, work, nonce)
        self.hand = HandWritten(janitor, nonce)
        self.floor = Floor(work)
        self.runs: list[dict] = []
        self.profile: dict = {}
        self.warm_scope: tuple[str, Path] | None = None
        self.dsbuild_image: str | None = None  # the reference, built in the warm scope
        self.hand_image: str | None = None

    def record(self, scenario: str, way: str, repeat: int, value: float, unit: str = "s", detail: dict | None = None) -> None:
        self.runs.append({"scenario": scenario, "way": way, "repeat": repeat, "value": value, "unit": unit, "detail": detail or {}})
        shown = f"{value / 1e6:.0f} MB" if unit == "bytes" else f"{value:.2f} s"
        log(f"{scenario:<16} {way:<12} #{repeat}: {shown}")

    def _track(self, image: str) -> str:
        """Remember the image id: a rebuild with the same tag leaves the old one untagged."""
        image_id = docker("image", "inspect", "--format", "{{.Id}}", image)
        self.janitor.image_ids.append(image_id)
        return image_id

    def _drop(self, *images: str) -> None:
        for image in images:
            self.janitor.remove_image(image)

    # Scenarios

    def cold(self) -> None:
        """Cold: no layer cache, no package cache, nothing downloaded before; the context
        upload is cold too (a new dsbuild cache folder each time)."""
        warm_cache = self.work / "uv-cache-1"
        for i in range(1, self.repeat + 1):
            last = i == self.repeat
            snapshot = self.janitor.snapshot()
            self.ws.reset()
            requirements = self.ws.repo / "requirements.txt"
            scope = self.dsbuild.new_scope(f"cold-{i}")
            built = self.dsbuild.build(self.ws.repo, scope, cold=True)
            built_id = self._track(built.image)
            self.record("cold_build", "dsbuild", i, built.seconds, detail=built.detail)
            self.record("size_reference", "dsbuild", i, image_size(built.image), "bytes")
            self.warm_scope, self.dsbuild_image = scope, built.image

            hand = self.hand.build(self.ws.repo, f"cold-{i}", cold=True)
            self.record("cold_build", "handwritten", i, hand.seconds, detail=hand.detail)
            self.record("size_reference", "handwritten", i, image_size(hand.image), "bytes")
            self.hand_image = hand.image

            cache = self.work / f"uv-cache-{i}"
            floor = self.floor.install(requirements, self.work / "venv-cold", cache)
            self.record("cold_build", "floor", i, floor.seconds, detail=floor.detail)
            self.record("size_reference", "floor", i, floor_image_bytes(floor.detail["venv_bytes"]), "bytes")
            warm = self.floor.install(requirements, self.work / "venv-warm", warm_cache)
            self.record("warm_build", "floor", i, warm.seconds)
            self.ws.add_package(f"{self.nonce} {i}")
            added = self.floor.add(requirements, self.work / "venv-warm", warm_cache)
            self.record("package_rebuild", "floor", i, added.seconds)
            self.ws.reset()
            shutil.rmtree(self.work / "venv-cold", ignore_errors=True)
            if cache != warm_cache:
                shutil.rmtree(cache, ignore_errors=True)
            if not last:  # the last repetition's scope and layers are the warm state for what follows
                self._drop(built_id, hand.image)
                self.janitor.prune_new(snapshot)
                shutil.rmtree(scope[1], ignore_errors=True)

    def warm(self) -> None:
        """dsbuild with --no-cache but its package cache warm: the build minus downloads."""
        assert self.warm_scope is not None
        self.ws.reset()
        snapshot = self.janitor.snapshot()
        previous = None
        for i in range(1, self.repeat + 1):
            built = self.dsbuild.build(self.ws.repo, self.warm_scope, cold=True)
            built_id = self._track(built.image)
            self.record("warm_build", "dsbuild", i, built.seconds, detail=built.detail)
            self.dsbuild_image = built.image
            if previous:
                self._drop(previous)
            previous = built_id
        self.janitor.prune_new(snapshot)  # the image stays; the layer cache of the cold build serves what follows

    def run_profile(self) -> None:
        """Where dsbuild's time and bytes go: BuildKit's own step timings on the context
        dsbuild staged, layer sizes, a look inside the image, JupyterLab's imports, and
        milestones of a code-only rebuild and of a start, through dsbuild's functions."""
        assert self.warm_scope is not None and self.dsbuild_image is not None
        alias, cache_dir = self.warm_scope
        snapshot = self.janitor.snapshot()
        context = cache_dir / "contexts" / self.dsbuild.image_name
        tag = f"{self.dsbuild.image_name}:profile"
        self.profile["build"] = profile.build_profile(context, tag, self.work)
        self._track(tag)
        self._drop(tag)
        self.profile["bytes"] = profile.bytes_profile(self.dsbuild_image)
        self.profile["startup_imports"] = profile.import_profile(self.dsbuild_image)
        self.ws.reset()
        self.profile["start"] = profile.start_breakdown(self.ws.repo, alias, self.dsbuild.image_name, cache_dir)
        self.ws.edit_notebook(f"{self.nonce} profile")
        timeline = profile.build_timeline(self.ws.repo, alias, self.dsbuild.image_name, cache_dir)
        self.profile["code_rebuild"] = timeline["marks"]
        self._drop(self._track(timeline["image"]))
        self.ws.reset()
        self.janitor.prune_new(snapshot)

    def rebuilds(self) -> None:
        """From the reference as built: a notebook edit, then one package added."""
        assert self.warm_scope is not None
        for i in range(1, self.repeat + 1):
            self.ws.reset()
            self.dsbuild.build(self.ws.repo, self.warm_scope)  # the starting point: cached, not timed
            self.hand.build(self.ws.repo, "start")
            snapshot = self.janitor.snapshot()
            mark = f"{self.nonce} {i}"
            self.ws.edit_notebook(mark)
            built = self.dsbuild.build(self.ws.repo, self.warm_scope)
            code_id = self._track(built.image)
            self.record("code_rebuild", "dsbuild", i, built.seconds, detail=built.detail)
            hand = self.hand.build(self.ws.repo, f"code-{i}")
            self.record("code_rebuild", "handwritten", i, hand.seconds, detail=hand.detail)
            self.ws.add_package(mark)
            built = self.dsbuild.build(self.ws.repo, self.warm_scope)
            package_id = self._track(built.image)
            self.record("package_rebuild", "dsbuild", i, built.seconds, detail=built.detail)
            hand = self.hand.build(self.ws.repo, f"package-{i}")
            self.record("package_rebuild", "handwritten", i, hand.seconds, detail=hand.detail)
            self._drop(code_id, package_id, f"{self.hand.image_name}:code-{i}", hand.image)
            self.janitor.prune_new(snapshot)
        self._drop(f"{self.hand.image_name}:start")
        self.ws.reset()

    def minimal_sizes(self) -> None:
        """The minimal example's image, built once per way (sizes do not vary between builds)."""
        assert self.warm_scope is not None
        snapshot = self.janitor.snapshot()
        # The reference as a node would hold it: built through the layer cache (a --no-cache
        # build makes new layers of the same steps, which no other image shares).
        self.ws.reset()
        reference = self.dsbuild.build(self.ws.repo, self.warm_scope, name=self.dsbuild.cached_name)
        built = self.dsbuild.build(self.ws.minimal, self.warm_scope, name=self.dsbuild.minimal_name)
        self.record("size_minimal", "dsbuild", 1, image_size(built.image), "bytes")
        second = layers.second_image(layers.image_layers("docker", reference.image),
                                     layers.image_layers("docker", built.image))
        sharing = {"second_image_bytes": second.total, "moved_bytes": second.moved,
                   "shared_layers": second.shared_layers, "layers": second.layers}
        self.record("second_repo_moves", "dsbuild", 1, second.moved, "bytes", detail=sharing)
        self._drop(self._track(reference.image))
        node = self.dsbuild.build(self.ws.minimal_node, self.warm_scope, name=self.dsbuild.minimal_name + "-node")
        self.record("size_minimal_node", "dsbuild", 1, image_size(node.image), "bytes")
        self._drop(self._track(node.image))
        hand = self.hand.build(self.ws.minimal, "minimal")
        self.record("size_minimal", "handwritten", 1, image_size(hand.image), "bytes")
        self._drop(self._track(built.image), hand.image)
        self.janitor.prune_new(snapshot)
        venv = self.work / "venv-minimal"
        floor = self.floor.install(self.ws.minimal / "requirements.txt", venv, self.work / "uv-cache-1")
        self.record("size_minimal", "floor", 1, floor_image_bytes(floor.detail["venv_bytes"]), "bytes")
        shutil.rmtree(venv, ignore_errors=True)

    def start(self) -> None:
        assert self.warm_scope is not None and self.dsbuild_image and self.hand_image
        self.ws.reset()
        alias, cache_dir = self.warm_scope
        for i in range(1, self.repeat + 1):
            seconds = startup.dsbuild_run(self.janitor, self.ws.repo, alias, self.dsbuild_image, cache_dir)
            self.record("start_to_ready", "dsbuild", i, seconds, detail={"command": "dsbuild run --detach"})
            seconds = startup.docker_run(self.janitor, self.hand_image)
            self.record("start_to_ready", "handwritten", i, seconds, detail={"command": "docker run + poll"})
            self.runs.append({**self.runs[-1], "scenario": "start_container"})
            seconds = startup.docker_run(self.janitor, self.dsbuild_image)
            self.record("start_container", "dsbuild", i, seconds, detail={"command": "docker run + poll"})
            seconds = startup.trivial_container()
            self.record("start_to_ready", "floor", i, seconds, detail={"command": "docker run --rm base true"})

    def all(self, with_profile: bool = True) -> None:
        steps = [("cold builds", self.cold), ("builds with a warm package cache", self.warm)]
        if with_profile:
            steps.append(("profile", self.run_profile))
        steps += [("rebuilds", self.rebuilds), ("minimal example", self.minimal_sizes), ("start-up", self.start)]
        for name, step in steps:
            log(f"--- {name}")
            step()
