"""Scale benchmark: N simulated users spawned through DsbuildSpawner against the
real test cluster (tests/cluster), reporting spawns per second, time to running
and where the scheduler placed every pod. Run: python -m benchmarks.scale --help"""
