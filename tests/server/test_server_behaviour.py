"""What users of a shared server rely on: a token on every route, 503 with Retry-After when busy,
bounded sessions, /healthz, and SegVol's prompts through the MONAI Label fields."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import requests
import SimpleITK as sitk

from served import start_server
from voxelprompt.data.phantom import PhantomConfig, make_phantom
from voxelprompt.imageio import write_volume
from voxelprompt.server.launch import ServeSettings

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def phantom_file(tmp_path_factory):
    ct, _ = make_phantom(PhantomConfig(shape=(80, 64, 48), spacing=(3, 3, 3), seed=3))
    return str(write_volume(ct, tmp_path_factory.mktemp("ct") / "ct.nii.gz"))


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("store"), ServeSettings(device="cpu", token=TOKEN))
    yield server
    server.thread.stop()


def test_token_guards_every_route_and_the_official_login_works(token_server, phantom_file, tmp_path):
    from monailabel.client import MONAILabelClient
    from monailabel.client.client import MONAILabelClientException

    url = token_server.url
    for method, path in (("GET", "/info/"), ("GET", "/datastore/?output=all"), ("POST", "/infer/vista3d-demo?image=x"),
                         ("PUT", "/session/"), ("GET", "/docs"), ("GET", "/no/such/route")):  # fmt: skip
        reply = requests.request(method, url + path, timeout=10)
        assert reply.status_code == 401 and "bearer token" in reply.json()["detail"], path
        assert requests.request(method, url + path, headers={"Authorization": "Bearer wrong-token"}, timeout=10).status_code == 401
    assert requests.get(url + "/healthz", timeout=10).status_code == 200
    client = MONAILabelClient(url, tmpdir=str(tmp_path))
    assert client.auth_enabled()  # the Slicer module then asks for a user name and password
    with pytest.raises(MONAILabelClientException):
        client.auth_token("annotator", "not-the-token")
    client.update_auth(client.auth_token("annotator", TOKEN))
    assert client.auth_valid_token()
    assert "vista3d-demo" in client.info()["models"]
    assert client.upload_image(phantom_file, "ct")["image"] == "ct"


def test_a_busy_server_answers_503_with_retry_after(demo_server, phantom_file):
    gate = demo_server.service.gate
    requests.put(f"{demo_server.url}/datastore/?image=busy", files={"file": ("ct.nii.gz", open(phantom_file, "rb"))}, timeout=60)
    saved = gate.max_waiting
    gate.max_waiting = 0
    try:
        with gate.turn():  # someone else's long inference
            reply = requests.post(
                f"{demo_server.url}/infer/vista3d-demo?image=busy", files={"params": (None, json.dumps({"label_prompt": [1]}))}, timeout=30
            )
            assert reply.status_code == 503 and int(reply.headers["Retry-After"]) > 0 and "busy" in reply.json()["detail"]
            assert requests.get(f"{demo_server.url}/info/", timeout=10).status_code == 200  # no model work: served
    finally:
        gate.max_waiting = saved
    assert demo_server.service.gate.stats.refused >= 1


def test_waiting_requests_queue_and_all_finish(demo_server, phantom_file):
    requests.put(f"{demo_server.url}/datastore/?image=queue", files={"file": ("ct.nii.gz", open(phantom_file, "rb"))}, timeout=60)
    replies: list[int] = []

    def click(k: int) -> None:
        params = {"foreground": [[60, 38, 20 + k]], "label": "liver"}
        reply = requests.post(f"{demo_server.url}/infer/vista3d-demo-interactive?image=queue&output=json",
                              files={"params": (None, json.dumps(params))}, timeout=300)  # fmt: skip
        replies.append(reply.status_code)

    threads = [threading.Thread(target=click, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert replies == [200] * 4


def test_healthz_reports_load(demo_server):
    health = requests.get(f"{demo_server.url}/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["models"] == ["vista3d-demo"]
    assert health["rss_mb"] > 0 and set(health["compute"]) == {"running", "waiting", "served", "refused_busy"}


def test_segvol_box_and_text_through_the_monailabel_fields(tmp_path_factory, phantom_file, tmp_path):
    """A (tiny, random) SegVol checkpoint: Slicer's roi becomes its box, a class name its text."""
    import torch

    from monailabel.client import MONAILabelClient
    from voxelprompt.families.segvol.network.builder import tiny_segvol

    checkpoint = tmp_path_factory.mktemp("segvol") / "segvol_tiny.pth"
    torch.save(tiny_segvol(seed=0).state_dict(), checkpoint)
    server = start_server(tmp_path_factory.mktemp("store"), ServeSettings(device="cpu", checkpoints=(checkpoint,)))
    try:
        client = MONAILabelClient(server.url, tmpdir=str(tmp_path))
        models = client.info()["models"]
        assert {n: m["type"] for n, m in models.items()} == {
            "segvol-segvol_tiny-segmentation": "segmentation", "segvol-segvol_tiny-interactive": "deepgrow"
        }  # fmt: skip
        client.upload_image(phantom_file, "ct")
        roi = [70, 40, 20, 45, 10, 30]  # Slicer's [i0, i1, j0, j1, k0, k1], ends in any order
        result, params = client.infer("segvol-segvol_tiny-interactive", "ct", {"label": "liver", "roi": roi, "foreground": [], "background": []})
        assert params["roi_used"] == "box" and params["label_names"] == {"liver": 1}
        labels = sitk.GetArrayFromImage(sitk.ReadImage(result))
        assert labels.shape == (48, 64, 80) and set(np.unique(labels).tolist()) <= {0, 1}
        result, params = client.infer("segvol-segvol_tiny-segmentation", "ct", {"labels": ["liver", "spleen"]})
        assert params["label_names"] == {"liver": 1, "spleen": 2}
        assert set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(result))).tolist()) <= {0, 1, 2}
    finally:
        server.thread.stop()
