"""Exact, layout-preserving stand-ins for VISTA3D's instance norms and transposed convolutions.

oneDNN runs 3D convolutions faster on channels-last (NDHWC) tensors, but ``nn.InstanceNorm3d``
returns contiguous ones; :func:`prepare_network` swaps in layers that keep the input's layout.
"""

from __future__ import annotations

import itertools
import logging
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InstanceNorm3dAnyLayout", "SubpixelConvTranspose3d", "prepare_network", "restore_network", "to_layout"]

logger = logging.getLogger(__name__)

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def _memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last_3d if channels_last else torch.contiguous_format


def _is_channels_last(x: torch.Tensor) -> bool:
    # A tensor with one channel (or one voxel) is dense in both formats; calling it contiguous
    # is harmless because both orders then address memory identically.
    return x.dim() == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d)


def to_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """Return ``x`` in the memory format a prepared network expects (a copy only when needed).

    Uses ``Tensor.to`` rather than ``contiguous``: for a one-channel image both formats count as
    contiguous, and only ``to`` rewrites the strides that PyTorch's convolutions read the format from.

    Args:
        x: [B, C, D, H, W] image or feature map.
        channels_last: True for ``torch.channels_last_3d`` (NDHWC in memory), False for NCDHW.

    Returns:
        [B, C, D, H, W], same values, in the requested memory format.
    """
    if x.dim() != 5:
        raise ValueError(f"to_layout expects a [B, C, D, H, W] tensor, got shape {tuple(x.shape)}")
    return x.to(memory_format=_memory_format(channels_last))


