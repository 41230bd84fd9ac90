"""``voxelprompt serve`` driven by the ITK-SNAP client stand-in (``itksnap_client.py``, proven
against the reference server in ``test_itksnap_reference.py``), on a real server on loopback with
the demo VISTA3D and a tiny random SegVol: the mask the client paints equals an in-process
session's for the same clicks (the family's ``open_session`` with its viewer options)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from itksnap_client import ItkSnapClient, ItkSnapError, encode_image, paint
from shared_paths import shared_file
from voxelprompt.api import read_ct
from voxelprompt.server.app import ServerOptions, create_app
from voxelprompt.server.itksnap import ItkSnapSettings
from voxelprompt.server.launch import ServerThread, ServeSettings, build_service
from voxelprompt.server.nninteractive import LeaseLimits
from voxelprompt.types import Box, Points, Prompts, Volume

TOKEN = "itksnap-test-token"


@pytest.fixture(scope="module")
def ct():
    return read_ct(shared_file("data", "totalseg", "example_ct_sm.nii.gz"))  # 122 x 101 x 30, 3 mm


def start(folder, access="loopback", memory_mb=None):
    from voxelprompt.families.segvol.network.builder import tiny_segvol

    checkpoint = folder / "tiny.pt"
    if not checkpoint.exists():
        torch.save(tiny_segvol(seed=0).state_dict(), checkpoint)
    settings = ServeSettings(device="cpu", checkpoints=(checkpoint,), demo_model=True, token=TOKEN, memory_mb=memory_mb)
    service = build_service(settings, folder / f"store-{access}")
    itksnap = ItkSnapSettings(access, LeaseLimits(max_leases=2, idle_s=600, liveness_s=600))
    app = create_app(service, ServerOptions(token=TOKEN, viewer=False, extra={"itksnap": itksnap}))
    return ServerThread(app).start(), service, app.app.state


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Demo VISTA3D (served first) and a tiny SegVol, with a token (ITK-SNAP needs none on loopback)."""
    thread, service, state = start(tmp_path_factory.mktemp("itksnap"))
    yield thread.url, service, state
    thread.stop()
    service.close()


@pytest.fixture()
def connect(server):
    """ITK-SNAP clients on the server; their sessions end after the test, whatever happens."""
    made = []

    def make(**kwargs) -> ItkSnapClient:
        made.append(ItkSnapClient(server[0], **kwargs))
        return made[-1]

    yield make
    for client in made:
        if client.session is not None:
            client.end()


def model(service, family):
    return next(m for m in service.models if m.family.name == family)


def opened(connect, entry: str, volume: Volume) -> ItkSnapClient:
    """ITK-SNAP after choosing ``entry`` and loading ``volume`` (a session, then the upload)."""
    client = connect()
    client.start_session(entry)
    client.upload(volume.array, volume.affine)
    return client


def painted(raw: np.ndarray, shape) -> np.ndarray:
    """The voxels a reply paints into an empty segmentation."""
    return paint(raw, shape, np.zeros(shape, np.uint8), label=1) == 1


def library(service, family, volume, prompts) -> np.ndarray:
    m = model(service, family)
    session = m.segmenter.open_session(volume, **m.family.viewer_session)
    return np.asarray(session.segment(prompts).labels.array) != 0


def test_models_list_what_each_entry_answers(server, connect):
    url, service, _ = server
    client = connect()
    assert client.status()["version"] == "0.1.6"  # the itksnap-dls API implemented (ITK-SNAP needs >= 0.1.2)
    models = client.models()
    vista, segvol = model(service, "vista3d").name, model(service, "segvol").name
    assert list(models)[0] == vista  # 4.4.0's /start_session takes the first
    assert models[vista] == {"id": vista, "channels": [1], "dimensions": 3, "interactions": ["point", "scribble"]}
    assert models[segvol]["interactions"] == ["point", "scribble", "lasso"]  # lasso: its bounding box as SegVol's box
    learnt = model(service, "vista3d").segmenter.learnt.classes
    classes = [m for m in models if m.startswith(vista + ":")]
    assert len(classes) == len(learnt) and f"{vista}:liver" in classes and f"{vista}:left_kidney" in classes
    assert f"{segvol}:left_kidney" in models  # SegVol: catalog names as text prompts
    assert all("box" not in m["interactions"] for m in models.values())  # ITK-SNAP has no box route


