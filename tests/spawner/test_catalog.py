"""The catalog format: the example parses to what it says, and each kind of
mistake is refused with a message naming the bad key."""

import copy

import pytest

from dsbuild.spawner.catalog import load_catalog, parse_catalog, read_catalog_file
from dsbuild.spawner.errors import CatalogError
from dsbuild.spawner.hub_config import catalog_data
from dsbuild.spawner.quantities import Cpu, Memory


def test_example_catalog_parses_to_typed_choices(catalog):
    assert [e.name for e in catalog.environments] == ["dsbuild-sketches:2024.06", "dsbuild-geo:1.2.0", "dsbuild-torch:2.3"]
    assert catalog.cpu[0].limit == Cpu(500) and catalog.cpu[0].guarantee == Cpu(250)
    assert catalog.memory[-1].limit == Memory.parse("32Gi")
    a100 = catalog.gpu.type_named("nvidia-a100")
    assert a100.node_selector == (("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB"),)
    assert catalog.gpu.type_named("nvidia-t4").node_selector == (("nvidia.com/gpu.product", "Tesla-T4"),)
    assert catalog.gpu.resource == "nvidia.com/gpu" and catalog.gpu.counts == (1, 2, 4)
    assert catalog.storage.sizes == (Memory.parse("10Gi"), Memory.parse("50Gi"))
    assert catalog.storage.classes == ("standard",)
    assert [(v.name, v.pvc, v.nfs_server) for v in catalog.data_volumes] == [
        ("datasets", "shared-datasets", None), ("archive", None, "nfs.example.org")]
    assert dict(catalog.group_limits)["students"].per_server.gpus == 0
    assert catalog.security.uid == 1000
    assert catalog.defaults.cpu == Cpu(1000) and catalog.defaults.storage_class == "standard"


def test_canonical_form_reads_back_equal(catalog):
    assert parse_catalog(catalog_data(catalog)) == catalog


def test_minimal_catalog_gets_defaults():
    catalog = parse_catalog({
        "environments": {"base": {"image": "registry.example.org/base:1"}},
        "cpu": [{"limit": 1}],
        "memory": [{"limit": "2Gi"}],
        "storage": {"sizes": ["10Gi"]},
    })
    assert catalog.cpu[0].guarantee == Cpu(1000)  # guarantee defaults to the limit
    assert catalog.storage.mount_path == "/home/jovyan" and catalog.storage.classes == ()
    assert catalog.defaults.storage_class is None and catalog.gpu is None
    assert catalog.default_limits.per_server.cpu is None


def mutate(data, path, value):
    *parents, last = path
    node = data
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = KeyError
CASES = [
    (("envs",), {}, "catalog: unknown key 'envs'"),
    (("environments",), DELETE, "catalog: missing required key 'environments'"),
    (("environments",), {}, "catalog.environments: expected a non-empty mapping"),
    (("environments", "bad name!"), {"image": "x/y:1"}, "catalog.environments: name 'bad name!'"),
    (("environments", "dsbuild-geo:1.2.0", "image"), "Not An Image", "catalog.environments.dsbuild-geo:1.2.0.image"),
    (("environments", "dsbuild-geo:1.2.0", "imag"), "x", "catalog.environments.dsbuild-geo:1.2.0: unknown key 'imag'"),
    (("cpu", 0, "limit"), -1, "catalog.cpu[0].limit"),
    (("cpu", 0, "limit"), 0, "catalog.cpu[0].limit: must be more than 0"),
    (("cpu", 1, "guarantee"), 4, "catalog.cpu[1].guarantee: 4 is more than the limit 1"),
    (("cpu", 1, "limit"), "500m", "catalog.cpu: limit 500m is listed twice"),
    (("memory", 0, "limit"), 2048, "catalog.memory[0].limit: 2048 bytes is less than 1Mi"),
    (("memory", 0, "limit"), "2GB", "catalog.memory[0].limit"),
    (("gpu", "counts"), [1, 0], "catalog.gpu.counts[1]: expected a whole number from 1 to 64"),
    (("gpu", "counts"), [1, 100000], "catalog.gpu.counts[1]"),
    (("gpu", "resource"), "nvidia gpu", "catalog.gpu.resource"),
    (("gpu", "types", "nvidia-t4", "node_selector"), {}, "catalog.gpu.types.nvidia-t4.node_selector"),
    (("gpu", "types", "nvidia-t4", "node_selector"), {"nvidia.com/gpu.product": "Tesla T4!"},
     "catalog.gpu.types.nvidia-t4.node_selector.nvidia.com/gpu.product"),
    (("storage", "sizes"), [], "catalog.storage.sizes: expected a non-empty list"),
    (("storage", "sizes"), ["10Gi", "-5Gi"], "catalog.storage.sizes[1]"),
    (("storage", "classes"), ["Fast SSD"], "catalog.storage.classes[0]"),
    (("storage", "access_mode"), "ReadOnlyMany", "catalog.storage.access_mode"),
    (("storage", "mount_path"), "home", "catalog.storage.mount_path"),
    (("data_volumes", "datasets", "mount_path"), "/home/jovyan/data", "overlaps /home/jovyan"),
    (("data_volumes", "archive", "mount_path"), "/data/datasets", "catalog.data_volumes.archive.mount_path"),
    (("data_volumes", "datasets", "nfs"), {"server": "x", "path": "/y"}, "give exactly one of 'pvc'"),
    (("data_volumes", "datasets", "pvc"), "Shared_Data", "catalog.data_volumes.datasets.pvc"),
    (("data_volumes", "archive", "nfs", "path"), "/exports/../etc", "catalog.data_volumes.archive.nfs.path"),
    (("data_volumes", "archive", "nfs", "server"), "nfs server", "catalog.data_volumes.archive.nfs.server"),
    (("limits", "groups", "students", "per_server", "gpus"), -1, "catalog.limits.groups.students.per_server.gpus"),
    (("limits", "groups", "students", "per_server", "cpus"), 2, "catalog.limits.groups.students.per_server: unknown key 'cpus'"),
    (("limits", "default", "per_user", "memory"), "lots", "catalog.limits.default.per_user.memory"),
    (("security", "uid"), 0, "catalog.security.uid: expected a whole number from 1"),
    (("defaults", "environment"), "nope", "catalog.defaults.environment: 'nope' is not one of the environments"),
    (("defaults", "cpu"), 3, "catalog.defaults.cpu: 3 is not one of the cpu limits"),
    (("defaults", "storage_class"), "fast", "catalog.defaults.storage_class"),
    (("git_builds", "allowed_prefixes"), ["http://github.com/"], "catalog.git_builds.allowed_prefixes[0]"),
    (("git_builds", "image_template"), "registry.example.org/x:{ref}", "must contain both {repo} and {ref}"),
    (("git_builds", "image_template"), "registry.example.org/{repo}:{user}", "catalog.git_builds.image_template"),
]


@pytest.mark.parametrize("path, value, message", CASES, ids=[".".join(map(str, c[0])) + f"={c[1]!r}" for c in CASES])
def test_bad_catalog_names_the_key(catalog_data, path, value, message):
    with pytest.raises(CatalogError) as info:
        parse_catalog(mutate(copy.deepcopy(catalog_data), path, value))
    assert message in str(info.value)


def test_not_a_mapping():
    with pytest.raises(CatalogError, match="catalog: expected a mapping, got list"):
        parse_catalog([1, 2])


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(CatalogError, match="cannot read catalog file"):
        load_catalog(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("environments: [unclosed\n")
    with pytest.raises(CatalogError, match="is not valid YAML"):
        read_catalog_file(bad)
