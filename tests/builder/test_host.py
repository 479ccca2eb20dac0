import subprocess
from pathlib import Path

import pytest

from dsbuild.builder.errors import ConfigError
from dsbuild.builder.host import HostSettings, build_env, has_credentials, host_settings, index_secret, pip_config_urls


def test_pip_config_later_files_win():
    first = "[global]\nindex-url = https://one.example/simple\n"
    second = "[install]\nindex-url = https://two.example/simple\nextra-index-url =\n  https://x.example/simple\n  https://y.example/simple\n"
    assert pip_config_urls([first, second]) == (
        "https://two.example/simple",
        ("https://x.example/simple", "https://y.example/simple"),
    )


def test_options_beat_environment_beat_config():
    conf = ["[global]\nindex-url = https://conf.example/simple\n"]
    env = {"PIP_INDEX_URL": "https://env.example/simple", "PIP_CERT": "/certs/corp.pem"}
    assert host_settings(env, conf).index_url == "https://env.example/simple"
    assert host_settings(env, conf, index_url="https://opt.example/simple").index_url == "https://opt.example/simple"
    assert host_settings({}, conf).index_url == "https://conf.example/simple"
    assert host_settings(env, conf).ca_bundle == Path("/certs/corp.pem")
    assert host_settings({}, [], system_bundle=Path("/sys.pem")).ca_bundle == Path("/sys.pem")
    assert host_settings({}, [], ca_cert=Path("/opt.pem")).ca_bundle == Path("/opt.pem")


def test_local_find_links_and_non_http_indexes_are_refused():
    with pytest.raises(ConfigError, match="http"):
        host_settings({}, [], index_url="/opt/wheels")


def test_build_env_is_quoted_shell(tmp_path):
    settings = HostSettings(Path("/x.pem"), "https://u:p@mirror.example/simple?a=1&b=$(id)", ("https://e.example/simple",))
    env_file = tmp_path / "build.env"
    env_file.write_text(build_env(settings))
    out = subprocess.run(["bash", "-c", f". {env_file} && printf '%s|%s|%s' \"$UV_INDEX_URL\" \"$SSL_CERT_FILE\" \"$UV_EXTRA_INDEX_URL\""], capture_output=True, text=True)
    # build.env is mounted into postBuild too: no credentials in it (index_secret has them)
    assert out.stdout == "https://mirror.example/simple?a=1&b=$(id)|/etc/dsbuild/ca.crt|https://e.example/simple"
    secret = tmp_path / "index"
    secret.write_text(index_secret(settings))
    out = subprocess.run(["bash", "-c", f". {secret} && printf '%s' \"$UV_INDEX_URL\""], capture_output=True, text=True)
    assert out.stdout == "https://u:p@mirror.example/simple?a=1&b=$(id)"
    assert has_credentials(settings) and not has_credentials(HostSettings(None, "https://m.example/simple"))


def test_without_a_bundle_no_certificate_variables_are_set():
    assert "SSL_CERT_FILE" not in build_env(HostSettings(None))