def test_legacy_routes_clicks_equal_the_library_session(server, connect, ct):
    url, service, state = server
    client = connect(v2=False)  # ITK-SNAP 4.4.0: no model choice, x= y= z= clicks
    client.start_session()
    pooled = len(service.sessions)
    client.upload(ct.array, ct.affine)
    assert len(service.sessions) == pooled + 1  # the interactive session lives in the shared pool
    labels = paint(client.point((61, 50, 15)), ct.shape, np.zeros(ct.shape, np.uint8), label=2)
    expected = library(service, "vista3d", ct, Prompts(points=Points.from_lists([(61, 50, 15)])))
    # (the demo model, trained on phantoms, finds no object from a click alone on this CT; the
    # class entry's test below and SegVol's check non-empty masks)
    assert np.array_equal(labels == 2, expected)
    labels = paint(client.point((45, 40, 12), foreground=False), ct.shape, labels, label=2)
    clicks = Points.from_lists([(61, 50, 15)], [(45, 40, 12)])
    assert np.array_equal(labels == 2, library(service, "vista3d", ct, Prompts(points=clicks)))
    assert client.reset() == {"status": "success"}
    assert np.array_equal(painted(client.point((61, 50, 15)), ct.shape), expected)  # the negative click is forgotten
    client.end()
    assert len(service.sessions) == pooled and len(state.itksnap_leases) == 0


@pytest.mark.slow  # three uploads, each pre-processed, and three class runs (~45 s on 2 busy cores)
def test_class_entry_and_patient_frame_geometry(server, connect, ct):
    """A click on the ``:liver`` entry is VISTA3D's liver edited by the click (Algorithm 1), and the
    ITK direction places the image: the same CT stored mirrored along i (direction and origin
    saying so) gives the mirrored mask, while a header that hides the mirror gives another one."""
    url, service, _ = server
    vista = model(service, "vista3d").name
    client = opened(connect, f"{vista}:liver", ct)
    got = painted(client.point((40, 60, 15)), ct.shape)
    expected = library(service, "vista3d", ct, Prompts(classes=(1,), points=Points.from_lists([(40, 60, 15)])))
    assert expected.any() and np.array_equal(got, expected)

    flip = np.diag([-1.0, 1, 1, 1])
    flip[0, 3] = ct.shape[0] - 1
    mirrored = Volume(ct.array[::-1].copy(), ct.affine @ flip)  # same patient, i stored backwards
    i = ct.shape[0] - 1 - 40
    client.reset()
    client.upload(mirrored.array, mirrored.affine)
    again = painted(client.point((i, 60, 15)), ct.shape)
    assert np.array_equal(again[::-1], expected)  # the same voxels of the patient

    client.reset()
    client.upload(mirrored.array, ct.affine)  # a header that ignores the mirror: the model sees left as right
    wrong = painted(client.point((i, 60, 15)), ct.shape)
    assert not np.array_equal(wrong[::-1], expected)
    client.end()


def test_segvol_text_entry_scribble_and_lasso(server, connect, ct):
    url, service, _ = server
    segvol = model(service, "segvol").name
    client = opened(connect, f"{segvol}:liver", ct)
    got = painted(client.point((61, 50, 15)), ct.shape)
    expected = library(service, "segvol", ct, Prompts(text="liver", points=Points.from_lists([(61, 50, 15)])))
    assert expected.any() and np.array_equal(got, expected)

    client.start_session(segvol)  # ends the liver session, as ITK-SNAP does on a model change
    client.upload(ct.array, ct.affine)
    scribble = np.zeros(ct.shape, bool)
    scribble[40:60, 50, 15] = True  # 20 voxels: clicks at 40, 45, 50, 54, 59
    got = painted(client.stroke("scribble", scribble, ct.affine), ct.shape)
    sampled = Points.from_lists([(i, 50, 15) for i in (40, 45, 50, 54, 59)])
    assert np.array_equal(got, library(service, "segvol", ct, Prompts(points=sampled)))
    client.reset()
    lasso = np.zeros(ct.shape, bool)
    lasso[30:90, 30:80, 5:25] = True
    got = painted(client.stroke("lasso", lasso, ct.affine), ct.shape)
    assert np.array_equal(got, library(service, "segvol", ct, Prompts(box=Box((30, 30, 5), (89, 79, 24)))))
    with pytest.raises(ItkSnapError, match="HTTP 400.*negative lasso"):
        client.stroke("lasso", lasso, ct.affine, foreground=False)
    client.end()


