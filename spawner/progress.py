"""Spawn progress messages for the hub's spawn page.

KubeSpawner reports each Kubernetes event about the pod ("Successfully
assigned ns/pod to node-3", "Pulling image ..."). `event_message` turns the
events that mark a step of a start into a short sentence: volume bound, pod
scheduled, image pulling/pulled (or failing to), container started. `chosen_message` is the
first message, naming the image and resources chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .resolve import ResourceRequest


def chosen_message(request: ResourceRequest) -> str:
    return f"Image chosen: {request.summary()}"


def _node_of(message: str) -> str | None:
    # "Successfully assigned jhub/jupyter-alice to node-3"
    _, sep, node = message.rpartition(" to ")
    return node.strip() or None if sep else None


def event_message(event: Mapping[str, Any]) -> str | None:
    """A friendly message for one Kubernetes event, or None to keep the raw one."""
    reason = event.get("reason") or ""
    message = event.get("message") or ""
    if reason == "Scheduled":
        node = _node_of(message)
        # The scheduler binds the pod only after its volumes are bound.
        where = f" on node {node}" if node else ""
        return f"Home volume bound; pod scheduled{where}"
    if reason == "FailedScheduling" and "PersistentVolumeClaim" in message:
        return f"Waiting for the home volume to be bound: {message}"
    if reason == "FailedScheduling":
        return f"No node can take this server yet: {message}"
    if reason == "SuccessfulAttachVolume":
        return f"Volume bound and attached: {message}"
    if reason == "Pulling":
        return f"Pulling the image: {message}"
    if reason == "Pulled":
        return f"Image ready: {message}"
    if reason == "Failed" and "pull" in message.lower():
        # "Failed to pull image ...: not found"; the spawn then fails with it (failures.py)
        return f"The node could not pull the image: {message}"
    if reason == "Created":
        return "Container created"
    if reason == "Started":
        return "Container started; waiting for JupyterLab to answer"
    return None


def relabel(update: Mapping[str, Any]) -> dict[str, Any]:
    """A KubeSpawner progress update with its message made friendly when known."""
    update = dict(update)
    raw = update.get("raw_event")
    if isinstance(raw, Mapping):
        friendly = event_message(raw)
        if friendly:
            update["message"] = friendly
    return update
