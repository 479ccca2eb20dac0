"""`dsbuild serve --base-url /services/dsbuild/` (behind JupyterHub's proxy, the Helm
release): every page, badge, stream and link is under the prefix, and nothing is
answered outside it. The app in its own thread with the fake hub and builder."""

from __future__ import annotations

import re

from tests.security.launch_support import NOTEBOOK, events_of, git_path, request, service, stream_url_of

from .conftest import config, make_repo

PREFIX = "/services/dsbuild/"


def test_everything_is_served_and_linked_under_the_base_url(tmp_path, monkeypatch):
    monkeypatch.setenv("DSBUILD_CACHE_DIR", str(tmp_path / "cache"))
    repo = make_repo(tmp_path / "demo", {"notebook.ipynb": NOTEBOOK})
    with service(config(base_url=PREFIX)) as svc:
        home = request(f"{svc.base}{PREFIX}?repo={repo}&ref=main")
        outside = [request(f"{svc.base}{path}")[0] for path in ("/", "/v2/" + git_path(repo), "/badge.svg", "/health")]
        inside = [request(f"{svc.base}{PREFIX}{path}")[0] for path in ("badge.svg", "health", "metrics")]
        page = request(f"{svc.base}{PREFIX}v2/{git_path(repo)}")
        stream = stream_url_of(page[2])
        events = events_of(request(svc.base + stream)[2])
    assert home[0] == 200 and f'action="{PREFIX}"' in home[2] and f'src="{PREFIX}badge.svg"' in home[2]
    links = re.findall(r'href="(http[^"]+/v2/[^"]+)"', home[2])
    assert links and all(link.startswith(f"{svc.base}{PREFIX}v2/git/") for link in links), links
    assert f"({svc.base}{PREFIX}badge.svg)" in home[2]  # the badge's Markdown
    assert outside == [404] * 4 and inside == [200] * 3
    assert page[0] == 200 and stream.startswith(f"{PREFIX}build/git/") and f'href="{PREFIX}badge.svg"' in page[2]
    assert events[-1]["phase"] == "ready" and svc.build.calls == 1
