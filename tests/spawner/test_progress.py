import pytest

from dsbuild.spawner.options import parse_user_options
from dsbuild.spawner.progress import chosen_message, event_message, relabel
from dsbuild.spawner.resolve import resolve


def test_first_message_names_image_and_resources(catalog, researcher):
    request = resolve(parse_user_options({"gpu_type": "nvidia-t4", "storage": "50Gi"}), catalog, researcher)
    assert chosen_message(request) == (
        "Image chosen: dsbuild-sketches:2024.06 (registry.example.org/dsbuild/dsbuild-sketches:2024.06): "
        "1 CPU, 2 GiB memory, 1 x NVIDIA T4 16GB, 50 GiB home volume (standard)")


@pytest.mark.parametrize("reason, message, expected", [
    ("Scheduled", "Successfully assigned jhub/jupyter-rita to node-3", "Home volume bound; pod scheduled on node node-3"),
    ("FailedScheduling", "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
     "Waiting for the home volume to be bound: 0/3 nodes"),
    ("FailedScheduling", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.", "No node can take this server yet"),
    ("SuccessfulAttachVolume", 'AttachVolume.Attach succeeded for volume "pvc-1"', "Volume bound and attached"),
    ("Pulling", 'Pulling image "x:1"', 'Pulling the image: Pulling image "x:1"'),
    ("Pulled", 'Successfully pulled image "x:1" in 3s', "Image ready"),
    ("Failed", 'Failed to pull image "r/x:1": rpc error: code = NotFound desc = failed to pull and unpack image',
     'The node could not pull the image: Failed to pull image "r/x:1"'),
    ("Created", "Created container notebook", "Container created"),
    ("Started", "Started container notebook", "Container started"),
])
def test_start_steps_get_friendly_messages(reason, message, expected):
    assert event_message({"reason": reason, "message": message}).startswith(expected)


def test_other_events_keep_kubespawners_message():
    update = {"progress": 50, "message": "2024 [Normal] Killing", "raw_event": {"reason": "Killing", "message": "x"}}
    assert event_message(update["raw_event"]) is None
    assert relabel(update) == update
    assert relabel({"message": "patience"}) == {"message": "patience"}
