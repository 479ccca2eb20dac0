"""The Kubernetes API edge of builds on the cluster: build pods and build Leases.

Blocking methods (builds run in threads): each call runs kubernetes_asyncio on a loop
of its own, with a client configured like KubeSpawner's (in-cluster, else the
kubeconfig). Objects are plain dicts (the pod manifests are rendered from templates)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from dsbuild.builder.errors import BuildFailed, EngineUnavailable


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _micro(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_free(lease: dict, now: datetime) -> bool:
    """A Lease nobody holds, or whose holder stopped renewing it (pure)."""
    spec = lease.get("spec") or {}
    if not spec.get("holderIdentity"):
        return True
    renewed = spec.get("renewTime") or spec.get("acquireTime")
    if not renewed:
        return True
    when = renewed if isinstance(renewed, datetime) else datetime.fromisoformat(str(renewed).replace("Z", "+00:00"))
    return when + timedelta(seconds=spec.get("leaseDurationSeconds") or 0) < now


_KINDS = {"ConfigMap": ("CoreV1Api", "config_map"), "Secret": ("CoreV1Api", "secret"),
          "DaemonSet": ("AppsV1Api", "daemon_set"), "Pod": ("CoreV1Api", "pod")}


def _same_spec(current: dict, wanted: dict) -> bool:
    """A DaemonSet is up to date when its pod template carries the same config hash (the
    API server fills in defaults, so specs are not compared whole); other kinds by
    their fields (pure)."""
    if wanted["kind"] != "DaemonSet":
        return True
    def digest(obj):
        return ((obj.get("spec") or {}).get("template", {}).get("metadata", {}).get("annotations") or {})
    return digest(current) == digest(wanted)


class KubeApi:
    def __init__(self, kubeconfig: str | None = None):
        self.kubeconfig = kubeconfig

    async def _client(self) -> client.ApiClient:
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            await config.load_kube_config(config_file=self.kubeconfig, client_configuration=configuration)
        return client.ApiClient(configuration)

    def _run(self, fn: Callable[[client.ApiClient], Awaitable[Any]]) -> Any:
        async def main():
            api = await self._client()
            async with api:
                return await fn(api)

        try:
            return asyncio.run(main())
        except ApiException:
            raise
        except (OSError, config.ConfigException, asyncio.TimeoutError) as err:
            raise EngineUnavailable(f"cannot reach the Kubernetes API: {err}") from None

    def ping(self) -> None:
        self._run(lambda api: client.VersionApi(api).get_code())

    # Build pods

    def create_pod(self, namespace: str, pod: dict) -> str:
        """Create the pod; its uid."""
        created = self._run(lambda api: client.CoreV1Api(api).create_namespaced_pod(namespace, pod))
        return created.metadata.uid

    def pod(self, namespace: str, name: str) -> Any | None:
        try:
            return self._run(lambda api: client.CoreV1Api(api).read_namespaced_pod(name, namespace))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def wait_pod_ready(self, namespace: str, name: str, timeout: float) -> Any:
        """The pod once it is Ready; BuildFailed if it fails, goes or takes too long."""
        deadline = time.monotonic() + timeout
        while True:
            pod = self.pod(namespace, name)
            if pod is None:
                raise BuildFailed(f"the build pod {name} was deleted before it started")
            phase = pod.status.phase
            ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
            if ready and pod.status.pod_ip:
                return pod
            if phase in ("Failed", "Succeeded"):
                raise BuildFailed(f"the build pod {name} stopped before it was ready ({pod.status.reason or phase})")
            if time.monotonic() > deadline:
                waiting = [s.state.waiting.reason for s in pod.status.container_statuses or [] if s.state.waiting]
                raise BuildFailed(f"the build pod {name} was not ready within {timeout:.0f} s "
                                  f"({', '.join(waiting) or phase})")
            time.sleep(0.5)

    def delete_pod(self, namespace: str, name: str) -> None:
        """Delete with the pod's short grace period (buildkitd releases its build network);
        a missing pod is fine."""
        try:
            self._run(lambda api: client.CoreV1Api(api).delete_namespaced_pod(name, namespace))
        except ApiException as err:
            if err.status != 404:
                raise

    # Build daemons: a DaemonSet, its ConfigMap, its TLS Secrets

    def put(self, obj: dict) -> str:
        """Create `obj` (a ConfigMap, Secret or DaemonSet), or replace it when it differs;
        "created", "updated" or "unchanged"."""
        kind, meta = obj["kind"], obj["metadata"]
        api_class, suffix = _KINDS[kind]

        async def put(api):
            objects = getattr(client, api_class)(api)
            try:
                current = await getattr(objects, f"read_namespaced_{suffix}")(meta["name"], meta["namespace"])
            except ApiException as err:
                if err.status != 404:
                    raise
                await getattr(objects, f"create_namespaced_{suffix}")(meta["namespace"], obj)
                return "created"
            current = api.sanitize_for_serialization(current)
            if all(current.get(key) == obj.get(key) for key in obj if key not in ("metadata", "spec")) and \
                    _same_spec(current, obj) and (current["metadata"].get("labels") or {}) == meta.get("labels", {}):
                return "unchanged"
            body = {**obj, "metadata": {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}}
            await getattr(objects, f"replace_namespaced_{suffix}")(meta["name"], meta["namespace"], body)
            return "updated"

        return self._run(put)

    def read(self, kind: str, namespace: str, name: str) -> dict | None:
        """The object as a plain dict, or None."""
        api_class, suffix = _KINDS[kind]

        async def read(api):
            objects = getattr(client, api_class)(api)
            try:
                found = await getattr(objects, f"read_namespaced_{suffix}")(name, namespace)
            except ApiException as err:
                if err.status == 404:
                    return None
                raise
            return api.sanitize_for_serialization(found)

        return self._run(read)

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete the object (its dependents in the background); False if it was not there."""
        api_class, suffix = _KINDS[kind]

        async def delete(api):
            objects = getattr(client, api_class)(api)
            try:
                await getattr(objects, f"delete_namespaced_{suffix}")(name, namespace)
                return True
            except ApiException as err:
                if err.status == 404:
                    return False
                raise

        return self._run(delete)

    def pods_on_node(self, namespace: str, selector: str, node: str) -> list[dict]:
        async def pods(api):
            found = await client.CoreV1Api(api).list_namespaced_pod(
                namespace, label_selector=selector, field_selector=f"spec.nodeName={node}")
            return api.sanitize_for_serialization(found)["items"]

        return self._run(pods)

    # Leases (coordination.k8s.io/v1): one build per image across replicas

    def try_lease(self, namespace: str, name: str, holder: str, seconds: int) -> bool:
        """Take the Lease `name` for `holder` if it is free (created, or taken over from a
        holder that stopped renewing it); False while someone else holds it."""
        now = _micro(_now())
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {"app.kubernetes.io/component": "dsbuild-build"}},
                "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds,
                         "acquireTime": now, "renewTime": now}}

        async def take(api):
            leases = client.CoordinationV1Api(api)
            try:
                await leases.create_namespaced_lease(namespace, body)
                return True
            except ApiException as err:
                if err.status != 409:
                    raise
            current = api.sanitize_for_serialization(await leases.read_namespaced_lease(name, namespace))
            if current["spec"].get("holderIdentity") != holder and not lease_free(current, _now()):
                return False
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:  # the resourceVersion makes two replicas' takeovers exclusive
                await leases.replace_namespaced_lease(name, namespace, body)
                return True
            except ApiException as err:
                if err.status == 409:
                    return False
                raise

        return self._run(take)

    def renew_lease(self, namespace: str, name: str, holder: str) -> bool:
        async def renew(api):
            leases = client.CoordinationV1Api(api)
            current = api.sanitize_for_serialization(await leases.read_namespaced_lease(name, namespace))
            if current["spec"].get("holderIdentity") != holder:
                return False
            current["spec"]["renewTime"] = _micro(_now())
            await leases.replace_namespaced_lease(name, namespace, current)
            return True

        try:
            return self._run(renew)
        except ApiException:
            return False

    def release_lease(self, namespace: str, name: str, holder: str) -> None:
        async def release(api):
            leases = client.CoordinationV1Api(api)
            current = api.sanitize_for_serialization(await leases.read_namespaced_lease(name, namespace))
            if current["spec"].get("holderIdentity") == holder:
                await leases.delete_namespaced_lease(
                    name, namespace, body={"preconditions": {"resourceVersion": current["metadata"]["resourceVersion"]}})

        try:
            self._run(release)
        except ApiException:
            pass  # gone, or taken over after it expired
