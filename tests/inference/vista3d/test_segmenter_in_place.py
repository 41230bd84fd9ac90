"""A segmenter that owns its network prepares it in place: one copy of the weights, same labels."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from voxelprompt.families.vista3d.inference.engine import prepare_network
from voxelprompt.families.vista3d.inference.engine.layout import InstanceNorm3dAnyLayout
from voxelprompt.families.vista3d.inference.profiles import get_profile
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
from voxelprompt.types import Points, Prompts, Volume

ROI = (32, 32, 32)


@pytest.fixture()
def volume() -> Volume:
    array = np.random.default_rng(0).normal(40, 200, (30, 30, 40)).astype(np.float32)
    return Volume(array, np.diag([1.5, 1.5, 1.5, 1]))


def _pointers(net: torch.nn.Module) -> set[int]:
    return {p.data_ptr() for p in net.parameters()}


def _segmenter(net, spec, engine: str, in_place: bool) -> Vista3DSegmenter:
    prof = get_profile("bundle").with_roi(ROI)
    return Vista3DSegmenter(net, spec, profile=prof, engine=engine, prepare_in_place=in_place)


@pytest.mark.parametrize("engine", ["reference", "exact", "fast"])
def test_in_place_gives_the_labels_of_a_copy_for_every_engine(tiny_net, tiny_spec, volume, engine, one_thread):
    copied = _segmenter(tiny_net, tiny_spec, engine, in_place=False)  # the session fixture stays MONAI's
    own = _segmenter(copy.deepcopy(tiny_net), tiny_spec, engine, in_place=True)
    for prompts in (Prompts(classes=(1, 3, 5)), Prompts(points=Points.from_lists([(15.0, 15.0, 20.0)]), classes=(3,))):
        a, b = copied.segment(volume, prompts), own.segment(volume, prompts)
        np.testing.assert_array_equal(b.labels.array, a.labels.array)
        assert b.windows == a.windows
    assert not any(isinstance(m, InstanceNorm3dAnyLayout) for m in tiny_net.modules())


def test_in_place_engines_share_the_one_copy_of_the_weights(tiny_net, tiny_spec):
    net = copy.deepcopy(tiny_net)
    seg = _segmenter(net, tiny_spec, "exact", in_place=True)
    assert seg.network is net and _pointers(seg.engine_net()) == _pointers(net)
    assert seg.click_net() is seg.engine_net()
    # The state dict keeps the checkpoint's keys and values (the point head is wrapped only in the view).
    state, expected = net.state_dict(), tiny_net.state_dict()
    assert list(state) == list(expected) and all(torch.equal(state[k], expected[k]) for k in state)
    # Without in-place preparation the engines run a copy, and the network stays MONAI's.
    other = _segmenter(tiny_net, tiny_spec, "exact", in_place=False)
    assert _pointers(other.engine_net()).isdisjoint(_pointers(tiny_net)) and other.monai_net() is tiny_net
    # The reference engine never prepares, in place or not.
    ref_net = copy.deepcopy(tiny_net)
    ref = _segmenter(ref_net, tiny_spec, "reference", in_place=True)
    assert not ref.in_place and ref.click_net() is ref_net
    assert not any(isinstance(m, InstanceNorm3dAnyLayout) for m in ref_net.modules())


def test_monai_net_of_an_in_place_segmenter_is_monais_forward(tiny_net, tiny_spec, volume, one_thread):
    seg = _segmenter(copy.deepcopy(tiny_net), tiny_spec, "exact", in_place=True)
    monai = seg.monai_net()
    assert monai is seg.monai_net() and _pointers(monai).isdisjoint(_pointers(seg.network))
    x = torch.rand(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(3))
    vector = torch.tensor([1, 3])[:, None]
    with torch.inference_mode():
        assert torch.equal(monai(x, class_vector=vector, transpose=True), tiny_net(x, class_vector=vector, transpose=True))
    # Switching a loaded segmenter to the reference engine runs MONAI's network, not the prepared one.
    expected = _segmenter(tiny_net, tiny_spec, "reference", in_place=False).segment(volume, Prompts(classes=(1, 3)))
    seg.engine = "reference"
    np.testing.assert_array_equal(seg.segment(volume, Prompts(classes=(1, 3))).labels.array, expected.labels.array)


def test_from_checkpoint_prepares_its_own_network_in_place(tiny_checkpoint, tiny_net):
    seg = Vista3DSegmenter.from_checkpoint(tiny_checkpoint, profile="bundle", roi_size=ROI)
    assert seg.in_place and _pointers(seg.engine_net()) == _pointers(seg.network)
    assert any(isinstance(m, InstanceNorm3dAnyLayout) for m in seg.network.modules())
    kept = Vista3DSegmenter.from_checkpoint(tiny_checkpoint, roi_size=ROI, prepare_in_place=False)
    assert not kept.in_place and not any(isinstance(m, InstanceNorm3dAnyLayout) for m in kept.network.modules())
    prepared = prepare_network(copy.deepcopy(tiny_net))
    assert [type(m) for m in seg.network.modules()] == [type(m) for m in prepared.modules()]
