"""The cached, folded point head against MONAI's ``PointMappingSAM.forward`` on a width-8 VISTA3D.

Tolerance: logits of order 1 agree to 1e-5 (absolute and relative); only the summation order of
the folded last convolution differs from MONAI, so observed differences are ~1e-6.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from voxelprompt.families.vista3d.inference.engine.point_head import (
    PointWindowFeatures,
    _folded_conv,
    encode_window,
    predict_points,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks (tests/conftest.py)

SIZE = 32
TOL = {"rtol": 1e-5, "atol": 1e-5}
CL = torch.channels_last_3d


@pytest.fixture(scope="module")
def head(tiny_net):
    return tiny_net.point_head


@pytest.fixture(scope="module")
def out(tiny_net):
    """A random point-branch encoder output [1, 8, 32, 32, 32] (the encoder itself is not needed)."""
    gen = torch.Generator().manual_seed(1)
    return torch.randn(1, tiny_net.point_head.transformer.embedding_dim, SIZE, SIZE, SIZE, generator=gen)


def _t(values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype)


# name -> (point_coords [B, N, 3], point_labels [B, N], class_vector or None)
CASES = {
    "one positive click": (_t([[[10, 12, 20]]]), _t([[1]], torch.long), None),
    "positive and negative": (_t([[[10, 12, 20], [25, 5, 8]]]), _t([[1, 0]], torch.long), None),
    "padded points": (_t([[[10, 12, 20], [0, 0, 0], [3, 3, 3]]]), _t([[1, -1, -1]], torch.long), None),
    "special-class labels": (_t([[[10, 12, 20], [25, 5, 8]]]), _t([[3, 2]], torch.long), None),
    "supported class": (_t([[[10, 12, 20]]]), _t([[1]], torch.long), _t([[5]], torch.long)),
    "zero-shot class": (_t([[[10, 12, 20]]]), _t([[1]], torch.long), _t([[200]], torch.long)),
    "two objects": (
        _t([[[10, 12, 20], [25, 5, 8]], [[30, 30, 2], [0, 0, 0]]]),
        _t([[1, 0], [1, -1]], torch.long),
        _t([1, 300], torch.long),
    ),
}


def _reference(head, out, coords, labels, classes):
    with torch.no_grad():
        return head(out, coords, labels, class_vector=classes)


@pytest.mark.parametrize("name", list(CASES))
def test_equals_monai_point_head(head, out, name):
    coords, labels, classes = CASES[name]
    expected = _reference(head, out, coords, labels, classes)
    got = predict_points(head, encode_window(head, out), coords, labels, classes)
    assert got.shape == (coords.shape[0], 1, SIZE, SIZE, SIZE)
    torch.testing.assert_close(got, expected, **TOL)


def test_prompts_change_the_logits_far_beyond_the_tolerance(head, out):
    """Guards the comparisons above: the random head is not near-constant in any prompt part."""
    features = encode_window(head, out)
    coords = _t([[[10, 12, 20], [25, 5, 8]]])
    base = predict_points(head, features, coords, _t([[1, 0]], torch.long))
    variants = [
        predict_points(head, features, coords, _t([[3, 2]], torch.long)),
        predict_points(head, features, coords, _t([[1, -1]], torch.long)),
        predict_points(head, features, coords, _t([[1, 0]], torch.long), _t([200], torch.long)),
        predict_points(head, features, coords + 4, _t([[1, 0]], torch.long)),
    ]
    for variant in variants:
        assert (variant - base).abs().max() > 1e3 * TOL["atol"]


def test_repeated_calls_are_identical_and_leave_cache_and_weights_untouched(head, out):
    features = encode_window(head, out)
    low, pos = features.low.clone(), features.pos.clone()
    weights = {k: v.clone() for k, v in head.state_dict().items()}
    coords, labels, classes = CASES["padded points"]
    first = predict_points(head, features, coords, labels, classes)
    second = predict_points(head, features, coords, labels, classes)
    assert torch.equal(first, second)
    assert torch.equal(features.low, low) and torch.equal(features.pos, pos)
    assert all(torch.equal(v, weights[k]) for k, v in head.state_dict().items())


def test_channels_last_encoder_output_and_either_layout_of_cached_features(head, out):
    coords, labels, classes = CASES["two objects"]
    expected = _reference(head, out, coords, labels, classes)
    from_cl_input = encode_window(head, out.to(memory_format=CL))
    torch.testing.assert_close(predict_points(head, from_cl_input, coords, labels, classes), expected, **TOL)
    features = encode_window(head, out)
    for memory_format in (torch.contiguous_format, CL):
        relaid = dataclasses.replace(features, low=features.low.contiguous(memory_format=memory_format))
        assert relaid.low.is_contiguous(memory_format=memory_format)
        torch.testing.assert_close(predict_points(head, relaid, coords, labels, classes), expected, **TOL)


def test_features_hold_the_low_resolution_grid(head, out):
    features = encode_window(head, out)
    c = out.shape[1]
    half = SIZE // 2
    assert features.low.shape == features.pos.shape == (1, c, half, half, half)
    assert features.shape == (SIZE, SIZE, SIZE)
    assert features.nbytes == 2 * c * half**3 * 4
    torch.testing.assert_close(features.pos[0], head.pe_layer((half, half, half)), rtol=0, atol=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        features.low = features.pos  # type: ignore[misc]
    assert isinstance(features, PointWindowFeatures)


@pytest.mark.parametrize("kernel, padding", [(3, 1), (3, 0), (3, 2), ((3, 1, 5), (1, 0, 2))])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, CL])
def test_folded_convolution_equals_hypernetwork_product(kernel, padding, memory_format):
    gen = torch.Generator().manual_seed(2)
    conv = torch.nn.Conv3d(6, 6, kernel, padding=padding)
    x = torch.randn(1, 6, 9, 10, 11, generator=gen).to(memory_format=memory_format)
    hyper = torch.randn(6, generator=gen)
    with torch.no_grad():
        full = conv(x)
        expected = (hyper @ full.flatten(2)).reshape(1, 1, *full.shape[2:])
        torch.testing.assert_close(_folded_conv(conv, hyper, x), expected, **TOL)


def test_bad_input_names_the_shape(head, out):
    features = encode_window(head, out)
    with pytest.raises(ValueError, match=r"\[B, N, 3\]"):
        predict_points(head, features, _t([[10, 12, 20]]), _t([[1]], torch.long))
    with pytest.raises(ValueError, match="point_labels"):
        predict_points(head, features, _t([[[10, 12, 20]]]), _t([[1, 0]], torch.long))
    with pytest.raises(ValueError, match="class_vector"):
        predict_points(head, features, _t([[[10, 12, 20]]]), _t([[1]], torch.long), _t([1, 2], torch.long))
    with pytest.raises(ValueError, match="out must"):
        encode_window(head, out.expand(2, -1, -1, -1, -1))


def test_no_objects_give_no_logits(head, out):
    got = predict_points(head, encode_window(head, out), torch.zeros(0, 1, 3), torch.zeros(0, 1, dtype=torch.long))
    assert got.shape == (0, 1, SIZE, SIZE, SIZE)
