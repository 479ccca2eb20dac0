"""git hosts on loopback, private and link-local networks are refused, and the requester
is told nothing about the network (the same words for every kind of failure)."""

from __future__ import annotations

import pytest
from dsbuild.launch.errors import RepoNotFound
from dsbuild.launch.hosts import UNREADABLE, check_host, refused, safe_source_message
from dsbuild.launch.limits import parse_networks

PRIVATE = ["127.0.0.1", "127.8.8.8", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1", "169.254.169.254",
           "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00::1", "fc00::5", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
           "224.0.0.1", "fe80::1%eth0"]


@pytest.mark.parametrize("address", PRIVATE)
def test_non_public_addresses_are_refused(address):
    assert refused([address]) == [address]


def test_public_addresses_pass_and_one_private_address_among_them_is_enough():
    assert refused(["140.82.121.3", "2606:4700::6810:84e5"]) == []
    assert refused(["140.82.121.3", "10.0.0.1"]) == ["10.0.0.1"]


def test_an_admin_can_allow_a_network():
    allowed = parse_networks(["10.0.0.0/8", "::1"])
    assert refused(["10.9.9.9", "::1"], allowed) == []
    assert refused(["192.168.0.1", "127.0.0.1"], allowed) == ["192.168.0.1", "127.0.0.1"]


def fake_dns(table):
    def resolve(host, port):
        if host not in table:
            raise OSError(-2, "Name or service not known")
        return table[host]
    return resolve


@pytest.mark.parametrize("url", [
    "https://internal.example/org/repo",  # resolves to a private address
    "https://metadata.example/latest",  # the cloud's metadata address
    "https://missing.example/org/repo",  # does not resolve
    "https://127.0.0.1:8081/hub/api",
    "http://[::1]/x",
])
def test_refusals_say_the_same_thing_and_name_no_address(url):
    dns = fake_dns({"internal.example": ["10.20.30.40"], "metadata.example": ["169.254.169.254"],
                    "127.0.0.1": ["127.0.0.1"], "::1": ["::1"]})
    with pytest.raises(RepoNotFound) as info:
        check_host(url, (), url, dns)
    message = str(info.value)
    assert message == UNREADABLE.format(url=url)
    for secret in ("10.20.30.40", "169.254", "resolve", "private", "Name or service"):
        assert secret not in message


def test_public_hosts_and_local_paths_pass():
    check_host("https://git.example/org/repo", (), "x", fake_dns({"git.example": ["140.82.121.3"]}))
    check_host("file:///tmp/repo", (), "x", fake_dns({}))  # no host: --allow-scheme file governs it


def test_gits_own_error_line_is_never_shown():
    line = "cannot read repository https://h/r: fatal: unable to access 'https://h/r/': Failed to connect to 10.0.0.7 port 443"
    shown = safe_source_message(line, "https://h/r")
    assert "10.0.0.7" not in shown and "fatal" not in shown and shown == UNREADABLE.format(url="https://h/r")
    missing = "ref 'nope' not found in https://h/r (looked for a branch, a tag and a commit)"
    assert safe_source_message(missing, "https://h/r") == missing


def test_the_builders_size_limits_are_shown_as_they_are():
    for line in ("the repository has 20001 files at this commit, more than this builder takes (20000)",
                 "the repository holds 600 MiB of files, more than this builder takes (500 MiB)"):
        assert safe_source_message(line, "https://h/r") == line
