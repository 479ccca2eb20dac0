"""postBuild and start: the repository's own scripts."""

from __future__ import annotations

from ..facts import RepoFacts
from .base import Contribution, Piece


class PostBuildPiece(Piece):
    """postBuild runs once, as the notebook user, after the repository is in the image."""

    name = "postBuild"

    def detect(self, facts: RepoFacts) -> bool:
        return facts.has("postBuild")

    def contribute(self, facts: RepoFacts) -> Contribution:
        return Contribution(post_build=(facts.path("postBuild"),))


class StartPiece(Piece):
    """start wraps every launch: it runs first and must end with `exec "$@"`."""

    name = "start"

    def detect(self, facts: RepoFacts) -> bool:
        return facts.has("start")

    def contribute(self, facts: RepoFacts) -> Contribution:
        return Contribution(start=facts.path("start"))
