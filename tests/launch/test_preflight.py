"""The preflight decides with the builder's own `decide_target` and hands the build the
commit it resolved: real git (a file:// repository), a fake engine."""

from __future__ import annotations

from dsbuild.builder.names import image_name
from dsbuild.launch.preflight import Preflight
from dsbuild.launch.routes import parse_launch

from .conftest import FakeEngine, config, make_repo


def test_the_build_gets_the_resolved_commit_as_its_ref(tmp_path, cache):
    url = make_repo(tmp_path / "demo", {"requirements.txt": "numpy\n"})
    preflight = Preflight(config(), FakeEngine())
    spec = parse_launch(f"git/{url.replace(':', '%3A').replace('/', '%2F')}/main", {}, ("file",))
    checked = preflight.check(spec)
    assert len(checked.commit) == 40 and not checked.image_exists  # the fake engine has no image
    assert checked.image == f"{image_name(spec.source, 'dsbuild-test')}:{checked.commit[:12]}"
    request = preflight.build_request(checked)
    assert request.source.ref == checked.commit and request.resolved.source.ref == checked.commit
    assert request.resolved.commit == checked.commit and request.name == checked.image.split(":")[0]
