"""Just enough of JupyterHub to drive DsbuildSpawner against a real cluster:
fake user/hub objects shaped like the real ones where the spawner reads them,
and the calls JupyterHub makes around a spawn (apply options, start, poll, stop).
Used by the cluster tests and the scale benchmark."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CATALOG = ROOT / "examples" / "hub" / "catalog.yaml"


def example_catalog(**limits_per_server) -> dict:
    """The example catalog; `limits_per_server` overrides the researchers' per-server
    and per-user limits (e.g. gpus=8), to reach requests only the cluster refuses."""
    data = yaml.safe_load(EXAMPLE_CATALOG.read_text())
    if limits_per_server:
        data = copy.deepcopy(data)
        researchers = data["limits"]["groups"]["researchers"]
        researchers["per_server"].update(limits_per_server)
        researchers["per_user"].update(limits_per_server)
        if "gpus" in limits_per_server:
            data["gpu"]["counts"] = sorted({*data["gpu"]["counts"], limits_per_server["gpus"]})
    return data


def hub_objects(name: str, groups=("researchers",), server: str = ""):
    orm_spawner = SimpleNamespace(name=server, server=None, state=None, user_options={})
    user = SimpleNamespace(name=name, id=abs(hash(name)) % 100000, url=f"/user/{name}/", escaped_name=name,
                           groups=[SimpleNamespace(name=g) for g in groups], orm_spawners={server: orm_spawner})
    hub = SimpleNamespace(public_host="", url="/hub/", base_url="/hub/", api_url="http://hub:8081/hub/api")
    return user, hub, orm_spawner


def make_spawner(name: str, namespace: str, *, groups=("researchers",), catalog: dict | None = None,
                 state: dict | None = None, **config):
    """A DsbuildSpawner for user `name` in `namespace`, as the hub would make it
    (after a hub restart when `state` is given). Call inside the event loop."""
    from dsbuild.spawner.spawner import DsbuildSpawner

    user, hub, orm_spawner = hub_objects(name, groups)
    config.setdefault("start_timeout", 60)
    config.setdefault("unschedulable_timeout", 3)
    config.setdefault("k8s_api_request_timeout", 10)
    config.setdefault("k8s_api_request_retry_timeout", 60)
    spawner = DsbuildSpawner(user=user, hub=hub, orm_spawner=orm_spawner, namespace=namespace,
                             catalog=catalog or example_catalog(), **config)
    if state:
        spawner.load_state(state)
    return spawner


async def spawn(spawner, options: dict) -> str:
    """What JupyterHub does for a spawn request: apply the options, then start."""
    spawner.user_options = options
    await spawner._run_apply_user_options(options)
    url = await spawner.start()
    # JupyterHub records the server so poll can compare its URL; nothing connects to it.
    return url
