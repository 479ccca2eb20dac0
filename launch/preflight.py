"""Before a build: resolve the ref to a commit, see whether the image exists, check the
repository's size. Blocking I/O (git, the docker CLI): run it in a thread.

A ref that does not exist or a repository over the size limit is refused here, so the
launch page says so and no build starts."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass

from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.errors import SourceError
from dsbuild.builder.fetch import GitFetcher, Resolved, public_url
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.registry import Registry
from dsbuild.builder.service import BuildRequest, cache_dir
from dsbuild.builder.source import GitSource, image_name

from .builds import BuildKey
from .config import LaunchConfig
from .errors import RepoNotFound, RepoTooLarge
from .hosts import check_host, safe_source_message
from .repokey import repo_key
from .routes import LaunchSpec


@dataclass(frozen=True)
class Checked:
    spec: LaunchSpec
    key: BuildKey
    image: str  # what the build tags (or finds)
    image_exists: bool

    @property
    def commit(self) -> str:
        return self.key.commit


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


class Preflight:
    def __init__(self, config: LaunchConfig, engine: DockerEngine | None = None):
        self.config = config
        self._engine = engine
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    @property
    def engine(self) -> DockerEngine:
        if self._engine is None:
            self._engine = DockerEngine()
        return self._engine

    def fetcher(self) -> GitFetcher:
        return GitFetcher(cache_dir() / "git")

    def image_name(self, spec: LaunchSpec) -> str:
        return self.config.image_prefix + image_name(spec.source).removeprefix("dsbuild")

    def image_ref(self, spec: LaunchSpec, tag: str) -> str:
        name = self.image_name(spec)
        return Registry(self.config.registry).image(name, tag) if self.config.registry else f"{name}:{tag}"

    def _lock(self, url: str) -> threading.Lock:
        with self._guard:  # one git mirror per URL: do not create or fetch it twice at once
            return self._locks[url]

    def check(self, spec: LaunchSpec) -> Checked:
        check_host(spec.url, self.config.allowed_host_networks, public_url(spec.url))
        with self._lock(spec.url):
            resolved = self._resolve(spec)
            image = self.image_ref(spec, resolved.tag)
            exists = self.engine.inspect_image(image) is not None
            if not exists and self.config.max_repo_size:
                size = self._tree_size(spec, resolved)
                if size > self.config.max_repo_size:
                    raise RepoTooLarge(f"{public_url(spec.url)} at {resolved.tag} holds {_size(size)} of files, "
                                       f"more than this server builds ({_size(self.config.max_repo_size)})")
        assert resolved.commit
        return Checked(spec, BuildKey(repo_key(spec.url), resolved.commit), image, exists)

    def _tree_size(self, spec: LaunchSpec, resolved: Resolved) -> int:
        try:
            return self.fetcher().tree_size(resolved)
        except SourceError as err:
            raise RepoNotFound(safe_source_message(str(err), public_url(spec.url))) from None

    def _resolve(self, spec: LaunchSpec) -> Resolved:
        try:
            return self.fetcher().resolve(spec.source)
        except SourceError as err:
            raise RepoNotFound(safe_source_message(str(err), public_url(spec.url))) from None

    def build_request(self, checked: Checked) -> BuildRequest:
        """Exactly the checked commit, named like the CLI names it (with the service's prefix)."""
        return BuildRequest(
            source=GitSource(checked.spec.url, checked.commit),
            host=read_host_settings(),
            name=self.image_name(checked.spec),
            registry=Registry(self.config.registry) if self.config.registry else None,
            push=bool(self.config.registry),
        )
