"""`dsbuild show`'s note on a tag's suffix (the label it reads is written by build())."""

from dsbuild.builder.host import HostSettings
from dsbuild.builder.names import describe_options, environment_options
from dsbuild.builder.plan import BuildOptions
from dsbuild.cli.repro_commands import environment_note


def test_show_explains_the_suffix_or_its_absence():
    dated = describe_options(environment_options(BuildOptions(as_of="2024-01-01"), HostSettings()))
    assert "as-of=2024-01-01" in environment_note(dated) and "never replaces" in environment_note(dated)
    assert "commit (or folder content) alone" in environment_note("defaults")
    assert "older dsbuild" in environment_note(None)
