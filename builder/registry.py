"""The registry edge: does a registry hold a tag (asked over the registry HTTP API,
without pulling), and push. Credentials come from the Docker config, as `docker push`
uses them; they are sent to the registry only, never printed or put into a build."""

from __future__ import annotations

import json
import os
import re
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import SourceError

_HOST = re.compile(r"^[a-z0-9.-]+(?::\d{1,5})?$")
_MANIFESTS = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


@dataclass(frozen=True)
class Registry:
    host: str  # HOST[:PORT]

    def __post_init__(self) -> None:
        if not _HOST.match(self.host):
            raise SourceError(f"--registry wants HOST[:PORT], got {self.host!r}")

    @property
    def insecure(self) -> bool:
        """Docker talks plain HTTP to registries on the loopback address; so do we."""
        name = self.host.rsplit(":", 1)[0]
        return name == "localhost" or name.startswith("127.")

    @property
    def base_url(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.host}"

    def image(self, name: str, tag: str) -> str:
        return f"{self.host}/{name}:{tag}"


def docker_auth(host: str, config_dir: Path | None = None) -> str | None:
    """The base64 user:password the Docker config holds for `host`, if any."""
    folder = config_dir or Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    try:
        auths = json.loads((folder / "config.json").read_text()).get("auths", {})
    except (OSError, ValueError):
        return None
    for key in (host, f"https://{host}", f"http://{host}"):
        if auths.get(key, {}).get("auth"):
            return auths[key]["auth"]
    return None


def _open(request: urllib.request.Request):
    context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)
    return urllib.request.urlopen(request, timeout=15, context=context)


def _bearer(challenge: str, auth: str | None) -> str | None:
    fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    if "realm" not in fields:
        return None
    query = "&".join(f"{k}={v}" for k, v in fields.items() if k in ("service", "scope"))
    request = urllib.request.Request(f"{fields['realm']}?{query}")
    if auth:
        request.add_header("Authorization", f"Basic {auth}")
    with _open(request) as response:
        data = json.load(response)
    return data.get("token") or data.get("access_token")


def send(registry: Registry, request: urllib.request.Request, auth: str | None = None):
    """Open `request` to the registry with its credentials (Basic, or the Bearer token a
    401 asks for); the response, or None for a 404. SourceError for anything else."""
    if auth:
        request.add_header("Authorization", f"Basic {auth}")
    for _ in range(2):
        try:
            return _open(request)
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            challenge = err.headers.get("WWW-Authenticate", "")
            if err.code == 401 and challenge.lower().startswith("bearer") and "Bearer" not in (request.get_header("Authorization") or ""):
                token = _bearer(challenge, auth)
                if token:
                    request.add_header("Authorization", f"Bearer {token}")
                    continue
            raise SourceError(f"registry {registry.host} answered {err.code} for {request.get_method()} {request.full_url}") from None
        except (urllib.error.URLError, OSError) as err:
            raise SourceError(f"cannot reach registry {registry.host}: {getattr(err, 'reason', err)}") from None
    return None


def manifest_exists(registry: Registry, name: str, tag: str, auth: str | None = None) -> bool:
    """HEAD /v2/<name>/manifests/<tag>: True if the registry holds the tag."""
    url = f"{registry.base_url}/v2/{name}/manifests/{tag}"
    response = send(registry, urllib.request.Request(url, method="HEAD", headers={"Accept": _MANIFESTS}), auth)
    if response is None:
        return False
    with response:
        return response.status == 200


# -- listing and deleting, for the registry's garbage collection (gc.py decides) -----
_JSON_CAP = 4 * 2**20


def _get_json(registry: Registry, path: str, auth: str | None) -> tuple[dict, dict]:
    """GET a registry API path (capped); (JSON body, headers), ({}, {}) for a 404."""
    request = urllib.request.Request(f"{registry.base_url}{path}", headers={"Accept": "application/json"})
    response = send(registry, request, auth)
    if response is None:
        return {}, {}
    with response:
        data = response.read(_JSON_CAP + 1)
        headers = {k.lower(): v for k, v in response.headers.items()}
    if len(data) > _JSON_CAP:
        raise SourceError(f"registry {registry.host} answered more than {_JSON_CAP} bytes for {path}")
    try:
        return json.loads(data), headers
    except ValueError:
        raise SourceError(f"registry {registry.host} answered something that is not JSON for {path}") from None


def list_repositories(registry: Registry, auth: str | None = None, page: int = 500) -> list[str]:
    """Every repository, page by page (the registry's Link header says where the next is)."""
    names: list[str] = []
    path: str | None = f"/v2/_catalog?n={page}"
    while path:
        body, headers = _get_json(registry, path, auth)
        names += body.get("repositories") or []
        found = re.match(r'<(/v2/_catalog\?[^>]*)>;\s*rel="next"', headers.get("link", ""))
        path = found.group(1) if found and body.get("repositories") else None
    return names


def list_tags(registry: Registry, name: str, auth: str | None = None) -> list[str]:
    return list(_get_json(registry, f"/v2/{name}/tags/list", auth)[0].get("tags") or [])


def delete_manifest(registry: Registry, name: str, digest: str, auth: str | None = None) -> bool:
    """DELETE /v2/<name>/manifests/<digest>: every tag of that image goes; False if it
    was gone already. A registry without delete enabled answers 405: one-line error."""
    url = f"{registry.base_url}/v2/{name}/manifests/{digest}"
    try:
        response = send(registry, urllib.request.Request(url, method="DELETE"), auth)
    except SourceError as err:
        if " 405 " in str(err):
            raise SourceError(f"registry {registry.host} does not allow deleting (storage.delete.enabled)") from None
        raise
    if response is None:
        return False
    with response:
        return response.status in (200, 202)
