"""The nnInteractive remote protocol driven by the official client (``nninteractive-client==2.6.0``,
``nnInteractiveRemoteInferenceSession``), on a real server on loopback with the demo VISTA3D and a
tiny random SegVol: every target buffer the client ends with equals an in-process session's labels
for the same prompts (the family's ``open_session`` with its viewer options, as the server opens it)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import torch
from nnInteractive.inference import remote  # the official client: nninteractive-client==2.6.0 (test extra)

from shared_paths import shared_file
from voxelprompt.api import read_ct
from voxelprompt.server.app import ServerOptions, create_app
from voxelprompt.server.launch import ServerThread, ServeSettings, build_service
from voxelprompt.server.nninteractive import LeaseLimits
from voxelprompt.types import Box, Points, Prompts

Session = remote.nnInteractiveRemoteInferenceSession
TOKEN = "nninteractive-test-token"


@pytest.fixture(scope="module")
def ct():
    return read_ct(shared_file("data", "totalseg", "example_ct_sm.nii.gz"))  # 122 x 101 x 30, 3 mm


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Demo VISTA3D and a tiny SegVol, a token, and one lease at a time."""
    from voxelprompt.families.segvol.network.builder import tiny_segvol

    folder = tmp_path_factory.mktemp("nninteractive")
    checkpoint = folder / "tiny.pt"
    torch.save(tiny_segvol(seed=0).state_dict(), checkpoint)
    settings = ServeSettings(device="cpu", checkpoints=(checkpoint,), demo_model=True, token=TOKEN, max_leases=1)
    service = build_service(settings, folder / "store")
    options = ServerOptions(token=TOKEN, viewer=False, extra={"nninteractive": LeaseLimits(max_leases=1)})
    app = create_app(service, options)
    thread = ServerThread(app).start()
    yield thread.url, service, app.app.state.leases
    thread.stop()


def model(service, family):
    return next(m for m in service.models if m.family.name == family)


def url(server, family):
    base, service, _ = server
    return f"{base}/nninteractive/{model(service, family).name}"


def in_process(service, family, volume):
    m = model(service, family)
    return m.segmenter.open_session(volume, **m.family.viewer_session)


def connect(server, family, ct):
    """A client on ``family``'s model with the CT and a uint8 target buffer (affine sent as extension)."""
    session = Session(url(server, family), api_key=TOKEN)
    session.set_image(ct.array[None].astype(np.float32), {"spacing": list(ct.spacing), "affine": ct.affine.tolist()})
    buffer = np.zeros(ct.shape, dtype=np.uint8)
    session.set_target_buffer(buffer)
    return session, buffer


def binary(result) -> np.ndarray:
    return (np.asarray(result.labels.array) != 0).astype(np.uint8)


def post_json(session, path, body) -> httpx.Response:
    """A raw request on the client's connection (token and lease headers), applying the reply."""
    response = session._http.post(path, json=body)
    response.raise_for_status()
    session._apply_prediction_response(response)
    return response


def test_vista3d_clicks_class_edit_undo_reset_release(server, ct):
    _, service, leases = server
    session, buffer = connect(server, "vista3d", ct)
    try:
        assert session.supported_interactions["points"] and session.supports_initial_label and session.supports_undo
        assert not session.supported_interactions["bbox3d"] and not session.supported_interactions["lasso"]
        assert session.original_image_shape == (1, *ct.shape)
        local = in_process(service, "vista3d", ct)

        session.add_point_interaction([61, 50, 15], include_interaction=True)  # a point-only object
        expected = binary(local.segment(Prompts(points=Points.from_lists([(61, 50, 15)]))))
        assert np.array_equal(buffer, expected)

        # voxelprompt extension: the liver class, then positive and negative clicks edit it (Algorithm 1)
        session.reset_interactions()
        post_json(session, "/voxelprompt_prompt", {"classes": ["liver"]})
        liver = binary(local.segment(Prompts(classes=(1,))))
        assert liver.sum() > 0 and np.array_equal(buffer, liver)
        session.add_point_interaction([40, 60, 15], include_interaction=True)
        session.add_point_interaction([70, 60, 10], include_interaction=False)
        edited = binary(local.segment(Prompts(classes=(1,), points=Points.from_lists([(40, 60, 15)], [(70, 60, 10)]))))
        assert np.array_equal(buffer, edited)

        assert session.undo() and session.undo()  # the two clicks
        assert np.array_equal(buffer, liver)
        assert session.undo() and not buffer.any()  # the class prompt
        assert not session.undo()  # nothing left

        # queued without predictions, then /predict runs them all
        response = post_json(session, "/voxelprompt_prompt", {"classes": ["liver"], "run_prediction": False})
        assert json.loads(response.headers["X-Meta"]) == {"ran_prediction": False, "bbox": None}
        session.add_point_interaction([40, 60, 15], include_interaction=True, run_prediction=False)
        assert not buffer.any()
        assert session._predict() is not None
        assert np.array_equal(buffer, binary(local.segment(Prompts(classes=(1,), points=Points.from_lists([(40, 60, 15)])))))
        assert session._predict() is None  # nothing new to predict
        session.reset_interactions()
        assert not buffer.any()
    finally:
        session.close()
    assert len(leases) == 0


