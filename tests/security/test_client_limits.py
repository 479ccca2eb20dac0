"""Who a client is (also behind a proxy), and how many launches it may start. Pure."""

from __future__ import annotations

import pytest
from dsbuild.launch.errors import ConfigInvalid
from dsbuild.launch.limits import Rate, RateLimiter, client_key, parse_networks

PROXY = parse_networks(["10.0.0.0/8"])


def test_the_peer_address_is_the_client_without_a_trusted_proxy():
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Real-Ip": "203.0.113.9"}
    assert client_key("198.51.100.7", forged) == "198.51.100.7"
    assert client_key("10.1.1.1", forged) == "10.1.1.1"  # no proxy is trusted by default


def test_a_trusted_proxy_forwards_the_client_and_a_client_cannot_pick_its_key():
    assert client_key("10.1.1.1", {"X-Forwarded-For": "198.51.100.7"}, PROXY) == "198.51.100.7"
    # the client sent its own X-Forwarded-For; the proxy appended the real address
    assert client_key("10.1.1.1", {"X-Forwarded-For": "1.2.3.4, 198.51.100.7"}, PROXY) == "198.51.100.7"
    # two proxies: the right-most address that is not a proxy
    assert client_key("10.1.1.1", {"X-Forwarded-For": "1.2.3.4, 198.51.100.7, 10.2.2.2"}, PROXY) == "198.51.100.7"
    assert client_key("10.1.1.1", {"X-Forwarded-For": "garbage"}, PROXY) == "10.1.1.1"
    assert client_key("10.1.1.1", {}, PROXY) == "10.1.1.1"


def test_ipv6_clients_count_by_their_64():
    a = client_key("2001:db8:1:2:aaaa::1", {})
    assert a == client_key("2001:db8:1:2:ffff::9", {}) == "2001:db8:1:2::/64"
    assert a != client_key("2001:db8:1:3::1", {})
    assert client_key("::ffff:198.51.100.7", {}) == "198.51.100.7"


@pytest.mark.parametrize("text, rate", [("10/hour", Rate(10, 3600)), ("5 per minute", Rate(5, 60)),
                                        ("100/d", Rate(100, 86400)), ("0", Rate(0, 3600))])
def test_rates(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["10", "ten/hour", "10/week", "-1/hour"])
def test_bad_rates(text):
    with pytest.raises(ValueError, match="COUNT/UNIT"):
        Rate.parse(text)


def test_the_eleventh_launch_in_an_hour_waits_for_the_first_to_age():
    limiter = RateLimiter(Rate(10, 3600))
    for i in range(10):
        assert limiter.take("a", 1000.0 + i) is None
    assert limiter.take("a", 1100.0) == pytest.approx(3500.0)
    assert limiter.take("b", 1100.0) is None  # another client is not affected
    assert limiter.take("a", 4600.0) is None  # the first launch left the window
    assert limiter.take("a", 4600.5) is not None


def test_refused_launches_are_not_counted_and_no_limit_counts_nothing():
    limiter = RateLimiter(Rate(1, 60))
    assert limiter.take("a", 0.0) is None
    for t in range(1, 50):
        assert limiter.take("a", float(t)) is not None
    assert limiter.take("a", 60.5) is None  # 49 refusals did not push the window
    free = RateLimiter(Rate(0, 3600))
    assert all(free.take("a", 0.0) is None for _ in range(1000)) and free.clients() == 0


def test_memory_is_bounded_whatever_the_number_of_clients():
    limiter = RateLimiter(Rate(1, 3600), max_clients=100)
    for i in range(10_000):
        limiter.take(f"198.51.{i // 256}.{i % 256}", float(i))
    assert limiter.clients() == 100


@pytest.mark.parametrize("option, value, words", [
    ("--launch-rate", "lots", "--launch-rate: a rate is COUNT/UNIT"),
    ("--trusted-proxy", "proxy.example", "--trusted-proxy: not an IP address or network"),
    ("--allow-host-network", "10.0.0.0/33", "--allow-host-network: not an IP address or network"),
    ("--max-servers", "-1", "max_servers must not be negative"),
    ("--max-starting", "0", "--max-starting must be at least 1"),
])
def test_serve_refuses_bad_limits_in_one_line(tmp_path, option, value, words):
    from click.testing import CliRunner
    from dsbuild.cli import main

    (tmp_path / "token").write_text("t\n")
    result = CliRunner().invoke(main, ["serve", "--hub-url", "http://127.0.0.1:8000/", "--hub-state", str(tmp_path),
                                       "--hub-token-file", str(tmp_path / "token"), option, value])
    assert result.exit_code == ConfigInvalid.exit_code and words in result.output, result.output
    assert "Traceback" not in result.output
