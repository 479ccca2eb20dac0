"""pod_manifest / pvc_manifest: every manifest for the example catalog is valid
Kubernetes, and each choice lands where it should."""

import itertools
import subprocess

import kubernetes_validate
import kubernetes_validate.utils
import pytest

from dsbuild.spawner.manifests import HOME_INIT_CONTAINER, HOME_INIT_MOUNT, HOME_MARKER, pod_manifest, pvc_manifest
from dsbuild.spawner.options import UserOptions, parse_user_options
from dsbuild.spawner.resolve import choose, resolve

from .conftest import minimal_pod


K8S_VERSION = kubernetes_validate.utils.latest_version()


def every_request(catalog):
    """Every combination of choices the example catalog offers."""
    gpus = [{}] + [{"gpu_type": t.name, "gpus": n} for t in catalog.gpu.types for n in catalog.gpu.counts]
    for env, cpu, mem, gpu, size, cls in itertools.product(
        catalog.environments, catalog.cpu, catalog.memory, gpus, catalog.storage.sizes, catalog.storage.classes
    ):
        options = {"environment": env.name, "cpu": cpu.limit.k8s(), "memory": mem.limit.k8s(),
                   "storage": size.k8s(), "storage_class": cls, **gpu}
        yield choose(parse_user_options(options), catalog)
    yield choose(parse_user_options({"git_url": "https://github.com/example-org/x", "git_ref": "v2"}), catalog)


def test_every_manifest_for_the_example_catalog_validates(catalog, validate):
    count = 0
    for request in every_request(catalog):
        validate(pod_manifest(request, pvc_name="claim-rita", base=minimal_pod("jupyter-rita")))
        validate(pvc_manifest(request, pvc_name="claim-rita"))
        count += 1
    assert count == 3 * 5 * 5 * 7 * 2 * 1 + 1


def test_kubernetes_validate_itself_accepts_a_gpu_pod_and_refuses_a_broken_one(catalog):
    request = choose(parse_user_options({"gpu_type": "nvidia-t4", "gpus": 4}), catalog)
    pod = pod_manifest(request, pvc_name="claim-rita", base=minimal_pod("jupyter-rita"))
    assert kubernetes_validate.validate(pod, K8S_VERSION, strict=True) == K8S_VERSION.rsplit(".", 1)[0]
    pod["spec"]["containers"][0]["securityContext"]["runAsUser"] = "root"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


