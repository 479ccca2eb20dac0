"""Settings declared once: the launch service's and the local hub's traits give the click
options their defaults and help, and a wrong value names its option."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from dsbuild.cli import main
from dsbuild.launch.cli import serve, up
from dsbuild.launch.config import LaunchConfig
from dsbuild.launch.errors import ConfigInvalid, HubError
from dsbuild.launch.hubconfig import HubOptions
from dsbuild.launch.limits import Rate
from dsbuild.spawner.quantities import Memory
from traitlets.config import Config


# Options whose default is not the trait's, on purpose: serve's mode comes from the hub's
# state folder; --max-repo-size and --gc-max-disk are written as sizes ("500Mi") and
# --launch-rate as COUNT/UNIT ("10/hour"), each parsed into the trait (checked below).
NOT_THE_TRAITS_DEFAULT = {"mode", "max_repo_size", "gc_max_disk", "launch_rate"}


@pytest.mark.parametrize("cls, command", [(LaunchConfig, serve), (HubOptions, up)])
def test_every_option_named_like_a_setting_takes_its_default_and_help(cls, command):
    traits = cls.class_traits(config=True)
    options = {p.name: p for p in command.params if isinstance(p, click.Option) and p.name in traits}
    assert len(options) >= 10
    for name, option in options.items():
        trait = traits[name]
        assert trait.help.strip(), name
        assert " ".join(trait.help.split()) in " ".join((option.help or "").split()), name
        default = trait.default()
        if default not in (None, "", []) and not (command is serve and name in NOT_THE_TRAITS_DEFAULT):
            assert option.default == (tuple(default) if isinstance(default, list) else default), name
    if command is serve:
        assert Rate.parse(options["launch_rate"].default) == traits["launch_rate"].default()
        assert Memory.parse(options["max_repo_size"].default).bytes == traits["max_repo_size"].default()
        assert Memory.parse(options["gc_max_disk"].default).bytes == traits["gc_max_disk"].default()


def test_a_changed_default_reaches_the_help():
    trait = LaunchConfig.class_traits()["max_builds"]
    assert f"[default: {trait.default()}]" in CliRunner().invoke(main, ["serve", "--help"]).output


def test_wrong_values_name_their_option():
    with pytest.raises(ConfigInvalid, match="--mode must be any of"):
        LaunchConfig(hub_url="http://h/", hub_token="t", mode="public")
    with pytest.raises(HubError, match="--port must be an int"):
        HubOptions(port="eighty")


def test_settings_also_come_from_a_traitlets_config():
    config = Config()
    config.LaunchConfig.max_builds = 5
    settings = LaunchConfig(config=config, hub_url="http://h", hub_token="t")
    assert settings.max_builds == 5 and settings.hub_api_url == "http://h/hub/api/"
