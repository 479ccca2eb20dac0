"""`dsbuild hub config`: both formats embed the checked catalog; bad input is
a one-line error with exit code 1."""

import yaml
from click.testing import CliRunner
from traitlets.config import Config

from dsbuild.spawner.catalog import parse_catalog
from dsbuild.spawner.cli import hub
from dsbuild.spawner.errors import CatalogError

EXAMPLE = "examples/hub/catalog.yaml"


def invoke(*args):
    return CliRunner().invoke(hub, list(args), catch_exceptions=False)


def run_config(code: str) -> Config:
    c = Config()
    exec(compile(code, "generated-config", "exec"), {"c": c})
    return c


def test_jupyterhub_format_is_python_that_sets_the_catalog(catalog, monkeypatch):
    monkeypatch.chdir(_root())
    result = invoke("config", "--catalog", EXAMPLE)
    assert result.exit_code == 0, result.output
    c = run_config(result.output)
    assert c.JupyterHub.spawner_class == "dsbuild"
    assert parse_catalog(c.DsbuildSpawner.catalog) == catalog


def test_z2jh_format_is_helm_values_with_the_same_config(catalog, tmp_path, monkeypatch):
    monkeypatch.chdir(_root())
    out = tmp_path / "values.yaml"
    result = invoke("config", "--catalog", EXAMPLE, "--format", "z2jh", "-o", str(out))
    assert result.exit_code == 0 and f"Wrote z2jh configuration to {out}" in result.output
    values = yaml.safe_load(out.read_text())
    assert values["singleuser"]["storage"]["type"] == "none"
    c = run_config(values["hub"]["extraConfig"]["dsbuild"])
    assert parse_catalog(c.DsbuildSpawner.catalog) == catalog


def test_awkward_strings_survive_both_formats(catalog_data, tmp_path):
    catalog_data["environments"]["dsbuild-geo:1.2.0"]["description"] = "it's \"quoted\"\n'''\\ # not: a comment {{ x }}"
    path = tmp_path / "odd name\nwith newline.yaml"
    path.write_text(yaml.safe_dump(catalog_data, sort_keys=False))
    for fmt in ("jupyterhub", "z2jh"):
        result = invoke("config", "--catalog", str(path), "--format", fmt)
        assert result.exit_code == 0, result.output
        code = result.output if fmt == "jupyterhub" else yaml.safe_load(result.output)["hub"]["extraConfig"]["dsbuild"]
        assert parse_catalog(run_config(code).DsbuildSpawner.catalog) == parse_catalog(catalog_data)
        assert "odd name" not in result.output


def test_bad_catalog_is_one_line_naming_the_key(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("environments: {a: {image: 'x/y:1'}}\ncpu: [{limit: -1}]\nmemory: [{limit: 1Gi}]\nstorage: {sizes: [1Gi]}\n")
    result = invoke("config", "--catalog", str(path))
    assert result.exit_code == CatalogError.exit_code == 9
    assert result.output.count("\n") == 1 and "catalog.cpu[0].limit" in result.output
    assert "Traceback" not in result.output


def test_a_file_that_is_not_yaml_is_one_line(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\nsome: [unclosed\n")
    result = invoke("config", "--catalog", str(path))
    assert result.exit_code == 9 and result.output.count("\n") == 1
    assert "notes.md is not valid YAML at line 4, column 1" in result.output


def test_missing_file_and_bad_format(tmp_path):
    result = invoke("config", "--catalog", str(tmp_path / "none.yaml"))
    assert result.exit_code == 9 and "cannot read catalog file" in result.output
    result = CliRunner().invoke(hub, ["config", "--catalog", EXAMPLE, "--format", "helm"])
    assert result.exit_code == 2 and "'helm' is not one of 'jupyterhub', 'z2jh'" in result.output


def test_help_teaches():
    result = invoke("config", "--help")
    assert "dsbuild hub config --catalog examples/hub/catalog.yaml" in result.output
    assert "z2jh" in result.output and "jupyterhub_config.py" in result.output


def _root():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]
