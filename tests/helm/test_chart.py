"""The Helm chart (deploy/helm/dsbuild), rendered by the real helm (built from its Go
module): lint, what the objects say, the hub configuration they carry (run through
dsbuild's own config code, as the hub does), bad values refused with one line, and
every rendering accepted by the real API server (`kubectl apply --dry-run=server` on
the test cluster's control plane; no real node needed)."""

from __future__ import annotations

import base64
import subprocess
import uuid

import pytest
import yaml
from dsbuild.launch.build_daemon import RBAC_RULES
from dsbuild.launch.clusterhub import render_cluster_config
from dsbuild.launch.hubconfig import Paths
from dsbuild.spawner.catalog import parse_catalog

from tests.launch.test_localhub import load

from .chart import CHART, HelmFailed, find

TEST_CLUSTER = {  # what the real-node test installs with
    "network": {"mode": "hostNetwork", "nodeIP": "10.123.0.1"},
    "registry": {"host": "localhost:5000"},
    "image": {"name": "localhost:5000/dsbuild-hub", "tag": "abc"},
    "hub": {"port": 18081, "password": "pw",
            "extraEnv": [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"}],
            "nodeSelector": {"dsbuild.io/node-pool": "real"}},
    "proxy": {"port": 18000, "apiPort": 18001},
    "singleuser": {"nodeSelector": {"dsbuild.io/node-pool": "real"},
                   "tolerations": [{"key": "dsbuild.io/real-node", "operator": "Exists", "effect": "NoSchedule"}]},
    "launch": {"enabled": False},
}
EVERYTHING = {  # every optional part on
    "registry": {"host": "registry.example.org:5000"},
    "hub": {"config": {"mode": "anonymous", "authenticator": None, "public_url": "https://hub.example.org/"},
            "db": {"url": "postgresql://hub@db/hub"}},
    "proxy": {"service": {"type": "NodePort", "nodePort": 30080}},
    "launch": {"enabled": True, "buildOn": "kubernetes", "buildImage": "registry.example.org:5000/dsbuild-buildkit:1",
               "extraEnv": [{"name": "SSL_CERT_FILE", "value": "/etc/dsbuild/ca.crt"}],
               "extraVolumes": [{"name": "ca", "configMap": {"name": "site-ca"}}],
               "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/dsbuild/ca.crt", "subPath": "ca.crt"}]},
    "imageCleaner": {"registry": {"enabled": True, "only": "dsbuild-", "nodeSelector": {"pool": "ops"},
                                  "tolerations": [{"key": "ops", "operator": "Exists"}]},
                     "node": {"enabled": True, "only": "dsbuild-*"}},
}


def hub_config(objects: list[dict], tmp_path):
    """The hub's configuration as JupyterHub loads it, from the chart's ConfigMap."""
    config_map = find(objects, "ConfigMap", "-hub")
    code = config_map["data"]["jupyterhub_config.py"]
    assert "cluster_hub_config(" in code and not [l for l in code.splitlines() if l.startswith("c.")]  # no copy here
    paths = Paths(tmp_path, tmp_path / "secrets")
    return load(render_cluster_config(yaml.safe_load(config_map["data"]["hub.yaml"]), tmp_path / "secrets", tmp_path),
                paths)


def test_lint(helm):
    out = helm("lint", str(CHART), "--strict")
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    out = helm("lint", str(CHART), "--strict", values=TEST_CLUSTER)
    assert "0 chart(s) failed" in out


