"""DsbuildSpawner against a slow API server (tests/cluster/slowapi.py holds each pod
create for longer than the spawner waits for it): KubeSpawner gives up on the create
and tries again, the API server makes the pod anyway, and the start fails. The start
must still leave no pod and no claim that it made, whether JupyterHub's clean-up after
the failure (poll, then stop if it polls as running) sees the pod or not."""

from __future__ import annotations

import json

import pytest

from .hub import make_spawner, spawn
from .slowapi import slow_creates

pytestmark = pytest.mark.cluster

DELAY = 4  # seconds each pod create is held: longer than the spawner's whole retry time
TIMEOUT, RETRY_TIMEOUT = 1, 3  # KubeSpawner's k8s_api_request_timeout, k8s_api_request_retry_timeout


async def client_through(kubeconfig, url: str):
    """The hub's API client, with its credentials, sent through `url`."""
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.host = url
    return client.CoreV1Api(client.ApiClient(configuration))


def test_a_start_whose_pod_creates_time_out_leaves_no_pod_and_no_claim(cluster, namespace, run, hub_kubeconfig):
    kube = json.loads(hub_kubeconfig.read_text())["clusters"][0]["cluster"]

    async def scenario():
        async with slow_creates(kube["server"], kube["certificate-authority"], DELAY) as (url, proxy):
            spawner = make_spawner("tilda", namespace, k8s_api_request_timeout=TIMEOUT,
                                   k8s_api_request_retry_timeout=RETRY_TIMEOUT)
            spawner.api = await client_through(hub_kubeconfig, url)
            try:
                with pytest.raises(TimeoutError) as failure:
                    await spawn(spawner, {})
                # What JupyterHub does after a failed start: stop the server if it polls as running.
                if await spawner.poll() is None:
                    await spawner.stop(now=True)
                await proxy.idle.wait()  # every create sent has been answered: no pod can appear after this
            finally:
                await spawner.api.api_client.close()
            return spawner, failure.value, proxy.creates

    spawner, failure, creates = run(scenario())
    assert f"Could not create pod {namespace}/{spawner.pod_name}" in str(failure)
    assert creates[0] == 201  # the API server made the pod after the spawner had given up on it
    assert cluster.get("pod", spawner.pod_name, namespace=namespace) is None
    claim = cluster.get("pvc", spawner.pvc_name, namespace=namespace)
    assert claim is None or claim["metadata"].get("deletionTimestamp")  # the claim this start made goes too
