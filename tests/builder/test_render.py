"""The Dockerfile for each example, compared with golden files.

UPDATE_GOLDEN=1 rewrites them and skips the comparison: a run that rewrites its golden
files proves nothing, so run again without it to see the test pass."""

import os
import re

import pytest

from dsbuild.builder.facts import RepoFacts, scan
from dsbuild.builder.plan import BaseFacts, BuildOptions, PythonInstall, plan
from dsbuild.builder.render import LAYER_EPOCH, render_dockerfile, step_phases
from tests.conftest import EXAMPLES

BASE = BaseFacts("dsbuild-base:bookworm", (PythonInstall("3.11", "/usr/bin/python3.11"),), "3.11")
GOLDEN_SCOPE = "0123456789abcdef"  # the package cache scope of one source, as the service renders it
GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
EXAMPLE_NAMES = ["sketches", "apt-postbuild", "binder-runtime", "setup-py"]


def normalise(text: str) -> str:
    return re.sub(r"dsbuild \S+ from", "dsbuild VERSION from", text)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_dockerfiles_match_golden(name):
    text = normalise(render_dockerfile(plan(scan(EXAMPLES / name), BASE), GOLDEN_SCOPE, limits=True).text)
    golden = os.path.join(GOLDEN, f"{name}.Dockerfile")
    if os.environ.get("UPDATE_GOLDEN"):
        with open(golden, "w") as handle:
            handle.write(text)
        pytest.skip(f"rewrote {golden}; run again without UPDATE_GOLDEN to compare")
    with open(golden) as handle:
        assert text == handle.read()


def test_layer_order_keeps_the_cache_warm():
    facts = RepoFacts("", {"requirements.txt": "numpy\n", "apt.txt": "jq\n", "postBuild": "x", "start": "x"})
    dockerfile = render_dockerfile(plan(facts, BASE))
    order = [p for i, p in enumerate(dockerfile.phases) if p not in dockerfile.phases[:i]]
    # "shared files" is a stage of its own (the files before the first RUN), numbered after the main stage.
    assert order == ["base", "notebook settings", "jupyter", "system packages", "environment files", "dependencies", "repository", "postBuild", "start", "record", "shared files"]
    text = dockerfile.text
    assert text.index("COPY --chown=1000:1000 [\".dsbuild/env/\"") < text.index("uv pip compile") < text.index("uv pip sync") < text.index('["repo/"')


def test_step_phases_count_only_buildkit_steps():
    text = "# dsbuild-phase: base\nFROM x\nENV A=1\nUSER 1\nRUN a\n# dsbuild-phase: deps\nCOPY a b\nWORKDIR /x\nCMD [\"y\"]\n"
    assert step_phases(text) == ("base", "base", "deps", "deps")


def test_step_phases_number_other_stages_after_the_main_one():
    text = ("# dsbuild-phase: shared files\nFROM b AS dsbuild-files\nRUN x\n"
            "# dsbuild-phase: project metadata\nFROM b AS dsbuild-project\nCOPY a b\n"
            "# dsbuild-phase: base\nFROM b\nRUN y\n# dsbuild-phase: jupyter\nRUN z\n")
    assert step_phases(text) == ("base", "base", "jupyter", "shared files", "shared files", "project metadata", "project metadata")


def _shared_part(text: str) -> str:
    """The Dockerfile up to the end of the jupyter step: the layers every repository shares
    (a project's metadata stage is a stage of its own: none of its layers is in the image)."""
    if "# dsbuild-phase: project metadata" in text:
        text = text[:text.index("# dsbuild-phase: project metadata")] + text[text.index("# dsbuild-phase: base"):]
    start = text.index("# dsbuild-phase: jupyter")
    return text[text.index("# dsbuild-phase: shared files"):text.index("\n\n", start)]


def test_the_jupyter_layer_comes_before_anything_of_the_repository():
    """Repositories on one base build the same steps up to JupyterLab, so they share those
    layers: apt.txt, postBuild, the Python files, a project's own stage all come after."""
    repos = [{"requirements.txt": "numpy\n"}, {"apt.txt": "jq\n", "postBuild": "x", "requirements.txt": "pandas\n"},
             {"setup.py": "from setuptools import setup\nsetup()\n"}, {"environment.yml": "dependencies:\n  - scipy\n", "start": "x"}]
    texts = [render_dockerfile(plan(RepoFacts("", files), BASE), source_scope=f"{i:08x}").text for i, files in enumerate(repos)]
    shared = {_shared_part(t) for t in texts}
    assert len(shared) == 1
    part = shared.pop()
    assert "uv pip install jupyterlab==" in part and "apt-get" not in part and "repo/" not in part
    assert texts[1].index("uv pip install jupyterlab==") < texts[1].index("apt-get -q") < texts[1].index("uv pip sync")