def test_defaults_are_a_cluster_install_with_services(helm, tmp_path):
    objects = helm.template()
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert kinds == sorted([
        ("ConfigMap", "t-dsbuild-hub"), ("Secret", "t-dsbuild"), ("ServiceAccount", "t-dsbuild-hub"),
        ("Role", "t-dsbuild-hub"), ("RoleBinding", "t-dsbuild-hub"), ("PersistentVolumeClaim", "t-dsbuild-hub-db"),
        ("Service", "t-dsbuild-hub"), ("Service", "t-dsbuild-proxy-api"), ("Service", "t-dsbuild-proxy-public"),
        ("Deployment", "t-dsbuild-hub"), ("Deployment", "t-dsbuild-proxy")])
    c = hub_config(objects, tmp_path)
    assert c.JupyterHub.spawner_class == "dsbuild-kube-launch"
    assert c.JupyterHub.hub_connect_url == "http://t-dsbuild-hub:8081"
    assert c.JupyterHub.hub_bind_url == "http://0.0.0.0:8081"
    assert c.ConfigurableHTTPProxy.api_url == "http://t-dsbuild-proxy-api:8001"
    assert c.ConfigurableHTTPProxy.should_start is False and c.ConfigurableHTTPProxy.auth_token == "s3cret"
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path}/jupyterhub.sqlite"
    assert c.JupyterHub.cookie_secret_file == str(tmp_path / "secrets" / "cookie_secret")
    assert c.JupyterHub.authenticator_class == "dummy" and c.DummyAuthenticator.password == "s3cret"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert parse_catalog(c.KubeLaunchSpawner.catalog) == parse_catalog(values["catalog"])
    assert c.KubeLaunchSpawner.start_timeout == 300
    assert c.KubeLaunchSpawner.launch_image_prefix == ""  # no launch service, no launch images
    # The servers' volumes are the spawner's, outside the release; the hub's database is kept.
    pvc = find(objects, "PersistentVolumeClaim")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    role = find(objects, "Role")
    assert {"pods", "persistentvolumeclaims"} <= set(role["rules"][0]["resources"])
    assert set(role["rules"][0]["verbs"]) == {"get", "watch", "list", "create", "delete"}
    proxy = find(objects, "Deployment", "-proxy")["spec"]["template"]["spec"]["containers"][0]
    assert "--default-target=http://t-dsbuild-hub:8081" in proxy["command"]
    assert proxy["env"][0]["valueFrom"]["secretKeyRef"]["key"] == "proxy_token"


def test_extra_config_runs_after_dsbuilds_in_the_order_of_its_names(helm, tmp_path):
    objects = helm.template({"hub": {"extraConfig": {
        "b-later": "c.JupyterHub.concurrent_spawn_limit = 2",
        "a-first": "c.JupyterHub.concurrent_spawn_limit = 1\nc.JupyterHub.last_activity_interval = 600"}}})
    c = hub_config(objects, tmp_path)
    assert c.JupyterHub.concurrent_spawn_limit == 2 and c.JupyterHub.last_activity_interval == 600
    assert "c.JupyterHub.concurrent_spawn_limit" not in hub_config(helm.template(), tmp_path).JupyterHub


def test_secrets_are_random_and_the_given_password_is_used(helm):
    one, two = (find(helm.template({"hub": {"password": "given"}}), "Secret")["data"] for _ in range(2))
    assert one["proxy_token"] != two["proxy_token"] and len(base64.b64decode(one["proxy_token"])) == 48
    assert base64.b64decode(one["password"]) == b"given"


