"""The Helm chart's hub configuration (launch/clusterhub.py): hub.yaml through the same
render as `dsbuild hub up --spawner kubernetes`, and its bad keys refused by name."""

from __future__ import annotations

import pytest
from dsbuild.launch.clusterhub import cluster_hub_config, render_cluster_config
from dsbuild.launch.errors import HubError
from dsbuild.launch.hubconfig import Paths

from tests.launch.test_localhub import load

CATALOG = {"environments": {"lab": {"image": "registry.example.org/lab:1"}},
           "cpu": [{"limit": 1, "guarantee": 0.5}], "memory": [{"limit": "2Gi", "guarantee": "1Gi"}],
           "storage": {"sizes": ["1Gi"]}}
VALUES = {
    "options": {"mode": "authenticated", "authenticator": "dummy", "admin_users": ["ada"],
                "hub_connect_url": "http://rel-hub:8081", "launch_image_prefix": "registry.example.org:5000/",
                "service_url": "http://rel-launch:8585/", "hub_port": 8081, "port": 8000, "spawner": "kubernetes"},
    "proxy_api_url": "http://rel-proxy-api:8001",
    "db_url": "",
    "spawner": {"node_selector": {"pool": "users"}, "tolerations": [], "start_timeout": 120},
    "catalog": CATALOG,
}


def config(tmp_path, values=VALUES):
    return load(render_cluster_config(values, tmp_path / "secrets", tmp_path / "data"),
                Paths(tmp_path / "data", tmp_path / "secrets"))


def test_the_chart_hub_is_the_kubernetes_hub_with_its_secrets_mounted(tmp_path):
    c = config(tmp_path)
    assert c.JupyterHub.spawner_class == "dsbuild-kube-launch"
    assert c.JupyterHub.hub_bind_url == "http://0.0.0.0:8081"
    assert c.JupyterHub.hub_connect_url == "http://rel-hub:8081"
    assert c.ConfigurableHTTPProxy.api_url == "http://rel-proxy-api:8001"
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path}/data/jupyterhub.sqlite"
    assert c.JupyterHub.cookie_secret_file == str(tmp_path / "secrets" / "cookie_secret")
    assert c.Authenticator.admin_users == {"ada"}
    assert c.KubeLaunchSpawner.node_selector == {"pool": "users"}
    assert c.KubeLaunchSpawner.start_timeout == 120
    assert "tolerations" not in c.KubeLaunchSpawner  # empty: KubeSpawner's default stays
    assert c.KubeLaunchSpawner.launch_image_prefix == "registry.example.org:5000/"
    assert c.JupyterHub.services[0]["oauth_redirect_uri"] == "http://rel-launch:8585/oauth_callback"


def test_a_database_url_replaces_sqlite(tmp_path):
    c = config(tmp_path, {**VALUES, "db_url": "postgresql://hub@db/hub"})
    assert c.JupyterHub.db_url == "postgresql://hub@db/hub"


def test_the_operators_own_configuration_runs_last(tmp_path):
    own = "c.JupyterHub.concurrent_spawn_limit = 7\nc.KubeLaunchSpawner.start_timeout = 99\n"
    c = config(tmp_path, {**VALUES, "extra_config": own})
    assert c.JupyterHub.concurrent_spawn_limit == 7
    assert c.KubeLaunchSpawner.start_timeout == 99  # over the chart's own 120


@pytest.mark.parametrize("change, message", [
    ({"extra_config": ["c.JupyterHub.x = 1"]}, "hub.yaml: extra_config is Python text"),
    ({"extra": 1}, "hub.yaml: unknown key 'extra'"),
    ({"spawner": {"privileged": True}}, "hub.yaml: spawner.privileged is not one of"),
    ({"options": {**VALUES["options"], "spawner": "docker"}}, "spawns on Kubernetes"),
    ({"options": {**VALUES["options"], "hub_connect_url": None}}, "--hub-connect-url"),
    ({"options": {**VALUES["options"], "cull_timeout": "soon"}}, "--cull-timeout must be an int"),
    ({"catalog": {**CATALOG, "cpu": [{"limit": "lots"}]}}, "hub.yaml: catalog.cpu[0].limit"),
])
def test_bad_values_are_one_line_naming_the_key(tmp_path, change, message):
    with pytest.raises(HubError) as err:
        render_cluster_config({**VALUES, **change})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_reading_the_file(tmp_path):
    import yaml

    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(VALUES))
    assert "c.JupyterHub.spawner_class = \"dsbuild-kube-launch\"" in cluster_hub_config(path)
    path.write_text("- a list\n")
    with pytest.raises(HubError, match="not a mapping"):
        cluster_hub_config(path)
    with pytest.raises(HubError, match="cannot read"):
        cluster_hub_config(tmp_path / "missing.yaml")


def test_without_the_launch_service_no_registry_is_needed(tmp_path):
    options = {k: v for k, v in VALUES["options"].items() if k != "launch_image_prefix"}
    with pytest.raises(HubError, match="--registry"):
        render_cluster_config({**VALUES, "options": options})
    c = config(tmp_path, {**VALUES, "options": options, "launch": False})
    assert c.KubeLaunchSpawner.launch_image_prefix == ""  # launch images refused
