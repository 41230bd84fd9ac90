"""A model family defined only in a test package (``tests/plugins/thresholds``, installed with pip
into a temporary folder and registered through the ``voxelprompt.families`` entry point) served by
``voxelprompt serve`` in a subprocess and driven by the official MONAI Label and nnInteractive
clients: the server names its classes by the family's own catalog and answers exactly what the
plugin's segmenter answers in-process. Nothing outside the plugin knows the family."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest
import requests
import torch

from cli_runner import SCRIPT, die_with_parent
from plugin_family import plugin_env
from voxelprompt.imageio import read_volume, write_volume
from voxelprompt.server.launch import free_port
from voxelprompt.types import Points, Prompts, Volume

BONE, AIR, SOFT = 1, 2, 3  # the plugin's class ids
NAMES = {"bone": BONE, "air": AIR, "soft tissue": SOFT}
BONE_CLICK, AIR_CLICK = (12, 12, 12), (32, 34, 33)  # inside the first bone block, inside the air pocket
REQUEST_S = 60  # each HTTP request's time limit


def _ct() -> Volume:
    """48^3 voxels of 1.5 mm in HU: soft tissue, two separate bone blocks and an air pocket."""
    hu = np.full((48, 48, 48), 40.0, dtype=np.float32)
    hu[8:18, 8:18, 8:18] = 700.0  # bone, the block clicked
    hu[30:38, 4:10, 4:10] = 1200.0  # bone, a second component
    hu[28:38, 28:40, 28:38] = -900.0  # air
    hu[:2] = -1000.0  # air outside the body, touching no other class
    return Volume(array=hu, affine=np.diag([1.5, 1.5, 1.5, 1.0]))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin-serve")
    image = write_volume(_ct(), folder / "ct.nii.gz")
    checkpoint = folder / "hu.pt"
    ranges = torch.tensor([[200.0, 3071.0], [-1024.0, -500.0], [-100.0, 199.0]])
    torch.save({"thresholds.ranges": ranges}, checkpoint)
    return image, checkpoint


@pytest.fixture(scope="module")
def served(files, thresholds_plugin, tmp_path_factory):
    """``voxelprompt serve -c hu.pt`` with the plugin on its PYTHONPATH, stopped at the end."""
    _, checkpoint = files
    port = free_port()
    store = tmp_path_factory.mktemp("plugin-store")
    process = subprocess.Popen(
        [str(SCRIPT), "serve", "--port", str(port), "--device", "cpu", "-c", str(checkpoint), "--datastore", str(store),
         "--max-sessions", "2", "--max-leases", "1", "--queue", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=plugin_env(thresholds_plugin), preexec_fn=die_with_parent,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = requests.get(f"{url}/healthz", timeout=2).json()
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.communicate(timeout=30)[1][-2000:]
                assert time.monotonic() < deadline, "server did not start within 120 s"
                time.sleep(0.5)
        assert health["models"] == ["thresholds-hu"], health
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err[-2000:]


@pytest.fixture()
def segmenter(files, thresholds_family):
    """The plugin's segmenter in this process, on the same checkpoint."""
    return thresholds_family.load(files[1])


def _expected(segmenter, volume: Volume, prompts: Prompts) -> np.ndarray:
    return np.asarray(segmenter.segment(volume, prompts).labels.array)


@pytest.fixture()
def bounded_sockets():
    """A time limit on every socket the MONAI Label client opens (it sets none itself)."""
    import socket

    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(REQUEST_S)
    yield
    socket.setdefaulttimeout(before)


