"""Background pre-encoding of a VISTA3D session: centre-first order, preemption by clicks, the
memory budget, closing, and the server's session pool starting it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from voxelprompt.errors import VoxelPromptError
from voxelprompt.inference.preencode import LockTurns, Preencoder
from voxelprompt.families.vista3d.inference.profiles import HU_MAX, HU_MIN
from voxelprompt.families.vista3d.inference.session import InteractiveSession, _window_key
from voxelprompt.families.vista3d.inference.windows import pad_to_window
from voxelprompt.types import Points, Prompts

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks (tests/conftest.py)

ROI = (64, 64, 64)
CLICK = Prompts(points=Points.from_lists([(20.0, 20.0, 10.0)]))
WAIT_S = 120  # generous: the 2 test cores are shared


def _no_preencode_threads() -> bool:
    return not any(t.name == "voxelprompt-preencode" and t.is_alive() for t in threading.enumerate())


def test_fills_the_cache_nearest_the_body_centre_first(segmenter, volume):
    session = InteractiveSession(segmenter, volume, click_windows="grid")
    order = session.preencode_order()
    assert len(order) == 4  # the crop's padded model grid holds 2x2x1 windows of 64^3
    # Independently: the body centroid (> -500 HU) of the padded model image, window centres' distances.

    padded, _ = pad_to_window(session.prepared.batch, ROI)
    image = padded[0, 0].as_tensor().numpy()
    centre = np.argwhere(image * (HU_MAX - HU_MIN) + HU_MIN > -500).mean(0)
    dist = [np.linalg.norm([(s.start + s.stop - 1) / 2 - c for s, c in zip(w.slices, centre)]) for w in order]
    assert dist == sorted(dist) and dist[0] < dist[-1]

    worker = session.start_preencoding()
    worker.join(WAIT_S)
    assert worker.stopped_by == "done" and not worker.alive
    assert worker.encoded == [_window_key(w.slices) for w in order]
    assert list(session._net.cache.entries) == worker.encoded
    # A click then encodes nothing: its window is cached.
    session.segment(CLICK)
    assert session.stats.misses == 0 and session.stats.hits == 1


def test_click_during_preencoding_equals_a_session_without_it(segmenter, volume):
    edit = Prompts(classes=(1,), points=CLICK.points)
    plain = InteractiveSession(segmenter, volume, click_windows="grid")
    expected = [plain.segment(CLICK).labels.array, plain.segment(edit).labels.array]

    encoder = segmenter.click_net().image_encoder
    finished = []
    hook = encoder.register_forward_hook(lambda *_: finished.append(1))  # completed encoder passes
    try:
        session = InteractiveSession(segmenter, volume, click_windows="grid", preencode=True)
        clicked = session.segment(CLICK).labels.array  # while the thread runs
        session.preencoder.join(WAIT_S)
    finally:
        hook.remove()
    np.testing.assert_array_equal(clicked, expected[0])
    np.testing.assert_array_equal(session.segment(edit).labels.array, expected[1])
    assert session.preencoder.stopped_by == "done"
    # No window was encoded twice: 4 windows, 4 completed encoder passes (thread and click together).
    assert len(session._net.cache.entries) == 4 and len(finished) == 4
    session.close()


def test_close_stops_the_thread(segmenter, volume):
    session = segmenter.open_session(volume, click_windows="grid", preencode=True)
    worker = session.preencoder
    session.close()
    assert not worker.alive and worker.stopped_by in ("closed", "done")
    assert _no_preencode_threads()
    with pytest.raises(VoxelPromptError, match="click_windows='grid'"):
        InteractiveSession(segmenter, volume, click_windows="centred", preencode=True)


def test_memory_budget_stops_preencoding(segmenter, volume):
    one_window_mb = 2 * 8 * 32**3 * 4 / 2**20  # width-8 point features of one 64^3 window
    session = InteractiveSession(segmenter, volume, click_windows="grid", memory_budget_mb=2.5 * one_window_mb)
    worker = session.start_preencoding()
    worker.join(WAIT_S)
    assert worker.stopped_by == "budget" and len(worker.encoded) == 2
    assert session.stats.evictions == 0 and session.stats.bytes <= 2.5 * one_window_mb * 2**20


class _Blocking(torch.nn.Module):
    """A layer that waits for ``release`` the first time it runs (to hold a window mid-encoding)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def forward(self, x):
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(WAIT_S)
        return x + 1


@pytest.mark.parametrize("needed", [False, True])
def test_a_request_preempts_a_window_it_does_not_need(needed):
    blocking = _Blocking()
    net = torch.nn.Sequential(blocking, torch.nn.Identity())
    cache: dict = {}
    lock = threading.RLock()
    turns = LockTurns(lock)
    wanted: set = set()
    worker = Preencoder(
        keys=["a", "b"], encode=lambda k: cache.setdefault(k, net(torch.zeros(1))), cached=cache.__contains__,
        fits=lambda: True, modules=[net], turns=[turns], wanted=lambda: frozenset(wanted),
    ).start()  # fmt: skip
    assert blocking.entered.wait(WAIT_S)  # window "a" is being encoded
    if needed:
        wanted.add("a")
    with turns.request():  # a request arrives, then the blocked layer finishes
        blocking.release.set()
        with lock:  # the request's turn: the thread gave the model back
            assert ("a" in cache) == needed  # finished for the request, or abandoned
            assert worker.preempted == (0 if needed else 1)
    worker.join(WAIT_S)
    assert worker.stopped_by == "done" and sorted(cache) == ["a", "b"]


def test_server_session_pool_starts_and_stops_preencoding(segmenter, volume):
    from voxelprompt.families import get_family
    from voxelprompt.server.compute import ComputeGate
    from voxelprompt.server.sessions import SessionPool

    gate = ComputeGate()
    pool = SessionPool(max_sessions=1, memory_budget_mb=64, turns=(gate,))
    options = get_family("vista3d").viewer_session
    with gate.turn():  # as the server opens sessions: holding the compute gate
        session, reused = pool.get("m", segmenter, "img", "sha", lambda: volume, options)
        assert not reused and session.preencoder is not None and session.preencoder.alive
        assert session.preencoder.encoded == []  # nothing runs while a request holds the gate
    session.preencoder.join(WAIT_S)
    assert session.preencoder.stopped_by == "done" and len(session.preencoder.encoded) == 4
    with gate.turn():
        assert session.segment(CLICK).labels.array.shape == volume.shape
    assert session.stats.misses == 0
    pool.get("m", segmenter, "other", "sha2", lambda: volume, options)  # evicts the first session
    assert not session.preencoder.alive and len(session._net.cache.entries) == 0
    pool.close()
    assert _no_preencode_threads()