def test_vista3d_initial_segmentation_then_click_is_algorithm_1(server, ct):
    _, service, _ = server
    session, buffer = connect(server, "vista3d", ct)
    try:
        initial = np.zeros(ct.shape, dtype=np.uint8)
        initial[30:90, 30:80, 8:22] = 1
        initial[ct.array < -500] = 0
        session.add_initial_seg_interaction(initial)
        assert np.array_equal(buffer, initial)
        session.add_point_interaction([61, 50, 15], include_interaction=True)
        session.add_point_interaction([45, 40, 12], include_interaction=False)
        local = in_process(service, "vista3d", ct)
        clicks = Points.from_lists([(61, 50, 15)], [(45, 40, 12)])
        expected = binary(local.segment(Prompts(points=clicks, previous_mask=initial.astype(bool))))
        assert np.array_equal(buffer, expected)
        assert not np.array_equal(expected, initial)  # the clicks changed the mask near them ...
        far = np.zeros(ct.shape, dtype=bool)
        far[:, :, :2] = True
        assert np.array_equal(expected[far], initial[far])  # ... and kept it elsewhere
        session.undo()
        session.undo()
        assert np.array_equal(buffer, initial)  # undo restores the previous mask exactly
        session.undo()
        assert not buffer.any()
    finally:
        session.close()


def test_segvol_boxes_lasso_scribble_and_points(server, ct):
    _, service, _ = server
    session, buffer = connect(server, "segvol", ct)
    local = in_process(service, "segvol", ct)
    try:
        caps = session.supported_interactions
        assert caps["bbox2d"] and caps["bbox3d"] and caps["lasso"] and not session.supports_initial_label
        session.add_bbox_interaction([[30, 90], [30, 80], [15, 16]], include_interaction=True)  # 2D: one slice
        flat = binary(local.segment(Prompts(box=Box((30, 30, 15), (89, 79, 15)))))
        assert np.array_equal(buffer, flat)
        session.add_point_interaction([61, 50, 15], include_interaction=True)
        session.add_point_interaction([35, 35, 15], include_interaction=False)
        clicks = Points.from_lists([(61, 50, 15)], [(35, 35, 15)])
        assert np.array_equal(buffer, binary(local.segment(Prompts(box=Box((30, 30, 15), (89, 79, 15)), points=clicks))))

        session.reset_interactions()
        session.add_bbox_interaction([[30, 90], [30, 80], [5, 25]], include_interaction=True)  # 3D
        box3d = binary(local.segment(Prompts(box=Box((30, 30, 5), (89, 79, 24)))))
        assert np.array_equal(buffer, box3d)

        session.reset_interactions()
        lasso = np.zeros(ct.shape, dtype=np.uint8)
        lasso[30:90, 30:80, 5:25] = 1  # its bounding box is the 3D box above
        lasso[30:40, 30:40, 5:25] = 0
        session.add_lasso_interaction(lasso, include_interaction=True)
        assert np.array_equal(buffer, box3d)

        session.reset_interactions()
        scribble = np.zeros(ct.shape, dtype=np.uint8)
        scribble[40:60, 50, 15] = 1  # 20 voxels: clicks at 40, 45, 50, 54, 59 (evenly spread)
        session.add_scribble_interaction(scribble, include_interaction=True)
        sampled = Points.from_lists([(i, 50, 15) for i in (40, 45, 50, 54, 59)])
        assert np.array_equal(buffer, binary(local.segment(Prompts(points=sampled))))
    finally:
        session.close()


def test_unsupported_interactions_are_refused_not_ignored(server, ct):
    session, buffer = connect(server, "vista3d", ct)
    try:
        for call in (
            lambda: session.add_bbox_interaction([[30, 90], [30, 80], [15, 16]], include_interaction=True),
            lambda: session.add_lasso_interaction(np.ones(ct.shape, np.uint8), include_interaction=True),
        ):
            with pytest.raises(httpx.HTTPStatusError) as info:
                call()
            assert info.value.response.status_code == 400
            assert "not supported by vista3d" in info.value.response.json()["detail"]
        assert not buffer.any()
    finally:
        session.close()
    segvol = Session(url(server, "segvol"), api_key=TOKEN)
    try:
        segvol.set_image(ct.array[None].astype(np.float32), {"spacing": list(ct.spacing)})
        with pytest.raises(httpx.HTTPStatusError) as info:
            segvol.add_initial_seg_interaction(np.ones(ct.shape, np.uint8))
        assert info.value.response.status_code == 400
    finally:
        segvol.close()


