"""Interactive sessions: identical labels to one-shot segmentation, with cached work skipped."""

from __future__ import annotations

import numpy as np
import pytest

from voxelprompt.errors import PromptError
from voxelprompt.families import check_capabilities
from voxelprompt.families.vista3d.inference.session import InteractiveSession
from voxelprompt.types import OBJECT_ID, Points, Prompts

ROI = (64, 64, 64)
P1, P2, N1 = (20.0, 20.0, 10.0), (30.0, 12.0, 8.0), (8.0, 30.0, 12.0)


def test_click_sequence_matches_one_shot_and_reuses_work(segmenter, volume):
    session = InteractiveSession(segmenter, volume, click_windows="centred")
    steps = [
        Prompts(classes=(1,), points=Points.from_lists([P1])),
        Prompts(classes=(1,), points=Points.from_lists([P1, P2])),
        Prompts(classes=(1,), points=Points.from_lists([P1, P2], [N1])),
    ]
    for i, prompts in enumerate(steps):
        ours = session.segment(prompts)
        ref = segmenter.segment(volume, prompts)
        np.testing.assert_array_equal(ours.labels.array, ref.labels.array)
        np.testing.assert_array_equal(ours.labels.affine, volume.affine)
        if i > 0:  # the automatic pass is cached: only the click windows run
            assert ours.windows == len(prompts.points) < ref.windows
    # every click window was encoded once; later calls found the earlier ones in the cache
    assert session.stats.misses == 3 and session.stats.hits == 1 + 2


def test_grid_windows_answer_later_clicks_from_one_encoding(segmenter, volume):
    session = InteractiveSession(segmenter, volume, click_windows="grid")
    steps = [
        Prompts(points=Points.from_lists([P1])),
        Prompts(points=Points.from_lists([P1, P2])),
        Prompts(points=Points.from_lists([P1, P2], [N1])),
        Prompts(classes=(1,), points=Points.from_lists([P1, P2], [N1])),
    ]
    misses = []
    for prompts in steps:
        ours = session.segment(prompts)
        ref = segmenter.segment_prepared(segmenter.prepare(volume), prompts, click_windows="grid")
        np.testing.assert_array_equal(ours.labels.array, ref.labels.array)
        # the tiny random model's point-only objects are (nearly) empty; the class edit is not
        assert ours.labels.array.any() or not prompts.classes
        misses.append(session.stats.misses)
    # Each grid window is encoded once (the crop has 2x2x1 windows of 64^3); repeating the clicks
    # with a class prompt encodes nothing new.
    assert misses[0] == 1 and misses[-1] == misses[-2] <= 4
    assert session.stats.hits >= 3  # every later step reuses at least the first click's window
    with pytest.raises(ValueError, match="click_windows must be grid or centred"):
        InteractiveSession(segmenter, volume, click_windows="nearest")


def test_point_only_and_class_prompts_match(segmenter, volume):
    session = InteractiveSession(segmenter, volume, click_windows="centred")
    for prompts in (Prompts(points=Points.from_lists([P1], [N1])), Prompts(classes=(1, 3, 6))):
        np.testing.assert_array_equal(
            session.segment(prompts).labels.array, segmenter.segment(volume, prompts).labels.array
        )


def test_edit_after_everything_starts_from_the_shown_result(segmenter, volume):
    """An edit after a class pass costs only its click windows and starts from what was shown."""
    session = InteractiveSession(segmenter, volume, edit_shown=True)
    shown = session.segment(Prompts(classes=(1, 3, 6))).labels.array
    edit = Prompts(classes=(3,), points=Points.from_lists([P1]))
    edited = session.segment(edit)
    assert edited.windows == 1  # the automatic pass is not repeated
    assert "click_changed_voxels" in edited.extras
    # Outside the clicked 64^3 window (96 mm at 1.5 mm) the edit keeps the shown spleen exactly.
    offsets = np.abs(volume.voxel_to_world(np.indices(volume.shape).reshape(3, -1).T) - volume.voxel_to_world(np.array([P1])))
    far = (offsets > 48 + 3.0).any(axis=1).reshape(volume.shape)
    assert far.any()
    np.testing.assert_array_equal(edited.labels.array[far] == 3, shown[far] == 3)
    one_shot = segmenter.segment_prepared(segmenter.prepare(volume), edit, click_windows="grid")
    assert one_shot.windows > 1  # a one-shot call recomputes the single-class automatic result


def test_memory_budget_evicts_least_recently_used(segmenter, volume):
    # width-8 point features of one 64^3 window: downsampled features + positional encoding at 32^3
    one_window_mb = 2 * 8 * 32**3 * 4 / 2**20 * 1.01
    session = InteractiveSession(segmenter, volume, memory_budget_mb=one_window_mb, click_windows="centred")
    session.segment(Prompts(points=Points.from_lists([P1, P2])))
    assert session.stats.evictions == 1 and len(session._net.cache.entries) == 1
    assert 0 < session.stats.bytes <= one_window_mb * 2**20
    session.reset()
    assert session.stats.bytes == 0 and not session._auto


# ---- Algorithm 1 on a given mask (Prompts.previous_mask: the nnInteractive initial segmentation) ----


@pytest.fixture(scope="module")
def previous(volume):
    mask = np.zeros(volume.shape, dtype=bool)
    mask[10:30, 12:28, 4:16] = True
    return mask


@pytest.mark.parametrize("windows", ["centred", "grid"])
def test_session_edit_of_a_previous_mask_equals_one_shot(segmenter, volume, previous, windows):
    session = InteractiveSession(segmenter, volume, click_windows=windows)
    for prompts in (
        Prompts(points=Points.from_lists([P1]), previous_mask=previous),
        Prompts(points=Points.from_lists([P1], [N1]), previous_mask=previous),
        Prompts(classes=(1,), points=Points.from_lists([P1]), previous_mask=previous),
    ):
        ours = session.segment(prompts)
        ref = segmenter.segment_prepared(segmenter.prepare(volume), prompts, click_windows=windows)
        np.testing.assert_array_equal(ours.labels.array, ref.labels.array)
        assert set(np.unique(ours.labels.array)) <= {0, prompts.classes[0] if prompts.classes else OBJECT_ID}
        assert "previous mask" in ours.notes[0]


def test_clicks_only_add_or_only_remove_components(segmenter, volume, previous):
    """Algorithm 1: positive clicks add click components to the mask, negative clicks remove
    components from it; the rest of the mask stays."""
    added = segmenter.segment(volume, Prompts(points=Points.from_lists([P1]), previous_mask=previous)).labels.array != 0
    assert added.sum() >= previous.sum() and (added | previous).sum() == added.sum()
    removed = segmenter.segment(volume, Prompts(points=Points.from_lists([], [N1]), previous_mask=previous)).labels.array != 0
    assert not (removed & ~previous).any()
    empty = np.zeros_like(previous)
    none = segmenter.segment(volume, Prompts(points=Points.from_lists([], [N1]), previous_mask=empty)).labels.array
    assert not none.any()


def test_previous_mask_needs_clicks_the_grid_and_the_capability(segmenter, volume, previous):
    with pytest.raises(PromptError, match="edited by clicks"):
        segmenter.segment(volume, Prompts(classes=(1,), previous_mask=previous))
    with pytest.raises(PromptError, match="shape"):
        segmenter.segment(volume, Prompts(points=Points.from_lists([P1]), previous_mask=previous[:-1]))
    with pytest.raises(PromptError, match="previous-mask edits"):
        check_capabilities(Prompts(points=Points.from_lists([P1]), previous_mask=previous), "segvol")