def test_bad_requests_get_an_error_the_client_reports_and_the_server_keeps_serving(server, connect, ct):
    url, service, _ = server
    vista = model(service, "vista3d").name
    client = connect()
    with pytest.raises(ItkSnapError, match='HTTP 404: {"error":"unknown model'):
        client.start_session("nnInteractive")
    client.start_session(vista)
    with pytest.raises(ItkSnapError, match="HTTP 400.*no image"):
        client.point((1, 2, 3))
    lasso = np.ones((4, 4, 4), bool)
    with pytest.raises(ItkSnapError, match="HTTP 400.*does not take a lasso"):
        client.stroke("lasso", lasso, np.eye(4))
    small = np.zeros((8, 9, 10), np.float32)
    data, metadata = encode_image(small, np.eye(4))
    session = client.session
    cases = {
        "truncated gzip": (data[:-12], metadata),
        "more voxels than declared": (encode_image(np.zeros((8, 9, 11), np.float32), np.eye(4))[0], metadata),
        "not JSON": (data, "{"),
        "two components": (data, metadata.replace('"components_per_pixel" : 1', '"components_per_pixel" : 2')),
        "singular direction": (data, encode_image(small, np.array([[1.0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))[1]),
    }
    for name, (body, meta) in cases.items():
        reply = client.post_multipart(f"upload_raw/{session}?filename=upload.nii.gz", body, meta)
        assert reply.status == 400 and "error" in reply.json(), name
    bomb_meta = metadata.replace("\n\t\t8,", "\n\t\t80000000,")  # 29 GB declared: over --max-image-mb
    reply = client.post_multipart(f"upload_raw/{session}?filename=upload.nii.gz", data, bomb_meta)
    assert reply.status == 413 and "28.8 GB" in reply.json()["error"]  # refused from the metadata, nothing inflated
    assert service.sessions.budget.charged(("lease", session)) == 0  # refused uploads keep no memory
    client.upload(ct.array, ct.affine)
    with pytest.raises(ItkSnapError, match="HTTP 400.*outside"):
        client.point((500, 2, 3))
    reply = client.get(f"v2/process_point_interaction/{session}?point=1&point=2&foreground=true")
    assert reply.status == 400 and "three point coordinates" in reply.json()["error"]
    assert client.get("v2/process_point_interaction/no-such-session?point=1&point=2&point=3").status == 404
    raw = client.point((61, 50, 15))  # still serving, the same session
    assert raw.size == int(np.prod(ct.shape))
    client.end()


def test_no_authentication_loopback_only_unless_asked(server, connect, tmp_path):
    url, _, _ = server
    client = connect()
    assert client.status()["status"] == "ok"  # loopback: no token needed
    assert client.get("info/").status == 401  # the other routes still need it
    # The same request through a reverse proxy on this machine (uvicorn trusts 127.0.0.1's
    # X-Forwarded-For): the client is another host, and these routes are refused to it.
    client.extra_headers = [("X-Forwarded-For", "203.0.113.7")]
    reply = client.get("status")
    assert reply.status == 403 and "SSH tunnel" in reply.json()["error"]
    assert client.get("v2/start_session/x").status == 403
    assert client.get("info/").status == 401

    thread, service, _ = start(tmp_path, access="any")  # asked explicitly: --itksnap any
    try:
        remote = ItkSnapClient(thread.url)
        remote.extra_headers = [("X-Forwarded-For", "203.0.113.7")]
        assert remote.status()["status"] == "ok"
    finally:
        thread.stop()
        service.close()
    thread, service, _ = start(tmp_path, access="off")
    try:
        assert ItkSnapClient(thread.url).get("status").status == 401  # not served: the token's 401
    finally:
        thread.stop()
        service.close()


def test_sessions_are_bounded_and_charged_to_the_memory_budget(server, connect, ct):
    url, service, state = server
    vista = model(service, "vista3d").name
    clients = [connect() for _ in range(3)]
    clients[0].start_session(vista)
    clients[1].start_session(vista)
    with pytest.raises(ItkSnapError, match="HTTP 503.*capacity .2 ITK-SNAP sessions"):
        clients[2].start_session(vista)
    budget = service.sessions.budget
    before = budget.used
    clients[0].upload(ct.array, ct.affine)
    assert budget.charged(("lease", clients[0].session)) >= ct.array.size * 4
    assert budget.used > before
    for c in clients[:2]:
        c.end()
    assert len(state.itksnap_leases) == 0 and budget.charged(("lease", clients[0].session)) == 0
