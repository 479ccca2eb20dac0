"""Before a build: resolve the ref to a commit, decide whether the image must be built
(builder/target.py, the same decision `build()` makes), check the repository's size.
Blocking I/O (git, the docker CLI): run it in a thread.

A ref that does not exist or a repository over the size limit is refused here, so the
launch page says so and no build starts. The build then gets the resolved commit, so the
ref is resolved once and the image's io.dsbuild.ref label is the commit."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, replace

from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.errors import SourceError
from dsbuild.builder.fetch import public_url
from dsbuild.builder.gitenv import GitLimits
from dsbuild.builder.hostguard import HostGuard
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.names import canonical_url, image_name
from dsbuild.builder.registry import Registry
from dsbuild.builder.service import BuildRequest
from dsbuild.builder.source import GitSource
from dsbuild.builder.target import Target, decide_target
from dsbuild.builder.workspace import Workspace

from .builds import BuildKey
from .config import LaunchConfig
from .errors import RepoNotFound, RepoTooLarge
from .hosts import check_host, safe_source_message
from .routes import LaunchSpec


@dataclass(frozen=True)
class Checked:
    spec: LaunchSpec
    key: BuildKey
    target: Target

    @property
    def commit(self) -> str:
        return self.key.commit

    @property
    def image(self) -> str:
        """What the build tags (or finds)."""
        return self.target.ref

    @property
    def image_exists(self) -> bool:
        return not self.target.needs_build


def service_git_limits(config: LaunchConfig) -> GitLimits:
    """git for a public service: only the URL schemes links may use (git's protocol
    allow-list), and every network command checked and pinned to public addresses
    (or the networks `--allow-host-network` allows)."""
    return GitLimits(protocols=tuple(config.allowed_schemes), hosts=HostGuard(tuple(config.allowed_host_networks)))


def engine_for(config: LaunchConfig):
    """The build engine --build-on names: the local Docker engine, or a build pod per build
    on Kubernetes, built by the build daemon on its node (kube_builds.py)."""
    if config.build_on != "kubernetes":
        return DockerEngine()
    from .kube_api import KubeApi
    from .kube_builds import KubernetesBuildEngine, daemon_settings, pod_settings

    return KubernetesBuildEngine(pod_settings(config), daemon_settings(config), Registry(config.registry),
                                 KubeApi(config.kubeconfig))


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


class Preflight:
    def __init__(self, config: LaunchConfig, engine: DockerEngine | None = None, workspace: Workspace | None = None):
        self.config = config
        self._engine = engine
        self.workspace = workspace or Workspace.default(service_git_limits(config))
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    @property
    def engine(self) -> DockerEngine:
        if self._engine is None:
            self._engine = engine_for(self.config)
        return self._engine

    def _lock(self, url: str) -> threading.Lock:
        with self._guard:  # one git mirror per URL: do not create or fetch it twice at once
            return self._locks[url]

    def request(self, spec: LaunchSpec) -> BuildRequest:
        """The build a launch asks for, named like the CLI names it (with the service's prefix)."""
        return BuildRequest(
            source=spec.source,
            host=read_host_settings(),
            name=image_name(spec.source, self.config.image_prefix),
            registry=Registry(self.config.registry) if self.config.registry else None,
            push=bool(self.config.registry),
            max_increments=self.config.max_increments,
        )

    def check(self, spec: LaunchSpec) -> Checked:
        where = public_url(spec.url)
        check_host(spec.url, self.config.allowed_host_networks, where)
        with self._lock(spec.url):
            try:
                target = decide_target(self.request(spec), self.workspace, self.engine)
                limit = self.config.max_repo_size
                size = self.workspace.fetcher.tree_size(target.resolved) if target.needs_build and limit else 0
            except SourceError as err:  # git's own words may describe the network: logged only
                raise RepoNotFound(safe_source_message(str(err), where)) from None
            if limit and size > limit:
                raise RepoTooLarge(f"{where} at {target.resolved.tag} holds {_size(size)} of files, "
                                   f"more than this server builds ({_size(limit)})")
        assert target.resolved.commit
        return Checked(spec, BuildKey(canonical_url(spec.url), target.resolved.commit), target)

    def build_request(self, checked: Checked) -> BuildRequest:
        """Exactly the checked commit, already resolved: the source's ref is the sha."""
        pinned = GitSource(checked.spec.url, checked.commit)
        return replace(self.request(checked.spec), source=pinned,
                       resolved=replace(checked.target.resolved, source=pinned))
