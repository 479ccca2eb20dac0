"""What goes to the engine for one build: the context folder, the Dockerfile, its phases
and the BuildKit secrets, with the containment that BuildPolicy asks for (limits.py):
a repository's own Dockerfile is checked for mounts; a generated one gets the package
cache of its source only and the limits handshake; index settings become a secret."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from .context import stage_context, sync_tree
from .dockerfile_check import check_repo_dockerfile
from .dockerfile_limits import limit_runs
from .host import INDEX_SECRET, HostSettings, index_secret
from .limits import BuildPolicy
from .plan import BuildPlan
from .render import render_dockerfile, render_incremental


@dataclass(frozen=True)
class Staged:
    context: Path
    dockerfile: Path
    phases: tuple[str, ...]
    secrets: dict[str, Path] = field(default_factory=dict)
    policy: BuildPolicy | None = None  # the policy the engine gets, when staging changed it


def stage_build(plan: BuildPlan, repo: Path, folder: Path, private: Path, host: HostSettings,
                policy: BuildPolicy, cache_scope: str, limits_image: str | None = None,
                previous: str | None = None) -> Staged:
    """`folder` is the context folder (kept between builds), `private` a folder of this
    build only (for the secret), `cache_scope` names the source's own package cache
    (16 hex of names.source_hash), `limits_image` holds the limits helper that a
    repository's own Dockerfile's RUN steps start with (limits_helper.py), `previous` the
    image an incremental build starts from (increment.py)."""
    if plan.dockerfile:
        if not policy.dockerfile_mounts:
            check_repo_dockerfile((repo / plan.dockerfile).read_text(errors="replace"), plan.dockerfile)
        sync_tree(repo, folder / "repo")
        if policy.cgroup_limits:
            if limits_image is None:
                raise ValueError("a repository Dockerfile under cgroup limits needs the limits helper's image")
            dockerfile = folder / "Dockerfile.limited"  # outside the context
            dockerfile.write_text(limit_runs((folder / "repo" / plan.dockerfile).read_text(errors="replace"), limits_image))
            return Staged(folder / "repo", dockerfile, (), policy=replace(policy, every_run=True))
        return Staged(folder / "repo", folder / "repo" / plan.dockerfile, ())
    scope = "" if policy.shared_cache else cache_scope
    if previous:
        rendered = render_incremental(plan, previous, scope, policy.cgroup_limits)
    else:
        rendered = render_dockerfile(plan, scope, policy.cgroup_limits)
    dockerfile = stage_context(folder, repo, plan, rendered, host)
    secret = private / INDEX_SECRET
    private.mkdir(mode=0o700, exist_ok=True)
    secret.write_text(index_secret(host))
    secret.chmod(0o600)
    return Staged(folder, dockerfile, rendered.phases, {INDEX_SECRET: secret})

