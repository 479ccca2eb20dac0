import pytest

from dsbuild.spawner.errors import OptionsError
from dsbuild.spawner.options import UserOptions, options_from_form, parse_user_options
from dsbuild.spawner.quantities import Cpu, Memory


def test_json_options_are_typed():
    options = parse_user_options({
        "environment": "dsbuild-geo:1.2.0", "cpu": 2, "memory": "8Gi", "gpu_type": "nvidia-t4",
        "gpus": 1, "storage": "50Gi", "storage_class": "standard",
    })
    assert options == UserOptions("dsbuild-geo:1.2.0", Cpu(2000), Memory.parse("8Gi"), "nvidia-t4", 1,
                                  Memory.parse("50Gi"), "standard")
    assert parse_user_options(options.to_json()) == options


def test_empty_or_missing_options_mean_defaults():
    assert parse_user_options(None) == parse_user_options({}) == UserOptions()


@pytest.mark.parametrize("data, message", [
    ([1, 2], "user options must be a JSON object"),
    ({"profile": "big"}, "unknown option 'profile'; known options: environment, cpu"),
    ({"gpu": 1}, "unknown option 'gpu'"),
    ({"cpu": -2}, "cpu: -2 is not a CPU amount"),
    ({"cpu": "1e9"}, "cpu: '1e9' is not a CPU amount"),
    ({"cpu": 10**9}, "cpu: 1000000000 is more than 4096 cores"),
    ({"memory": "-1Gi"}, "memory: '-1Gi' is not an amount of memory"),
    ({"memory": 4.5}, "memory: 4.5 is not an amount of memory"),
    ({"storage": "10 TB"}, "storage: '10 TB' is not an amount of memory"),
    ({"gpus": -1}, "gpus must not be negative"),
    ({"gpus": "-1"}, "gpus must not be negative"),
    ({"gpus": 1.5}, "gpus must be a whole number"),
    ({"gpus": True}, "gpus must be a whole number"),
    ({"gpus": 100000}, "gpus=100000 is far more than any node has"),
    ({"environment": 3}, "environment must be a string"),
    ({"git_url": "x" * 600}, "git_url is longer than 512 characters"),
])
def test_malformed_json_is_refused(data, message):
    with pytest.raises(OptionsError) as info:
        parse_user_options(data)
    assert message in str(info.value)


def test_form_fields_become_the_json_form():
    formdata = {
        "environment": ["dsbuild-torch:2.3"], "cpu": ["4"], "memory": ["16Gi"], "gpu_type": ["nvidia-a100"],
        "gpus": ["2"], "storage": ["50Gi"], "storage_class": ["standard"], "_xsrf": ["token"], "git_url": [""],
    }
    assert options_from_form(formdata) == {
        "environment": "dsbuild-torch:2.3", "cpu": "4", "memory": "16Gi", "gpu_type": "nvidia-a100",
        "gpus": 2, "storage": "50Gi", "storage_class": "standard",
    }


def test_form_no_gpu_choice_means_zero_gpus():
    assert options_from_form({"gpu_type": [""], "gpus": ["2"], "cpu": ["500m"]}) == {"cpu": "500m", "gpus": 0}


@pytest.mark.parametrize("formdata, message", [
    ({"cpu": ["1", "2"]}, "cpu was sent 2 times"),
    ({"gpu_type": ["nvidia-t4"], "gpus": ["many"]}, "gpus must be a whole number"),
    ({"memory": ["lots"]}, "memory: 'lots' is not an amount of memory"),
])
def test_form_with_wrong_types_is_refused(formdata, message):
    with pytest.raises(OptionsError, match=message):
        options_from_form(formdata)
