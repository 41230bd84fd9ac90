"""Hostile nnInteractive clients against a real server on loopback (issue 26): packed-array bombs,
buffers and undo history without a budget, prompts that poison later clicks, malformed meta."""

from __future__ import annotations

import json

import blosc2
import numpy as np
import pytest
import requests

from served import start_server
from test_hostile import PEAK_BOUND, one_line_4xx, peak_rss
from voxelprompt.data.phantom import PhantomConfig, make_phantom
from voxelprompt.server.launch import ServeSettings
from voxelprompt.server.nninteractive.wire import pack

SHAPE = (48, 40, 32)


@pytest.fixture(scope="module")
def ct():
    return make_phantom(PhantomConfig(shape=SHAPE, spacing=(3, 3, 3), seed=7))[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("store"), ServeSettings(device="cpu", session_memory_mb=64, max_leases=4))
    yield running
    running.stop()


class Client:
    """Raw protocol requests on one lease (the bodies a careful attacker would craft)."""

    def __init__(self, url: str) -> None:
        self.base = f"{url}/nninteractive"
        self.headers = {"X-Lease-Token": requests.post(f"{self.base}/claim", timeout=10).json()["lease_token"]}

    def post(self, route: str, body: bytes | None = None, meta: dict | str | None = None, **payload) -> requests.Response:
        headers = dict(self.headers)
        if body is not None:
            headers["X-Meta"] = meta if isinstance(meta, str) else json.dumps(meta or {})
            return requests.post(f"{self.base}/{route}", data=body, headers=headers, timeout=300)
        return requests.post(f"{self.base}/{route}", json=payload, headers=headers, timeout=300)

    def set_image(self, ct, **properties) -> requests.Response:
        return self.post("set_image", pack(ct.array[None].astype(np.float32)), {"image_properties": {"spacing": list(ct.spacing), **properties}})

    def release(self) -> None:
        requests.post(f"{self.base}/release", headers=self.headers, timeout=10)