def test_test_cluster_mode_uses_the_nodes_network(helm, tmp_path):
    objects = helm.template(TEST_CLUSTER)
    assert not [o for o in objects if o["kind"] == "Service"]  # no kube-proxy there
    hub = find(objects, "Deployment", "-hub")["spec"]["template"]["spec"]
    assert hub["hostNetwork"] is True and hub["nodeSelector"] == {"dsbuild.io/node-pool": "real"}
    assert hub["containers"][0]["image"] == "localhost:5000/dsbuild-hub:abc"
    c = hub_config(objects, tmp_path)
    assert c.JupyterHub.hub_connect_url == "http://10.123.0.1:18081"
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:18001"
    assert c.KubeLaunchSpawner.launch_image_prefix == "localhost:5000/"
    assert c.KubeLaunchSpawner.node_selector == {"dsbuild.io/node-pool": "real"}
    assert c.KubeLaunchSpawner.tolerations[0]["key"] == "dsbuild.io/real-node"
    proxy = find(objects, "Deployment", "-proxy")["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--api-ip=127.0.0.1" in proxy and "--default-target=http://127.0.0.1:18081" in proxy


def test_everything_on(helm, tmp_path):
    objects = helm.template(EVERYTHING)
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]  # the database is elsewhere
    c = hub_config(objects, tmp_path)
    assert c.JupyterHub.db_url == "postgresql://hub@db/hub" and c.JupyterHub.authenticator_class == "null"
    launch_pod = find(objects, "Deployment", "-launch")["spec"]["template"]["spec"]
    launch = launch_pod["containers"][0]["command"]
    assert launch_pod["containers"][0]["env"] == [{"name": "DSBUILD_CACHE_DIR", "value": "/var/lib/dsbuild/cache"},
                                                  {"name": "DSBUILD_BUILDCTL", "value": "/opt/dsbuild/bin/buildctl"},
                                                  *EVERYTHING["launch"]["extraEnv"]]
    assert "--rate-state=/var/lib/dsbuild/launch-rate.sqlite" in launch_pod["containers"][0]["command"]
    assert {"name": "state", "emptyDir": {"sizeLimit": "10Gi"}} in launch_pod["volumes"]
    assert launch_pod["volumes"][-1] == EVERYTHING["launch"]["extraVolumes"][0]
    assert launch_pod["containers"][0]["volumeMounts"][-1] == EVERYTHING["launch"]["extraVolumeMounts"][0]
    assert "--build-on=kubernetes" in launch and "--mode=anonymous" in launch
    assert "--build-image=registry.example.org:5000/dsbuild-buildkit:1" in launch and "--build-namespace=hub" in launch
    assert find(objects, "Role", "-launch")["rules"] == list(RBAC_RULES)  # what the service calls, no more
    assert "--registry=registry.example.org:5000" in launch
    (init,) = launch_pod["initContainers"]  # buildctl, from the build image, for the service's own use
    assert init["image"] == EVERYTHING["launch"]["buildImage"] and init["command"][0] == "/bin/cp"
    assert {"name": "DSBUILD_BUILDCTL", "value": "/opt/dsbuild/bin/buildctl"} in launch_pod["containers"][0]["env"]
    assert {"name": "buildctl", "emptyDir": {"sizeLimit": "200Mi"}} in launch_pod["volumes"]
    cleaner_pod = find(objects, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    cleaner = cleaner_pod["containers"][0]
    assert cleaner["command"][:3] == ["dsbuild", "gc", "--registry=registry.example.org:5000"]
    assert "--only=dsbuild-" in cleaner["command"]
    assert cleaner_pod["nodeSelector"] == {"pool": "ops"} and cleaner_pod["tolerations"][0]["key"] == "ops"
    node = find(objects, "DaemonSet")["spec"]["template"]["spec"]
    assert node["volumes"][0]["hostPath"]["path"] == "/var/run/docker.sock"
    assert {"name": "ONLY", "value": "dsbuild-*"} in node["containers"][0]["env"]
    assert node["securityContext"]["runAsUser"] == 0  # the socket is root's; the image's user is 1000
    assert '${ONLY:+--only="$ONLY"}' in node["containers"][0]["command"][-1]
    assert find(objects, "Service", "-proxy-public")["spec"]["ports"][0]["nodePort"] == 30080


def service(c, name: str = "dsbuild") -> dict:
    return next(s for s in c.JupyterHub.services if s["name"] == name)


def test_the_launch_service_is_reached_through_the_hubs_proxy(helm, tmp_path):
    """JupyterHub's route for a service with a URL: /services/dsbuild/ on the hub's origin."""
    objects = helm.template({"registry": {"host": "r:5000"}, "launch": {"enabled": True},
                             "hub": {"config": {"public_url": "https://hub.example.org/"}}})
    c = hub_config(objects, tmp_path)
    assert service(c)["url"] == "http://t-dsbuild-launch:8585"  # the proxy keeps the path: /services/dsbuild/...
    assert service(c)["oauth_redirect_uri"] == "/services/dsbuild/oauth_callback"  # on the hub's origin
    pod = find(objects, "Deployment", "-launch")["spec"]["template"]["spec"]["containers"][0]
    assert {"--base-url=/services/dsbuild/", "--public-url=https://hub.example.org/services/dsbuild/",
            "--oauth-redirect-url=/services/dsbuild/oauth_callback", "--hub-url=https://hub.example.org/"} <= set(
        pod["command"])
    assert pod["readinessProbe"]["httpGet"]["path"] == "/services/dsbuild/health"
    # Without public_url the service's links follow each request's host (the proxy keeps it).
    pod = find(helm.template({**TEST_CLUSTER, "launch": {"enabled": True}}), "Deployment", "-launch")
    command = pod["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--base-url=/services/dsbuild/" in command and not [a for a in command if a.startswith("--public-url")]
    c = hub_config(helm.template({**TEST_CLUSTER, "launch": {"enabled": True}}), tmp_path)
    assert service(c)["url"] == "http://127.0.0.1:8585"
    assert "url" not in service(hub_config(helm.template(), tmp_path))  # no launch service, no route


def test_the_docker_launch_service_runs_as_root_and_the_buildkit_one_does_not(helm):
    docker = helm.template({"registry": {"host": "r:5000"}, "launch": {"enabled": True}})
    pod = find(docker, "Deployment", "-launch")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 0  # the socket and the secrets are root's
    assert pod["serviceAccountName"] == "t-dsbuild-launch" and pod["automountServiceAccountToken"] is False
    assert find(docker, "ServiceAccount", "-launch") and not [o for o in docker if o["kind"] == "Role"
                                                              and o["metadata"]["name"].endswith("-launch")]
    assert pod["volumes"][-1]["hostPath"]["path"] == "/var/run/docker.sock"
    pod = find(helm.template(EVERYTHING), "Deployment", "-launch")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 1000 and pod["securityContext"]["runAsNonRoot"]
    assert pod["securityContext"]["fsGroup"] == 1000  # it reads the Secret's files (mode 0440)
    assert pod["serviceAccountName"] == "t-dsbuild-launch"  # the same name: buildOn may change on an upgrade


@pytest.mark.parametrize("values, message", [
    ({"network": {"mode": "bridge"}}, 'network.mode must be services or hostNetwork, not "bridge"'),
    ({"network": {"mode": "hostNetwork"}}, "network.nodeIP is needed with network.mode=hostNetwork"),
    ({"launch": {"enabled": True}}, "launch.enabled needs registry.host"),
    ({"launch": {"enabled": True, "buildOn": "podman"}, "registry": {"host": "r:5000"}},
     'launch.buildOn must be docker or kubernetes, not "podman"'),
    ({"imageCleaner": {"registry": {"enabled": True}}}, "imageCleaner.registry needs registry.host"),
    ({"launch": {"enabled": True, "buildOn": "kubernetes"}, "registry": {"host": "r:5000"}},
     "launch.buildOn=kubernetes needs launch.buildImage"),
])
def test_bad_values_are_refused_in_one_line(helm, values, message):
    with pytest.raises(HelmFailed) as err:
        helm.template(values)
    assert message in str(err.value)


def test_a_bad_catalog_stops_the_hub_with_one_line_naming_it(helm, tmp_path):
    """The ConfigMap's jupyterhub_config.py as the hub runs it, in a Python of its own."""
    import sys

    config_map = find(helm.template({"catalog": {"cpu": [{"limit": "lots"}]}}), "ConfigMap", "-hub")
    (tmp_path / "hub.yaml").write_text(config_map["data"]["hub.yaml"])
    code = config_map["data"]["jupyterhub_config.py"].replace("/etc/dsbuild/config/hub.yaml", str(tmp_path / "hub.yaml"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("dsbuild: hub.yaml: catalog.cpu[0].limit: 'lots' is not a CPU amount")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.cluster
@pytest.mark.parametrize("values", [{}, TEST_CLUSTER, EVERYTHING], ids=["defaults", "test-cluster", "everything"])
def test_the_api_server_accepts_every_object(helm, control_plane, values):
    """Server-side dry run: the real API server's validation and admission."""
    kubectl, kubeconfig = control_plane
    namespace = f"helm-dry-{uuid.uuid4().hex[:6]}"
    k = [str(kubectl), "--kubeconfig", str(kubeconfig)]
    subprocess.run([*k, "create", "namespace", namespace], check=True, capture_output=True)
    try:
        text = helm("template", "t", str(CHART), "--namespace", namespace, values=values)
        done = subprocess.run([*k, "apply", "--dry-run=server", "-n", namespace, "-f", "-"], input=text,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("(server dry run)") == len([d for d in yaml.safe_load_all(text) if d])
    finally:
        subprocess.run([*k, "delete", "namespace", namespace, "--wait=false"], capture_output=True)
