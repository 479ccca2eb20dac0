"""The BuildKit engine edge: builds with `buildctl` against a `buildkitd` (local, or in a
build pod on Kubernetes), and keeps its images only in a registry.

It offers what `build()` (service.py) needs of an engine, like DockerEngine does, but
every image question goes to the registry over its HTTP API (registry_images.py):
inspect, labels, the lock file (read from the image's layers, nothing is run), tagging
and relabelling (a new manifest). A build pushes its image by digest into the target's
repository; `tag` then points the tag at it, so a failed build tags nothing.

The Dockerfile, its cache mounts, the index secret, labels and progress are the same as
on Docker: buildctl prints the same plain progress that ProgressParser reads. The base
image (FROM dsbuild-base:bookworm) is taken from the registry as a named context, so
the rendered Dockerfile does not change."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from .engine import follow_build
from .errors import BuildFailed, ConfigError, EngineUnavailable, SourceError
from .image_files import DEFAULT_MAX_BYTES
from .limits import BuildPolicy
from .progress import BuildEvent, BuildFinished, ProgressParser
from .registry import Registry
from .registry_images import ImageRef, inspect, read_file, retag, with_labels


RUNC = "/usr/sbin/runc"  # Debian's
CNI_BIN = "/usr/lib/cni"  # Debian's containernetworking-plugins


def buildkitd_config(root: str, addresses: Sequence[str], registries: Sequence[str], bridge: str = "buildkit0",
                     subnet: str = "10.10.0.0/16", max_used: str = "8GB", tls_dir: str | None = None) -> str:
    """buildkitd.toml (pure): the OCI worker with Debian's runc, build steps on their own
    CNI bridge (never the host's or the pod's network namespace), garbage collection
    bounded, `registries` (HOST:PORT) spoken to over plain HTTP. `tls_dir`: its TCP
    address takes only clients with a certificate of the CA in tls_dir/ca.crt (mutual
    TLS; tls.crt and tls.key are its own). Values are checked, so the TOML needs no
    escaping."""
    for value in (root, bridge, subnet, max_used, *addresses, *registries, *([tls_dir] if tls_dir else [])):
        if not value or any(c in value for c in '"\\\n'):
            raise ConfigError(f"not a buildkitd setting: {value!r}")
    lines = [f'root = "{root}"', "[grpc]", "  address = [" + ", ".join(f'"{a}"' for a in addresses) + "]"]
    if tls_dir:
        lines += ["[grpc.tls]", f'  cert = "{tls_dir}/tls.crt"', f'  key = "{tls_dir}/tls.key"',
                  f'  ca = "{tls_dir}/ca.crt"']
    lines += ["[worker.oci]", "  enabled = true", f'  binary = "{RUNC}"', '  snapshotter = "overlayfs"',
              "  gc = true", f'  maxUsedSpace = "{max_used}"', '  networkMode = "bridge"',
              f'  cniBinaryPath = "{CNI_BIN}"', f'  bridgeName = "{bridge}"', f'  bridgeSubnet = "{subnet}"',
              "  cniPoolSize = 2", "[worker.containerd]", "  enabled = false"]
    for host in registries:
        lines += [f'[registry."{host}"]', "  http = true"]
    return "\n".join(lines) + "\n"


def find_buildctl() -> str:
    found = os.environ.get("DSBUILD_BUILDCTL") or shutil.which("buildctl")
    if not found:
        raise EngineUnavailable("the buildctl command is not installed (tests/buildkit/build.sh builds it)")
    return found


class BuildKitEngine:
    """`addr`: buildkitd's address (unix:///path or tcp://host:port). `registry`: where
    images live (an unqualified name such as the base image is looked up there).
    `pull_registry`: the same registry as buildkitd reaches it, when that differs (a
    build daemon whose loopback is not the service's); it must be in buildkitd's config.
    `tls_dir`: ca.crt, tls.crt and tls.key for a daemon that wants mutual TLS, whose
    certificate names `server_name`. `cgroup_parent`: the cgroup the build's steps run
    in (a build pod's on Kubernetes, whose limits then hold them)."""

    step_limits = False  # BuildPolicy's per-step cgroup limits: the cgroup parent's limits hold the steps

    def __init__(self, addr: str, registry: Registry, cli: str | None = None, pull_registry: str | None = None,
                 tls_dir: Path | None = None, server_name: str = "", cgroup_parent: str = ""):
        self.addr = addr
        self.registry = registry
        self.cli = cli or find_buildctl()
        self.pull_registry = pull_registry or registry.host
        self.tls_dir = tls_dir
        self.server_name = server_name
        self.cgroup_parent = cgroup_parent

    def _client(self) -> list[str]:
        """buildctl and the options that reach the daemon (pure)."""
        args = [self.cli, "--addr", self.addr]
        if self.tls_dir is not None:
            args += ["--tlsdir", str(self.tls_dir)]
        if self.server_name:
            args += ["--tlsservername", self.server_name]
        return args

    def _ref(self, ref: str) -> ImageRef:
        first = ref.split("/", 1)[0]
        qualified = "/" in ref and ("." in first or ":" in first or first == "localhost")
        return ImageRef.parse(ref if qualified else f"{self.registry.host}/{ref}")

    def ping(self) -> str:
        try:
            done = subprocess.run([*self._client(), "debug", "workers"],
                                  capture_output=True, timeout=20)
        except FileNotFoundError:
            raise EngineUnavailable(f"the buildctl command {self.cli} is not installed") from None
        except subprocess.TimeoutExpired:
            done = None
        if done is None or done.returncode != 0:
            raise EngineUnavailable(f"cannot reach buildkitd at {self.addr}; is it running?")
        return "buildkit"

    # Images: all in the registry

    def inspect_image(self, ref: str) -> dict | None:
        try:
            return inspect(self._ref(ref))
        except SourceError:
            return None

    def image_labels(self, ref: str) -> dict[str, str] | None:
        info = self.inspect_image(ref)
        return None if info is None else dict(info["Config"]["Labels"])

    def read_file(self, image: str, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str | None:
        found = read_file(self._ref(image), path, max_bytes)
        return None if found is None else found.text()

    def add_labels(self, image_id: str, labels: Mapping[str, str], scratch_ref: str = "") -> str:
        return str(with_labels(self._ref(image_id), dict(labels)))

    def tag(self, image_id: str, ref: str) -> None:
        source, target = self._ref(image_id), self._ref(ref)
        if (source.registry, source.name) != (target.registry, target.name):
            raise BuildFailed(f"cannot tag {image_id} as {ref}: another repository")
        retag(source, target.reference)

    def push(self, ref: str) -> None:
        """Built images are in the registry already; this checks it."""
        if self.inspect_image(ref) is None:
            raise BuildFailed(f"{ref} is not in the registry {self.registry.host}")

    def import_rootfs(self, tar, ref: str, changes: Sequence[str]) -> str:
        raise ConfigError(f"the base image {ref} is not in the registry {self.registry.host}; "
                          f"build it with `dsbuild base` and `docker push` it there")

    def exec_run(self, image: str, command: Sequence[str], entrypoint: str | None = None, timeout: float = 120):
        raise ConfigError(f"the base image {image} has no dsbuild labels; BuildKit builds need a dsbuild base")

    # Building

    def build_args(self, context: Path, dockerfile: Path, repository: str, labels: Mapping[str, str],
                   no_cache: bool, secrets: Mapping[str, Path], base: str | None, metadata: Path) -> list[str]:
        """The buildctl command line for one build (pure)."""
        args = [*self._client(), "build", "--frontend", "dockerfile.v0", "--progress", "plain",
                "--local", f"context={context}", "--local", f"dockerfile={dockerfile.parent}",
                "--opt", f"filename={dockerfile.name}", "--metadata-file", str(metadata),
                "--output", f"type=image,name={repository},push=true,push-by-digest=true"]
        args += [f"--opt=label:{key}={value}" for key, value in labels.items()]
        args += [f"--secret=id={name},src={path}" for name, path in secrets.items()]
        if base:
            ref = self._ref(base)
            args.append(f"--opt=context:{base}=docker-image://{self.pull_registry}/{ref.name}"
                        f"{'@' if ref.reference.startswith('sha256:') else ':'}{ref.reference}")
        if self.cgroup_parent:
            args.append(f"--opt=cgroup-parent={self.cgroup_parent}")
        if no_cache:
            args.append("--no-cache")
        return args

    def build(self, context: Path, dockerfile: Path, phases: Sequence[str], labels: Mapping[str, str] = {},
              no_cache: bool = False, policy: BuildPolicy = BuildPolicy(), secrets: Mapping[str, Path] = {},
              repository: str = "", base: str | None = None) -> Iterator[BuildEvent]:
        """Build and push by digest into `repository` (REGISTRY/NAME); yields progress and
        ends with BuildFinished(REGISTRY/NAME@sha256:...). Cancelled like DockerEngine.build."""
        if not repository:
            raise BuildFailed("a BuildKit build needs the registry repository to push to")
        pushed = self._ref(f"{repository}:latest")
        # The base comes as a named context, so BuildKit does not number the FROM step.
        parser = ProgressParser(tuple(phases), offset=1 if base else 0)
        with tempfile.TemporaryDirectory(prefix="dsbuild-") as tmp:
            metadata = Path(tmp) / "metadata.json"
            args = self.build_args(context, dockerfile, f"{self.pull_registry}/{pushed.name}", labels, no_cache,
                                   secrets, base, metadata)
            process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            yield from follow_build(process, policy, parser)
            digest = _manifest_digest(metadata)
        yield BuildFinished(str(pushed.with_reference(digest)), tuple(parser.cached), tuple(parser.ran))


def _manifest_digest(metadata: Path) -> str:
    try:
        digest = json.loads(metadata.read_text())["containerimage.digest"]
    except (OSError, ValueError, KeyError):
        raise BuildFailed("buildctl pushed no image (no digest in its metadata)") from None
    if not str(digest).startswith("sha256:"):
        raise BuildFailed(f"buildctl reported a strange digest {digest!r}")
    return digest
