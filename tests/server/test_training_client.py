"""Teaching the model from the viewer, driven by the official ``monailabel`` client on a real server:
save_label -> train_start -> train_status -> infer with the new class; train_stop; next_sample;
versions restored. The server is this module's own (training swaps its model)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import SimpleITK as sitk

from served import start_server
from voxelprompt.data.phantom import PhantomConfig, make_phantom
from voxelprompt.imageio import write_volume

NEW = "my organ"  # the phantoms' liver under a name no catalog knows: a new class id (133)
MODEL = "vista3d-demo"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("datastore"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    from monailabel.client import MONAILabelClient

    return MONAILabelClient(server.url, tmpdir=str(tmp_path_factory.mktemp("client")))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantoms")
    out = {}
    for seed in (0, 1, 2):
        ct, truth = make_phantom(PhantomConfig(shape=(64, 56, 48), spacing=(4.0, 4.0, 4.0), seed=seed, lesions=False))
        label = truth.with_array((np.asarray(truth.array) == 1).astype(np.uint8))
        out[seed] = (str(write_volume(ct, folder / f"ct{seed}.nii.gz")), str(write_volume(label, folder / f"label{seed}.nii.gz")))
    return out


def _error(call) -> tuple[int, str]:
    from monailabel.client.client import MONAILabelClientException

    with pytest.raises(MONAILabelClientException) as info:
        call()
    text = info.value.msg
    return int(text.split(";")[0].removeprefix("Status: ")), text


def _wait_for_steps(client, steps: int, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.train_status()["step"] < steps:
        assert time.monotonic() < deadline, f"training did not reach step {steps} in {timeout_s} s"
        time.sleep(0.2)


def _wait(client, statuses=("DONE", "ERROR", "STOPPED"), timeout_s=300.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.train_status()
        if status["status"] in statuses:
            return status
        time.sleep(0.5)
    raise AssertionError(f"training did not finish in {timeout_s} s: {status}")


@pytest.mark.slow
def test_label_train_status_infer_with_the_official_client(client, server, files):
    for seed in (0, 1, 2):
        client.upload_image(files[seed][0], f"case{seed}")
    assert _error(lambda: client.train_start(MODEL, {"steps": 2}))[0] == 400  # no labels saved yet
    assert client.next_sample("first", {})["id"] == "case0"
    # Label two images as 3D Slicer saves them: the segment names in label_info.
    for seed in (0, 1):
        client.save_label(f"case{seed}", files[seed][1], tag="final", params={"label_info": [{"name": NEW, "idx": 1}]})
    assert client.next_sample("first", {})["id"] == "case2"  # the only unlabelled image left
    assert client.next_sample("random", {"seed": 3})["id"] == "case2"
    # The family's confidence score (its registry entry's ``confidence``) ranks the unlabelled images.
    scored = client.next_sample("confidence", {"max_images": 1})
    assert scored["id"] == "case2" and scored["scored"] == 1 and 0.5 <= scored["confidence"] <= 1.0, scored
    status, text = _error(lambda: client.train_start(MODEL, {"labels": ["kidney stone"]}))
    assert status == 400 and "unknown label name 'kidney stone'" in text
    assert _error(lambda: client.next_sample("nope", {}))[0] == 404

    # Inference keeps answering while training runs; every request succeeds.
    task = client.train_start(MODEL, {"steps": 24, "learning_rate": 2e-3, "name": "organ"})
    assert task["status"] in ("SUBMITTED", "RUNNING") and task["new_classes"] == [NEW]
    assert client.train_status(check_if_running=True) is True
    assert _error(lambda: client.train_start(MODEL, {"steps": 1}))[0] == 503  # one run at a time
    result, params = client.infer(f"{MODEL}-segmentation", "case2", {"label_prompt": [3]})
    assert params["label_names"] == {"spleen": 1}
    done = _wait(client)
    assert done["status"] == "DONE", done["details"]
    assert done["step"] == 24 and any("Epoch: 24/24" in line for line in done["details"])
    assert client.train_status(check_if_running=True) is False
    info = client.info()
    assert NEW in info["labels"] and info["models"][MODEL]["labels"][NEW] == 133
    assert info["train_stats"][MODEL]["epoch"] == 24 and MODEL in info["trainers"]
    # The new class by name, on an image training never saw.
    result, params = client.infer(f"{MODEL}-segmentation", "case2", {"labels": [NEW]})
    assert params["label_names"] == {NEW: 1}
    pred = sitk.GetArrayFromImage(sitk.ReadImage(result)) == 1
    truth = sitk.GetArrayFromImage(sitk.ReadImage(files[2][1])) == 1
    assert 2 * (pred & truth).sum() / (pred.sum() + truth.sum()) > 0.5
    # Versions: 1 serves; 0 (as loaded) can be restored, and 1 again.
    import requests

    versions = requests.get(f"{server.url}/model/{MODEL}/versions", timeout=30).json()
    assert versions["active"] == 1 and versions["versions"]["1"]["learnt"] == {"133": NEW}
    assert requests.put(f"{server.url}/model/{MODEL}/versions?version=0", timeout=60).status_code == 200
    assert NEW not in client.info()["labels"]
    assert requests.put(f"{server.url}/model/{MODEL}/versions?version=7", timeout=60).status_code == 404
    assert requests.put(f"{server.url}/model/{MODEL}/versions?version=1", timeout=60).status_code == 200
    assert NEW in client.info()["labels"]


@pytest.mark.slow
def test_train_stop_and_requests_never_wait_longer_than_a_step(client, server, files):
    for seed in (0, 1):
        client.upload_image(files[seed][0], f"case{seed}")
        client.save_label(f"case{seed}", files[seed][1], tag="final", params={"label_names": {NEW: 1}})
    gate = server.service.gate
    client.train_start(MODEL, {"steps": 400, "scope": "auto"})
    _wait_for_steps(client, 2)  # training holds the compute between requests from now on
    waits = []
    for _ in range(3):
        _, params = client.infer(f"{MODEL}-segmentation", "case0", {"label_prompt": [3], "result_extension": ".nii.gz"})
        waits.append(params["latencies"]["wait"])
    status = client.train_status()
    assert status["status"] == "RUNNING" and status["step"] >= 3  # steps went on between the requests
    stopped = client.train_stop()
    assert stopped["status"] == "STOPPED" and stopped["step"] < 400
    assert _error(lambda: client.train_stop())[0] == 404  # nothing runs
    assert gate.stats.refused == 0
    # A request waits at most for the training step that holds the compute (plus scheduling slack).
    assert max(waits) <= stopped["max_step_s"] + 1.0, (waits, stopped["max_step_s"])
