"""SegVol sessions: labels equal one-shot calls, encoders run once per window and text, LRU budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segvol_fixtures import build_tiny_segvol
from voxelprompt.errors import PromptError
from voxelprompt.inference.protocol import Session
from voxelprompt.families.segvol.inference import SegVolSegmenter
from voxelprompt.families.segvol.inference.session import CacheStats, CachingSegVol, SegVolSession, tensor_key
from voxelprompt.inference.cache import LRUCache
from voxelprompt.types import Box, Points, Prompts

BOX = Box((8, 6, 2), (30, 28, 9))


class _TextSpy:
    """Counts the names a model's CLIP text encoder is really run on."""

    def __init__(self, model) -> None:
        self.encode, self.names = model.encode_text, []
        model.encode_text = self

    def __call__(self, names):
        self.names.extend(names)
        return self.encode(names)


@pytest.fixture()
def model():
    return build_tiny_segvol()  # its own instance: the text spy patches it


def _same(session_result, one_shot) -> bool:
    return (
        np.array_equal(session_result.labels.array, one_shot.labels.array)
        and session_result.labels.array.dtype == one_shot.labels.array.dtype
        and session_result.classes == one_shot.classes
        and session_result.windows == one_shot.windows
    )


@pytest.mark.parametrize("mode", ["zoom", "sliding", "zoom-out"])
def test_a_session_answers_like_one_shot_calls_and_encodes_each_window_and_text_once(model, ras_volume, mode):
    segmenter = SegVolSegmenter(model, mode=mode)
    steps = [
        ("liver", Prompts(text="liver")),
        ("liver again", Prompts(text="liver")),
        ("box", Prompts(box=BOX)),
        ("box + click", Prompts(box=BOX, points=Points.from_lists([(20, 18, 6)]))),
        ("box + more clicks", Prompts(box=BOX, points=Points.from_lists([(20, 18, 6), (24, 16, 5)], [(22, 20, 6)]))),
        ("spleen", Prompts(text="spleen", points=Points.from_lists([(20, 18, 6)]))),
        ("air click", Prompts(points=Points.from_lists([(0, 0, 0)]))),  # widens the crop: new windows
    ]
    expected = {name: segmenter.segment(ras_volume, prompts) for name, prompts in steps}
    spy = _TextSpy(model)
    session = segmenter.open_session(ras_volume)
    assert isinstance(session, Session)
    misses = {}
    for name, prompts in steps:
        assert _same(session.segment(prompts), expected[name]), name
        misses[name] = session.stats.misses
    assert spy.names == ["liver", "spleen"]  # CLIP ran once per distinct text
    assert misses["liver again"] == misses["liver"] and session.stats.hits > 0
    # a click inside the same zoom-in region: prompt encoder and decoder only, no new window
    roi = [segmenter.logits(ras_volume, p)[2].roi for n, p in steps if n.startswith("box +")]
    assert roi[0] == roi[1]
    assert misses["box + more clicks"] == misses["box + click"]
    assert misses["air click"] > misses["spleen"]  # another crop: new windows, encoded once
    assert session.stats.evictions == 0 and 0 < session.stats.bytes


def test_reset_drops_the_caches_and_keeps_the_answers(model, ras_volume):
    segmenter = SegVolSegmenter(model)
    session = segmenter.open_session(ras_volume)
    prompts = Prompts(text="liver", box=BOX)
    first = session.segment(prompts)
    misses = session.stats.misses
    session.reset()
    assert session.stats.bytes == 0
    again = session.segment(prompts)
    assert session.stats.misses == 2 * misses and _same(again, first)
    assert _same(again, segmenter.segment(ras_volume, prompts))


def test_a_small_budget_evicts_least_recently_used_first(model):
    window = torch.rand(1, 1, 8, 32, 32)
    size = model.encode_image(window).nbytes
    stats = CacheStats()
    caching = CachingSegVol(model, LRUCache(2 * size, stats))
    a, b, c = (torch.rand(1, 1, 8, 32, 32) for _ in range(3))
    for image in (a, b, a, c):  # b is now the least recently used: c evicts it
        caching.encode_image(image)
    assert (stats.hits, stats.misses, stats.evictions, stats.bytes) == (1, 3, 1, 2 * size)
    caching.encode_image(a)
    assert stats.hits == 2  # a stayed
    torch.testing.assert_close(caching.encode_image(b), model.encode_image(b), rtol=0, atol=0)
    assert stats.misses == 4 and stats.evictions == 2  # b was gone, and c made room for it


def test_a_budget_smaller_than_the_prompt_needs_keeps_results_exact(model, ras_volume):
    segmenter = SegVolSegmenter(model)
    window_bytes = model.encode_image(torch.zeros(1, 1, 8, 32, 32)).nbytes
    session = segmenter.open_session(ras_volume, memory_budget_mb=1.5 * window_bytes / 2**20)
    prompts = Prompts(box=BOX, points=Points.from_lists([(20, 18, 6)]))
    for _ in range(2):
        assert _same(session.segment(prompts), segmenter.segment(ras_volume, prompts))
        assert session.stats.bytes <= 1.5 * window_bytes
    assert session.stats.evictions > 0
    with pytest.raises(ValueError, match="memory_budget_mb"):
        SegVolSession(segmenter, ras_volume, memory_budget_mb=-1)


def test_window_keys_name_the_exact_content():
    window = torch.rand(1, 1, 8, 32, 32)
    same = window.clone()
    nudged = window.clone()
    nudged[0, 0, 3, 4, 5] = torch.nextafter(nudged[0, 0, 3, 4, 5], torch.tensor(2.0))
    assert tensor_key(window) == tensor_key(same) != tensor_key(nudged)
    assert tensor_key(window) != tensor_key(window.reshape(1, 1, 32, 8, 32))  # same bytes, other shape
    assert tensor_key(window) != tensor_key(window.double())
    strided = torch.rand(2, 1, 8, 32, 64)[:1, :, :, :, ::2]  # not contiguous
    assert tensor_key(strided) == tensor_key(strided.contiguous())


def test_a_session_refuses_vista3d_prompts_and_shares_the_segmenters_lock(model, ras_volume):
    segmenter = SegVolSegmenter(model)
    session = segmenter.open_session(ras_volume, memory_budget_mb=64)
    with pytest.raises(PromptError, match="everything prompts need a model family that has them"):
        session.segment(Prompts(everything=True))
    with segmenter.lock:  # the caller holds the lock across calls; the session re-enters it
        assert _same(session.segment(Prompts(text="aorta")), segmenter.segment(ras_volume, Prompts(text="aorta")))
