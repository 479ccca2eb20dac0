"""Checks for the strings that end up in manifests, forms and config files.

Each checker returns the value unchanged when it is valid and raises
`ValueError` saying what is allowed otherwise. Kubernetes' own rules are used
where the string becomes part of an object (names, label keys and values).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re

from dsbuild.builder.names import is_image_ref

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_CHOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]*$")


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _string(value: object) -> str:
    _need(isinstance(value, str), f"expected a string, got {type(value).__name__}")
    return value  # type: ignore[return-value]


def check_choice_name(value: object) -> str:
    """A name users pick in the form or send as JSON (environments, GPU types...)."""
    text = _string(value)
    _need(
        len(text) <= 128 and bool(_CHOICE_NAME.match(text)),
        f"{text!r} must start with a letter or digit and use only letters, digits and . _ : @ / + - (at most 128)",
    )
    return text


def check_dns_label(value: object) -> str:
    text = _string(value)
    _need(
        len(text) <= 63 and bool(_DNS_LABEL.match(text)),
        f"{text!r} is not a valid Kubernetes name (lowercase letters, digits and '-', at most 63)",
    )
    return text


def check_dns_subdomain(value: object) -> str:
    text = _string(value)
    _need(
        len(text) <= 253 and bool(_DNS_SUBDOMAIN.match(text)),
        f"{text!r} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most 253)",
    )
    return text


def check_qualified_name(value: object) -> str:
    """A Kubernetes qualified name: optional DNS-subdomain prefix, '/', name."""
    text = _string(value)
    prefix, _, name = text.rpartition("/")
    if prefix:
        check_dns_subdomain(prefix)
    _need(
        len(name) <= 63 and bool(_LABEL_NAME.match(name)),
        f"{text!r} is not a valid qualified name like 'nvidia.com/gpu'",
    )
    return text


def check_label_key(value: object) -> str:
    return check_qualified_name(value)


def check_label_value(value: object) -> str:
    text = _string(value)
    _need(
        text == "" or (len(text) <= 63 and bool(_LABEL_NAME.match(text))),
        f"{text!r} is not a valid label value (letters, digits, '-', '_', '.', at most 63)",
    )
    return text


def check_image(value: object) -> str:
    """Image references follow builder/names.py's one rule."""
    text = _string(value)
    _need(
        is_image_ref(text),
        f"{text!r} is not an image reference like 'registry.example.org/team/name:tag'",
    )
    return text


def check_absolute_path(value: object) -> str:
    text = _string(value)
    _need(
        text.startswith("/") and text != "/" and posixpath.normpath(text) == text.rstrip("/")
        and ":" not in text and "\n" not in text and len(text) <= 1024,
        f"{text!r} must be a normalised absolute path other than '/', without ':' or '..'",
    )
    return text.rstrip("/")


def check_hostname(value: object) -> str:
    text = _string(value)
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    _need(
        len(text) <= 253 and bool(_DNS_SUBDOMAIN.match(text.lower())),
        f"{text!r} is not a host name or IP address",
    )
    return text