def test_shared_steps_give_every_file_they_change_one_fixed_time():
    text = render_dockerfile(plan(RepoFacts("", {"requirements.txt": "numpy\n"}), BASE)).text
    part = _shared_part(text)
    fixed = f"touch -h -d @{LAYER_EPOCH}"
    # each RUN of the shared part ends by fixing the times of what it changed
    runs = [chunk for chunk in part.split("\nRUN ")[1:]]
    assert len(runs) == 4 and all(fixed in chunk for chunk in runs)
    assert "uv pip install jupyterlab" in part and "bytecode.py" in part
    assert 'COPY --from=dsbuild-files ["/out/", "/"]' in text and '".dsbuild/entrypoint", "/srv/dsbuild/entrypoint"' not in text


def test_paths_and_packages_are_quoted_for_the_shell():
    facts = RepoFacts("binder", {"postBuild": "x", "apt.txt": "libfoo+bar\n"})
    text = render_dockerfile(plan(facts, BASE)).text
    assert "./binder/postBuild" in text
    assert "install --no-install-recommends libfoo+bar" in text


def test_install_runs_as_the_notebook_user_with_host_trust_mounted():
    text = render_dockerfile(plan(RepoFacts("", {"requirements.txt": "numpy\n"}), BASE)).text
    jupyter = text.index("# dsbuild-phase: jupyter")
    assert "USER 1000" in text[jupyter:]
    assert "source=.dsbuild/ca.crt,target=/etc/dsbuild/ca.crt" in text[jupyter:]
    copies = [line for line in text.splitlines() if line.startswith(("COPY", "ADD"))]
    assert copies and not any("ca.crt" in line or "build.env" in line for line in copies)  # never in a layer


def test_options_hash_changes_with_the_templates(monkeypatch):
    from dsbuild.builder import target
    from dsbuild.builder.host import HostSettings
    from dsbuild.builder.plan import BuildOptions

    before = target.options_hash(BuildOptions(), "sha256:base", HostSettings())
    monkeypatch.setattr(target, "templates_digest", lambda: "other-templates")
    assert target.options_hash(BuildOptions(), "sha256:base", HostSettings()) != before


def test_record_comes_before_the_repository_when_nothing_after_it_installs():
    """Then a code-only change reruns only the repository's COPY: no container runs."""
    plain = render_dockerfile(plan(RepoFacts("", {"requirements.txt": "numpy\n", "start": "x"}), BASE))
    order = [p for i, p in enumerate(plain.phases) if p not in plain.phases[:i]]
    assert order[-4:] == ["record", "repository", "start", "shared files"]
    assert plain.phases.count("record") == 1
    for late in ({"requirements.txt": "numpy\n", "postBuild": "x"}, {"setup.py": "from setuptools import setup\nsetup()\n"}):
        dockerfile = render_dockerfile(plan(RepoFacts("", late), BASE))
        main_stage = [p for p in dockerfile.phases if p not in ("project metadata", "shared files")]  # own stages, numbered after
        assert main_stage[-1] == "record" and dockerfile.phases.count("record") == 1


def test_test_suites_are_trimmed_in_both_install_steps_unless_kept():
    facts = RepoFacts("", {"requirements.txt": "numpy\n"})
    trim = "/srv/dsbuild/venv/bin/python /tmp/dsbuild/bin/trim.py /srv/dsbuild/venv/lib/python*/site-packages"
    text = render_dockerfile(plan(facts, BASE)).text
    assert text.count(trim) == 2
    assert text.index("uv pip install") < text.index(trim) < text.index("uv pip sync") < text.rindex(trim)
    kept = plan(facts, BASE, BuildOptions(keep_tests=True))
    assert kept.keep_tests and trim not in render_dockerfile(kept).text
    assert kept.environment_hash != plan(facts, BASE).environment_hash
