"""Hostile and faulty clients against a real server on loopback (issue 26): every malformed body is
a one-line 4xx, nothing reads outside the datastore, declared sizes are checked before allocation,
and the server keeps serving. Peak memory is sampled in this process (the server runs here)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import threading
import time
import zlib

import nibabel as nib
import numpy as np
import psutil
import pytest
import requests

from served import start_server
from voxelprompt.data.phantom import PhantomConfig, make_phantom
from voxelprompt.imageio import write_volume
from voxelprompt.server.launch import ServeSettings

TOKEN = "hostile-tests-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Peak growth of this process's memory allowed while the server handles one hostile body.
PEAK_BOUND = 96 * 2**20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = ServeSettings(device="cpu", token=TOKEN, max_upload_mb=4, max_waiting=2, session_memory_mb=64)
    running = start_server(tmp_path_factory.mktemp("store"), settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def air_phantom(tmp_path_factory):
    """A small phantom with wide air around the body (clicks there lie outside its foreground box)."""
    ct, _ = make_phantom(PhantomConfig(shape=(48, 40, 32), spacing=(3, 3, 3), seed=5))
    array = np.pad(ct.array, ((30, 30), (30, 30), (4, 4)), constant_values=-1000).astype(np.float32)
    array[array < -500] = -1000
    return str(write_volume(ct.with_array(array), tmp_path_factory.mktemp("ct") / "air.nii.gz"))


@contextlib.contextmanager
def peak_rss():
    """Sample this process's resident memory every 5 ms; yields a dict whose ``"growth"`` is the
    peak above the start once the block ends."""
    process, out, stop = psutil.Process(os.getpid()), {"growth": 0}, threading.Event()
    start = process.memory_info().rss

    def sample() -> None:
        while not stop.is_set():
            out["growth"] = max(out["growth"], process.memory_info().rss - start)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield out
    finally:
        stop.set()
        sampler.join(5)


def one_line_4xx(reply: requests.Response, status: int | tuple[int, ...]) -> str:
    statuses = status if isinstance(status, tuple) else (status,)
    assert reply.status_code in statuses, (reply.status_code, reply.text[:300])
    detail = reply.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "internal error" not in detail
    return detail


def upload(url: str, name: str, data: bytes, image: str = "x", params: dict | None = None) -> requests.Response:
    files = {"file": (name, data), "params": (None, json.dumps(params or {}))}
    return requests.put(f"{url}/datastore/?image={image}", files=files, headers=AUTH, timeout=60)


def nrrd(fields: str, data: bytes = b"") -> bytes:
    return b"NRRD0004\ntype: uchar\ndimension: 3\nsizes: 4 4 4\n" + fields.encode() + b"\n\n" + data


def alive(url: str) -> None:
    """The server still answers, and what it keeps is inside its memory budget."""
    health = requests.get(f"{url}/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["memory_budget"]["used_mb"] <= health["memory_budget"]["limit_mb"]


# ---- untrusted files ------------------------------------------------------------------------------


def test_uploads_read_no_file_outside_the_datastore(server, tmp_path):
    """Item 2 and its variants: absolute, relative, LIST, odd spellings of the data file field."""
    secret = tmp_path / "secret.raw"
    secret.write_bytes(bytes(range(64)))
    missing = tmp_path / "no-such-file.raw"
    details = []
    for fields in (f"encoding: raw\ndata file: {secret}", "encoding: raw\ndata file: ../../../../etc/hostname",
                   f"encoding: raw\ndatafile: {secret}", f"encoding: raw\nDATA FILE: {secret}",
                   f"encoding: raw\ndata file: LIST\n{secret}", f"encoding: raw\ndata file: {missing}",
                   f"encoding: raw\ndata file:{secret}"):  # fmt: skip
        details.append(one_line_4xx(upload(server.url, "ct.nrrd", nrrd(fields)), 400))
    # Nothing about the named files reaches the client: the same answer for an existing and a missing file.
    assert all("data file" in d and "64" not in d and "not found" not in d for d in details), details
    assert len({d.replace("'ct.nrrd'", "") for d in details}) == 1
    assert "x" not in requests.get(f"{server.url}/datastore/?output=ids", headers=AUTH, timeout=10).json()["images"]
    alive(server.url)


def test_decompression_bomb_upload_is_413_before_decoding(server, tmp_path):
    """Item 5: a small .nii.gz whose header states 1024x1024x300 (1.2 GiB as float32) and whose
    stream is zeros; refused from the header, with the limit named, before anything is allocated."""
    header = nib.Nifti1Header()
    header.set_data_shape((1024, 1024, 300))
    header.set_data_dtype(np.uint8)
    header.set_sform(np.eye(4), 1)
    raw = header.binaryblock + b"\0" * (352 - len(header.binaryblock))
    zeros = bytes(1 << 24)
    deflate = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip stream
    full, rest = divmod(1024 * 1024 * 300, len(zeros))
    parts = [deflate.compress(raw)] + [deflate.compress(zeros) for _ in range(full)] + [deflate.compress(zeros[:rest])]
    body = b"".join(parts) + deflate.flush()
    assert len(body) < 4 * 2**20
    with peak_rss() as peak:
        detail = one_line_4xx(upload(server.url, "bomb.nii.gz", body), 413)
    assert "1024x1024x300" in detail and "limit" in detail
    assert peak["growth"] < PEAK_BOUND, peak
    alive(server.url)


def test_chunked_body_over_the_limit_is_413(server):
    """Item 7 (last case): no Content-Length, a multipart body streamed past --max-upload-mb."""

    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"ct.nii\"\r\n\r\n"
        for _ in range(6):
            yield bytes(1 << 20)
        yield b"\r\n--b--\r\n"

    reply = requests.put(f"{server.url}/datastore/?image=big", data=chunks(), timeout=60,
                         headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    assert "upload limit" in one_line_4xx(reply, 413)
    alive(server.url)


# ---- authentication ---------------------------------------------------------------------------------


def test_token_valid_route_checks_the_token(server):
    """Item 9, and the other paths under /auth/."""
    assert requests.get(f"{server.url}/auth/token/valid", timeout=10).status_code == 401
    assert requests.get(f"{server.url}/auth/token/valid", headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
    assert requests.get(f"{server.url}/auth/token/valid", headers=AUTH, timeout=10).json() == {"valid": True}
    assert requests.get(f"{server.url}/auth/anything/else", timeout=10).status_code == 401


def test_repeated_wrong_passwords_are_throttled(tmp_path_factory):
    """No unlimited guessing: after ten failures from one address, 429 with Retry-After, for the
    login form and for bearer tokens alike; a request without credentials is still answered."""
    running = start_server(tmp_path_factory.mktemp("store"), ServeSettings(device="cpu", token=TOKEN))
    try:
        codes = [requests.post(f"{running.url}/auth/token", data={"username": "u", "password": f"guess{i}"}, timeout=10).status_code
                 for i in range(12)]  # fmt: skip
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429], codes
        right = requests.post(f"{running.url}/auth/token", data={"username": "u", "password": TOKEN}, timeout=10)
        assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
        assert requests.get(f"{running.url}/info/", headers=AUTH, timeout=10).status_code == 429
        assert requests.get(f"{running.url}/healthz", timeout=10).status_code == 200
    finally:
        running.stop()


# ---- malformed values ------------------------------------------------------------------------------


def test_malformed_values_are_one_line_400(server, air_phantom):
    """Item 7: nesting, NaN and infinite coordinates, classes given as objects."""
    with open(air_phantom, "rb") as handle:
        assert upload(server.url, "air.nii.gz", handle.read(), image="air").status_code == 200
    deep = "[" * 100_000 + "]" * 100_000
    infer = f"{server.url}/infer/vista3d-demo-interactive?image=air&output=json"
    for params in (f'{{"a": {deep}}}', '{"foreground": [[10, 10, 10]], "roi": [0, NaN, 0, 10, 0, 10]}',
                   '{"foreground": [[10, 10, 10]], "roi": [0, Infinity, 0, 10, 0, 10]}',
                   '{"foreground": [[NaN, 10, 10]]}', '{"foreground": [[10, 10, 10]], "label": {"a": 1}}'):  # fmt: skip
        reply = requests.post(infer, files={"params": (None, params)}, headers=AUTH, timeout=120)
        if params.endswith('{"a": 1}}'):
            assert reply.status_code == 200  # an object is not a class name: a click-only object
        else:
            one_line_4xx(reply, 400)
    reply = requests.post(f"{server.url}/infer/vista3d-demo?image=air&output=json",
                          files={"params": (None, json.dumps({"label_prompt": [{"a": 1}]}))}, headers=AUTH, timeout=60)  # fmt: skip
    one_line_4xx(reply, 400)
    alive(server.url)


def test_a_click_in_air_outside_the_foreground_box_segments(server, air_phantom):
    """Item 7 (first case): a valid click far out in the air is answered (an empty object), not 500."""
    with open(air_phantom, "rb") as handle:
        assert upload(server.url, "air.nii.gz", handle.read(), image="air2").status_code == 200
    for click in ([107, 99, 39], [1, 1, 1], [2, 50, 20]):
        reply = requests.post(f"{server.url}/infer/vista3d-demo-interactive?image=air2&output=json",
                              files={"params": (None, json.dumps({"foreground": [click]}))}, headers=AUTH, timeout=300)  # fmt: skip
        assert reply.status_code == 200, (click, reply.text[:300])


# ---- the compute gate --------------------------------------------------------------------------------


@contextlib.contextmanager
def background_turn(gate):
    """Hold the gate as background work does (waits, bounded, for sessions' own background steps)."""
    deadline = time.monotonic() + 60
    while True:
        with gate.background_turn() as granted:
            if granted:
                yield
                return
        assert time.monotonic() < deadline, "no background turn within 60 s"
        time.sleep(0.05)


def test_background_work_cannot_widen_the_queue(server, air_phantom):
    """Item 6: while background work holds the compute lock, at most --queue requests wait; the
    rest are refused at once with 503 (not queued behind it)."""
    with open(air_phantom, "rb") as handle:
        assert upload(server.url, "air.nii.gz", handle.read(), image="queue").status_code == 200
    gate = server.service.gate
    codes: list[int] = []
    url = f"{server.url}/infer/vista3d-demo?image=queue&output=json"

    def request() -> None:
        reply = requests.post(url, files={"params": (None, json.dumps({"label_prompt": [1]}))}, headers=AUTH, timeout=300)
        codes.append(reply.status_code)

    with background_turn(gate):  # what a pre-encoding session does between requests
        threads = [threading.Thread(target=request) for _ in range(6)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(codes) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        waiting = gate.stats.waiting
    for t in threads:
        t.join(300)
    assert waiting <= gate.max_waiting, waiting
    assert codes.count(503) == 6 - gate.max_waiting and codes.count(200) == gate.max_waiting, codes


# ---- PACS provenance ---------------------------------------------------------------------------------


def test_uploads_cannot_claim_or_shadow_pacs_series(tmp_path_factory, air_phantom):
    """Item 10: `"source": "dicomweb"` in an upload's params makes nothing a PACS series (the PACS is
    never asked), and an upload cannot take a SeriesInstanceUID while a PACS is configured."""
    settings = ServeSettings(device="cpu", dicomweb="http://127.0.0.1:9/dicom-web")  # nothing listens: any query fails
    running = start_server(tmp_path_factory.mktemp("store"), settings)
    try:
        data = open(air_phantom, "rb").read()
        spoof = {"source": "dicomweb", "SeriesInstanceUID": "1.2.3"}
        assert upload(running.url, "ct.nii.gz", data, image="spoof", params=spoof).status_code == 200
        reply = requests.post(f"{running.url}/infer/vista3d-demo?image=spoof&output=dicom_seg",
                              files={"params": (None, json.dumps({"label_prompt": [1]}))}, timeout=300)  # fmt: skip
        assert "fetched from the PACS" in one_line_4xx(reply, 400)
        assert "SeriesInstanceUID" in one_line_4xx(upload(running.url, "ct.nii.gz", data, image="1.2.840.99.1"), 400)
    finally:
        running.stop()


# ---- the datastore's index -------------------------------------------------------------------------


def test_a_kill_between_file_and_index_leaves_a_consistent_record(tmp_path, air_phantom, monkeypatch):
    """Also noted: the index names a file with the content it describes, whichever step a kill hits."""
    import hashlib

    from voxelprompt.server.datastore import ImageStore

    store = ImageStore(tmp_path / "store")
    first = open(air_phantom, "rb").read()
    ct, _ = make_phantom(PhantomConfig(shape=(40, 32, 24), spacing=(3, 3, 3), seed=9))
    second = open(write_volume(ct, tmp_path / "b.nii.gz"), "rb").read()
    store.add_image("ct", io.BytesIO(first), "ct.nii.gz")
    monkeypatch.setattr(ImageStore, "_save_index", lambda self: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):  # the process dies while saving the index
        store.add_image("ct", io.BytesIO(second), "ct.nii.gz")
    monkeypatch.undo()
    reopened = ImageStore(tmp_path / "store")
    record = reopened.image("ct")
    assert hashlib.sha256(reopened.image_path("ct").read_bytes()).hexdigest() == record.sha256


# ---- slow and half-open connections -------------------------------------------------------------------


def test_a_drip_fed_body_is_cut_off(server):
    """Also noted: a body that trickles in is answered 408 once the body timeout has passed."""
    from voxelprompt.server.app import ServerOptions, create_app
    from voxelprompt.server.launch import ServerThread

    app = create_app(server.service, ServerOptions(token=TOKEN, body_timeout_s=1.5))
    with ServerThread(app) as thread:
        host, port = thread.url.rsplit(":", 1)
        with socket.create_connection((host.removeprefix("http://"), int(port)), timeout=20) as sock:
            sock.sendall(b"PUT /datastore/?image=drip HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                         + b"\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n")  # fmt: skip
            started, answer = time.monotonic(), b""
            drip = b'--b\r\nContent-Disposition: form-data; name="file"; filename="ct.nii"\r\n\r\n' + bytes(100)
            for i in range(40):  # one byte every 0.25 s: at most 10 s
                with contextlib.suppress(OSError):
                    sock.sendall(drip[i : i + 1])
                sock.settimeout(0.25)
                with contextlib.suppress(socket.timeout):
                    answer += sock.recv(4096)
                if answer:
                    break
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert time.monotonic() - started < 8
