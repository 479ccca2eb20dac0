"""Dockerfile: the repository brings its own build; it is built as it is."""

from __future__ import annotations

from ..facts import RepoFacts
from .base import Contribution, Piece


class DockerfilePiece(Piece):
    name = "Dockerfile"

    def detect(self, facts: RepoFacts) -> bool:
        return facts.has("Dockerfile")

    def contribute(self, facts: RepoFacts) -> Contribution:
        return Contribution(dockerfile=facts.path("Dockerfile"))
