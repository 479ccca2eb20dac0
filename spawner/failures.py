"""Why Kubernetes did not run a server, in words a user can act on.

Pure functions over what KubeSpawner already has: the pod as its reflector
holds it (a plain dict in Kubernetes' JSON form) and the API's error body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def unschedulable_reason(pod: Mapping[str, Any] | None) -> str | None:
    """The scheduler's own message when it found no node for the pod, e.g.
    "0/8 nodes are available: 2 Insufficient nvidia.com/gpu, ...", else None."""
    for condition in ((pod or {}).get("status") or {}).get("conditions") or []:
        if (condition.get("type") == "PodScheduled" and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"):
            return (condition.get("message") or "the scheduler gave no reason").strip()
    return None


# A container waiting for one of these will not start by waiting longer: the
# kubelet only retries the same pull (ImagePullBackOff) until start_timeout.
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


def image_pull_failure(pod: Mapping[str, Any] | None) -> str | None:
    """A message when the node cannot pull an image of the pod (missing from
    the registry, registry unreachable, bad name), else None."""
    status = (pod or {}).get("status") or {}
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in PULL_FAILURES:
            detail = (waiting.get("message") or waiting["reason"]).strip()
            return f"The node could not pull the image {container.get('image', '')}: {detail}"
    return None


def waiting_for_volumes(reason: str) -> bool:
    """The scheduler is waiting for the pod's claims to be bound (a provisioner
    may still be making the volume): not a lack of room, so not a reason to give
    up before `start_timeout`."""
    return "unbound immediate PersistentVolumeClaim" in reason


def refusal_message(status: int | None, body: str | bytes | None, reason: str | None = None) -> str | None:
    """A one-line message for the API refusing to create the pod or the volume
    claim (403 Forbidden: quota or RBAC; 422 Invalid: validation or a limit
    range), or None for other errors (those stay KubeSpawner's)."""
    if status not in (403, 422):
        return None
    try:
        message = json.loads(body or "")["message"]
    except (ValueError, KeyError, TypeError):
        message = reason or f"HTTP {status}"
    if "exceeded quota" in message:
        return f"The namespace's resource quota does not allow this server: {message}"
    return f"Kubernetes refused to create this server: {message}"


def unplaced_message(summary: str, reason: str) -> str:
    return f"No node can run this server ({summary}). The scheduler says: {reason}"
