"""The build daemons of `dsbuild serve --build-on kubernetes`: one long-running buildkitd
per build node (a DaemonSet), with its state on the node, so that the package caches a
rendered Dockerfile names (uv's cache per base image, per environment, per source:
docs/security.md) outlive one build and are shared by the builds on that node, scoped
exactly as on one machine.

- The objects are pure functions of the settings (`daemon_objects`, rendered from
  templates/launch/build-daemon.yaml.j2); `ensure_daemons` (the edge) creates them or
  brings them up to date when the service starts. They carry DAEMON_LABELS, by which
  `kubectl delete` removes them (docs/launch.md).
- The daemon's TCP port takes only the service: mutual TLS with a CA made for it
  (`make_tls`, in two Secrets: the daemons' half and the service's half; the CA's key is
  thrown away). A build step can reach the node's addresses, but has no client
  certificate.
- RBAC_RULES is what the service's account needs in the build namespace.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import yaml

from dsbuild.builder.buildkit import buildkitd_config

from .templating import render_config

DAEMON_NAME = "dsbuild-buildkitd"
DAEMON_PORT = 1234
SERVER_SECRET = "dsbuild-buildkitd-server"  # mounted by the daemons
CLIENT_SECRET = "dsbuild-buildkitd-client"  # read by the service only
SERVER_NAME = "buildkitd"  # the name in the daemons' certificate (their addresses change)
TLS_DIR = "/etc/buildkit-tls"  # where the daemon's half is mounted
# The build steps' network inside the daemon's network namespace (the node's, on
# --build-host-network): buildkitd's own CNI bridge, never the pod's or node's network.
BUILD_BRIDGE = "dsbuild-bk0"
BUILD_SUBNET = "10.160.0.0/24"
DAEMON_LABELS = {"app.kubernetes.io/component": "dsbuild-buildkitd", "app.kubernetes.io/managed-by": "dsbuild"}
CONFIG_HASH = "dsbuild.io/config-hash"

# What the service's account needs in --build-namespace (a Role's rules), for the
# build daemons, the build pods and the build Leases.
RBAC_RULES = (
    {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get", "create", "update"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "update"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "create", "delete"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update", "delete"]},
)


@dataclass(frozen=True)
class DaemonSettings:
    namespace: str
    image: str  # with buildkitd, runc and the CNI plugins (tests/buildkit/image.sh)
    registry: str  # HOST:PORT of the registry as the daemons reach it (plain HTTP)
    root: str = "/var/lib/dsbuild-buildkit"  # buildkitd's state on each node
    max_cache: str = str(20 * 2**30)  # bytes: buildkitd's garbage collection keeps its cache under this
    host_network: bool = False
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict, ...] = ()
    requests: tuple[tuple[str, str], ...] = (("cpu", "100m"), ("memory", "256Mi"))
    limits: tuple[tuple[str, str], ...] = (("memory", "2Gi"),)  # the daemon's own work: export, push


def daemon_config(settings: DaemonSettings) -> str:
    """buildkitd.toml of every build daemon (pure)."""
    return buildkitd_config("/var/lib/buildkit", [], [settings.registry], BUILD_BRIDGE, BUILD_SUBNET,
                            settings.max_cache, tls_dir=TLS_DIR)


def daemon_objects(settings: DaemonSettings, tls_ca: str = "") -> list[dict]:
    """The DaemonSet and its ConfigMap (pure). The pod template carries a hash of the
    config and of the CA (`tls_ca`, base64 as in the Secret), so a changed config or new
    keys roll the daemons (buildkitd reads its certificate when it starts)."""
    config = daemon_config(settings)
    digest = hashlib.sha256(repr((config, settings, tls_ca)).encode()).hexdigest()[:16]
    text = render_config(
        "build-daemon.yaml.j2", daemon=DAEMON_NAME, namespace=settings.namespace, labels=DAEMON_LABELS,
        selector=DAEMON_LABELS, annotations={CONFIG_HASH: digest}, host_network=settings.host_network,
        node_selector=settings.node_selector, tolerations=list(settings.tolerations), image=settings.image,
        port=DAEMON_PORT, requests=dict(settings.requests), limits=dict(settings.limits), tls_secret=SERVER_SECRET,
        root=settings.root, config=config,
    )
    return [doc for doc in yaml.safe_load_all(text) if doc]


@dataclass(frozen=True)
class TlsFiles:
    """PEM texts: the CA that signs both halves, and each half's certificate and key."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def make_tls(days: int = 3650) -> TlsFiles:
    """A new CA, a server certificate for SERVER_NAME and a client certificate; the CA's
    key is not kept (new keys are made by deleting the Secrets)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())

    def cert(subject, key, issuer, ca=False, usage=None, san=None):
        builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if usage:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()

    def pem(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()

    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("dsbuild build daemons CA", ca_key, "dsbuild build daemons CA", ca=True)
    return TlsFiles(ca=ca, server_cert=cert(SERVER_NAME, server_key, "dsbuild build daemons CA",
                                            usage=ExtendedKeyUsageOID.SERVER_AUTH, san=SERVER_NAME),
                    server_key=pem(server_key),
                    client_cert=cert("dsbuild serve", client_key, "dsbuild build daemons CA",
                                     usage=ExtendedKeyUsageOID.CLIENT_AUTH),
                    client_key=pem(client_key))


def _b64(files: Mapping[str, str]) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in files.items()}


def tls_secrets(namespace: str, tls: TlsFiles) -> list[dict]:
    """The daemons' Secret and the service's Secret (pure). File names as buildctl's
    --tlsdir and buildkitd.toml read them."""
    text = render_config(
        "build-daemon-tls.yaml.j2", namespace=namespace, labels=DAEMON_LABELS, server_secret=SERVER_SECRET,
        client_secret=CLIENT_SECRET,
        server=_b64({"ca.crt": tls.ca, "tls.crt": tls.server_cert, "tls.key": tls.server_key}),
        client=_b64({"ca.crt": tls.ca, "tls.crt": tls.client_cert, "tls.key": tls.client_key}),
    )
    return [doc for doc in yaml.safe_load_all(text) if doc]


def write_client_tls(secret_data: Mapping[str, str], folder: Path) -> Path:
    """The service's half (a Secret's base64 data) as files for buildctl --tlsdir, 0600."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for key in ("ca.crt", "tls.crt", "tls.key"):
        path = folder / key
        path.touch(mode=0o600)
        path.write_bytes(base64.b64decode(secret_data[key]))
    return folder