class InstanceNorm3dAnyLayout(nn.Module):
    """``nn.InstanceNorm3d`` without running statistics, returning its input's memory format.

    PyTorch computes instance norm through a reshaped batch norm whose output is contiguous, which
    forces a format copy around every norm of a channels-last network. Here the statistics are
    reductions over the spatial axes, which keep any layout, and the normalisation is one fused
    ``(x - mean) * scale + shift`` pass, so results equal ``nn.InstanceNorm3d`` up to float rounding.

    Args:
        norm: the module to replace. Its affine parameters are shared, not copied, so the state
            dict keys (``weight``, ``bias``) and values stay those of ``norm``.

    Raises:
        ValueError: if ``norm`` tracks running statistics (eval mode would then use stored
            statistics, which this module does not implement).
    """

    def __init__(self, norm: nn.InstanceNorm3d) -> None:
        super().__init__()
        if not isinstance(norm, nn.InstanceNorm3d):
            raise ValueError(f"expected an nn.InstanceNorm3d, got {type(norm).__name__}")
        if norm.track_running_stats:
            raise ValueError(f"{norm} tracks running statistics; only track_running_stats=False is supported")
        self.num_features = norm.num_features
        self.eps = norm.eps
        # register_parameter accepts None, which keeps `self.weight is None` for affine=False.
        self.register_parameter("weight", norm.weight)
        self.register_parameter("bias", norm.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each channel of each sample over its spatial axes.

        Args:
            x: [B, C, D, H, W] (or unbatched [C, D, H, W]) in either memory format.

        Returns:
            Same shape, dtype and memory format as ``x``.
        """
        if x.dim() not in (4, 5):
            raise ValueError(f"expected a [B, C, D, H, W] or [C, D, H, W] tensor, got shape {tuple(x.shape)}")
        spatial = (-3, -2, -1)
        # Two passes (mean, then the centred second moment) are as accurate as PyTorch's kernel and
        # 2-8x faster than var_mean's Welford updates here; the centred copy becomes the output.
        centred = x - x.mean(spatial, keepdim=True)
        scale = torch.rsqrt(centred.square().mean(spatial, keepdim=True) + self.eps)  # [B, C, 1, 1, 1]
        if self.weight is not None:
            scale = scale * self.weight.view(-1, 1, 1, 1)
        shift = self.bias.view(-1, 1, 1, 1) if self.bias is not None else scale.new_zeros(())
        if torch.is_grad_enabled() and (x.requires_grad or scale.requires_grad or shift.requires_grad):
            return torch.addcmul(shift, centred, scale)  # autograd keeps `centred`: no in-place write
        # One fused pass into memory we own already; elementwise ops keep the strides of x.
        return torch.addcmul(shift, centred, scale, out=centred)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.weight is not None}, bias={self.bias is not None}"


def _axis_phases(kernel: int, stride: int, padding: int) -> list[tuple[list[int], int, int]]:
    """Per output phase of one axis: the transposed-conv taps and the padding of the equal conv.

    A transposed conv adds ``x[i] * w[k]`` to output ``o = stride * i - padding + k``. Output
    ``o = stride * m + r`` therefore sums ``x[m + d] * w[k]`` over the taps ``k`` congruent to
    ``r + padding`` (mod stride), at input offset ``d = (r + padding - k) / stride``. Taps in
    decreasing ``k`` have increasing ``d``: an ordinary cross-correlation with kernel
    ``w[taps]`` over ``x`` padded by ``-d_min`` before and ``d_max`` after (negative pads crop).

    Returns:
        For each phase r in 0..stride-1: (taps in decreasing k, pad before, pad after).
    """
    phases = []
    for r in range(stride):
        taps = [k for k in range(kernel - 1, -1, -1) if (r + padding - k) % stride == 0]
        offsets = [(r + padding - k) // stride for k in taps]
        phases.append((taps, -offsets[0] if taps else 0, offsets[-1] if taps else 0))
    return phases


def _unsupported(conv: nn.ConvTranspose3d) -> str | None:
    """Why ``conv`` cannot be re-expressed exactly by :class:`SubpixelConvTranspose3d`, or None."""
    if conv.groups != 1:
        return f"groups={conv.groups} (only 1)"
    if any(d != 1 for d in conv.dilation):
        return f"dilation={conv.dilation} (only 1)"
    if conv.padding_mode != "zeros":
        return f"padding_mode={conv.padding_mode!r}"
    for k, s, p, op in zip(conv.kernel_size, conv.stride, conv.padding, conv.output_padding):
        # Every phase must produce exactly one output per input voxel, i.e. out = stride * in.
        if k + op != s + 2 * p:
            return (
                f"kernel_size={conv.kernel_size}, stride={conv.stride}, padding={conv.padding}, "
                f"output_padding={conv.output_padding}: output size is not stride * input size"
            )
        if any(not taps for taps, _, _ in _axis_phases(k, s, p)):
            return f"kernel_size={conv.kernel_size} < stride={conv.stride} leaves output phases without taps"
    return None


class SubpixelConvTranspose3d(nn.Module):
    """``nn.ConvTranspose3d`` re-expressed exactly as one ordinary ``conv3d`` per output phase.

    With stride s, the outputs ``out[..., s*m + r]`` of each phase r (per axis) form an ordinary
    convolution of the input with a sub-kernel of the transposed-conv weight (see
    :func:`_axis_phases`); VISTA3D's kernel 3 / stride 2 / padding 1 / output padding 1 upsamplers
    become 8 convs with 1x1x1 to 2x2x2 kernels, the same multiply-adds as the transposed conv on
    PyTorch's forward-conv path. Results equal the transposed conv up to float rounding, and the
    output has the input's memory format.

    Speed: oneDNN's own transposed conv is slow on contiguous input only; on channels-last input it
    ran 1.5-2.5x faster than on contiguous and also faster than this module (2-core CPU, 2.13), which
    is why :func:`prepare_network` uses this module only when asked.

    Sub-kernels are precomputed in ``[C_out, C_in, ...]`` layout and refreshed when ``weight``
    changes in place (``load_state_dict``, optimiser steps); with autograd recording they are
    recomputed on every call so gradients reach ``weight``.

    Args:
        conv: the module to replace. ``weight`` and ``bias`` are shared, not copied, so the state
            dict is unchanged. Supported: groups 1, dilation 1, and per axis
            ``kernel + output_padding == stride + 2 * padding`` with ``kernel >= stride``
            (includes k3 s2 p1 op1 and k2 s2 p0 op0).
        channels_last: store the sub-kernels in ``torch.channels_last_3d``.

    Raises:
        ValueError: naming the configuration, if ``conv`` is not supported.
    """

    def __init__(self, conv: nn.ConvTranspose3d, channels_last: bool = False) -> None:
        super().__init__()
        if not isinstance(conv, nn.ConvTranspose3d):
            raise ValueError(f"expected an nn.ConvTranspose3d, got {type(conv).__name__}")
        problem = _unsupported(conv)
        if problem is not None:
            raise ValueError(f"cannot re-express {conv} as sub-pixel convolutions: {problem}")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride = tuple(conv.kernel_size), tuple(conv.stride)
        self.padding, self.output_padding = tuple(conv.padding), tuple(conv.output_padding)
        self.channels_last = channels_last
        self.weight = conv.weight  # [C_in, C_out, kD, kH, kW]
        self.register_parameter("bias", conv.bias)

        per_axis = [_axis_phases(k, s, p) for k, s, p in zip(self.kernel_size, self.stride, self.padding)]
        # The input is padded once, by the most any phase needs per axis; a phase needing less
        # computes a few border outputs too many (~3 % extra work at 32^3) and skips them.
        before = [max(b for _, b, _ in phases) for phases in per_axis]
        after = [max(a for _, _, a in phases) for phases in per_axis]
        self._pad = tuple(p for b, a in zip(reversed(before), reversed(after)) for p in (b, a))  # W first
        # Per phase: output offsets (rD, rH, rW), sub-kernel taps and first useful output per axis.
        self._offsets: list[tuple[int, ...]] = []
        self._taps: list[tuple[list[int], ...]] = []
        self._starts: list[tuple[int, ...]] = []
        for offsets in itertools.product(*(range(s) for s in self.stride)):
            axes = [phases[r] for phases, r in zip(per_axis, offsets)]
            self._offsets.append(offsets)
            self._taps.append(tuple(taps for taps, _, _ in axes))
            self._starts.append(tuple(most - b for most, (_, b, _) in zip(before, axes)))
        for i in range(len(self._offsets)):
            # Non-persistent: derived from `weight`, kept out of the state dict but moved by .to().
            self.register_buffer(f"phase_weight{i}", torch.empty(0), persistent=False)
        self._weight_key: tuple[int, int] | None = None
        self.refresh()

    def _phase_kernels(self, weight: torch.Tensor) -> list[torch.Tensor]:
        """Sub-kernels [C_out, C_in, |taps_D|, |taps_H|, |taps_W|] of ``weight``, one per phase."""
        w = weight.transpose(0, 1)
        kernels = []
        for taps in self._taps:
            kernel = w
            for axis, axis_taps in enumerate(taps):
                kernel = kernel.index_select(2 + axis, torch.tensor(axis_taps, device=w.device))
            kernels.append(kernel.to(memory_format=_memory_format(self.channels_last)))
        return kernels

    def refresh(self) -> None:
        """Recompute the cached sub-kernels from ``weight`` (done automatically on weight changes)."""
        with torch.no_grad():
            for i, kernel in enumerate(self._phase_kernels(self.weight)):
                setattr(self, f"phase_weight{i}", kernel)
        self._weight_key = self._current_weight_key()

    def _current_weight_key(self) -> tuple[int, int]:
        # _version counts in-place writes (load_state_dict, optimiser steps); tensors created under
        # inference_mode have no counter, but they cannot be written in place outside it either.
        weight = self.weight
        return id(weight), -1 if weight.is_inference() else weight._version

    def _kernels(self) -> list[torch.Tensor]:
        if torch.is_grad_enabled() and self.weight.requires_grad:
            return self._phase_kernels(self.weight)
        # .to() converts the buffers together with the weight, so the cache stays valid across
        # devices, dtypes and formats; only writes to the weight invalidate it.
        if self._weight_key != self._current_weight_key():
            self.refresh()
        return [getattr(self, f"phase_weight{i}") for i in range(len(self._offsets))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the transposed convolution.

        Args:
            x: [B, C_in, D, H, W] in either memory format.

        Returns:
            [B, C_out, sD * D, sH * H, sW * W] (s = stride), in the memory format of ``x``.
        """
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected a [B, {self.in_channels}, D, H, W] tensor, got shape {tuple(x.shape)}")
        batch, _, *size = x.shape
        out = torch.empty(
            (batch, self.out_channels, *(s * n for s, n in zip(self.stride, size))),
            dtype=x.dtype,
            device=x.device,
            memory_format=torch.channels_last_3d if _is_channels_last(x) else torch.contiguous_format,
        )
        padded = F.pad(x, self._pad) if any(self._pad) else x
        for offsets, starts, kernel in zip(self._offsets, self._starts, self._kernels()):
            phase = F.conv3d(padded, kernel, self.bias)
            useful = (slice(None), slice(None), *(slice(b, b + n) for b, n in zip(starts, size)))
            strided = (slice(None), slice(None), *(slice(r, None, s) for r, s in zip(offsets, self.stride)))
            out[strided] = phase[useful]
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, output_padding={self.output_padding}, bias={self.bias is not None}, "
            f"phases={len(self._offsets)}"
        )


