"""Scale benchmark: N simulated users spawned through DsbuildSpawner against the
real test cluster (tests/cluster), reporting spawns per second, time to running
and where the scheduler placed every pod. Run: python -m benchmarks.scale --help"""

import sys


def say(message: str) -> None:
    print(f"[scale] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]
