"""The Docker engine edge: a small interface over the docker CLI with BuildKit.

The CLI is used (not the HTTP API) because BuildKit's cache mounts and progress are
only reachable through it on the engines these machines run."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Iterator, Mapping, Sequence

from .docker_api import ApiUnavailable, DockerApi
from .errors import BuildFailed, EngineUnavailable, RunFailed
from .image_files import DEFAULT_MAX_BYTES, read_image_file
from .limits import BuildPolicy, CgroupLimiter, limiter_for
from .progress import BuildEvent, BuildFinished, ProgressParser, StepFailed
from .watch import BuildWatch

# Debian's docker CLI builds with BuildKit when DOCKER_BUILDKIT=1 (no buildx plugin needed).
PREFERRED_CLI = ("/usr/bin/docker",)


def find_docker_cli() -> str:
    configured = os.environ.get("DSBUILD_DOCKER")
    if configured:
        return configured
    for path in PREFERRED_CLI:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("docker")
    if not found:
        raise EngineUnavailable("the docker command is not installed (apt-get install docker.io)")
    return found


class DockerEngine:
    step_limits = True  # applies BuildPolicy's per-step cgroup limits (limits.CgroupLimiter)
    appends_layers = True  # a code-only rebuild may add the repository's layer without a build (append.py)
    tags_locally = True  # tags are made here and `push` copies them (service._finish undoes one whose push fails)

    def __init__(self, cli: str | None = None):
        self.cli = cli or find_docker_cli()
        self.env = {**os.environ, "DOCKER_BUILDKIT": "1", "DOCKER_CLI_HINTS": "false"}
        self._api: DockerApi | None = None
        self._api_for: tuple | None = None

    @property
    def api(self) -> DockerApi | None:
        """The small questions (inspect, tag, state) go to the local socket when there is
        one: the one `self.env` names now (callers may point env at another engine)."""
        key = (self.env.get("DOCKER_HOST"), self.env.get("DOCKER_CONTEXT"))
        if self._api_for != key:
            self._api, self._api_for = DockerApi.connect(self.env), key
        return self._api

    @api.setter
    def api(self, value: DockerApi | None) -> None:
        self._api, self._api_for = value, (self.env.get("DOCKER_HOST"), self.env.get("DOCKER_CONTEXT"))

    def _run(self, *args: str, check: bool = True, timeout: float = 120, env: Mapping[str, str] = {}) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([self.cli, *args], env={**self.env, **env}, capture_output=True, check=check, timeout=timeout)
        except FileNotFoundError:
            raise EngineUnavailable(f"the docker command {self.cli} is not installed") from None

    def ping(self) -> str:
        """The engine's version, or EngineUnavailable with what the engine said."""
        if self.api is not None:
            try:
                return self.api.version()
            except ApiUnavailable:
                pass
        done = self._run("version", "--format", "{{.Server.Version}}", check=False, timeout=20)
        if done.returncode != 0:
            host = self.env.get("DOCKER_HOST", "unix:///var/run/docker.sock")
            raise EngineUnavailable(
                f"cannot reach the Docker engine at {host}; is dockerd running? (scripts/setup.sh starts one)"
            )
        return done.stdout.decode().strip()

    def inspect_image(self, ref: str) -> dict | None:
        if self.api is not None:
            try:
                return self.api.inspect_image(ref)
            except ApiUnavailable:
                pass
        done = self._run("image", "inspect", "--format", "{{json .}}", "--", ref, check=False)
        return json.loads(done.stdout) if done.returncode == 0 else None

    def image_labels(self, ref: str) -> dict[str, str] | None:
        info = self.inspect_image(ref)
        return None if info is None else dict((info.get("Config") or {}).get("Labels") or {})

    def tag(self, image_id: str, ref: str) -> None:
        if self.api is not None:
            try:
                if self.api.tag(image_id, ref):
                    return
            except ApiUnavailable:
                pass
        self._run("tag", image_id, ref)

    def find_images(self, labels: Mapping[str, str]) -> list[dict]:
        """The images carrying all of `labels` (Id, Created, Labels); [] without the local API."""
        if self.api is None:
            return []
        try:
            return self.api.images(dict(labels))
        except ApiUnavailable:
            return []

    def image_history(self, ref: str) -> list[dict] | None:
        if self.api is None:
            return None
        try:
            return self.api.history(ref)
        except ApiUnavailable:
            return None

    def load_image(self, config: bytes, layers: Sequence[str], new_layer: Path) -> str:
        """An image made of the engine's `layers` (diff ids) and one new layer (a tar file),
        with `config`, through `docker load` (only the new layer is sent). Its id, untagged.
        BuildFailed when the engine refuses it."""
        if self.api is None:
            raise BuildFailed("adding a layer needs the engine's local socket")
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        new_name = "new/layer.tar"  # any name but an existing layer's (a diff id's hex)
        manifest = [{"Config": config_name, "RepoTags": None,
                     "Layers": [f"{layer.removeprefix('sha256:')}/layer.tar" for layer in layers] + [new_name]}]

        import tarfile  # only here: the CLI's start does not pay for it

        def write(body) -> None:
            with tarfile.open(fileobj=body, mode="w|") as tar:
                tar.add(str(new_layer), new_name)
                for name, data in ((config_name, config), ("manifest.json", json.dumps(manifest).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))

        try:
            return self.api.load(write)
        except ApiUnavailable as err:
            raise BuildFailed(f"adding the repository's layer failed: {err}") from None

    def image_refs(self, filters: Sequence[str] = ()) -> list[str]:
        """NAME:TAG of the images matching `docker images --filter` expressions."""
        args = ["images", "--format", "{{.Repository}}:{{.Tag}}"] + [f"--filter={f}" for f in filters]
        done = self._run(*args, check=False)
        return [line for line in done.stdout.decode().splitlines() if line and "<none>" not in line]

    def images_in_use(self) -> set[str]:
        """Ids of the images that containers (running or not) are made from."""
        ids = self._run("ps", "-aq", "--no-trunc", check=False).stdout.decode().split()
        if not ids:
            return set()
        done = self._run("inspect", "--format", "{{.Image}}", *ids, check=False)
        return set(done.stdout.decode().split())

    def remove_unused_image(self, ref: str) -> bool:
        """Untag/remove an image (no --force, so one a container holds by id stays)."""
        return self._run("image", "rm", "--", ref, check=False).returncode == 0

    def prune_build_cache(self, older_than: float | None, keep_bytes: int | None) -> int:
        """Prune BuildKit's cache (layers and cache mounts such as the per-source package
        caches): records unused for `older_than` seconds, then the least recently used
        until it holds at most `keep_bytes`. Records a running build uses stay. Returns
        the bytes freed, as the engine reports them."""
        freed = 0
        if older_than is not None:
            done = self._run("builder", "prune", "--force", "--filter", f"until={int(older_than)}s", check=False, timeout=1800)
            freed += reclaimed_bytes(done.stdout.decode(errors="replace"))
        if keep_bytes is not None:
            done = self._run("builder", "prune", "--force", "--keep-storage", str(keep_bytes), check=False, timeout=1800)
            freed += reclaimed_bytes(done.stdout.decode(errors="replace"))
        return freed

    def remove_image(self, ref: str) -> None:
        self._run("image", "rm", "--force", "--", ref, check=False)

    def build(
        self,
        context: Path,
        dockerfile: Path,
        phases: Sequence[str],
        labels: Mapping[str, str] = {},
        no_cache: bool = False,
        policy: BuildPolicy = BuildPolicy(),
        secrets: Mapping[str, Path] = {},
        repository: str = "",
        base: str | None = None,
    ) -> Iterator[BuildEvent]:
        """Build without tagging; yields progress and ends with BuildFinished(image_id).
        (`repository` and `base` are for engines that keep images in a registry: here the
        image stays on the engine until tagged, and FROM finds the base on the engine.)
        A failed, timed-out or abandoned build is cancelled (the client is killed, so
        BuildKit cancels the running step) and leaves no image behind."""
        parser = ProgressParser(tuple(phases))
        limiter = limiter_for(policy, tuple(phases))
        with tempfile.TemporaryDirectory(prefix="dsbuild-") as tmp:
            iidfile = Path(tmp) / "iid"
            args = [self.cli, "build", "--progress=plain", "--iidfile", str(iidfile), "-f", str(dockerfile)]
            args += [f"--label={key}={value}" for key, value in labels.items()]
            args += [f"--secret=id={name},src={path}" for name, path in secrets.items()]
            if no_cache:
                args.append("--no-cache")
            args.append(str(context))
            process = subprocess.Popen(args, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            yield from follow_build(process, policy, parser, limiter)
            if not iidfile.exists():
                raise _build_error(None, ["the build wrote no image id"])
            image_id = iidfile.read_text().strip()
        yield BuildFinished(image_id, tuple(parser.cached), tuple(parser.ran))

    def add_labels(self, image_id: str, labels: Mapping[str, str], scratch_ref: str) -> str:
        """A new image id: `image_id` plus labels (metadata only, no layer). BuildKit resolves
        FROM by name only, so a scratch tag stands in while it builds, and is removed."""
        self.tag(image_id, scratch_ref)
        try:
            lines = [f"FROM {scratch_ref}"] + [f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()]
            with tempfile.TemporaryDirectory(prefix="dsbuild-") as tmp:
                iid = Path(tmp) / "iid"
                done = subprocess.run(
                    [self.cli, "build", "--quiet", "--iidfile", str(iid), "-"],
                    env=self.env, input="\n".join(lines).encode(), capture_output=True,
                )
                if done.returncode != 0 or not iid.exists():
                    raise BuildFailed(f"labelling the image failed: {_last_line(done.stderr)}")
                return iid.read_text().strip()
        finally:
            self._run("image", "rm", "--no-prune", scratch_ref, check=False)
            self._run("image", "rm", "--no-prune", image_id, check=False)  # the unlabelled original

    def push(self, ref: str) -> None:
        done = self._run("push", ref, check=False, timeout=1800)
        if done.returncode != 0:
            raise BuildFailed(f"pushing {ref} failed: {_last_line(done.stderr)}")

    def read_file(self, image: str, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str | None:
        """A text file from inside an image, read without running anything in it
        (`docker create` + `docker cp`, at most `max_bytes`; see image_files.py)."""
        found = read_image_file(self.cli, self.env, image, path, max_bytes)
        return None if found is None else found.text()

    # Containers

    def run_detached(self, args: Sequence[str], env: Mapping[str, str] = {}) -> str:
        """`docker run --detach`; `env` holds values that `--env NAME` flags pass on."""
        done = self._run("run", "--detach", *args, check=False, timeout=300, env=env)
        if done.returncode != 0:
            raise RunFailed(f"docker run failed: {_last_line(done.stderr)}")
        return done.stdout.decode().strip()

    def start_container(self, config: Mapping) -> str | None:
        """Create and start a container from an API create body (run.container_config);
        its id, or None when the local API cannot (no socket, or the image must be pulled:
        the CLI does that). RunFailed with the engine's reason when it refuses."""
        if self.api is None:
            return None
        try:
            return self.api.run(dict(config))
        except ApiUnavailable:
            return None
        except RuntimeError as err:
            raise RunFailed(f"docker run failed: {err}") from None

    def run_attached(self, args: Sequence[str], env: Mapping[str, str] = {}) -> int:
        """`docker run --rm` with this process's stdin/stdout/stderr; returns its exit code
        (the command's, or docker's own 125-127 when the container could not start)."""
        tty = ["--interactive", "--tty"] if sys.stdin.isatty() and sys.stdout.isatty() else []
        try:
            return subprocess.run([self.cli, "run", "--rm", *tty, *args], env={**self.env, **env}).returncode
        except FileNotFoundError:
            raise EngineUnavailable(f"the docker command {self.cli} is not installed") from None

    def container_state(self, container: str) -> dict | None:
        if self.api is not None:
            try:
                return self.api.container_state(container)
            except ApiUnavailable:
                pass
        done = self._run("container", "inspect", "--format", "{{json .State}}", container, check=False)
        return json.loads(done.stdout) if done.returncode == 0 else None

    def logs(self, container: str, tail: int = 20) -> str:
        done = self._run("logs", "--tail", str(tail), container, check=False)
        return (done.stdout + done.stderr).decode(errors="replace")

    def remove_container(self, container: str) -> None:
        self._run("rm", "--force", container, check=False)

    def follow_logs(self, container: str) -> subprocess.Popen:
        return subprocess.Popen([self.cli, "logs", "--follow", "--since", "0s", container], env=self.env)

    def exec_run(self, image: str, command: Sequence[str], entrypoint: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """A one-off `docker run --rm` whose output is returned."""
        extra = ["--entrypoint", entrypoint] if entrypoint else []
        return self._run("run", "--rm", "--network=none", *extra, image, *command, check=False, timeout=timeout)

    def containers_labelled(self, label: str, value: str) -> list[str]:
        """Ids of the containers, running or not, whose `label` is `value`."""
        done = self._run("ps", "--all", "--quiet", "--filter", f"label={label}={value}", check=False, timeout=60)
        return done.stdout.decode().split() if done.returncode == 0 else []

    def network_ipam(self, network: str) -> list[dict]:
        """The IPAM config (Subnet, Gateway) of a Docker network; [] when it has none."""
        done = self._run("network", "inspect", network, "--format", "{{json .IPAM.Config}}", check=False, timeout=30)
        try:
            return (json.loads(done.stdout) or []) if done.returncode == 0 else []
        except ValueError:
            return []

    def network_labels(self, network: str) -> dict[str, str] | None:
        """The labels of a Docker network; None when there is no such network."""
        done = self._run("network", "inspect", network, "--format", "{{json .Labels}}", check=False, timeout=30)
        if done.returncode != 0:
            return None
        try:
            return dict(json.loads(done.stdout) or {})
        except ValueError:
            return {}

    def create_network(self, name: str, labels: Mapping[str, str], internal: bool = False,
                       options: Mapping[str, str] = {}) -> str:
        """Create a bridge network; "" on success, else the engine's one-line reason."""
        args = ["network", "create", "--driver", "bridge"] + (["--internal"] if internal else [])
        args += [f"--opt={k}={v}" for k, v in options.items()] + [f"--label={k}={v}" for k, v in labels.items()]
        done = self._run(*args, "--", name, check=False, timeout=60)
        return "" if done.returncode == 0 else (done.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]

    def remove_network(self, name: str) -> bool:
        return self._run("network", "rm", "--", name, check=False, timeout=60).returncode == 0

    def volumes_labelled(self, label: str, value: str) -> list[str]:
        """Names of the volumes whose `label` is `value`."""
        done = self._run("volume", "ls", "--quiet", "--filter", f"label={label}={value}", check=False, timeout=60)
        return done.stdout.decode().split() if done.returncode == 0 else []

    def remove_volumes(self, names: Sequence[str]) -> None:
        if names:
            self._run("volume", "rm", "--force", "--", *names, check=False, timeout=120)

    def import_rootfs(self, tar: IO[bytes], ref: str, changes: Sequence[str]) -> str:
        args = [self.cli, "import"] + [f"--change={c}" for c in changes] + ["-", ref]
        done = subprocess.run(args, env=self.env, stdin=tar, capture_output=True)
        if done.returncode != 0:
            raise EngineUnavailable(f"docker import failed: {_last_line(done.stderr)}")
        return done.stdout.decode().strip()


def follow_build(process: subprocess.Popen, policy: BuildPolicy, parser: ProgressParser,
                 limiter: CgroupLimiter | None = None) -> Iterator[BuildEvent]:
    """Read a build client's plain progress into events until it exits; BuildFailed (with
    the failed step explained) when it failed, was stopped or was abandoned (BuildWatch)."""
    watch = BuildWatch(process, policy)
    failure: StepFailed | None = None
    tail: list[str] = []
    finished = False
    try:
        for raw in watch.lines():
            tail = (tail + [raw])[-15:]
            if limiter is not None:
                limiter.feed(raw, parser.step_of)
            for event in parser.feed(raw):
                failure = event if isinstance(event, StepFailed) else failure
                yield event
        finished = True
    finally:
        watch.stop(finished)
        code = process.wait()
    watch.raise_if_stopped()
    if code != 0:
        raise _build_error(failure, tail)


_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def reclaimed_bytes(output: str) -> int:
    """The bytes in `docker builder prune`'s "Total reclaimed space: 1.2GB" line (pure)."""
    match = re.search(r"Total reclaimed space:\s*([0-9.]+)\s*([KMGT]?B)", output)
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)]) if match else 0


def _last_line(data: bytes) -> str:
    lines = data.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def _build_error(failure: StepFailed | None, tail: list[str]) -> BuildFailed:
    from .diagnose import damaged_cache, explain_failure

    if failure is None:
        if damaged := damaged_cache(tail):
            return BuildFailed(damaged, tuple(tail))
        last = next((line for line in reversed(tail) if line.strip()), "the build stopped")
        return BuildFailed(f"build failed: {last.removeprefix('error: ')}", tuple(tail))
    return BuildFailed(explain_failure(failure), failure.tail)
