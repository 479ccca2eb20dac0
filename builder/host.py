"""The host's trust store and package-index settings, carried into every build so that
builds work behind TLS-intercepting proxies and private mirrors.

`host_settings()` is pure over (environment, pip config texts); `read_host_settings()`
is the I/O that gathers them."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence
from urllib.parse import urlsplit

from .errors import ConfigError

SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_CA_ENV = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class HostSettings:
    ca_bundle: Path | None = None
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    python_install_mirror: str | None = None  # uv's UV_PYTHON_INSTALL_MIRROR, for --python-downloads


def _urls(value: str | None) -> tuple[str, ...]:
    return tuple(v for v in (value or "").split() if v)


def _check_url(url: str) -> str:
    if urlsplit(url).scheme not in ("http", "https") or any(c.isspace() or ord(c) < 32 or c in "\"'\\" for c in url):
        raise ConfigError(f"package index must be an http(s) URL, got {url!r}")
    return url


def pip_config_urls(texts: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """index-url and extra-index-url from pip config files, later files winning."""
    index: str | None = None
    extra: tuple[str, ...] = ()
    for text in texts:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text)
        except configparser.Error:
            continue
        for section in ("global", "install"):
            if parser.has_option(section, "index-url"):
                index = parser.get(section, "index-url").strip() or None
            if parser.has_option(section, "extra-index-url"):
                extra = _urls(parser.get(section, "extra-index-url"))
    return index, extra


def host_settings(
    env: Mapping[str, str],
    pip_configs: Sequence[str] = (),
    ca_cert: Path | None = None,
    index_url: str | None = None,
    system_bundle: Path | None = SYSTEM_CA_BUNDLE,
) -> HostSettings:
    """Explicit options win, then uv's and pip's environment variables, then pip's config files."""
    conf_index, conf_extra = pip_config_urls(pip_configs)
    index = (
        index_url
        or env.get("UV_DEFAULT_INDEX")
        or env.get("UV_INDEX_URL")
        or env.get("PIP_INDEX_URL")
        or conf_index
    )
    extra = _urls(env.get("UV_EXTRA_INDEX_URL") or env.get("PIP_EXTRA_INDEX_URL")) or conf_extra
    bundle = ca_cert
    if bundle is None:
        bundle = next((Path(env[k]) for k in _CA_ENV if env.get(k)), system_bundle)
    mirror = env.get("UV_PYTHON_INSTALL_MIRROR")
    return HostSettings(
        ca_bundle=bundle,
        index_url=_check_url(index) if index else None,
        extra_index_urls=tuple(_check_url(u) for u in extra),
        python_install_mirror=_check_url(mirror) if mirror else None,
    )


def pip_config_paths(env: Mapping[str, str]) -> list[Path]:
    home = Path(env.get("HOME", "~")).expanduser()
    paths = [Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"), home / ".pip/pip.conf", home / ".config/pip/pip.conf"]
    if env.get("PIP_CONFIG_FILE"):
        paths.append(Path(env["PIP_CONFIG_FILE"]))
    return paths


def uv_config_paths(env: Mapping[str, str]) -> list[Path]:
    """uv's own configuration files, most specific first (user, then system)."""
    home = Path(env.get("HOME", "~")).expanduser()
    user = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    return [user / "uv" / "uv.toml", Path("/etc/uv/uv.toml")]


def uv_python_mirror(texts: Sequence[str]) -> str | None:
    """`python-install-mirror` from uv.toml texts, the first that sets it (pure)."""
    for text in texts:
        try:
            value = tomllib.loads(text).get("python-install-mirror")
        except tomllib.TOMLDecodeError:
            continue
        if isinstance(value, str) and value:
            return value
    return None


def read_host_settings(ca_cert: Path | None = None, index_url: str | None = None) -> HostSettings:
    env = dict(os.environ)
    texts = [p.read_text(errors="replace") for p in pip_config_paths(env) if p.is_file()]
    settings = host_settings(env, texts, ca_cert, index_url)
    if settings.python_install_mirror is None:
        uv_texts = [p.read_text(errors="replace") for p in uv_config_paths(env) if p.is_file()]
        if mirror := uv_python_mirror(uv_texts):
            settings = replace(settings, python_install_mirror=_check_url(mirror))
    if settings.ca_bundle is not None and not settings.ca_bundle.is_file():
        if ca_cert is not None:
            raise ConfigError(f"--ca-cert {ca_cert}: no such file")
        settings = replace(settings, ca_bundle=None)
    return settings


CA_IN_BUILD = "/etc/dsbuild/ca.crt"


def without_credentials(url: str) -> str:
    """The URL with any user:password@ removed: an image or a log never holds credentials."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def has_credentials(settings: HostSettings) -> bool:
    return any(without_credentials(u) != u for u in (settings.index_url or "", *settings.extra_index_urls))


def _index_exports(index_url: str | None, extra: Sequence[str]) -> list[str]:
    lines = []
    if index_url:
        q = shlex.quote(index_url)
        lines.append(f"export UV_INDEX_URL={q} PIP_INDEX_URL={q}")
    if extra:
        q = shlex.quote(" ".join(extra))
        lines.append(f"export UV_EXTRA_INDEX_URL={q} PIP_EXTRA_INDEX_URL={q}")
    return lines


def build_env(settings: HostSettings) -> str:
    """The shell file sourced by every step of the build that uses Python tools (bind-
    mounted, never stored in a layer). Values are shell-quoted. The index URLs here have
    no credentials: this file is mounted into postBuild too (index_secret has the rest)."""
    lines = [
        "export PATH=/tmp/dsbuild/bin:$PATH",
        "export UV_CACHE_DIR=/tmp/dsbuild-uv-cache UV_LINK_MODE=copy",  # bytecode: bytecode.py, after each install
        "export UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1",
    ]
    if settings.ca_bundle is not None:
        for var in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS"):
            lines.append(f"export {var}={CA_IN_BUILD}")
    index = without_credentials(settings.index_url) if settings.index_url else None
    lines += _index_exports(index, [without_credentials(u) for u in settings.extra_index_urls])
    if settings.python_install_mirror:
        lines.append(f"export UV_PYTHON_INSTALL_MIRROR={shlex.quote(settings.python_install_mirror)}")
    return "\n".join(lines) + "\n"


INDEX_SECRET = "dsbuild-index"


def index_secret(settings: HostSettings) -> str:
    """The BuildKit secret `dsbuild-index`: the index URLs as given (credentials included),
    mounted only into the install steps (jupyter, dependencies, repository installs)."""
    return "\n".join(["# dsbuild package index settings", *_index_exports(settings.index_url, settings.extra_index_urls)]) + "\n"


CA_IN_IMAGE = "/srv/dsbuild/ca-certificates.crt"


def notebook_config(settings: HostSettings) -> dict[str, str]:
    """pip.conf and uv.toml for the image, so that `pip install` and `uv pip install` in a
    running notebook use the build's index and CA bundle. URLs lose their credentials."""
    index = without_credentials(settings.index_url) if settings.index_url else None
    extra = [without_credentials(u) for u in settings.extra_index_urls]
    pip = ["[global]", f"cert = {CA_IN_IMAGE}", "disable-pip-version-check = true"]
    uv = []
    if index:
        pip.append(f"index-url = {index}")
        uv.append(f"index-url = {json.dumps(index)}")
    if extra:
        pip.append(f"extra-index-url = {' '.join(extra)}")
        uv.append(f"extra-index-url = {json.dumps(extra)}")
    return {"pip.conf": "\n".join(pip) + "\n", "uv.toml": "\n".join(uv) + "\n"}
