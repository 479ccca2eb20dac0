"""resolve(): every catalog choice, every refusal, and group limits."""

from dataclasses import replace

import pytest

from dsbuild.spawner.catalog import GroupLimits

from dsbuild.spawner.errors import ChoiceError, LimitExceeded, OptionsError, SpawnRequestError
from dsbuild.spawner.options import UserOptions, parse_user_options
from dsbuild.spawner.quantities import Cpu, Memory
from dsbuild.spawner.resolve import HubUser, Usage, effective_limits, held_usage, resolve

ADMIN = HubUser("root-of-all", frozenset({"researchers", "students"}))


def opts(**kw):
    return parse_user_options(kw)


def test_defaults_come_from_the_catalog(catalog, student):
    request = resolve(UserOptions(), catalog, student)
    assert request.environment == "dsbuild-sketches:2024.06"
    assert request.image == "registry.example.org/dsbuild/dsbuild-sketches:2024.06"
    assert (request.cpu.limit, request.cpu.guarantee) == (Cpu(1000), Cpu(500))
    assert request.memory.limit == Memory.parse("2Gi") and request.gpu is None
    assert (request.storage.size, request.storage.storage_class) == (Memory.parse("10Gi"), "standard")
    assert request.storage.mount_path == "/home/jovyan" and request.git is None
    assert [v.name for v in request.data_volumes] == ["datasets", "archive"]


def test_every_environment(catalog, researcher):
    for env in catalog.environments:
        request = resolve(opts(environment=env.name), catalog, researcher)
        assert (request.environment, request.image) == (env.name, env.image)


def test_every_cpu_and_memory_choice(catalog, researcher):
    for choice in catalog.cpu:
        assert resolve(opts(cpu=choice.limit.k8s()), catalog, researcher).cpu == choice
    for choice in catalog.memory:
        assert resolve(opts(memory=choice.limit.k8s()), catalog, researcher).memory == choice
    # the same amount written differently is the same choice
    assert resolve(opts(cpu="2000m"), catalog, researcher).cpu.limit == Cpu(2000)


def test_every_gpu_type_and_count(catalog):
    big = HubUser("gpu-admin", frozenset(), Usage())
    roomy = replace(catalog, group_limits=(), default_limits=GroupLimits())
    for gpu_type in catalog.gpu.types:
        for count in catalog.gpu.counts:
            request = resolve(opts(gpu_type=gpu_type.name, gpus=count), roomy, big)
            assert (request.gpu.type, request.gpu.count, request.gpu.resource) == (gpu_type, count, "nvidia.com/gpu")


def test_gpu_type_alone_means_one_gpu_and_zero_means_none(catalog, researcher):
    assert resolve(opts(gpu_type="nvidia-t4"), catalog, researcher).gpu.count == 1
    assert resolve(opts(gpu_type="nvidia-t4", gpus=0), catalog, researcher).gpu is None


def test_every_storage_choice(catalog, researcher):
    for size in catalog.storage.sizes:
        for cls in catalog.storage.classes:
            request = resolve(opts(storage=size.k8s(), storage_class=cls), catalog, researcher)
            assert (request.storage.size, request.storage.storage_class) == (size, cls)


def test_git_url_resolves_to_an_image_from_the_template(catalog, student):
    request = resolve(opts(git_url="https://github.com/example-org/My.Analysis.git", git_ref="feature/x"),
                      catalog, student)
    assert request.git.url == "https://github.com/example-org/My.Analysis.git" and request.git.ref == "feature/x"
    assert request.image.startswith("registry.example.org/dsbuild-git/my-analysis-")
    assert ":feature-x-" in request.image
    assert resolve(opts(git_url="https://gitlab.example.org/a/b"), catalog, student).git.ref is None  # HEAD


REFUSALS = [
    (dict(environment="dsbuild-nope:1"), ChoiceError, "unknown environment 'dsbuild-nope:1'; choose one of: dsbuild-sketches:2024.06"),
    (dict(cpu="3"), ChoiceError, "cpu 3 is not offered; choose one of: 500m, 1, 2, 4, 8"),
    (dict(memory="3Gi"), ChoiceError, "memory 3Gi is not offered"),
    (dict(gpu_type="nvidia-h100"), ChoiceError, "unknown GPU type 'nvidia-h100'; choose one of: nvidia-a100, nvidia-t4"),
    (dict(gpus=2), ChoiceError, "gpus=2 needs a gpu_type"),
    (dict(gpu_type="nvidia-t4", gpus=3), ChoiceError, "gpus=3 is not offered; choose one of: 1, 2, 4"),
    (dict(storage="20Gi"), ChoiceError, "storage 20Gi is not offered; choose one of: 10Gi, 50Gi"),
    (dict(storage_class="fast-ssd"), ChoiceError, "storage class 'fast-ssd' does not exist on this hub; choose one of: standard"),
    (dict(git_url="https://github.com/other-org/x"), ChoiceError, "is not allowed here; it must start with one of"),
    (dict(git_url="http://github.com/example-org/x"), ChoiceError, "must be a plain https URL"),
    (dict(git_url="https://user:pw@github.com/example-org/x"), ChoiceError, "without query, fragment or credentials"),
    (dict(git_url="https://github.com/example-org/x", git_ref="../../etc"), ChoiceError, "is not a branch, tag or commit"),
    (dict(git_url="https://github.com/example-org/x", environment="dsbuild-geo:1.2.0"), ChoiceError, "either environment or git_url"),
    (dict(git_ref="main"), ChoiceError, "git_ref needs git_url"),
    (dict(cpu="4"), LimitExceeded, "4 CPUs is over the per-server CPU limit of 2 CPUs (group 'students')"),
    (dict(memory="8Gi"), LimitExceeded, "8 GiB is over the per-server memory limit of 4 GiB (group 'students')"),
    (dict(gpu_type="nvidia-t4"), LimitExceeded, "1 GPU is over the per-server GPU limit of 0 GPUs (group 'students')"),
    (dict(storage="50Gi"), LimitExceeded, "50 GiB is over the per-server storage limit of 10 GiB (group 'students')"),
]


