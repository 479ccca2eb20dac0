"""dsbuild's benchmark: build, rebuild, size and start-up, side by side with a
hand-written Dockerfile and the floor. Run it with `python -m benchmarks.run`."""
