"""The exact and fast engines for class prompts, on the tiny network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxelprompt.errors import VoxelPromptError
from voxelprompt.families.vista3d.inference.engine import FastSettings, prepare_network, stitched_class_labels, window_grid
from voxelprompt.families.vista3d.inference.engine.class_windows import class_embedding_matrix, window_class_logits
from voxelprompt.families.vista3d.inference.postprocess import logits_to_labels
from voxelprompt.families.vista3d.inference.profiles import get_profile
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
from voxelprompt.families.vista3d.inference.windows import class_logits
from voxelprompt.types import Prompts, Volume

ROI = (32, 32, 32)
CLASSES = (1, 3, 5, 6, 14, 22)


@pytest.fixture()
def image():
    return torch.rand(1, 1, 50, 40, 70, generator=torch.Generator().manual_seed(0))


def test_window_logits_equal_monai_forward(tiny_net, one_thread):
    x = torch.rand(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = tiny_net(x, class_vector=torch.tensor(CLASSES)[:, None], transpose=True)[0].permute(1, 2, 3, 0)
        ours = window_class_logits(tiny_net, x, class_embedding_matrix(tiny_net.class_head, CLASSES))
    assert ours.shape == (32, 32, 32, len(CLASSES))
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("profile", ["bundle", "research"])
def test_exact_labels_equal_monais_on_a_prepared_network(tiny_net, image, profile, one_thread):
    import copy

    prof = get_profile(profile).with_roi(ROI)
    expected = logits_to_labels(class_logits(image, tiny_net, CLASSES, prof, 132), CLASSES)
    prepared = prepare_network(copy.deepcopy(tiny_net), channels_last=True)
    labels, windows = stitched_class_labels(image, prepared, CLASSES, prof, 132, channels_last=True)
    assert windows == len(window_grid(tuple(image.shape[-3:]), ROI, prof.class_overlap))
    assert len(expected.unique()) > 3
    assert torch.equal(labels, expected.as_subclass(torch.Tensor))


def test_fast_settings_that_change_nothing_give_the_exact_result(tiny_net, image, one_thread):
    prof = get_profile("bundle").with_roi(ROI)
    exact, n_exact = stitched_class_labels(image, tiny_net, CLASSES, prof, 132)
    unchanged = FastSettings(overlap=0.25, skip_below=None, coarse=False)
    same, n_same = stitched_class_labels(image, tiny_net, CLASSES, prof, 132, fast=unchanged)
    assert n_same == n_exact and torch.equal(same, exact)


def test_fast_mode_skips_air_windows_and_uses_fewer_windows(tiny_net, one_thread):
    image = torch.zeros(1, 1, 96, 40, 40)
    image[..., :40, :, :] = torch.rand(1, 1, 40, 40, 40, generator=torch.Generator().manual_seed(2))
    prof = get_profile("bundle").with_roi(ROI)
    _, n_exact = stitched_class_labels(image, tiny_net, CLASSES, prof, 132)
    labels, n_fast = stitched_class_labels(image, tiny_net, CLASSES, prof, 132, fast=FastSettings(coarse=False))
    assert n_fast < n_exact
    assert int(labels[0, 64:].count_nonzero()) == 0  # never evaluated: background
    assert int(labels[0, :32].count_nonzero()) > 0
    argmax, _ = stitched_class_labels(image, tiny_net, CLASSES, prof, 132, fast=FastSettings(coarse=False, running_max=True))
    assert argmax.shape == labels.shape and int(argmax[0, :32].count_nonzero()) > 0


def test_coarse_to_fine_keeps_fine_labels_where_fine_windows_ran(tiny_net, image, one_thread):
    prof = get_profile("bundle").with_roi(ROI)
    tiles = FastSettings(overlap=0.0, coarse=False, skip_below=None)
    fine_only, n_fine = stitched_class_labels(image, tiny_net, CLASSES, prof, 132, fast=tiles)
    # A margin wider than the image: any structure found makes every fine window run.
    everywhere = FastSettings(overlap=0.0, coarse=True, skip_below=None, margin=100)
    both, n_both = stitched_class_labels(image, tiny_net, CLASSES, prof, 132, fast=everywhere)
    assert torch.equal(both, fine_only) and n_both > n_fine


def test_coarse_only_runs_an_eighth_of_the_work(tiny_net, one_thread):
    image = torch.rand(1, 1, 64, 64, 64, generator=torch.Generator().manual_seed(3))
    prof = get_profile("bundle").with_roi(ROI)
    tiles = FastSettings(overlap=0.0, coarse=False, skip_below=None)
    _, n_fine = stitched_class_labels(image, tiny_net, CLASSES, prof, 132, fast=tiles)
    coarse, n_coarse = stitched_class_labels(image, tiny_net, CLASSES, prof, 132, fast=FastSettings(overlap=0.0, fine=False, skip_below=None))
    assert (n_fine, n_coarse) == (8, 1)
    blocks = coarse[0].reshape(32, 2, 32, 2, 32, 2)
    assert bool((blocks == blocks[:, :1, :, :1, :, :1]).all())  # one label per 2x2x2 block
    assert len(coarse.unique()) > 2
    with pytest.raises(ValueError, match="fine=False needs coarse=True"):
        FastSettings(coarse=False, fine=False)


def test_fast_overlap_defaults_to_at_most_a_quarter():
    assert FastSettings().overlap_for(get_profile("research")) == 0.25
    assert FastSettings().overlap_for(get_profile("bundle")) == 0.25
    assert FastSettings(overlap=0.0).overlap_for(get_profile("research")) == 0.0
    with pytest.raises(ValueError, match="overlap must be in"):
        FastSettings(overlap=1.0)


def test_zero_shot_ids_with_the_bundle_rule_are_background_without_running_windows(tiny_net, image):
    labels, windows = stitched_class_labels(image, tiny_net, (1, 140), get_profile("bundle").with_roi(ROI), 132)
    assert windows == 0 and int(labels.count_nonzero()) == 0


def test_segmenter_engines_and_their_errors(tiny_net, tiny_spec, one_thread):
    with pytest.raises(VoxelPromptError, match="unknown engine 'quick'"):
        Vista3DSegmenter(tiny_net, tiny_spec, engine="quick")
    with pytest.raises(VoxelPromptError, match="amp needs a CUDA device"):
        Vista3DSegmenter(tiny_net, tiny_spec, amp=True)
    volume = Volume(np.random.default_rng(0).normal(40, 200, (30, 30, 24)).astype(np.float32), np.diag([1.5, 1.5, 1.5, 1]))
    prof = get_profile("bundle").with_roi(ROI)
    results = {
        e: Vista3DSegmenter(tiny_net, tiny_spec, profile=prof, engine=e).segment(volume, Prompts(classes=(1, 3)))
        for e in ("reference", "exact", "fast")
    }
    np.testing.assert_array_equal(results["exact"].labels.array, results["reference"].labels.array)
    assert results["fast"].labels.shape == volume.shape
    assert results["exact"].windows == results["reference"].windows


def test_exact_labels_unchanged_when_the_loop_runs_with_the_default_allocator(tiny_net, image, monkeypatch, one_thread):
    from voxelprompt.families.vista3d.inference.engine import class_windows

    net = prepare_network(__import__("copy").deepcopy(tiny_net), channels_last=True)
    prof = get_profile("bundle").with_roi(ROI)
    switched = []
    real = class_windows.default_malloc

    def spy(active=True):
        switched.append(active)
        return real(active)

    monkeypatch.setattr(class_windows, "default_malloc", spy)
    kept, _ = stitched_class_labels(image, net, CLASSES, prof, 132, channels_last=True)
    monkeypatch.setattr(class_windows, "LARGE_OPEN_BYTES", -1)  # every grid counts as large
    default, _ = stitched_class_labels(image, net, CLASSES, prof, 132, channels_last=True)
    assert switched == [False, True]
    assert torch.equal(default, kept)
