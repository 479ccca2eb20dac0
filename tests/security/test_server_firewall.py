"""The servers' firewall on the host (launch/firewall.py): the chain's rules, pure. The
rules in force are probed from inside a real server in test_launch_lifecycle.py."""

from __future__ import annotations

from dsbuild.launch.firewall import ServerFirewall, chain_name
from dsbuild.launch.hubconfig import HubOptions, firewall_chain, launch_settings, Paths


def test_a_server_reaches_only_the_hubs_api_port_on_the_host():
    fence = ServerFirewall(chain_name("dsbuild-servers"), "br-0123456789ab", "172.20.0.1", 8081)
    rules = fence.commands()
    assert rules[0] == ["-F", fence.chain]
    accepts = [r for r in rules if r[-1] == "ACCEPT"]
    assert accepts == [
        ["-A", fence.chain, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        ["-A", fence.chain, "-p", "tcp", "-d", "172.20.0.1", "--dport", "8081", "-j", "ACCEPT"],
    ]
    assert rules[-1] == ["-A", fence.chain, "-j", "DROP"]
    assert fence.hook() == ["INPUT", "-i", "br-0123456789ab", "-j", fence.chain]


def test_each_network_has_its_own_chain_and_hub_down_knows_it(tmp_path):
    assert chain_name("a-servers") != chain_name("b-servers") and len(chain_name("a-servers")) <= 28
    options = HubOptions(state_dir=tmp_path, container_prefix="t1")
    assert launch_settings(options, Paths(tmp_path))["firewall_chain"] == chain_name("t1-servers")
    assert firewall_chain(HubOptions(state_dir=tmp_path, server_firewall=False)) is None
    assert firewall_chain(HubOptions(state_dir=tmp_path, server_network="bridge")) is None  # the operator's network
    assert firewall_chain(HubOptions(state_dir=tmp_path, spawner="kubernetes")) is None
