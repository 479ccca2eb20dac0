from dataclasses import replace
from pathlib import Path

from dsbuild.builder.diagnose import explain_failure, uv_failure
from dsbuild.builder.progress import LogLine, ProgressParser, StepCached, StepDone, StepFailed, StepStarted

DATA = Path(__file__).parent / "data"


def events(name, phases):
    parser = ProgressParser(phases)
    out = []
    for line in (DATA / name).read_text().splitlines():
        out.extend(parser.feed(line))
    return parser, out


def test_plain_progress_becomes_typed_events():
    phases = ("base", "base", "base", "base", "jupyter", "environment files", "dependencies", "repository")
    parser, out = events("buildkit-failed-install.txt", phases)
    started = [e for e in out if isinstance(e, StepStarted)]
    assert [(e.step, e.phase) for e in started] == [(1, "base"), (2, "base"), (5, "jupyter"), (6, "environment files"), (7, "dependencies")]
    assert {e.step for e in out if isinstance(e, StepCached)} == {2, 5}
    assert any(isinstance(e, StepDone) and e.step == 6 for e in out)
    logs = [e.text for e in out if isinstance(e, LogLine) and e.phase == "dependencies"]
    assert logs[0] == "Using Python 3.11.2 environment at: /srv/dsbuild/venv"
    failed = [e for e in out if isinstance(e, StepFailed)]
    assert len(failed) == 1 and failed[0].step == 7 and failed[0].exit_code == 1
    assert parser.cached == [2, 5]


def test_failed_install_is_explained_with_the_failing_requirement():
    _, out = events("buildkit-failed-install.txt", ("base",) * 6 + ("dependencies", "repository"))
    failure = next(e for e in out if isinstance(e, StepFailed))
    message = explain_failure(failure)
    assert message.startswith("installing the Python packages failed (exit code 1): Because no-such-pkg-dsbuild was not found")


def test_failed_post_build_names_exit_code_and_last_line():
    failure = StepFailed(9, "postBuild", "executor failed running [...]: exit code: 3", 3, ("step one", "boom: missing file", ""))
    assert explain_failure(failure) == "postBuild failed (exit code 3); its last line: boom: missing file"
    killed = replace(failure, exit_code=137)
    assert explain_failure(killed).startswith("postBuild failed (exit code 137: killed, most likely out of memory")


def test_uv_failure_reads_tty_style_output():
    tail = ("  × No solution found when resolving dependencies:", "  ╰─▶ Because foo==99 has no wheels, we can conclude x.")
    assert uv_failure(tail) == "Because foo==99 has no wheels, we can conclude x."


def test_a_step_that_failed_before_any_output_is_explained_by_the_engines_message():
    message = "failed to create shim: OCI runtime create failed: runc create failed: unable to start container process"
    failure = StepFailed(8, "environment files", message, None, ())
    assert explain_failure(failure) == f"build step 8 (environment files) failed: {message}"


def test_a_damaged_build_cache_is_named_with_what_clears_it():
    message = ("failed to prepare abc: open /var/lib/docker/overlay2/abc/committed: "
               "no such file or directory")
    failure = StepFailed(5, "dependencies", message, None, ())
    explained = explain_failure(failure)
    assert explained.startswith("the engine's build cache is damaged") and "docker builder prune" in explained
    ordinary = StepFailed(5, "dependencies", "exit code: 1", 1, ("error: no such file or directory: x.txt",))
    assert "damaged" not in explain_failure(ordinary)
