"""Layout-preserving VISTA3D layers: equal to the PyTorch layers they replace, in both layouts."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from voxelprompt.families.vista3d.inference.engine.layout import (
    InstanceNorm3dAnyLayout,
    SubpixelConvTranspose3d,
    prepare_network,
    restore_network,
    to_layout,
)

CL = torch.channels_last_3d
# Float32 results of differently ordered sums: layer outputs are O(1), so 1e-5 is ~100 ulps.
LAYER_TOL = {"rtol": 1e-5, "atol": 1e-5}
# Through the ~60 layers of the image encoder the rounding differences compound.
NETWORK_TOL = {"rtol": 1e-4, "atol": 1e-4}


def in_layout(x: torch.Tensor, channels_last: bool) -> bool:
    return x.is_contiguous(memory_format=CL if channels_last else torch.contiguous_format)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("affine, bias", [(False, False), (True, True), (True, False)])
def test_instance_norm_matches_torch(affine, bias, channels_last, one_thread):
    norm = nn.InstanceNorm3d(6, affine=affine, bias=bias)
    if affine:
        with torch.no_grad():
            norm.weight.copy_(randn(6, seed=1))
            if bias:
                norm.bias.copy_(randn(6, seed=2))
    # An offset mean checks the centring; odd, unequal sizes check the reduction axes.
    x = randn(2, 6, 5, 6, 7) * 3 + 2
    ours = InstanceNorm3dAnyLayout(norm)
    with torch.no_grad():
        expected = norm(x)
        got = ours(to_layout(x, channels_last))
    torch.testing.assert_close(got, expected, **LAYER_TOL)
    assert in_layout(got, channels_last)


def test_instance_norm_unbatched_input(one_thread):
    norm = nn.InstanceNorm3d(3, affine=True)
    x = randn(3, 4, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(InstanceNorm3dAnyLayout(norm)(x), norm(x), **LAYER_TOL)


def test_instance_norm_gradients_match(one_thread):
    norm = nn.InstanceNorm3d(4, affine=True)
    ours = InstanceNorm3dAnyLayout(copy.deepcopy(norm))
    x = randn(1, 4, 4, 5, 6)
    grads = []
    for module, layout in ((norm, False), (ours, True)):
        xi = to_layout(x, layout).detach().requires_grad_()
        (module(xi) * randn(1, 4, 4, 5, 6, seed=3)).sum().backward()
        grads.append((xi.grad, module.weight.grad, module.bias.grad))
    for got, expected in zip(grads[1], grads[0]):
        torch.testing.assert_close(got, expected, **LAYER_TOL)


def test_instance_norm_keeps_state_dict():
    norm = nn.InstanceNorm3d(3, affine=True)
    assert InstanceNorm3dAnyLayout(norm).state_dict().keys() == norm.state_dict().keys()


def test_instance_norm_rejects_running_stats():
    with pytest.raises(ValueError, match="running statistics"):
        InstanceNorm3dAnyLayout(nn.InstanceNorm3d(4, track_running_stats=True))


DECONV_CASES = {
    # VISTA3D: SegResNetDS2 UpSample(mode="deconv", kernel_size=3) and point head output_upscaling[0].
    "k3s2p1op1": {"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1},
    "k2s2p0": {"kernel_size": 2, "stride": 2},
    "k4s2p1": {"kernel_size": 4, "stride": 2, "padding": 1},  # taps before the voxel: pads in front
    "anisotropic": {"kernel_size": (3, 3, 1), "stride": (2, 2, 1), "padding": (1, 1, 0), "output_padding": (1, 1, 0)},
    "k3s3p0": {"kernel_size": 3, "stride": 3},
}


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [(4, 4, 4), (3, 5, 7), (4, 5, 6)], ids=["even", "odd", "mixed"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("config", list(DECONV_CASES), ids=list(DECONV_CASES))
def test_subpixel_matches_conv_transpose(config, bias, size, channels_last, one_thread):
    torch.manual_seed(0)
    conv = nn.ConvTranspose3d(6, 5, bias=bias, **DECONV_CASES[config])
    x = randn(2, 6, *size)
    ours = SubpixelConvTranspose3d(conv, channels_last=channels_last)
    with torch.no_grad():
        expected = conv(x)
        got = ours(to_layout(x, channels_last))
    torch.testing.assert_close(got, expected, **LAYER_TOL)
    assert in_layout(got, channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
def test_subpixel_other_input_layout(channels_last, one_thread):
    # Kernels stored in one layout, input in the other: still exact, output in the input's layout.
    torch.manual_seed(0)
    conv = nn.ConvTranspose3d(4, 3, **DECONV_CASES["k3s2p1op1"])
    x = to_layout(randn(1, 4, 3, 4, 5), not channels_last)
    with torch.no_grad():
        got = SubpixelConvTranspose3d(conv, channels_last=channels_last)(x)
        torch.testing.assert_close(got, conv(x), **LAYER_TOL)
    assert in_layout(got, not channels_last)


def test_subpixel_follows_loaded_weights(one_thread):
    torch.manual_seed(0)
    first, second = (nn.ConvTranspose3d(4, 3, **DECONV_CASES["k3s2p1op1"]) for _ in range(2))
    ours = SubpixelConvTranspose3d(first)
    assert ours.state_dict().keys() == first.state_dict().keys()
    x = randn(1, 4, 3, 4, 5)
    with torch.inference_mode():
        ours(x)  # fills the cache from the first weights
    ours.load_state_dict(second.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), second(x), **LAYER_TOL)


def test_subpixel_gradients_match(one_thread):
    torch.manual_seed(0)
    conv = nn.ConvTranspose3d(3, 2, **DECONV_CASES["k3s2p1op1"])
    ours = SubpixelConvTranspose3d(copy.deepcopy(conv))
    x = randn(1, 3, 3, 4, 5)
    upstream = randn(1, 2, 6, 8, 10, seed=4)
    grads = []
    for module in (conv, ours):
        xi = x.clone().requires_grad_()
        (module(xi) * upstream).sum().backward()
        grads.append((xi.grad, module.weight.grad, module.bias.grad))
    for got, expected in zip(grads[1], grads[0]):
        torch.testing.assert_close(got, expected, **LAYER_TOL)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kernel_size": 3, "stride": 2, "padding": 1, "groups": 2}, "groups"),
        ({"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1, "dilation": 2}, "dilation"),
        ({"kernel_size": 3, "stride": 2, "padding": 1}, "output size"),  # 2n - 1 outputs
        ({"kernel_size": 1, "stride": 2, "output_padding": 1}, "without taps"),
    ],
    ids=["groups", "dilation", "odd-output", "kernel<stride"],
)
def test_subpixel_rejects_unsupported(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SubpixelConvTranspose3d(nn.ConvTranspose3d(4, 4, **kwargs))


def test_to_layout_restrides_one_channel_images():
    # A one-channel image counts as contiguous in both formats; convolutions read the strides.
    x = randn(1, 1, 4, 5, 6)
    y = to_layout(x, True)
    assert y.stride(1) == 1 and torch.equal(y, x)
    assert to_layout(y, False).stride() == x.stride()
    with pytest.raises(ValueError, match="D, H, W"):
        to_layout(x[0], True)


def as_list(x: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return x if isinstance(x, list) else [x]


def count(net: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


@pytest.mark.parametrize("subpixel", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_prepare_network_matches_monai(tiny_net, channels_last, subpixel, one_thread):
    reference = tiny_net  # session fixture: only read here
    n_norms, n_deconvs = count(reference, nn.InstanceNorm3d), count(reference, nn.ConvTranspose3d)
    net = prepare_network(copy.deepcopy(reference), channels_last=channels_last, subpixel=subpixel)

    assert count(net, nn.InstanceNorm3d) == 0 and count(net, InstanceNorm3dAnyLayout) == n_norms
    assert count(net, nn.InstanceNorm1d) == 1  # the class head's norm over [B, 1, C] is left alone
    assert count(net, nn.ConvTranspose3d) == (0 if subpixel else n_deconvs)
    assert count(net, SubpixelConvTranspose3d) == (n_deconvs if subpixel else 0)
    state, expected_state = net.state_dict(), reference.state_dict()
    assert state.keys() == expected_state.keys()
    assert all(torch.equal(state[k], expected_state[k]) for k in state)
    assert all(in_layout(p, channels_last) for p in net.parameters() if p.dim() == 5)

    x = torch.rand(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = reference.image_encoder(x, with_point=True, with_label=True)
        got = net.image_encoder(to_layout(x, channels_last), with_point=True, with_label=True)
    # Each branch is one tensor, or a list of them with deep supervision (dsdepth > 1).
    for got_branch, expected_branch in zip(got, expected):
        got_list, expected_list = as_list(got_branch), as_list(expected_branch)
        assert len(got_list) == len(expected_list) >= 1
        for g, e in zip(got_list, expected_list):
            torch.testing.assert_close(g, e, **NETWORK_TOL)


def test_prepare_network_is_idempotent(tiny_net):
    net = prepare_network(copy.deepcopy(tiny_net), subpixel=True)
    before = {name: id(m) for name, m in net.named_modules()}
    assert prepare_network(net, subpixel=True) is net
    assert {name: id(m) for name, m in net.named_modules()} == before
    # Switching back to contiguous converts the sub-pixel kernels with the parameters.
    prepare_network(net, channels_last=False)
    assert all(in_layout(b, False) for b in net.buffers() if b.dim() == 5)


def test_restore_network_undoes_prepare_bit_for_bit(tiny_net, one_thread):
    reference = tiny_net  # session fixture: only read here
    restored = restore_network(prepare_network(copy.deepcopy(reference), channels_last=True))

    assert [type(m) for m in restored.modules()] == [type(m) for m in reference.modules()]
    state, expected_state = restored.state_dict(), reference.state_dict()
    assert list(state) == list(expected_state)
    assert all(torch.equal(state[k], expected_state[k]) for k in state)
    assert all(p.is_contiguous() for p in restored.parameters())
    x = torch.rand(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(2))
    vector = torch.tensor([1, 3, 5])[:, None]
    with torch.inference_mode():
        expected = reference(x, class_vector=vector, transpose=True)
        got = restored(x, class_vector=vector, transpose=True)
    assert torch.equal(got, expected)  # MONAI's modules and layout again: the same kernels


def test_restore_network_refuses_subpixel_kernels(tiny_net):
    net = prepare_network(copy.deepcopy(tiny_net), subpixel=True)
    with pytest.raises(ValueError, match="SubpixelConvTranspose3d"):
        restore_network(net)
