"""Shared fixtures: the example catalog, users, and a KubeSpawner-ready setup
that never talks to a cluster."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from dsbuild.spawner.catalog import Catalog, load_catalog, read_catalog_file
from dsbuild.spawner.manifests import NOTEBOOK_CONTAINER, NOTEBOOK_PORT
from dsbuild.spawner.resolve import HubUser

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CATALOG = ROOT / "examples" / "hub" / "catalog.yaml"
from kubernetes_validate.utils import latest_version

K8S_VERSION = latest_version()  # the newest Kubernetes schema kubernetes-validate ships

FAKE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: unused
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: unused
  user: {token: unused}
contexts:
- name: unused
  context: {cluster: unused, user: unused, namespace: jhub}
current-context: unused
"""


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(EXAMPLE_CATALOG)


@pytest.fixture
def catalog_data() -> dict:
    """A fresh, mutable copy of the example catalog's plain data."""
    return read_catalog_file(EXAMPLE_CATALOG)


@pytest.fixture
def student() -> HubUser:
    return HubUser("sam", frozenset({"students"}))


@pytest.fixture
def researcher() -> HubUser:
    return HubUser("rita", frozenset({"researchers"}))


@pytest.fixture(scope="session", autouse=True)
def fake_kubeconfig(tmp_path_factory):
    """KubeSpawner loads a kube config when constructed; give it one that
    points nowhere. No test makes a request (see RecordingApi)."""
    import kubernetes_asyncio.config.kube_config as kube_config

    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(FAKE_KUBECONFIG)
    mp = pytest.MonkeyPatch()
    mp.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    mp.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield path
    mp.undo()


@pytest.fixture(scope="session")
def validate():
    """Validate a manifest against kubernetes-validate's strict schema for the
    newest Kubernetes it ships. Same schema files and validator class as
    `kubernetes_validate.validate`, loaded once per kind so that hundreds of
    manifests validate in seconds."""
    import functools

    import jsonschema
    from kubernetes_validate.utils import schema_contents
    from referencing import Registry, Resource

    folder = f"kubernetes-json-schema/v{K8S_VERSION}-local-strict"

    @functools.cache
    def validator(kind: str, api_version: str):
        schema = schema_contents(f"{folder}/{kind.lower()}-{api_version}.json", K8S_VERSION)
        definitions = schema_contents(f"{folder}/_definitions.json", K8S_VERSION)
        registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
        return jsonschema.validators.Draft202012Validator(schema, registry=registry)

    def check(manifest: dict) -> None:
        validator(manifest["kind"], manifest["apiVersion"]).validate(manifest)

    return check


@pytest.fixture(name="make_spawner")
def make_spawner_fixture():
    return make_spawner


def hub_objects(name: str, groups=(), server: str = "", others: dict | None = None):
    """Fake JupyterHub user and hub objects, shaped like the real ones where
    the spawner reads them (name, id, url, groups, orm_spawners)."""
    orm_spawner = SimpleNamespace(name=server, server=None, state=None, user_options={})
    orm_spawners = {server: orm_spawner, **(others or {})}
    user = SimpleNamespace(
        name=name, id=42, url=f"/user/{name}/", escaped_name=name,
        groups=[SimpleNamespace(name=g) for g in groups],
        orm_spawners=orm_spawners,
    )
    hub = SimpleNamespace(public_host="", url="/hub/", base_url="/hub/", api_url="http://hub:8081/hub/api")
    return user, hub, orm_spawner


class RecordingApi:
    """Stands in for KubeSpawner's CoreV1Api: any use is recorded and fails."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        self.calls.append(name)
        raise AssertionError(f"unexpected Kubernetes API call: {name}")


def make_spawner(name="rita", groups=("researchers",), server="", others=None, **config):
    """A DsbuildSpawner on fake hub objects whose Kubernetes API client and
    watchers fail the test if used. Call inside an event loop (KubeSpawner
    makes its API client there)."""
    from dsbuild.spawner.spawner import DsbuildSpawner

    user, hub, orm_spawner = hub_objects(name, groups, server, others)
    config.setdefault("catalog_file", str(EXAMPLE_CATALOG))
    spawner = DsbuildSpawner(user=user, hub=hub, orm_spawner=orm_spawner, **config)
    spawner.api = RecordingApi()
    spawner.watched = []

    async def no_watching(*args, **kwargs):
        spawner.watched.append("reflector")
        raise AssertionError("unexpected Kubernetes watch")

    spawner._start_watching_pods = no_watching
    spawner._start_watching_events = no_watching
    return spawner


def minimal_pod(name: str, port: int = NOTEBOOK_PORT) -> dict:
    """A bare base pod, as KubeSpawner would hand it to pod_manifest (shaped like its own)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {}, "annotations": {}},
        "spec": {
            "restartPolicy": "OnFailure",
            "containers": [{
                "name": NOTEBOOK_CONTAINER,
                "image": "placeholder",
                "ports": [{"name": "notebook-port", "containerPort": port}],
            }],
        },
    }
