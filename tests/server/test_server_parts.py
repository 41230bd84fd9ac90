"""The server's parts alone: the image store, the compute gate, the session pool, request fields."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest

from voxelprompt.data.phantom import PhantomConfig, make_phantom
from voxelprompt.errors import InputError, PromptError
from voxelprompt.imageio import read_labels, write_volume
from voxelprompt.server.compute import Busy, ComputeGate
from voxelprompt.server.datastore import ImageStore, NotFound
from voxelprompt.server.sessions import SessionPool
from voxelprompt.types import Volume


class FakeClock:
    """Wall and monotonic time that move only when a test advances them (no sleeping, no races)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """Stop the clock for one test: ``time.time`` and ``time.monotonic`` read ``clock.now``."""
    fake = FakeClock()
    monkeypatch.setattr(time, "time", fake)
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


@pytest.fixture(scope="module")
def ct_bytes(tmp_path_factory) -> bytes:
    ct, _ = make_phantom(PhantomConfig(shape=(24, 20, 16), spacing=(8, 8, 8), seed=1))
    return write_volume(ct, tmp_path_factory.mktemp("ct") / "ct.nii.gz").read_bytes()


def test_store_keeps_images_under_hashed_names_and_reopens(tmp_path, ct_bytes):
    store = ImageStore(tmp_path / "store")
    record = store.add_image("../../etc/passwd", io.BytesIO(ct_bytes), "upload.nii.gz", {"who": "me"})
    assert store.image_path("../../etc/passwd").parent == tmp_path / "store" / "images"
    assert record.shape == (24, 20, 16) and record.spacing == (8.0, 8.0, 8.0)
    assert store.volume("../../etc/passwd").shape == (24, 20, 16)
    again = ImageStore(tmp_path / "store")  # a restarted server finds its images
    assert [r.image_id for r in again.images()] == ["../../etc/passwd"] and again.image("../../etc/passwd").info == {"who": "me"}
    with pytest.raises(NotFound, match="unknown image"):
        again.image("other")


def test_store_refuses_bad_uploads_and_leaves_nothing(tmp_path, ct_bytes):
    store = ImageStore(tmp_path)
    with pytest.raises(InputError):
        store.add_image("x", io.BytesIO(b"\x1f\x8bgarbage"), "x.nii.gz")
    with pytest.raises(InputError, match="unsupported image file"):
        store.add_image("x", io.BytesIO(ct_bytes), "x.mha")
    with pytest.raises(InputError, match="empty"):
        store.add_image("x", io.BytesIO(b""), "x.nii.gz")
    with pytest.raises(InputError, match="printable"):
        store.add_image("bad\nid", io.BytesIO(ct_bytes), "x.nii.gz")
    assert list((tmp_path / "images").iterdir()) == [] and store.images() == []


def test_store_sweeps_what_a_killed_server_left(tmp_path, ct_bytes):
    store = ImageStore(tmp_path)
    store.add_image("kept", io.BytesIO(ct_bytes), "a.nii.gz")
    (tmp_path / "images" / ".upload-deadbeef.nii.gz").write_bytes(b"half")
    (tmp_path / "images" / "orphan.nii.gz").write_bytes(b"never indexed")
    ImageStore(tmp_path)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [store.image("kept").file]


def test_store_evicts_oldest_and_labels_need_the_image_grid(tmp_path, ct_bytes, clock):
    store = ImageStore(tmp_path, max_images=2)
    for name in ("a", "b", "c"):
        store.add_image(name, io.BytesIO(ct_bytes), "x.nii.gz")
        clock.advance(1)
    assert [r.image_id for r in store.images()] == ["b", "c"]
    volume = store.volume("c")
    good = write_volume(volume.with_array(np.ones(volume.shape, np.uint8)), tmp_path / "l.nii.gz").read_bytes()
    store.add_label("c", "final", io.BytesIO(good), "l.nii.gz")
    assert store.label_path("c", "final").exists()
    wrong = write_volume(volume.with_array(np.ones((4, 4, 4), np.uint8)), tmp_path / "w.nii.gz").read_bytes()
    with pytest.raises(InputError):
        store.add_label("c", "other", io.BytesIO(wrong), "w.nii.gz")
    with pytest.raises(InputError, match="tag"):
        store.add_label("c", "../x", io.BytesIO(good), "l.nii.gz")
    # the same grid stored with i flipped is kept reoriented onto the image's grid
    marked = np.zeros(volume.shape, np.uint8)
    marked[0, 0, 0] = 7
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = volume.shape[0] - 1
    flipped = Volume(marked[::-1].copy(), volume.affine @ flip, "flipped")
    store.add_label("c", "flipped", io.BytesIO(write_volume(flipped, tmp_path / "f.nii.gz").read_bytes()), "f.nii.gz")
    stored = read_labels(store.label_path("c", "flipped"))
    np.testing.assert_array_equal(stored.array, marked)
    np.testing.assert_allclose(stored.affine, volume.affine, atol=1e-4)


