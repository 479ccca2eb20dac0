"""The launch spawners driven through JupyterHub's hooks on fake hub objects: the catalog
and limits of resolve() applied to local containers; launch images from the service."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from dsbuild.launch.docker_spawner import DockerLaunchSpawner
from dsbuild.launch.hubconfig import default_catalog
from dsbuild.launch.spawning import local_resources, split_launch_options
from dsbuild.spawner.errors import ChoiceError, OptionsError
from dsbuild.spawner.hub_config import catalog_data
from dsbuild.spawner.options import parse_user_options
from dsbuild.spawner.resolve import HubUser, resolve
from tornado import web

from tests.spawner.conftest import EXAMPLE_CATALOG, fake_kubeconfig, hub_objects  # noqa: F401 (fixture)

LAUNCH = {"image": "dsbuild-demo:0123456789ab", "repo": "https://host/org/demo", "ref": "a" * 40}
BUILT = {"Config": {"Labels": {"io.dsbuild.version": "0.1.0"}}}


def docker_spawner(images=None, others=None, **config):
    user, hub, orm_spawner = hub_objects("anna", others=others)
    config.setdefault("catalog", catalog_data(default_catalog()))
    spawner = DockerLaunchSpawner(user=user, hub=hub, orm_spawner=orm_spawner, **config)
    images = {LAUNCH["image"]: BUILT} if images is None else images

    async def docker(method, *args, **kwargs):
        assert method == "inspect_image", method
        if args[0] not in images:
            raise RuntimeError("404 Client Error: No such image")
        return images[args[0]]

    spawner.docker = docker
    return spawner


def apply(spawner, options):
    async def go():
        await spawner._run_apply_user_options(options)  # what JupyterHub calls before start()
        return spawner

    return asyncio.run(go())


def test_launch_image_with_catalog_defaults():
    spawner = apply(docker_spawner(), LAUNCH)
    assert spawner.image == LAUNCH["image"] and spawner.cpu_limit == 1.0 and spawner.mem_limit == 2 * 2**30
    assert asyncio.run(spawner.check_allowed(LAUNCH["image"])) == LAUNCH["image"]
    with pytest.raises(web.HTTPError):
        asyncio.run(spawner.check_allowed("other:1"))
    assert spawner.cmd == ["jupyterhub-singleuser"] and spawner.remove and spawner.pull_policy == "never"
    assert spawner.extra_host_config["cap_drop"] == ["ALL"]


def test_catalog_choices_within_limits():
    spawner = apply(docker_spawner(), {**LAUNCH, "cpu": 2, "memory": "4Gi"})
    assert spawner.cpu_limit == 2.0 and spawner.mem_limit == 4 * 2**30


@pytest.mark.parametrize("options, words", [
    ({"cpu": 8}, "cpu 8 is not offered"),
    ({"profile": "big"}, "unknown option 'profile'"),
    ({"image": "Not An Image"}, "image:"),
    ({"repo": "https://host/x"}, "repo and ref come with image"),
    ({"image": "dsbuild-missing:1"}, "is not on this Docker engine"),
])
def test_refusals_are_http_400(options, words):
    with pytest.raises(web.HTTPError) as err:
        apply(docker_spawner(), options)
    assert err.value.status_code == 400 and words in err.value.jupyterhub_message


def test_only_dsbuild_images_run():
    spawner = docker_spawner(images={"postgres:16": {"Config": {"Labels": {}}}})
    with pytest.raises(web.HTTPError, match="not built by dsbuild"):
        apply(spawner, {"image": "postgres:16"})


def test_per_user_limit_counts_the_users_other_launches():
    running = SimpleNamespace(name="other", server=object(), state=None, user_options={**LAUNCH, "cpu": 2})
    with pytest.raises(web.HTTPError) as err:
        apply(docker_spawner(others={"other": running}), LAUNCH)
    assert "per-user CPU limit of 2 CPUs" in err.value.jupyterhub_message


def test_gpus_are_refused_on_local_docker():
    spawner = docker_spawner(catalog={}, catalog_file=str(EXAMPLE_CATALOG))
    spawner.user.groups = [SimpleNamespace(name="researchers")]
    with pytest.raises(web.HTTPError) as err:
        apply(spawner, {**LAUNCH, "gpu_type": "nvidia-a100", "gpus": 1})
    assert "GPUs are not available" in err.value.jupyterhub_message


def test_token_in_url_only_for_anonymous_hubs():
    assert "JUPYTERHUB_ALLOW_TOKEN_IN_URL" not in docker_spawner().get_env()
    assert docker_spawner(token_in_url=True).get_env()["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "1"


def test_split_launch_options():
    launch, rest = split_launch_options({**LAUNCH, "cpu": "2"})
    assert launch.image == LAUNCH["image"] and rest == {"cpu": "2"}
    assert split_launch_options(None) == (None, {})
    with pytest.raises(OptionsError):
        split_launch_options({**LAUNCH, "ref": "-x; rm"})
    with pytest.raises(OptionsError):
        split_launch_options(["image"])


def test_local_resources_notes_what_docker_does_not_do():
    from dsbuild.spawner.catalog import load_catalog

    catalog = load_catalog(EXAMPLE_CATALOG)
    request = resolve(parse_user_options({"cpu": 2, "memory": "4Gi"}), catalog, HubUser("r", frozenset({"researchers"})))
    local = local_resources(request)
    assert local.cpu == 2.0 and local.memory == 4 * 2**30
    assert any("not held to 10 GiB" in n for n in local.notes) and any("datasets" in n for n in local.notes)
    gpu = resolve(parse_user_options({"gpu_type": "nvidia-t4"}), catalog, HubUser("r", frozenset({"researchers"})))
    with pytest.raises(ChoiceError):
        local_resources(gpu)


def test_kube_launch_spawner_takes_images_from_the_service_registry():
    from dsbuild.launch.kube_spawner import KubeLaunchSpawner

    async def scenario():
        user, hub, orm_spawner = hub_objects("rita", groups=("researchers",))
        spawner = KubeLaunchSpawner(user=user, hub=hub, orm_spawner=orm_spawner, catalog_file=str(EXAMPLE_CATALOG),
                                    launch_image_prefix="registry.example.org:5000/")
        image = "registry.example.org:5000/dsbuild-demo:0123456789ab"
        request = await spawner.choose_resources({**LAUNCH, "image": image, "cpu": 2})
        refused = None
        try:
            await spawner.choose_resources(LAUNCH)  # not from the service's registry
        except web.HTTPError as err:
            refused = err
        return request, refused

    request, refused = asyncio.run(scenario())
    assert request.image.startswith("registry.example.org:5000/") and request.cpu.limit.cores == 2
    assert refused is not None and refused.status_code == 400


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_docker_start_returns_once_jupyterlab_listens(monkeypatch):
    """start() looks at the container's port every ready_check_interval, so JupyterHub's
    own first check finds the server up (no backoff wait); a listener that opens late is
    waited for."""
    from dockerspawner import DockerSpawner

    port, opened = _free_port(), []

    async def docker_start(self):
        return "127.0.0.1", port

    async def running(self):
        return None

    monkeypatch.setattr(DockerSpawner, "start", docker_start)
    monkeypatch.setattr(DockerSpawner, "poll", running)

    async def scenario():
        spawner = docker_spawner(home_volume_template="", ready_check_interval=0.02, http_timeout=3600)
        started = asyncio.ensure_future(spawner.start())
        for _ in range(5):
            await asyncio.sleep(0.02)
        assert not started.done()  # nothing listens yet: start() has not returned
        server = await asyncio.start_server(lambda r, w: (opened.append(1), w.close()), "127.0.0.1", port)
        async with server:
            result = await asyncio.wait_for(started, 60)
        return result

    assert asyncio.run(scenario()) == ("127.0.0.1", port)
    assert opened  # it returned after a connection to the listener


def test_docker_start_does_not_wait_for_a_container_that_exited(monkeypatch):
    from dockerspawner import DockerSpawner

    async def docker_start(self):
        return "127.0.0.1", _free_port()  # nothing will ever listen

    async def exited(self):
        return 1

    monkeypatch.setattr(DockerSpawner, "start", docker_start)
    monkeypatch.setattr(DockerSpawner, "poll", exited)
    spawner = docker_spawner(home_volume_template="", ready_check_interval=0.02, http_timeout=3600)
    ip, _ = asyncio.run(asyncio.wait_for(spawner.start(), 60))  # returns: JupyterHub reports the exit
    assert ip == "127.0.0.1"