def test_monailabel_client_lists_the_family_classes_and_gets_the_plugin_answers(served, files, segmenter, tmp_path, bounded_sockets):
    from monailabel.client import MONAILabelClient

    image, _ = files
    volume = read_volume(image)
    client = MONAILabelClient(served, tmpdir=str(tmp_path))
    info = client.info()
    assert set(info["labels"]) == set(NAMES)  # the family's own names, not VISTA3D's
    entry = info["models"]["thresholds-hu"]
    assert entry["family"] == "thresholds" and entry["labels"] == NAMES
    assert entry["learnt_classes"] == NAMES
    assert set(info["models"]) == {"thresholds-hu", "thresholds-hu-segmentation", "thresholds-hu-interactive"}
    # Viewer training is a family capability (teach) this family lacks: not offered, and refused in one line.
    assert info["trainers"] == {}
    refused = requests.post(f"{served}/train/thresholds-hu", json={}, timeout=REQUEST_S)
    assert 400 <= refused.status_code < 500 and "cannot be taught" in refused.json()["detail"], refused.text

    assert client.upload_image(str(image), "ct")["image"] == "ct"
    reply = {"result_extension": ".nii.gz", "result_dtype": "uint8"}

    # Label names: dense values in the order asked, each the plugin's class mask.
    path, params = client.infer("thresholds-hu-segmentation", "ct", {**reply, "labels": ["air", "bone"]})
    got = read_volume(path).array
    assert params["label_names"] == {"air": 1, "bone": 2}
    want = _expected(segmenter, volume, Prompts(classes=(AIR, BONE)))
    assert (want == AIR).any() and (want == BONE).any()
    assert np.array_equal(got == 1, want == AIR) and np.array_equal(got == 2, want == BONE)
    assert np.array_equal(got != 0, want != 0)

    # No names: every class the family lists (it has no "everything" set).
    path, params = client.infer("thresholds-hu-segmentation", "ct", reply)
    got = read_volume(path).array
    want = _expected(segmenter, volume, Prompts(classes=(BONE, AIR, SOFT)))
    assert params["label_names"] == NAMES
    assert np.array_equal(got, want)

    # Foreground clicks (3D Slicer's deepgrow): the clicked component, as a binary mask.
    path, params = client.infer("thresholds-hu-interactive", "ct", {**reply, "foreground": [list(BONE_CLICK)], "label": "Segment_1"})
    got = read_volume(path).array
    clicks = Points.from_lists([tuple(float(v) for v in BONE_CLICK)], [])
    want = _expected(segmenter, volume, Prompts(points=clicks)) != 0
    assert want[BONE_CLICK] and not want[34, 6, 6]  # one bone block, not the other
    assert np.array_equal(got != 0, want) and set(np.unique(got)) == {0, 1}
    assert params["label_names"] == {"Segment_1": 1}


def test_nninteractive_client_point_gets_the_plugin_answer(served, files, segmenter):
    from nnInteractive.inference import remote  # the official client: nninteractive-client==2.6.0

    volume = read_volume(files[0])
    caps = requests.get(f"{served}/nninteractive/thresholds-hu/capabilities", timeout=REQUEST_S).json()
    assert caps["voxelprompt"]["family"] == "thresholds" and caps["supported_interactions"]["points"]
    assert not caps["supported_interactions"]["bbox3d"]  # the family has no boxes
    session = remote.nnInteractiveRemoteInferenceSession(
        f"{served}/nninteractive/thresholds-hu", read_timeout=REQUEST_S, set_image_read_timeout=REQUEST_S
    )
    try:
        session.set_image(volume.array[None].astype(np.float32), {"spacing": list(volume.spacing), "affine": volume.affine.tolist()})
        buffer = np.zeros(volume.shape, dtype=np.uint8)
        session.set_target_buffer(buffer)
        session.add_point_interaction(list(AIR_CLICK), include_interaction=True)
        clicks = Points.from_lists([tuple(float(v) for v in AIR_CLICK)], [])
        want = _expected(segmenter, volume, Prompts(points=clicks)) != 0
        assert want[AIR_CLICK] and not want[0, 0, 0]  # the pocket, not the air outside
        assert np.array_equal(buffer != 0, want)
        session.add_point_interaction(list(BONE_CLICK), include_interaction=False)  # a negative click elsewhere
        assert np.array_equal(buffer != 0, want)
    finally:
        session.close()
