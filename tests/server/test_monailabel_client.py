"""The MONAI Label API driven by the official ``monailabel`` client, as 3D Slicer and OHIF call it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from voxelprompt.data.phantom import PhantomConfig, make_phantom
from voxelprompt.imageio import write_volume

LIVER = 1
SLICER_PARAMS = {"result_extension": ".nrrd", "result_dtype": "uint8"}  # what Slicer always adds


def _error(call) -> tuple[int, str]:
    from monailabel.client.client import MONAILabelClientException

    with pytest.raises(MONAILabelClientException) as info:
        call()
    text = info.value.msg
    status = int(text.split(";")[0].removeprefix("Status: "))
    detail = json.loads(text.split("Response: ", 1)[1].strip("b'\""))["detail"] if "{" in text else text
    return status, detail


def _ras_centroid(path: str, value: int = 1) -> np.ndarray:
    """Centroid of ``value`` in RAS+ mm, read with SimpleITK (what 3D Slicer uses)."""
    image = sitk.ReadImage(path)
    kji = np.argwhere(sitk.GetArrayFromImage(image) == value)
    assert len(kji), f"no voxel of value {value} in {path}"
    lps = np.array([image.TransformContinuousIndexToPhysicalPoint(p[::-1].astype(float).tolist()) for p in kji]).mean(0)
    return lps * np.array([-1, -1, 1])


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    """One phantom CT stored as RAS NIfTI and as LPS NRRD (the same anatomy), and its liver centroid."""
    folder = tmp_path_factory.mktemp("phantoms")
    files = {}
    for orientation, name in (("RAS", "ras.nii.gz"), ("LPS", "lps.nrrd")):
        ct, truth = make_phantom(PhantomConfig(shape=(80, 64, 48), spacing=(3, 3, 3), seed=3, orientation=orientation))
        files[orientation] = str(write_volume(ct, folder / name))
    liver = np.argwhere(truth.array == LIVER)
    return files, truth.voxel_to_world(liver.mean(0))[0]


def test_info_is_what_slicer_and_ohif_read(client, demo_server):
    info = client.info()
    assert not info.get("config"), "3D Slicer refuses a server whose /info/ has a non-empty config"
    for key in ("name", "description", "version", "labels", "models", "trainers", "strategies", "scoring", "train_stats", "datastore"):
        assert key in info
    kinds = {m["type"] for m in info["models"].values()}
    assert kinds == {"vista3d", "segmentation", "deepgrow"}
    for model in info["models"].values():
        assert model["description"] and model["dimension"] == 3 and isinstance(model["config"], dict)
        assert all(isinstance(v, int) for v in model["labels"].values())
    dense = next(m for m in info["models"].values() if m["type"] == "segmentation")["labels"]
    assert sorted(dense.values()) == list(range(1, len(dense) + 1))  # Slicer maps value k to the k-th name
    assert not client.auth_enabled()  # /auth/ 404 when no token
    assert client.train_status(check_if_running=True) is False  # Slicer polls /train/?check_if_running=true


def test_automatic_result_lands_on_the_grid_for_ras_and_lps_inputs(client, phantoms):
    files, truth_centroid = phantoms
    centroids = {}
    for orientation, path in files.items():
        image_id = f"phantom-{orientation}"
        assert client.upload_image(path, image_id)["image"] == image_id
        result, params = client.infer("vista3d-demo-segmentation", image_id, {**SLICER_PARAMS, "label_prompt": [LIVER, 3]})
        assert result.endswith(".nrrd")
        out, ref = sitk.ReadImage(result), sitk.ReadImage(path)
        assert out.GetSize() == ref.GetSize()
        assert np.allclose(out.GetOrigin(), ref.GetOrigin(), atol=1e-3)
        assert np.allclose(out.GetSpacing(), ref.GetSpacing()) and np.allclose(out.GetDirection(), ref.GetDirection())
        assert out.GetPixelID() == sitk.sitkUInt8
        names = params["label_names"]
        assert names == {"liver": 1, "spleen": 2}  # dense, in prompt order
        values = set(np.unique(sitk.GetArrayFromImage(out)).tolist())
        assert values <= {0, 1, 2} and 1 in values
        centroids[orientation] = _ras_centroid(result, names["liver"])
    assert np.allclose(centroids["RAS"], centroids["LPS"], atol=0.5), centroids
    assert np.linalg.norm(centroids["RAS"] - truth_centroid) < 15.0  # the liver, not its mirror image


def test_deepgrow_sequence_as_slicer_sends_it(client, phantoms, demo_server):
    files, _ = phantoms
    client.upload_image(files["RAS"], "dg")
    base = {**SLICER_PARAMS, "label": "liver"}
    clicks = [[60, 38, 24], [58, 36, 22], [62, 40, 25]]
    reused = []
    for n in range(1, len(clicks) + 1):
        params = {**base, "foreground": clicks[:n], "background": [], **({"reset_state": True} if n == 1 else {})}
        result, reply = client.infer("vista3d-demo-interactive", "dg", params)
        labels = sitk.GetArrayFromImage(sitk.ReadImage(result))
        assert set(np.unique(labels).tolist()) <= {0, 1} and labels.sum() > 0  # binary, value 1
        assert reply["label_names"] == {"liver": 1}
        reused.append(reply["session_reused"])
    assert reused[1:] == [True, True]  # later clicks reuse the image's session
    # A roi: VISTA3D has no box prompt, so the reply keeps only the voxels inside it.
    roi = [50, 70, 30, 45, 18, 30]  # i0, i1, j0, j1, k0, k1 as Slicer sends it
    result, reply = client.infer("vista3d-demo-interactive", "dg", {**base, "foreground": clicks[:1], "background": [[20, 20, 20]], "roi": roi})
    assert reply["roi_used"] == "crop"
    kji = np.argwhere(sitk.GetArrayFromImage(sitk.ReadImage(result)) > 0)
    assert len(kji) and kji[:, 2].min() >= 50 and kji[:, 2].max() <= 70 and kji[:, 1].max() <= 45 and kji[:, 0].min() >= 18


def test_ohif_vista3d_fields_and_outputs(client, phantoms, demo_server):
    files, _ = phantoms
    client.upload_image(files["RAS"], "ohif")
    result, params = client.infer("vista3d-demo", "ohif", {**SLICER_PARAMS, "label_prompt": [LIVER], "points": [[60, 38, 24]], "point_labels": [1]})
    values = set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(result))).tolist())
    assert values <= {0, LIVER} and params["label_names"] == {"liver": LIVER}  # VISTA3D ids, not dense
    import requests

    reply = requests.post(f"{demo_server.url}/infer/vista3d-demo?image=ohif&output=json", files={"params": (None, json.dumps({"label_prompt": [3]}))}, timeout=60)
    assert reply.status_code == 200 and reply.json()["label_names"] == {"spleen": 3}
    reply = requests.post(f"{demo_server.url}/infer/vista3d-demo?image=ohif&output=image", files={"params": (None, json.dumps({"label_prompt": [3], "result_extension": ".nii.gz"}))}, timeout=60)
    assert reply.status_code == 200 and reply.content[:2] == b"\x1f\x8b"  # gzip: a .nii.gz file alone


def test_sessions_datastore_and_labels(client, phantoms, tmp_path):
    files, _ = phantoms
    session = client.create_session(files["LPS"])
    assert client.get_session(session["session_id"])["session_id"] == session["session_id"]
    result, params = client.infer("vista3d-demo-segmentation", "", {**SLICER_PARAMS, "label_prompt": [LIVER]}, session_id=session["session_id"])
    assert params["label_names"] == {"liver": 1}
    client.remove_session(session["session_id"])
    assert _error(lambda: client.get_session(session["session_id"]))[0] == 404
    client.upload_image(files["RAS"], "labelled")
    client.save_label("labelled", _label_for(files["RAS"], tmp_path), tag="final")
    store = client.datastore()
    assert "labelled" in store["objects"] and "final" in store["objects"]["labelled"]["labels"]
    downloaded = client.download_label("labelled", "final")
    assert sitk.GetArrayFromImage(sitk.ReadImage(downloaded)).sum() > 0


def _label_for(image_path: str, folder) -> str:
    from voxelprompt.imageio import read_volume

    ct = read_volume(image_path)
    labels = (ct.array > 100).astype(np.uint8)
    return str(write_volume(ct.with_array(labels), folder / "label.nii.gz"))


@pytest.mark.parametrize(
    ("model", "image", "params", "status", "words"),
    [
        ("nope", "ras", {}, 404, "unknown model 'nope'"),
        ("vista3d-demo", "../../etc/passwd", {}, 404, "unknown image"),
        ("vista3d-demo-interactive", "ras", {"foreground": [[500, 1, 1]]}, 400, "outside the volume"),
        ("vista3d-demo-interactive", "ras", {"foreground": "here"}, 400, "foreground must be a list"),
        ("vista3d-demo-interactive", "ras", {"background": [[5, 5, 5]]}, 400, "negative"),
        ("vista3d-demo-segmentation", "ras", {"labels": ["livr"]}, 400, "unknown class name 'livr'"),
        ("vista3d-demo", "ras", {"points": [[5, 5, 5]], "point_labels": [1, 0]}, 400, "point_labels"),
        ("vista3d-demo-segmentation", "ras", {"label_prompt": [1], "result_extension": ".png"}, 400, "result_extension"),
        ("vista3d-demo-interactive", "ras", {"foreground": [[5, 5, 5]], "roi": [1, 2, 3]}, 400, "roi must be"),
    ],
)
def test_bad_requests_get_one_line_4xx_and_the_server_keeps_serving(client, phantoms, model, image, params, status, words):
    files, _ = phantoms
    client.upload_image(files["RAS"], "ras")
    got, detail = _error(lambda: client.infer(model, image, params))
    assert got == status and words in detail and "\n" not in detail
    assert client.info()["name"] == "voxelprompt"


def test_a_json_body_is_refused_not_ignored(demo_server, phantoms):
    import requests

    files, _ = phantoms
    requests.put(f"{demo_server.url}/datastore/?image=json", files={"file": ("ct.nii.gz", open(files["RAS"], "rb"))}, timeout=60)
    reply = requests.post(f"{demo_server.url}/infer/vista3d-demo-segmentation?image=json", json={"label_prompt": [1]}, timeout=60)
    assert reply.status_code == 400 and "multipart form field 'params'" in reply.json()["detail"]


def test_corrupt_and_oversized_uploads(client, demo_server, tmp_path):
    import requests

    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    status, detail = _error(lambda: client.upload_image(str(bad), "broken"))
    assert status == 400 and "broken" not in client.datastore()["images"]
    leftovers = [p for p in (demo_server.service.store.root / "images").iterdir() if p.name.startswith(".upload-")]
    assert leftovers == []
    other = tmp_path / "scan.png"
    other.write_bytes(b"png")
    assert _error(lambda: client.upload_image(str(other), "png"))[0] == 400
    limit = demo_server.thread.server.config.app.max_body_bytes
    reply = requests.put(f"{demo_server.url}/datastore/?image=big", files={"file": ("big.nii.gz", b"0" * (limit + 1))}, timeout=60)
    assert reply.status_code == 413 and "upload limit" in reply.json()["detail"]
    assert requests.get(f"{demo_server.url}/healthz", timeout=10).json()["status"] == "ok"


def test_path_like_ids_are_names_not_paths(client, phantoms, demo_server):
    files, _ = phantoms
    sneaky = "../../outside/evil"
    assert client.upload_image(files["RAS"], sneaky)["image"] == sneaky
    root = demo_server.service.store.root
    assert not (root.parent.parent / "outside").exists()
    stored = demo_server.service.store.image_path(sneaky)
    assert stored.parent == root / "images" and ".." not in stored.name
    assert sneaky in client.datastore()["images"]
