"""DsbuildSpawner: KubeSpawner with choices from a catalog, within group limits.

This is the thin edge between JupyterHub/KubeSpawner and the pure parts:

    form or JSON --options_from_form / parse_user_options--> UserOptions
    UserOptions + catalog + HubUser --resolve--> ResourceRequest
    ResourceRequest --pod_manifest / pvc_manifest--> what is sent

KubeSpawner keeps doing the Kubernetes work: start/poll/stop, the home PVC
(`storage_pvc_ensure`, created once and never deleted here), event watching
for progress. This class only replaces the two manifest getters with the
pure builders, and refuses bad requests with HTTP 400 in JupyterHub's
`apply_user_options` step, before anything reaches the Kubernetes API.
When Kubernetes cannot run a request that passed those checks (no node can
hold it, a quota or limit range refuses it), start fails with `SpawnFailed`
quoting Kubernetes' reason (failures.py), and leaves no pod behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from traitlets import Dict, Float, default

from .errors import OptionsError, SpawnFailed, SpawnRequestError
from .failures import (
    image_pull_failure,
    refusal_message,
    unplaced_message,
    unschedulable_reason,
    waiting_for_volumes,
)
from .form import spawn_form
from .k8s import to_model, to_plain
from .manifests import pod_manifest, pvc_manifest
from .network_policy import ensure_network_policy
from .mixin import CatalogSpawnerMixin, bad_request
from .options import options_from_form, parse_user_options
from .progress import chosen_message, relabel
from .readiness import until_listening
from .resolve import ResourceRequest


def _form_options(formdata: dict[str, list[str]]) -> dict[str, Any]:
    try:
        return options_from_form(formdata)
    except OptionsError as e:
        raise bad_request(e) from None


def _render_form(spawner: DsbuildSpawner) -> str:
    return spawner.spawn_form_html()


async def _apply_catalog_choices(spawner: DsbuildSpawner, user_options: dict) -> None:
    await spawner.choose_resources(user_options)


async def _cancel(task: asyncio.Future) -> None:
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _forget_create(creates: set[asyncio.Future]):
    def forget(request: asyncio.Future) -> None:
        creates.discard(request)
        if not request.cancelled():
            request.exception()  # read, so asyncio does not log it: a later attempt decides
    return forget


class DsbuildSpawner(CatalogSpawnerMixin, KubeSpawner):
    """Spawns dsbuild images on Kubernetes with the CPU, memory, GPU and storage
    a user picks from the admin's catalog, within the limits of their groups.
    The catalog, limits and git builds are the mixin's (spawner/mixin.py)."""

    unschedulable_timeout = Float(
        60.0,
        config=True,
        help="""Seconds a server's pod may stay unschedulable (no node has room
        for its CPU, memory or GPUs, or none has its GPU type) before the spawn
        fails with the scheduler's reason and the pod is deleted. Waiting for
        the home volume to be bound does not count. 0 waits for `start_timeout`
        instead, as a cluster autoscaler needs.""",
    )

    network_policy = Dict(
        None,
        allow_none=True,
        config=True,
        help="""A NetworkPolicy manifest (spawner/network_policy.py) created, or
        replaced, in the spawner's namespace before its first spawn, so servers
        reach neither other servers, nor the hub beyond its API port, nor
        169.254.169.254. `dsbuild hub config` sets it; None (the default) leaves
        network policies to the operator (Zero-to-JupyterHub's chart makes its own).
        Needs get/create/update on networkpolicies in the hub's role.""",
    )

    _policies_in_force: set[str] = set()  # namespaces this process put the policy in
    _new_claim: str | None = None  # the home claim this start made (deleted if it fails)

    resource_request: ResourceRequest | None = None  # set by choose_resources
    _pod_created: asyncio.Event | None = None  # set once this start's pod was created
    _creates: set[asyncio.Future] | None = None  # this start's pod creates not answered yet
    _create_sent = False  # this start asked for its pod (so a failed start deletes it)
    _refused = False  # the last request was refused: nothing was sent to Kubernetes

    @default("storage_pvc_ensure")
    def _default_storage_pvc_ensure(self) -> bool:
        return True

    @default("delete_pvc")
    def _default_delete_pvc(self) -> bool:
        return False

    @default("options_form")
    def _default_options_form(self):
        return _render_form

    @default("options_from_form")
    def _default_options_from_form(self):
        return _form_options

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return _apply_catalog_choices

    # -- catalog and user ----------------------------------------------------

    def has_volume(self, orm_spawner: Any) -> bool:
        return bool((orm_spawner.state or {}).get("pvc_name"))

    def spawn_form_html(self) -> str:
        catalog = self.parsed_catalog()
        try:
            previous = parse_user_options(self.user_options)
        except OptionsError:
            previous = None
        return spawn_form(catalog, self.hub_user(catalog), previous, can_build=self.image_builder is not None)

    async def choose_resources(self, user_options: Any) -> ResourceRequest:
        """Resolve `user_options`; raise HTTP 400 (nothing sent) when refused."""
        self._refused = True
        try:
            request = self.resolve_options(user_options)
        except SpawnRequestError as e:
            raise self.refuse(e) from None
        self._refused = False
        self.resource_request = request
        return request

    # -- KubeSpawner hooks ---------------------------------------------------

    async def load_user_options(self) -> None:
        """Called first thing in start(); replaces KubeSpawner's profile_list handling."""
        request = await self.choose_resources(self.user_options)
        self.resource_request = await self.with_built_image(request)

    def _request(self) -> ResourceRequest:
        if self.resource_request is None:
            raise RuntimeError("no resolved request; start() resolves user_options first")
        return self.resource_request

    async def _start(self):
        """KubeSpawner's start, failing clearly (`SpawnFailed`, pod deleted) when
        the scheduler finds no node for the pod, the node cannot pull its image,
        or the API refuses it; returning as soon as the server listens. A start
        that fails in any other way (the API too slow, the hub's `start_timeout`)
        leaves no pod and no claim it made either."""
        self._pod_created = asyncio.Event()
        self._new_claim = None
        self._creates, self._create_sent = set(), False
        try:
            return await self._start_or_fail()
        except BaseException:
            await self._clear_failed_start()
            raise

    async def _start_or_fail(self):
        await self._ensure_network_policy()
        start = asyncio.ensure_future(super()._start())
        watch = asyncio.ensure_future(self._unschedulable_for(self.unschedulable_timeout))
        pull = asyncio.ensure_future(self._pull_failure())
        running = asyncio.ensure_future(self._running_url())
        try:
            await asyncio.wait({start, watch, pull, running}, return_when=asyncio.FIRST_COMPLETED)
            if not start.done() and (pull.done() or watch.done()):  # unschedulable, or no image
                await _cancel(start)
                if pull.done():
                    await self._fail(pull.result())
                await self._fail_unplaced(watch.result())
            url = start.result() if start.done() else running.result()
            await _cancel(start)  # if still running, only KubeSpawner's wait for what `running` saw
            if self.ready_check_interval > 0:
                await until_listening(url, self.ready_check_interval, self.http_timeout)
            return url
        except ApiException as e:
            message = refusal_message(e.status, e.body, e.reason)
            if message is None:
                raise
            self.log.warning("Spawn of %s refused by Kubernetes: %s", self._log_name, message)
            raise SpawnFailed(message) from None
        except TimeoutError:
            reason = unschedulable_reason(self._reflected_pod())
            if reason is None:
                raise
            await self._fail_unplaced(reason)
        finally:
            for task in (start, watch, pull, running):
                task.cancel()

    async def _ensure_network_policy(self) -> None:
        if not self.network_policy or self.namespace in self._policies_in_force:
            return
        from kubespawner.clients import shared_client

        try:
            done = await ensure_network_policy(shared_client("NetworkingV1Api"), self.namespace, self.network_policy)
        except ApiException as e:
            raise SpawnFailed(f"cannot put the servers' NetworkPolicy in namespace {self.namespace} "
                              f"(HTTP {e.status} {e.reason}); the hub's role needs get/create/update on "
                              "networkpolicies, or set DsbuildSpawner.network_policy = None") from None
        self._policies_in_force.add(self.namespace)
        self.log.info("NetworkPolicy %s %s in %s", self.network_policy["metadata"]["name"], done, self.namespace)

    async def _make_create_pod_request(self, pod, request_timeout):
        """Create the pod, as KubeSpawner does (False: try again; a 409 deletes the pod
        in the way first), but a request that times out here is not abandoned: the API
        server may still make the pod after the client gave up. It goes on in the
        background, so that a failed start can wait for its answer before deleting the
        pod (`_clear_failed_start`); otherwise a late create would leave an orphan pod."""
        request = asyncio.ensure_future(self.api.create_namespaced_pod(self.namespace, pod))
        self._create_sent = True
        if self._creates is not None:
            self._creates.add(request)
            request.add_done_callback(_forget_create(self._creates))
        try:
            self.log.info("Creating pod %s/%s (timeout %ss)", self.namespace, pod.metadata.name, request_timeout)
            await asyncio.wait_for(asyncio.shield(request), request_timeout)
        except asyncio.TimeoutError:
            self.log.warning("Creating pod %s timed out after %ss; trying again", pod.metadata.name, request_timeout)
            return False
        except ApiException as e:
            if e.status != 409:
                raise
            self.log.info("Pod %s is in the way; deleting it before creating it again", pod.metadata.name)
            await self.stop(now=True)
            return False
        if self._pod_created is not None:
            self._pod_created.set()
        return True

    async def _clear_failed_start(self) -> None:
        """After a failed start: wait (at most `k8s_api_request_retry_timeout`) for the
        answers to this start's pod creates, then delete the pod and the claim it made.
        Once every create is answered, no pod of this start can appear any more."""
        pending = set(self._creates or ())
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.k8s_api_request_retry_timeout)
            for request in late:
                self.log.warning("A create of pod %s is still unanswered; it may yet make the pod", self.pod_name)
                request.cancel()
        if self._create_sent or self._reflected_pod() is not None:
            try:
                await self.stop(now=True)
            except Exception:
                self.log.exception("Could not delete the pod %s of the failed start", self.pod_name)
        await self._delete_new_claim()

    async def _running_url(self) -> str:
        """The server's URL once this start's pod runs, looking every
        `ready_check_interval`; never when KubeSpawner has more to do after
        creating the pod (services, internal SSL, a hook) or the interval is 0."""
        if self.ready_check_interval <= 0 or self.internal_ssl or self.services_enabled or self.after_pod_created_hook:
            await asyncio.Future()  # never: KubeSpawner's start decides
        await self._pod_created.wait()  # a pod of an earlier start was deleted before
        while not self.is_pod_running(pod := self._reflected_pod()):
            await asyncio.sleep(self.ready_check_interval)
        self.pod_id = pod["metadata"]["uid"]
        return self._get_pod_url(pod)

    def _reflected_pod(self) -> dict | None:
        reflector = self.pod_reflector
        return reflector.pods.get(f"{self.namespace}/{self.pod_name}") if reflector else None

    async def _unschedulable_for(self, seconds: float) -> str:
        """Return the scheduler's reason once the pod has been unschedulable for `seconds`."""
        if seconds <= 0:
            await asyncio.Future()  # never: start_timeout decides
        since = None
        while True:
            await asyncio.sleep(0.5)
            reason = unschedulable_reason(self._reflected_pod())
            if reason is None or waiting_for_volumes(reason):
                since = None
            elif since is None:
                since = time.monotonic()
            elif time.monotonic() - since >= seconds:
                return reason

    async def _pull_failure(self) -> str:
        """Return a message as soon as the node reports it cannot pull an image of the pod."""
        while (message := image_pull_failure(self._reflected_pod())) is None:
            await asyncio.sleep(0.5)
        return message

    async def _fail_unplaced(self, reason: str):
        await self._fail(unplaced_message(self._request().summary(), reason))

    async def _fail(self, message: str):
        """Fail the start; `_start` then deletes the pending pod and the claim it made."""
        self.log.warning("Spawn of %s failed: %s", self._log_name, message)
        raise SpawnFailed(message)

    async def _make_create_pvc_request(self, pvc, request_timeout):
        """KubeSpawner's (which says True whether it made the claim or found it), noting
        whether this start made it: a first start that fails then leaves no claim."""
        name = pvc.metadata.name
        try:
            await self.api.read_namespaced_persistent_volume_claim(name, self.namespace)
            existed = True
        except ApiException as e:
            if e.status != 404:
                raise
            existed = False
        made = await super()._make_create_pvc_request(pvc, request_timeout)
        self._new_claim = name if made and not existed else None
        return made

    async def _delete_new_claim(self) -> None:
        """Delete the home claim this failed start made: no container ever ran with it
        (home-init copies the image's home only once the pod starts), so it holds
        nothing of the user's. A claim that existed before is never touched."""
        name, self._new_claim = self._new_claim, None
        if not name:
            return
        try:
            await self.api.delete_namespaced_persistent_volume_claim(name, self.namespace)
            self.log.info("Deleted the home claim %s that the failed start of %s made", name, self._log_name)
        except ApiException as e:
            if e.status != 404:
                self.log.warning("Could not delete the home claim %s of %s: HTTP %s", name, self._log_name, e.status)

    async def get_pod_manifest(self):
        base = to_plain(await super().get_pod_manifest())
        return to_model(pod_manifest(self._request(), pvc_name=self.pvc_name, base=base), "V1Pod")

    def get_pvc_manifest(self):
        base = to_plain(super().get_pvc_manifest())
        return to_model(pvc_manifest(self._request(), pvc_name=self.pvc_name, base=base),
                        "V1PersistentVolumeClaim")

    async def progress(self):
        if self.resource_request is not None:
            yield {"progress": 1, "message": chosen_message(self.resource_request)}
        async for update in super().progress():
            yield relabel(update)

    async def poll(self):
        if self._refused:
            return 0  # refused before any pod existed: stopped, nothing to ask Kubernetes
        return await super().poll()

    async def stop(self, now: bool = False) -> None:
        if self._refused:
            self.log.info("Not stopping %s: its start was refused before reaching Kubernetes", self._log_name)
            return
        await super().stop(now)

    async def delete_forever(self) -> None:
        """Home volumes hold users' work: dsbuild never deletes them."""
        self.log.info("Keeping home volume %s of %s (dsbuild never deletes home volumes)",
                      self.pvc_name, self._log_name)


__all__ = ["DsbuildSpawner", "bad_request"]
