"""dsbuild.spawner: a KubeSpawner that launches dsbuild images with chosen resources."""
