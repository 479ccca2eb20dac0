"""The spawn form shows only what the user may choose, escaped."""

import html.parser
from dataclasses import replace

from dsbuild.spawner.catalog import Environment
from dsbuild.spawner.form import offer, spawn_form
from dsbuild.spawner.options import parse_user_options
from dsbuild.spawner.quantities import Cpu, Memory
from dsbuild.spawner.resolve import HubUser, Usage


class Fields(html.parser.HTMLParser):
    """Collects each field's offered values and the preselected one."""

    def __init__(self, text):
        super().__init__()
        self.options, self.selected, self._select = {}, {}, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "select":
            self._select = attrs["name"]
            self.options[self._select] = []
        elif tag == "option":
            self.options[self._select].append(attrs["value"])
            if "selected" in attrs:
                self.selected[self._select] = attrs["value"]
        elif tag == "input" and attrs.get("type") == "radio":
            self.options.setdefault(attrs["name"], []).append(attrs["value"])
            if "checked" in attrs:
                self.selected[attrs["name"]] = attrs["value"]


def test_student_sees_only_choices_within_their_limits(catalog, student):
    fields = Fields(spawn_form(catalog, student))
    assert fields.options["cpu"] == ["500m", "1", "2"]
    assert fields.options["memory"] == ["2Gi", "4Gi"]
    assert fields.options["storage"] == ["10Gi"] and fields.options["storage_class"] == ["standard"]
    assert "gpu_type" not in fields.options and "gpus" not in fields.options
    assert fields.selected == {"environment": "dsbuild-sketches:2024.06", "cpu": "1", "memory": "2Gi",
                               "storage": "10Gi", "storage_class": "standard"}


def test_researcher_sees_gpus_and_larger_choices(catalog, researcher):
    fields = Fields(spawn_form(catalog, researcher))
    assert fields.options["cpu"] == ["500m", "1", "2", "4", "8"]
    assert fields.options["gpu_type"] == ["", "nvidia-a100", "nvidia-t4"] and fields.selected["gpu_type"] == ""
    assert fields.options["gpus"] == ["1", "2"]  # 4 is over the per-server limit of 2
    assert fields.options["storage"] == ["10Gi", "50Gi"]


def test_previous_choices_are_preselected_when_still_offered(catalog, researcher, student):
    previous = parse_user_options({"environment": "dsbuild-torch:2.3", "cpu": "4", "gpu_type": "nvidia-t4", "gpus": 2})
    fields = Fields(spawn_form(catalog, researcher, previous))
    assert fields.selected["environment"] == "dsbuild-torch:2.3" and fields.selected["cpu"] == "4"
    assert fields.selected["gpu_type"] == "nvidia-t4" and fields.selected["gpus"] == "2"
    # for a student 4 CPUs is not offered: the default is preselected instead
    assert Fields(spawn_form(catalog, student, previous)).selected["cpu"] == "1"


def test_git_option_only_when_the_hub_can_build(catalog, student):
    assert 'name="git_url"' not in spawn_form(catalog, student)
    fields = Fields(spawn_form(catalog, student, can_build=True))
    assert "" in fields.options["environment"]


def test_nothing_left_is_explained(catalog):
    busy = HubUser("sam", frozenset({"students"}), Usage(cpu=Cpu(4000), memory=Memory.parse("8Gi")))
    choices = offer(catalog, busy)
    assert choices.cpu == () and choices.memory == ()
    assert any("No CPU choice fits your limits" in b and "per-user CPU limit of 4 CPUs" in b for b in choices.blocked)
    assert "No memory choice fits your limits" in spawn_form(catalog, busy)


def test_admin_text_is_escaped(catalog, student):
    evil = Environment("evil", "registry.example.org/evil:1", '<script>alert("x")</script>', "<b>&</b>")
    text = spawn_form(replace(catalog, environments=(evil,)), student)
    assert "<script>" not in text and "&lt;script&gt;" in text and "&lt;b&gt;&amp;&lt;/b&gt;" in text