@pytest.mark.parametrize("options, kind, message", REFUSALS, ids=[str(r[0]) for r in REFUSALS])
def test_refusals_say_what_to_do(catalog, student, options, kind, message):
    with pytest.raises(kind) as info:
        resolve(opts(**options), catalog, student)
    assert message in str(info.value)
    assert isinstance(info.value, SpawnRequestError)


def test_all_broken_limits_are_named_at_once(catalog, student):
    with pytest.raises(LimitExceeded) as info:
        resolve(opts(cpu="8", memory="32Gi", storage="50Gi"), catalog, student)
    text = str(info.value)
    assert "per-server CPU limit" in text and "per-server memory limit" in text and "per-server storage limit" in text


def test_per_user_limits_count_other_servers(catalog, student):
    busy = HubUser("sam", frozenset({"students"}), Usage(cpu=Cpu(3000), memory=Memory.parse("4Gi"), storage=Memory.parse("10Gi")))
    request = resolve(opts(cpu="1", memory="4Gi"), catalog, busy)  # 3+1 CPUs, 4+4Gi, 10+10Gi: exactly at the limits
    assert request.cpu.limit == Cpu(1000)
    with pytest.raises(LimitExceeded, match=r"2 CPUs plus the 3 CPUs your other running servers use is over the per-user CPU limit of 4 CPUs \(group 'students'\)"):
        resolve(opts(cpu="2"), catalog, busy)


def test_most_generous_group_wins_and_default_applies_to_the_rest(catalog):
    both = effective_limits(catalog, frozenset({"students", "researchers", "unlisted"}))
    assert both.per_server["cpu"].value == Cpu(8000) and both.per_server["cpu"].source == "group 'researchers'"
    nobody = effective_limits(catalog, frozenset({"unlisted"}))
    assert nobody.per_server["cpu"].value == Cpu(1000) and nobody.per_server["cpu"].source == "the default limits"
    with pytest.raises(LimitExceeded, match=r"over the per-server CPU limit of 1 CPU \(the default limits\)"):
        resolve(opts(cpu="2"), catalog, HubUser("guest"))
    assert resolve(opts(cpu="8", gpu_type="nvidia-a100", gpus=2), catalog, ADMIN).gpu.count == 2


def test_a_key_no_group_sets_is_unlimited(catalog):
    data_free = replace(catalog, default_limits=GroupLimits())
    assert resolve(opts(cpu="8", memory="32Gi"), data_free, HubUser("guest")).cpu.limit == Cpu(8000)


def test_a_hub_without_gpus_or_git_builds_says_so(catalog, researcher):
    plain = replace(catalog, gpu=None, git_builds=None, storage=replace(catalog.storage, classes=()),
                    defaults=replace(catalog.defaults, storage_class=None))
    with pytest.raises(ChoiceError, match="this hub offers no GPUs"):
        resolve(opts(gpu_type="nvidia-t4"), plain, researcher)
    with pytest.raises(ChoiceError, match="this hub does not build from git URLs"):
        resolve(opts(git_url="https://github.com/example-org/x"), plain, researcher)
    with pytest.raises(ChoiceError, match="cluster's default storage class"):
        resolve(opts(storage_class="standard"), plain, researcher)
    assert resolve(UserOptions(), plain, researcher).storage.storage_class is None


def test_held_usage_counts_running_compute_and_existing_volumes(catalog):
    options = {"cpu": "2", "memory": "4Gi", "storage": "50Gi"}
    assert held_usage(options, catalog, running=True, has_volume=True) == Usage(Cpu(2000), Memory.parse("4Gi"), 0, Memory.parse("50Gi"))
    assert held_usage(options, catalog, running=False, has_volume=True) == Usage(storage=Memory.parse("50Gi"))
    assert held_usage(options, catalog, running=False, has_volume=False) == Usage()
    assert held_usage({"cpu": "-1"}, catalog, running=True, has_volume=True) == Usage()


def test_malformed_options_are_spawn_request_errors():
    with pytest.raises(SpawnRequestError):
        parse_user_options({"cpu": "lots"})
    assert issubclass(OptionsError, SpawnRequestError)