def prepare_network(net: ModuleT, channels_last: bool = True, subpixel: bool = False) -> ModuleT:
    """Make ``net`` (a VISTA3D in practice) run in one memory format; modifies it in place.

    Replaces every ``nn.InstanceNorm3d`` by :class:`InstanceNorm3dAnyLayout`, optionally every
    supported ``nn.ConvTranspose3d`` by :class:`SubpixelConvTranspose3d` (modules that cannot be
    replaced are kept, with a log message), then converts the parameters to the requested format.
    ``nn.ConvTranspose3d`` itself keeps a channels-last input's layout. The state dict is
    unchanged, so checkpoints load into the prepared network. Calling it again is harmless; it
    never undoes a replacement.

    Inputs must then be given in the same format (:func:`to_layout`). MONAI's VISTA3D heads call
    ``.view`` on spatial tensors and so do not accept channels-last features; only the modules are
    prepared here.

    Args:
        net: the network; ``nn.InstanceNorm1d`` and other layers are left alone.
        channels_last: True for ``torch.channels_last_3d`` (the fast layout for oneDNN on CPU).
        subpixel: also replace transposed convs (exact, but slower than oneDNN's channels-last
            transposed conv on the machines measured so far).

    Returns:
        ``net`` itself.
    """
    for name, module in list(net.named_modules()):
        if not name:
            continue  # the root itself has no parent to attach a replacement to
        replacement: nn.Module
        try:
            if isinstance(module, nn.InstanceNorm3d):
                replacement = InstanceNorm3dAnyLayout(module)
            elif isinstance(module, nn.ConvTranspose3d) and subpixel:
                replacement = SubpixelConvTranspose3d(module, channels_last=channels_last)
            else:
                if isinstance(module, SubpixelConvTranspose3d):
                    module.channels_last = channels_last  # its buffers are converted by .to() below
                continue
        except ValueError as err:
            logger.warning("keeping %s as it is: %s", name, err)
            continue
        parent, _, child = name.rpartition(".")
        setattr(net.get_submodule(parent), child, replacement)
    return net.to(memory_format=_memory_format(channels_last))