def test_sessions_expire(tmp_path, ct_bytes, clock):
    store = ImageStore(tmp_path, session_s=60)
    record = store.add_session(io.BytesIO(ct_bytes), "s.nii.gz")
    clock.advance(59)  # alive until its lifetime is over
    assert store.session(record.session_id).image_id == record.image_id
    assert [r.image_id for r in store.images()] == [record.image_id]
    clock.advance(2)
    with pytest.raises(NotFound, match=f"unknown or expired session '{record.session_id}'"):
        store.session(record.session_id)
    assert store.images() == [] and list((tmp_path / "images").iterdir()) == []  # its image went with it


def test_gate_queues_then_refuses():
    gate = ComputeGate(max_waiting=1, wait_s=5)
    entered = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def holder() -> None:
        with gate.turn():
            entered.set()
            release.wait(5)
            order.append("first")

    def waiter() -> None:
        with gate.turn():
            order.append("second")

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    entered.wait(5)
    threads.append(threading.Thread(target=waiter))
    threads[1].start()
    deadline = time.monotonic() + 10
    while gate.stats.waiting < 1:  # the waiter has queued (a real condition, with a deadline)
        assert time.monotonic() < deadline, "the second caller never queued"
        time.sleep(0.001)
    with pytest.raises(Busy) as info:  # the queue (1) is full
        with gate.turn():
            pass
    assert info.value.retry_after_s > 0
    release.set()
    for t in threads:
        t.join(5)
    assert order == ["first", "second"] and gate.stats.served == 2 and gate.stats.refused == 1


def test_gate_wait_runs_out():
    gate = ComputeGate(max_waiting=4, wait_s=0.05)
    with gate.turn():
        with pytest.raises(Busy, match="no turn within"):
            with gate.turn():
                pass


class _FakeSegmenter:
    def __init__(self) -> None:
        self.opened = 0

    def open_session(self, volume, memory_budget_mb, **options):
        self.opened += 1
        return object()


def test_session_pool_reuses_caps_and_expires(clock):
    pool = SessionPool(max_sessions=2, idle_s=60, memory_budget_mb=64)
    model = _FakeSegmenter()
    first, reused = pool.get("m", model, "a", "sha-a", lambda: None)
    assert not reused and pool.get("m", model, "a", "sha-a", lambda: None) == (first, True)
    assert not pool.get("m", model, "a", "sha-new", lambda: None)[1]  # re-uploaded: a new session
    pool.get("m", model, "b", "sha-b", lambda: None)
    assert len(pool) == 2 and model.opened == 3
    assert pool.peek("m", "a", "sha-a") is None  # the cap of 2 closed the least recently used
    clock.advance(59)
    assert pool.expire() == 0 and len(pool) == 2  # idle, but not for idle_s yet
    b_session = pool.peek("m", "b", "sha-b")
    assert pool.get("m", model, "b", "sha-b", lambda: None) == (b_session, True)  # a prompt: b is busy again
    clock.advance(2)
    assert pool.expire() == 1 and len(pool) == 1 and pool.peek("m", "b", "sha-b") is b_session
    clock.advance(57)  # b was last used 59 s ago
    assert pool.expire() == 0
    clock.advance(2)
    assert pool.expire() == 1 and len(pool) == 0


def test_request_fields_are_checked():
    from voxelprompt.server.monailabel.tasks import _points, _roi_box
    from voxelprompt.types import Volume

    volume = Volume(np.zeros((10, 20, 30), np.float32), np.eye(4))
    assert _roi_box([8, 2, 0, 19, 40, 5], volume) == (2, 0, 5, 8, 19, 29)  # ends sorted, clipped
    with pytest.raises(PromptError, match="outside the image"):
        _roi_box([20, 30, 0, 1, 0, 1], volume)
    assert _points([[1, 2, 3]], "foreground") == [(1.0, 2.0, 3.0)]
    for bad in ([[1, 2]], [["a", 2, 3]], [[True, 1, 1]], "1,2,3"):
        with pytest.raises(PromptError, match="foreground must be"):
            _points(bad, "foreground")


def test_prompt_errors_a_server_relays_name_no_command_line_flags():
    from voxelprompt.api import build_prompts
    from voxelprompt.catalog import vista3d_catalog

    for kwargs in (dict(new_structure=True), dict(new_structure=True, classes=["liver"], points=[(1, 1, 1)]),
                   dict(negative_points=[(1, 1, 1)])):  # fmt: skip
        with pytest.raises(PromptError) as caught:
            build_prompts(**kwargs, catalog=vista3d_catalog())
        assert "--" not in str(caught.value), caught.value