def bomb(shape: tuple[int, ...], dtype: str = "uint8") -> bytes:
    """A packed body of zeros declaring ``shape``: one small blosc2 frame per 1 GiB."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    head = b"NNIA" + bytes([1, 1, len(shape), len(dtype)]) + dtype.encode() + np.asarray(shape, "<i8").tobytes()
    chunks, parts = -(-n // (1 << 30)), []
    for start in range(0, n, 1 << 30):
        size = min(1 << 30, n - start)
        frame = blosc2.compress2(np.zeros(size, np.uint8), typesize=1, codec=blosc2.Codec.ZSTD)
        parts.append(np.asarray([size, len(frame)], "<u8").tobytes() + frame)
    return head + np.asarray([chunks], "<u4").tobytes() + b"".join(parts)


def test_packed_array_bombs_are_refused_before_allocation(server, ct):
    """Item 3: small bodies declaring large arrays, on each route that takes one."""
    client = Client(server.url)
    try:
        image_bomb = bomb((2, 1024, 1024, 160))  # 335 M elements, more than --max-image-mb's voxels
        mask_bomb = bomb((1024, 1024, 300))  # another shape than the image's
        assert len(image_bomb) < 200_000 and len(mask_bomb) < 200_000
        with peak_rss() as peak:
            one_line_4xx(client.post("set_image", image_bomb, {"image_properties": {"spacing": [1, 1, 1]}}), (400, 413))
        assert peak["growth"] < PEAK_BOUND, peak
        assert client.set_image(ct).status_code == 200
        for route in ("add_scribble_interaction", "add_initial_seg_interaction"):
            with peak_rss() as peak:
                detail = one_line_4xx(client.post(route, mask_bomb, {"include_interaction": True}), 400)
            assert "shape" in detail and peak["growth"] < PEAK_BOUND, (route, detail, peak)
    finally:
        client.release()


def test_target_buffers_are_label_maps_and_undo_stays_in_the_budget(tmp_path_factory, ct):
    """Item 4: no 32-byte voxels, and the undo history of a lease is charged to the memory budget
    (its oldest steps go first) instead of 32 whole-buffer copies whatever their size."""
    settings = ServeSettings(device="cpu", session_memory_mb=1, memory_mb=4)
    running = start_server(tmp_path_factory.mktemp("store"), settings)
    client = Client(running.url)
    try:
        assert client.set_image(ct).status_code == 200
        for dtype in ("complex256", "float64", "object", "V16", {"a": 1}):
            one_line_4xx(client.post("set_target_buffer", shape=list(SHAPE), dtype=dtype), 400)
        assert client.post("set_target_buffer", shape=list(SHAPE), dtype="int32").status_code == 200
        mask = np.zeros(SHAPE, np.uint8)
        for k in range(12):  # each replaces the whole buffer: one full copy per undo step
            mask[10:30, 10:30, k] = 1
            assert client.post("add_initial_seg_interaction", pack(mask), {}).status_code == 200
        budget = running.service.sessions.budget
        assert budget.used <= budget.limit, (budget.used, budget.limit)
        lease = running.thread.server.config.app.app.state.leases.get(client.headers["X-Lease-Token"])
        assert 0 < len(lease.history) < 12, len(lease.history)
        assert budget.charged(("lease", lease.token)) == lease.nbytes
        assert client.post("undo").status_code == 200  # the newest steps still undo
    finally:
        client.release()
        running.stop()


def test_a_refused_prompt_never_poisons_later_clicks(server, ct):
    """Item 11: a click outside the image is refused even when it is only kept (no prediction),
    and the next valid click is answered."""
    client = Client(server.url)
    try:
        assert client.set_image(ct).status_code == 200
        for coords in ([1000, 0, 0], [-5, 3, 3], [float("nan"), 3, 3]):
            payload = {"coordinates": coords, "include_interaction": True, "run_prediction": False}
            reply = requests.post(f"{client.base}/add_point_interaction", data=json.dumps(payload, allow_nan=True),
                                  headers={**client.headers, "Content-Type": "application/json"}, timeout=60)  # fmt: skip
            assert "outside" in one_line_4xx(reply, 400)
        reply = client.post("add_point_interaction", coordinates=[24, 20, 16], include_interaction=True, run_prediction=True)
        assert reply.status_code == 200 and json.loads(reply.headers["X-Meta"])["ran_prediction"], reply.text[:200]
    finally:
        client.release()


def test_malformed_meta_and_prompts_are_one_line_400(server, ct):
    """Item 7: nested X-Meta, a non-numeric affine, classes given as objects, NaN boxes."""
    client = Client(server.url)
    try:
        deep = "{\"a\": " + "[" * 5000 + "]" * 5000 + "}"  # deeper than the parser, within the 16 KiB header limit
        one_line_4xx(client.post("set_image", pack(ct.array[None].astype(np.float32)), deep), 400)
        for affine in ([["a"] * 4] * 4, [[1, 2], [3]], "eye", [[float("inf")] * 4] * 4):
            reply = client.post("set_image", pack(ct.array[None].astype(np.float32)),
                                json.dumps({"image_properties": {"affine": affine}}))  # fmt: skip
            assert "affine" in one_line_4xx(reply, 400)
        assert client.set_image(ct).status_code == 200
        for classes in ([{"a": 1}], [[1]], [1.5], [True]):
            one_line_4xx(client.post("voxelprompt_prompt", classes=classes), 400)
        assert client.post("voxelprompt_prompt", classes=["liver"]).status_code == 200
    finally:
        client.release()


def test_nan_box_coordinates_are_refused():
    """Item 7: SegVol's box from nnInteractive coordinates (NaN or infinite: a one-line error)."""
    from voxelprompt.errors import PromptError
    from voxelprompt.server.nninteractive.interactions import box_from_client

    for coords in ([[float("nan"), 4], [0, 4], [0, 4]], [[0, float("inf")], [0, 4], [0, 4]]):
        with pytest.raises(PromptError, match="finite"):
            box_from_client(coords, (8, 8, 8))