def restore_network(net: ModuleT) -> ModuleT:
    """Undo :func:`prepare_network` in place: ``nn.InstanceNorm3d`` modules and contiguous weights.

    For MONAI's own forward and inferers, which need contiguous features, on a network that was
    prepared in place. Parameters are shared with the replaced modules and the format change is a
    copy, so the state dict and every output equal those of the never-prepared network.

    Args:
        net: a network after :func:`prepare_network` (or never prepared: then only the weights'
            format is made contiguous).

    Returns:
        ``net`` itself.

    Raises:
        ValueError: ``net`` holds a :class:`SubpixelConvTranspose3d` (``subpixel=True``), whose
            re-expressed kernels are not kept in MONAI's form.
    """
    for name, module in list(net.named_modules()):
        if isinstance(module, SubpixelConvTranspose3d):
            raise ValueError(f"{name} is a SubpixelConvTranspose3d; prepare without subpixel to restore")
        if not isinstance(module, InstanceNorm3dAnyLayout):
            continue
        norm = nn.InstanceNorm3d(module.num_features, eps=module.eps, affine=module.weight is not None)
        if module.weight is not None:
            norm.weight, norm.bias = module.weight, module.bias
        norm.train(module.training)
        parent, _, child = name.rpartition(".")
        setattr(net.get_submodule(parent), child, norm)
    return net.to(memory_format=torch.contiguous_format)
