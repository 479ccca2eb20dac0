"""`dsbuild hub up`'s configuration and state folder, without starting anything."""

from __future__ import annotations

import json
import stat

import pytest
from dsbuild.launch.errors import HubError
from dsbuild.launch.hubconfig import HubOptions, Paths, default_catalog, render_hub_config
from dsbuild.launch.localhub import write_state
from dsbuild.spawner.catalog import parse_catalog
from traitlets.config import Config

from tests.conftest import EXAMPLES


def load(text: str, paths: Paths) -> Config:
    """Execute a generated jupyterhub_config.py as JupyterHub would."""
    for secret in (paths.proxy_token, paths.service_token, paths.password):
        if not secret.exists():
            secret.parent.mkdir(parents=True, exist_ok=True)
            secret.write_text("s3cret\n")
    c = Config()
    exec(compile(text, "jupyterhub_config.py", "exec"), {"get_config": lambda: c})
    return c


def test_anonymous_docker_hub(tmp_path):
    paths = Paths(tmp_path)
    c = load(render_hub_config(HubOptions(state_dir=tmp_path), paths, default_catalog(), "172.17.0.1"), paths)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000/"
    assert c.JupyterHub.hub_bind_url == "http://172.17.0.1:8081"
    assert c.ConfigurableHTTPProxy.should_start is False and c.ConfigurableHTTPProxy.auth_token == "s3cret"
    assert c.JupyterHub.authenticator_class == "null" and c.JupyterHub.spawner_class == "dsbuild-docker"
    assert c.DockerLaunchSpawner.token_in_url is True
    assert parse_catalog(c.DockerLaunchSpawner.catalog) == default_catalog()
    dsbuild, culler = c.JupyterHub.services
    assert dsbuild == {"name": "dsbuild", "api_token": "s3cret"}
    assert "--cull-users=true" in culler["command"]
    launcher_role = c.JupyterHub.load_roles[0]
    assert launcher_role["services"] == ["dsbuild"] and "tokens" in launcher_role["scopes"]


def test_authenticated_hub_registers_the_service_for_oauth(tmp_path):
    options = HubOptions(state_dir=tmp_path, mode="authenticated", authenticator="dummy", admin_users=("ad'min",),
                         service_url="http://10.0.0.2:8585/", catalog_file=EXAMPLES / "hub" / "catalog.yaml")
    paths = Paths(tmp_path)
    from dsbuild.spawner.catalog import load_catalog

    c = load(render_hub_config(options, paths, load_catalog(options.catalog_file), "172.17.0.1"), paths)
    assert c.JupyterHub.authenticator_class == "dummy" and c.DummyAuthenticator.password == "s3cret"
    assert c.Authenticator.admin_users == {"ad'min"}
    assert c.DockerLaunchSpawner.token_in_url is False
    service = c.JupyterHub.services[0]
    assert service["oauth_redirect_uri"] == "http://10.0.0.2:8585/oauth_callback"
    assert service["oauth_client_id"] == "service-dsbuild"
    user_role = c.JupyterHub.load_roles[-1]
    assert user_role["name"] == "user" and user_role["scopes"] == ["self", "access:services!service=dsbuild"]
    assert "--cull-users=true" not in c.JupyterHub.services[1]["command"]


def test_kubernetes_hub(tmp_path):
    options = HubOptions(state_dir=tmp_path, spawner="kubernetes", hub_connect_url="http://10.0.0.5:8081",
                         launch_image_prefix="registry.example.org:5000/")
    paths = Paths(tmp_path)
    c = load(render_hub_config(options, paths, default_catalog(), "0.0.0.0"), paths)
    assert c.JupyterHub.spawner_class == "dsbuild-kube-launch"
    assert c.KubeLaunchSpawner.launch_image_prefix == "registry.example.org:5000/"
    assert c.JupyterHub.hub_connect_url == "http://10.0.0.5:8081"
    assert c.KubeLaunchSpawner.environment == {"JUPYTERHUB_ALLOW_TOKEN_IN_URL": "1"}
    # A first pull fits; an unschedulable request fails with its reason before the hub gives up.
    from dsbuild.spawner.spawner import DsbuildSpawner
    assert c.KubeLaunchSpawner.start_timeout == 300 > DsbuildSpawner.unschedulable_timeout.default_value


def test_state_folder_holds_secrets_and_launch_settings(tmp_path):
    options = HubOptions(state_dir=tmp_path / "hub", hub_ip="172.17.0.1", mode="authenticated", authenticator="dummy")
    paths, hub_ip = write_state(options, password="pw")
    assert hub_ip == "172.17.0.1"
    for secret in (paths.cookie_secret, paths.proxy_token, paths.service_token, paths.password, paths.config):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    token = paths.service_token.read_text()
    assert len(token.strip()) == 64 and paths.password.read_text().strip() == "pw"
    settings = json.loads(paths.launch.read_text())
    assert settings["hub_url"] == "http://127.0.0.1:8000/" and settings["hub_api_url"] == "http://127.0.0.1:8000/hub/api/"
    assert settings["token_file"] == str(paths.service_token) and settings["mode"] == "authenticated"
    assert settings["oauth_redirect_url"] == "http://127.0.0.1:8585/oauth_callback"
    write_state(options)
    assert paths.service_token.read_text() == token  # kept across runs: serve's token stays valid


@pytest.mark.parametrize("changes, words", [
    ({"mode": "public"}, "--mode"),
    ({"spawner": "kubernetes"}, "--hub-connect-url"),
    ({"authenticator": "dummy"}, "anonymous mode has no logins"),
    ({"port": 70000}, "between 1 and 65535"),
])
def test_bad_options(tmp_path, changes, words):
    with pytest.raises(HubError, match=words):
        write_state(HubOptions(state_dir=tmp_path, hub_ip="172.17.0.1", **changes))
