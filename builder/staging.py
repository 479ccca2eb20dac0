"""What goes to the engine for one build: the context folder, the Dockerfile, its phases
and the BuildKit secrets, with the containment that BuildPolicy asks for (limits.py):
a repository's own Dockerfile is checked for mounts; a generated one gets the package
cache of its source only and the limits handshake; index settings become a secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .context import stage_context, sync_tree
from .dockerfile_check import check_repo_dockerfile
from .host import INDEX_SECRET, HostSettings, index_secret
from .limits import BuildPolicy
from .plan import BuildPlan
from .render import render_dockerfile


@dataclass(frozen=True)
class Staged:
    context: Path
    dockerfile: Path
    phases: tuple[str, ...]
    secrets: dict[str, Path] = field(default_factory=dict)


def stage_build(plan: BuildPlan, repo: Path, folder: Path, private: Path, host: HostSettings,
                policy: BuildPolicy, cache_scope: str) -> Staged:
    """`folder` is the context folder (kept between builds), `private` a folder of this
    build only (for the secret), `cache_scope` names the source's own package cache
    (16 hex of names.source_hash)."""
    if plan.dockerfile:
        if not policy.dockerfile_mounts:
            check_repo_dockerfile((repo / plan.dockerfile).read_text(errors="replace"), plan.dockerfile)
        sync_tree(repo, folder / "repo")
        return Staged(folder / "repo", folder / "repo" / plan.dockerfile, ())
    scope = "" if policy.shared_cache else cache_scope
    rendered = render_dockerfile(plan, scope, policy.cgroup_limits)
    dockerfile = stage_context(folder, repo, plan, rendered, host)
    secret = private / INDEX_SECRET
    private.mkdir(mode=0o700, exist_ok=True)
    secret.write_text(index_secret(host))
    secret.chmod(0o600)
    return Staged(folder, dockerfile, rendered.phases, {INDEX_SECRET: secret})
