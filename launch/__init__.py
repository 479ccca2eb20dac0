"""dsbuild.launch: binder-style launch links, build streams and a hub to land in."""
