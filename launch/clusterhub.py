"""The Helm chart's hub configuration (deploy/helm/dsbuild): the chart's ConfigMap holds
`hub.yaml` (values the chart computed) and a two-line jupyterhub_config.py that runs
what `cluster_hub_config` returns. That is `render_hub_config`'s output, the same code
and template as `dsbuild hub up --spawner kubernetes`, so the chart holds no second copy
of the hub's configuration: only where its secrets, database and proxy are.

hub.yaml:

    options:   # HubOptions traits (`dsbuild hub up --help`), spawner is always kubernetes
      mode: authenticated
      hub_connect_url: http://RELEASE-hub:8081
      launch_image_prefix: registry.example.org/
    launch: true              # the release runs `dsbuild serve` (it needs the registry)
    proxy_api_url: http://RELEASE-proxy-api:8001
    db_url: null              # default: sqlite in the hub's volume
    spawner: {node_selector: {...}, tolerations: [...]}   # a few KubeLaunchSpawner traits
    catalog: {...}            # docs/spawner.md
    extra_config: "c.JupyterHub.concurrent_spawn_limit = 200"   # hub.extraConfig, run last

`render_cluster_config` is pure; `cluster_hub_config` reads the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsbuild.spawner.catalog import parse_catalog
from dsbuild.spawner.errors import CatalogError

from .errors import HubError
from .hubconfig import HubOptions, Paths, check_options, render_hub_config

SECRETS_DIR = Path("/etc/dsbuild/secrets")  # the chart's Secret, mounted read-only
DATA_DIR = Path("/srv/jupyterhub")  # the hub's volume: its sqlite database
KEYS = {"options", "launch", "proxy_api_url", "db_url", "spawner", "catalog", "extra_config"}
# KubeLaunchSpawner traits the chart may set (placement and timing of servers).
SPAWNER_TRAITS = {"node_selector", "tolerations", "start_timeout", "http_timeout", "image_pull_policy",
                  "image_pull_secrets", "extra_labels", "extra_annotations", "service_account"}


def cluster_options(values: dict[str, Any]) -> HubOptions:
    """HubOptions from hub.yaml's `options`, for a hub whose servers are pods."""
    given = dict(values.get("options") or {})
    if given.get("spawner", "kubernetes") != "kubernetes":
        raise HubError("hub.yaml: the chart's hub spawns on Kubernetes (options.spawner)")
    given["spawner"] = "kubernetes"
    options = HubOptions(**given)
    check_options(options, launch=bool(values.get("launch", True)))
    return options


def render_cluster_config(values: dict[str, Any], secrets: Path = SECRETS_DIR, data: Path = DATA_DIR) -> str:
    """jupyterhub_config.py text for the chart's hub (pure); HubError names a bad key."""
    unknown = sorted(set(values) - KEYS)
    if unknown:
        raise HubError(f"hub.yaml: unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    spawner = dict(values.get("spawner") or {})
    extra = sorted(set(spawner) - SPAWNER_TRAITS)
    if extra:
        raise HubError(f"hub.yaml: spawner.{extra[0]} is not one of {', '.join(sorted(SPAWNER_TRAITS))}")
    options = cluster_options(values)
    try:
        catalog = parse_catalog(values.get("catalog") or {})
    except CatalogError as err:
        raise HubError(f"hub.yaml: {err}") from None
    own = values.get("extra_config") or ""
    if not isinstance(own, str):
        raise HubError("hub.yaml: extra_config is Python text (hub.extraConfig's snippets)")
    config = render_hub_config(options, Paths(data, secrets), catalog, "0.0.0.0",
                               proxy_api_url=values.get("proxy_api_url") or None,
                               db_url=values.get("db_url") or None,
                               kube_settings={k: v for k, v in spawner.items() if v not in (None, {}, [])})
    if not own.strip():
        return config
    return config.rstrip("\n") + "\n\n# The operator's own configuration (hub.extraConfig), last\n" + own.strip("\n") + "\n"


def cluster_hub_config(path: str | Path) -> str:
    """Read hub.yaml and render (what the chart's jupyterhub_config.py runs)."""
    import yaml

    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise HubError(f"cannot read {path}: {err}") from None
    if not isinstance(values, dict):
        raise HubError(f"{path}: not a mapping")
    return render_cluster_config(values)