@pytest.mark.parametrize("gpu_type, product", [("nvidia-a100", "NVIDIA-A100-SXM4-40GB"), ("nvidia-t4", "Tesla-T4")])
def test_gpu_choice_gives_limits_node_selector_and_toleration(catalog, researcher, gpu_type, product):
    request = resolve(parse_user_options({"gpu_type": gpu_type, "gpus": 2}), catalog, researcher)
    pod = pod_manifest(request, pvc_name="claim-rita", base=minimal_pod("jupyter-rita"))
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "2" == resources["requests"]["nvidia.com/gpu"]
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": product}
    assert pod["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_no_gpu_means_no_gpu_resources_selector_or_toleration(catalog, student):
    pod = pod_manifest(resolve(UserOptions(), catalog, student), pvc_name="c", base=minimal_pod("p"))
    assert "nvidia.com/gpu" not in pod["spec"]["containers"][0]["resources"]["limits"]
    assert "nodeSelector" not in pod["spec"] and "tolerations" not in pod["spec"]


def test_cpu_and_memory_choice_gives_requests_and_limits(catalog, researcher):
    request = resolve(parse_user_options({"cpu": "500m", "memory": "16Gi"}), catalog, researcher)
    container = pod_manifest(request, pvc_name="c", base=minimal_pod("p"))["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "8Gi"},
                                      "limits": {"cpu": "500m", "memory": "16Gi"}}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["CPU_LIMIT"] == "0.5" and env["MEM_LIMIT"] == str(16 * 2**30)


@pytest.mark.parametrize("size", ["10Gi", "50Gi"])
def test_storage_choice_gives_a_pvc_of_that_size_and_class_mounted_at_home(catalog, researcher, size):
    request = resolve(parse_user_options({"storage": size, "storage_class": "standard"}), catalog, researcher)
    pvc = pvc_manifest(request, pvc_name="claim-rita")
    assert pvc["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
                           "storageClassName": "standard"}
    pod = pod_manifest(request, pvc_name="claim-rita", base=minimal_pod("jupyter-rita"))
    assert {"name": "home", "persistentVolumeClaim": {"claimName": "claim-rita"}} in pod["spec"]["volumes"]
    assert {"name": "home", "mountPath": "/home/jovyan"} in pod["spec"]["containers"][0]["volumeMounts"]


def test_shared_data_is_mounted_read_only(catalog, student):
    pod = pod_manifest(resolve(UserOptions(), catalog, student), pvc_name="c", base=minimal_pod("p"))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["data-datasets"]["persistentVolumeClaim"] == {"claimName": "shared-datasets", "readOnly": True}
    assert volumes["data-archive"]["nfs"] == {"server": "nfs.example.org", "path": "/exports/archive", "readOnly": True}
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["data-datasets"] == {"name": "data-datasets", "mountPath": "/data/datasets", "readOnly": True}
    assert mounts["data-archive"]["readOnly"] is True


def test_pod_runs_as_uid_1000_without_privilege_escalation(catalog, student):
    pod = pod_manifest(resolve(UserOptions(), catalog, student), pvc_name="c", base=minimal_pod("p"))
    security = pod["spec"]["containers"][0]["securityContext"]
    assert security["runAsUser"] == 1000 and security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False and security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"] == {"fsGroup": 100}


def zero_to_jupyterhub_like_base():
    """A base pod as KubeSpawner makes it under Zero-to-JupyterHub defaults:
    its own home volume, a root init container, tolerations, a root uid."""
    pod = minimal_pod("jupyter-rita")
    spec = pod["spec"]
    spec["initContainers"] = [{"name": "block-cloud-metadata", "image": "network-tools:1",
                               "securityContext": {"runAsUser": 0, "privileged": True}}]
    spec["volumes"] = [{"name": "volume-rita", "persistentVolumeClaim": {"claimName": "claim-rita"}},
                       {"name": "scratch", "emptyDir": {}}]
    spec["tolerations"] = [{"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"}]
    spec["nodeSelector"] = {"pool": "users"}
    spec["securityContext"] = {"fsGroup": 0}
    container = spec["containers"][0]
    container["volumeMounts"] = [{"name": "volume-rita", "mountPath": "/home/jovyan"},
                                 {"name": "scratch", "mountPath": "/scratch"}]
    container["env"] = [{"name": "JUPYTERHUB_USER", "value": "rita"}, {"name": "MEM_LIMIT", "value": "1"}]
    container["securityContext"] = {"runAsUser": 0, "allowPrivilegeEscalation": True}
    container["resources"] = {"limits": {"cpu": "64"}}
    return pod


def test_catalog_decisions_win_over_the_base_and_the_rest_is_kept(catalog, researcher, validate):
    base = zero_to_jupyterhub_like_base()
    request = resolve(parse_user_options({"gpu_type": "nvidia-a100"}), catalog, researcher)
    pod = pod_manifest(request, pvc_name="claim-rita", base=base)
    validate(pod)
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    assert [v["name"] for v in spec["volumes"]] == ["scratch", "home", "data-datasets", "data-archive"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/scratch", "/home/jovyan", "/data/datasets", "/data/archive"]
    assert spec["initContainers"][:-1] == base["spec"]["initContainers"]  # kept, before ours
    assert spec["initContainers"][-1]["name"] == HOME_INIT_CONTAINER
    assert len(spec["tolerations"]) == 2
    assert spec["nodeSelector"] == {"pool": "users", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}
    assert spec["securityContext"] == {"fsGroup": 100}
    assert container["securityContext"]["runAsUser"] == 1000 and container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"]["cpu"] == "1"
    env = [e["name"] for e in container["env"]]
    assert env.count("MEM_LIMIT") == 1 and "JUPYTERHUB_USER" in env
    assert base["spec"]["volumes"][0]["name"] == "volume-rita"  # base untouched


def test_pvc_keeps_base_labels_and_drops_the_beta_class_annotation(catalog, student):
    base = {"metadata": {"labels": {"component": "singleuser-storage"},
                         "annotations": {"volume.beta.kubernetes.io/storage-class": "old", "hub.jupyter.org/username": "sam"}}}
    pvc = pvc_manifest(resolve(UserOptions(), catalog, student), pvc_name="claim-sam", base=base)
    assert pvc["metadata"] == {"name": "claim-sam", "labels": {"component": "singleuser-storage"},
                               "annotations": {"hub.jupyter.org/username": "sam"}}


def test_base_without_a_notebook_container_is_an_error(catalog, student):
    base = minimal_pod("p")
    base["spec"]["containers"][0]["name"] = "other"
    with pytest.raises(ValueError, match="no container named 'notebook'"):
        pod_manifest(resolve(UserOptions(), catalog, student), pvc_name="c", base=base)


def test_home_init_runs_the_notebook_image_as_the_user_with_the_home_volume_beside_the_images_home(catalog, researcher):
    request = resolve(parse_user_options({"cpu": "500m", "memory": "16Gi"}), catalog, researcher)
    base = minimal_pod("jupyter-rita")
    base["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    pod = pod_manifest(request, pvc_name="claim-rita", base=base)
    (init,) = pod["spec"]["initContainers"]
    notebook = pod["spec"]["containers"][0]
    assert init["name"] == HOME_INIT_CONTAINER
    assert init["image"] == notebook["image"] == request.image
    assert init["imagePullPolicy"] == "IfNotPresent"
    assert init["securityContext"] == notebook["securityContext"]  # uid 1000, no privileges
    assert init["resources"] == notebook["resources"]
    assert init["volumeMounts"] == [{"name": "home", "mountPath": HOME_INIT_MOUNT}]
    # The image's home (the notebook's mount path) and the volume are arguments, not script text.
    assert init["command"][:2] == ["sh", "-c"]
    assert init["command"][3:] == [HOME_INIT_CONTAINER, "/home/jovyan", HOME_INIT_MOUNT, HOME_MARKER]
    assert "/home/jovyan" not in init["command"][2]


def run_home_init(pod: dict, image_home, volume) -> str:
    """Run home-init's script with this machine's sh, on folders standing in
    for the image's home and the volume."""
    script = pod["spec"]["initContainers"][-1]["command"][2]
    done = subprocess.run(["sh", "-c", script, HOME_INIT_CONTAINER, str(image_home), str(volume), HOME_MARKER],
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


def test_home_init_copies_the_images_home_once_and_never_replaces_a_users_file(catalog, student, tmp_path):
    pod = pod_manifest(resolve(UserOptions(), catalog, student), pvc_name="c", base=minimal_pod("p"))
    image_home, volume = tmp_path / "image-home", tmp_path / "volume"
    (image_home / "notebooks").mkdir(parents=True)
    (image_home / "notebooks" / "analysis.ipynb").write_text("from the repository")
    (image_home / "README.md").write_text("repository readme")
    (image_home / ".jupyter").mkdir()
    (image_home / "odd\nname.txt").write_text("x")
    volume.mkdir()
    (volume / "README.md").write_text("the user's own readme")  # a volume from before home-init

    assert "set up" in run_home_init(pod, image_home, volume)
    assert (volume / "notebooks" / "analysis.ipynb").read_text() == "from the repository"
    assert (volume / ".jupyter").is_dir() and (volume / "odd\nname.txt").exists()
    assert (volume / "README.md").read_text() == "the user's own readme"
    assert (volume / HOME_MARKER).exists()

    # The user edits a notebook, deletes another file; the next start copies nothing.
    (volume / "notebooks" / "analysis.ipynb").write_text("edited by the user")
    (volume / ".jupyter").rmdir()
    assert "nothing copied" in run_home_init(pod, image_home, volume)
    assert (volume / "notebooks" / "analysis.ipynb").read_text() == "edited by the user"
    assert not (volume / ".jupyter").exists()


def test_home_init_with_an_image_without_that_home_only_marks_the_volume(catalog, student, tmp_path):
    pod = pod_manifest(resolve(UserOptions(), catalog, student), pvc_name="c", base=minimal_pod("p"))
    (tmp_path / "volume").mkdir()
    run_home_init(pod, tmp_path / "missing", tmp_path / "volume")
    assert [p.name for p in (tmp_path / "volume").iterdir()] == [HOME_MARKER]
