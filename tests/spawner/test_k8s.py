import pytest
from kubernetes_asyncio.client import V1Pod

from dsbuild.spawner.k8s import to_model, to_plain
from dsbuild.spawner.manifests import pod_manifest
from dsbuild.spawner.options import parse_user_options
from dsbuild.spawner.resolve import choose

from .conftest import minimal_pod


def test_manifests_round_trip_exactly_through_models(catalog):
    request = choose(parse_user_options({"gpu_type": "nvidia-a100", "gpus": 2}), catalog)
    pod = pod_manifest(request, pvc_name="claim-x", base=minimal_pod("jupyter-x"))
    model = to_model(pod, "V1Pod")
    assert isinstance(model, V1Pod) and model.metadata.name == "jupyter-x"
    assert model.spec.containers[0].security_context.run_as_user == 1000
    assert to_plain(model) == pod


def test_unknown_fields_are_refused_not_dropped():
    pod = minimal_pod("x")
    pod["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(ValueError, match="V1Container has no field imagePullPolicyy"):
        to_model(pod, "V1Pod")


def test_wrong_types_are_refused():
    pod = minimal_pod("x")
    pod["spec"]["containers"][0]["ports"][0]["containerPort"] = "8888"
    with pytest.raises(ValueError, match="expected int"):
        to_model(pod, "V1Pod")