def test_lease_cap_expiry_token_and_malformed_body(server, ct):
    base, _, leases = server
    first = Session(url(server, "vista3d"), api_key=TOKEN)
    try:
        with pytest.raises(remote.ServerAtCapacityError):
            Session(url(server, "vista3d"), api_key=TOKEN)
        raw = httpx.post(f"{base}/nninteractive/claim", headers={"Authorization": f"Bearer {TOKEN}"})
        assert raw.status_code == 503 and int(raw.headers["Retry-After"]) > 0
    finally:
        first.close()
    second = Session(url(server, "vista3d"), api_key=TOKEN)  # the slot is free again
    try:
        # a malformed array body: 400, and the lease and server keep working
        bad = second._http.post("/set_image", content=b"NNIA\x01\x01garbage", headers={"X-Meta": "{}"})
        assert bad.status_code == 400 and "malformed packed array" in bad.json()["detail"]
        bad_meta = second._http.post("/set_image", content=b"", headers={"X-Meta": "{not json"})
        assert bad_meta.status_code == 400
        second.set_image(ct.array[None].astype(np.float32), {"spacing": list(ct.spacing)})
        assert second.lease_status()["remaining_seconds"] > 0 and second.heartbeat() > 0
        other = httpx.post(f"{url(server, 'segvol')}/reset_interactions", headers=second._http.headers)
        assert other.status_code == 409 and "belongs to model" in other.json()["detail"]  # a lease is one model's
        # expiry: the lease idles past the timeout (its clock moved back) and the client sees 410
        lease = next(iter(leases._leases.values()))
        lease.last_active -= leases.idle_s + 1
        with pytest.raises(remote.SessionExpiredError):
            second.add_point_interaction([61, 50, 15], include_interaction=True)
        assert len(leases) == 0
    finally:
        second.close()
    with pytest.raises(httpx.HTTPStatusError) as info:
        Session(url(server, "vista3d"), api_key="wrong-token-123")
    assert info.value.response.status_code == 401
    assert httpx.get(f"{base}/healthz").json()["status"] == "ok"


def test_liveness_timeout_reaps_a_silent_client(server):
    base, _, leases = server
    session = Session(url(server, "vista3d"), api_key=TOKEN)
    try:
        assert session.liveness_timeout_seconds == leases.liveness_s
        lease = next(iter(leases._leases.values()))
        lease.last_seen -= leases.liveness_s + 1  # no request at all for longer than the liveness timeout
        with pytest.raises(remote.SessionExpiredError):
            session.lease_status()
    finally:
        session.close()


def test_reply_carries_only_the_changed_box(server, ct):
    session, buffer = connect(server, "vista3d", ct)
    try:
        response = post_json(session, "/voxelprompt_prompt", {"classes": ["liver"]})
        meta = json.loads(response.headers["X-Meta"])
        changed = np.argwhere(buffer)
        assert meta["bbox"] == [[int(lo), int(hi) + 1] for lo, hi in zip(changed.min(0), changed.max(0))]
        assert meta["shape"] == [hi - lo for lo, hi in meta["bbox"]]
    finally:
        session.close()


def test_slicer_array_order_reaches_the_model_in_its_orientation(server, ct):
    """3D Slicer sends ``arrayFromVolume`` (k, j, i) of a volume with LPS-identity IJK axes and the
    reversed spacing, and no affine. With the default orientation (SPL) the class the model paints
    is the library's result on the file, mapped through the same axes: left/right kept."""
    _, service, _ = server
    lps = np.flip(np.asarray(ct.array), axis=(0, 1))  # the CT stored L, P, S (a DICOM series' order)
    slicer_array = np.ascontiguousarray(lps.transpose(2, 1, 0))  # arrayFromVolume: (k, j, i)

    def classes(properties):
        session = Session(url(server, "vista3d"), api_key=TOKEN)
        try:
            session.set_image(slicer_array[None].astype(np.float32), {"spacing": list(ct.spacing)[::-1], **properties})
            buffer = np.zeros(slicer_array.shape, dtype=np.uint8)
            session.set_target_buffer(buffer)
            post_json(session, "/voxelprompt_prompt", {"classes": ["left kidney", "liver"]})  # several classes: ids
            return buffer
        finally:
            session.close()

    buffer = classes({})
    m = model(service, "vista3d")
    library = np.asarray(m.segmenter.segment(ct, Prompts(classes=(14, 1))).labels.array)  # VISTA3D ids: 14 left kidney
    expected = np.flip(library, axis=(0, 1)).transpose(2, 1, 0)
    assert set(np.unique(expected)) == {0, 1, 14}
    assert np.array_equal(buffer, expected)
    mirrored = classes({"orientation": "SPR"})  # the same array declared mirrored left/right
    assert not np.array_equal(mirrored, expected)
