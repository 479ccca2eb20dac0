"""The launch service's Prometheus metrics (prometheus_client), served at /metrics.

    dsbuild_launches_total{outcome}            launch streams ended: "ready", or the
                                               failure's reason (build, repo, hub, ...)
    dsbuild_launches_refused_total{reason}     launch pages refused before a stream
    dsbuild_launch_duration_seconds{outcome}   launch link to ready (or failure), histogram
    dsbuild_build_duration_seconds{outcome}    one build job: "built", "skipped" or "failed"
    dsbuild_builds_running                     builds running a build step now
    dsbuild_builds_queued                      builds started but not building yet
                                               (resolving, fetching, waiting for a build pod)
    dsbuild_registry_skips_total               launches whose image the registry had already

Each service has its own CollectorRegistry, so two in one process (tests) do not mix."""

from __future__ import annotations

from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: a cached launch takes a few, a cold build tens of minutes.
LAUNCH_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
BUILD_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


class LaunchMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.launches = Counter("dsbuild_launches", "Launch streams ended, by outcome (ready, or the failure's reason)",
                                ["outcome"], registry=r)
        self.refused = Counter("dsbuild_launches_refused", "Launch pages refused before a launch started, by reason",
                               ["reason"], registry=r)
        self.launch_seconds = Histogram("dsbuild_launch_duration_seconds", "Launch link to ready, or to failure",
                                        ["outcome"], buckets=LAUNCH_BUCKETS, registry=r)
        self.build_seconds = Histogram("dsbuild_build_duration_seconds",
                                       "One build job from start to end (built, skipped or failed)",
                                       ["outcome"], buckets=BUILD_BUCKETS, registry=r)
        self.registry_skips = Counter("dsbuild_registry_skips",
                                      "Launches that built nothing because the registry had the image", registry=r)
        self.running = Gauge("dsbuild_builds_running", "Builds running a build step now", registry=r)
        self.queued = Gauge("dsbuild_builds_queued", "Builds started that are not building yet", registry=r)

    def watch_builds(self, running: Callable[[], int], queued: Callable[[], int]) -> None:
        """The build gauges read these when scraped."""
        self.running.set_function(running)
        self.queued.set_function(queued)

    def launch_ended(self, outcome: str, seconds: float) -> None:
        self.launches.labels(outcome).inc()
        self.launch_seconds.labels(outcome).observe(seconds)

    def build_ended(self, outcome: str, seconds: float) -> None:
        self.build_seconds.labels(outcome).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
