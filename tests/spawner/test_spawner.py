"""DsbuildSpawner driven through its own hooks, with fake hub objects and no
cluster: form -> options -> apply -> get_pod_manifest / get_pvc_manifest,
and refusals that stop before any Kubernetes call."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from kubespawner import KubeSpawner
from tornado import web

from dsbuild.spawner.k8s import to_plain
from dsbuild.spawner.manifests import pod_manifest, pvc_manifest
from dsbuild.spawner.spawner import DsbuildSpawner



def run(coro):
    return asyncio.run(coro)


def form(**fields):
    return {key: [value] for key, value in fields.items()}


def test_registered_as_jupyterhub_spawner():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="jupyterhub.spawners") if e.name == "dsbuild"]
    assert ep.load() is DsbuildSpawner
    assert issubclass(DsbuildSpawner, KubeSpawner)


def test_every_own_trait_is_typed_configurable_and_documented(make_spawner):
    own = {"catalog", "catalog_file", "image_builder"}
    traits = DsbuildSpawner.class_traits(config=True)
    for name in own:
        assert traits[name].help.strip(), name
    async def defaults():
        s = make_spawner()
        return s.storage_pvc_ensure, s.delete_pvc
    assert run(defaults()) == (True, False)


def test_form_to_pod_and_pvc_through_the_spawner(make_spawner, validate):
    async def scenario():
        spawner = make_spawner(server="gpu-run")
        html = await spawner.get_options_form()
        assert 'name="gpu_type"' in html and "NVIDIA A100 40GB" in html
        options = spawner.run_options_from_form(form(
            environment="dsbuild-torch:2.3", cpu="8", memory="32Gi",
            gpu_type="nvidia-a100", gpus="2", storage="50Gi", storage_class="standard", _xsrf="x",
        ))
        spawner.user_options = options
        await spawner._run_apply_user_options(options)  # what JupyterHub calls before start()
        await spawner.load_user_options()  # what start() calls first
        pod = to_plain(await spawner.get_pod_manifest())
        pvc = to_plain(spawner.get_pvc_manifest())
        base_pod = to_plain(await KubeSpawner.get_pod_manifest(spawner))
        base_pvc = to_plain(KubeSpawner.get_pvc_manifest(spawner))
        return spawner, pod, pvc, base_pod, base_pvc

    spawner, pod, pvc, base_pod, base_pvc = run(scenario())
    request = spawner.resource_request
    # What KubeSpawner would send is exactly the pure builders' output.
    assert pod == pod_manifest(request, pvc_name=spawner.pvc_name, base=base_pod)
    assert pvc == pvc_manifest(request, pvc_name=spawner.pvc_name, base=base_pvc)
    validate(pod)
    validate(pvc)

    container = pod["spec"]["containers"][0]
    assert container["image"] == "registry.example.org/dsbuild/dsbuild-torch:2.3"
    assert container["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"}
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}
    # The home PVC is named after the user and the server, and mounted at home.
    assert spawner.pvc_name == "claim-rita--gpu-run" == pvc["metadata"]["name"]
    assert {"name": "home", "persistentVolumeClaim": {"claimName": "claim-rita--gpu-run"}} in pod["spec"]["volumes"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "50Gi"
    # KubeSpawner's own wiring is kept: hub env, port, labels its pod watcher uses.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["JUPYTERHUB_USER"] == "rita" and env["JUPYTER_IMAGE"] == container["image"]
    assert container["ports"] == [{"containerPort": 8888, "name": "notebook-port"}]
    assert pod["metadata"]["labels"]["component"] == "singleuser-server"
    assert pod["metadata"]["name"] == spawner.pod_name
    assert spawner.api.calls == [] and spawner.watched == []


def test_the_default_server_gets_a_pvc_named_after_the_user(make_spawner, validate):
    async def names():
        spawner = make_spawner(name="Ada.Lovelace@uni.example")
        await spawner.choose_resources({})
        return spawner.pvc_name, to_plain(spawner.get_pvc_manifest())

    pvc_name, pvc = run(names())
    assert pvc_name.startswith("claim-ada-lovelace")
    assert pvc["metadata"]["name"] == pvc_name
    validate(pvc)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"environment": "no-such-env"}, "unknown environment 'no-such-env'"),
        ({"cpu": -1}, "cpu: -1 is not a CPU amount"),
        ({"memory": "999999Pi"}, "more than 1Pi"),
        ({"gpu_type": "nvidia-h100"}, "unknown GPU type 'nvidia-h100'"),
        ({"storage_class": "fast-ssd"}, "storage class 'fast-ssd' does not exist"),
        ({"cpu": 8}, "over the per-server CPU limit of 2 CPUs (group 'students')"),
        ({"profile": "large"}, "unknown option 'profile'"),
        ({"git_url": "https://github.com/example-org/x"}, "no image builder is configured"),
    ],
)
def test_bad_requests_are_http_400_and_never_reach_kubernetes(options, message, make_spawner):
    async def scenario():
        spawner = make_spawner(name="sam", groups=("students",))
        with pytest.raises(web.HTTPError) as info:
            await spawner._run_apply_user_options(options)
        # JupyterHub then cleans up the failed spawn: poll, maybe stop.
        status = await spawner.poll()
        await spawner.stop()
        return spawner, info.value, status

    spawner, error, status = run(scenario())
    assert error.status_code == 400
    assert message in error.jupyterhub_message
    assert status == 0
    assert spawner.api.calls == [] and spawner.watched == []


def test_form_with_bad_types_is_refused_before_spawning(make_spawner):
    async def scenario():
        spawner = make_spawner()
        with pytest.raises(web.HTTPError) as info:
            spawner.run_options_from_form(form(gpu_type="nvidia-t4", gpus="two"))
        return info.value

    error = run(scenario())
    assert error.status_code == 400 and "gpus must be a whole number" in error.jupyterhub_message


def test_per_user_limit_counts_the_users_other_servers(make_spawner):
    def server(name, running, options):
        return SimpleNamespace(name=name, server=object() if running else None,
                               state={"pvc_name": f"claim-sam--{name}"}, user_options=options)

    others = {
        "a": server("a", True, {"cpu": "2", "memory": "2Gi"}),
        "b": server("b", True, {"cpu": "2", "memory": "2Gi"}),
        "c": server("c", False, {"cpu": "2", "memory": "4Gi"}),  # stopped: only its volume counts
    }

    async def scenario():
        spawner = make_spawner(name="sam", groups=("students",), others=others)
        html = spawner.spawn_form_html()
        with pytest.raises(web.HTTPError) as info:
            await spawner.choose_resources({"cpu": "1", "memory": "2Gi"})
        return html, info.value

    html, error = run(scenario())
    message = error.jupyterhub_message
    assert "1 CPU plus the 4 CPUs your other running servers use is over the per-user CPU limit of 4 CPUs (group 'students')" in message
    # three other 10Gi volumes + 10Gi is over the 20Gi per-user storage limit
    assert "10 GiB plus the 30 GiB your other home volumes hold" in message
    # the form offers no CPU at all and says why
    assert 'name="cpu"' not in html and "No CPU choice fits your limits" in html


def test_git_url_is_built_by_the_configured_hook(make_spawner):
    built = []

    async def builder(spawner, source):
        built.append((source.url, source.ref))
        return "registry.example.org/dsbuild-git/built:abc"

    async def scenario():
        spawner = make_spawner(image_builder=builder)
        spawner.user_options = {"git_url": "https://github.com/example-org/analysis", "git_ref": "v1"}
        html = spawner.spawn_form_html()
        await spawner.load_user_options()
        return html, to_plain(await spawner.get_pod_manifest())

    html, pod = run(scenario())
    assert 'name="git_url"' in html
    assert built == [("https://github.com/example-org/analysis", "v1")]
    assert pod["spec"]["containers"][0]["image"] == "registry.example.org/dsbuild-git/built:abc"
    assert pod["metadata"]["annotations"]["dsbuild.io/git-url"] == "https://github.com/example-org/analysis"


def test_progress_starts_with_the_chosen_image_and_relabels_events(monkeypatch, make_spawner):
    async def kube_progress(self):
        yield {"progress": 30, "message": "raw", "raw_event": {"reason": "Pulling", "message": "Pulling image \"x\""}}

    monkeypatch.setattr(KubeSpawner, "progress", kube_progress)

    async def scenario():
        spawner = make_spawner()
        await spawner.choose_resources({"environment": "dsbuild-geo:1.2.0"})
        return [update async for update in spawner.progress()]

    updates = run(scenario())
    assert updates[0]["message"].startswith("Image chosen: dsbuild-geo:1.2.0 (registry.example.org/dsbuild/dsbuild-geo:1.2.0)")
    assert updates[1]["message"] == 'Pulling the image: Pulling image "x"'


def test_home_volumes_are_never_deleted(make_spawner):
    async def scenario():
        spawner = make_spawner(delete_pvc=True)
        await spawner.delete_forever()
        return spawner

    assert run(scenario()).api.calls == []


def test_catalog_must_be_configured_once(make_spawner):
    from dsbuild.spawner.errors import CatalogError

    async def scenario():
        spawner = make_spawner(catalog_file="")
        spawner.parsed_catalog()

    with pytest.raises(CatalogError, match="exactly one of"):
        run(scenario())
