"""A network prepared for fast CPU training: channels-last weights, one fused kernel per norm.

Training on CPU spends its time in convolutions (oneDNN, fastest on channels-last ``NDHWC``
tensors) and in the many elementwise passes around them. Stock ``nn.InstanceNorm3d`` returns a
contiguous tensor, so every norm of a channels-last network costs two layout copies forwards and
two backwards; the inference engine's :class:`~voxelprompt.families.vista3d.inference.engine.layout.InstanceNorm3dAnyLayout`
keeps the layout but runs six elementwise passes, each with its own backward. Instance norm over
C channels *is* group norm with C groups (one group per channel: mean and variance over the
spatial axes of each sample), and PyTorch's ``group_norm`` has one fused channels-last CPU kernel
forwards and one backwards. :class:`InstanceNorm3dAsGroupNorm` uses it: forward + backward of a
[1, 16, 64, 64, 64] channels-last activation took 0.11 s against the six-pass norm's 0.45 s and
stock instance norm's 0.12 s on contiguous input (one run on a loaded machine); whole-step
timings are in the training README (``benchmarks/training_step.py``).

What is learnt does not change: the parameters, their names and the state dict are MONAI's, and
gradients equal those of the unprepared module up to float rounding
(``tests/training/test_training_layout.py``).
"""

from __future__ import annotations

from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from voxelprompt.families.vista3d.inference.engine.layout import InstanceNorm3dAnyLayout, restore_network

__all__ = ["InstanceNorm3dAsGroupNorm", "prepare_for_training", "unprepare"]

ModuleT = TypeVar("ModuleT", bound=nn.Module)


class InstanceNorm3dAsGroupNorm(InstanceNorm3dAnyLayout):
    """``nn.InstanceNorm3d`` (no running statistics) computed as group norm with one group per channel.

    Keeps its input's memory format (``torch.channels_last_3d`` in, channels-last out) and has
    the stock module's parameters (``weight``, ``bias`` shared, not copied); built, checked and
    undone (:func:`~voxelprompt.families.vista3d.inference.engine.layout.restore_network`) as the
    inference engine's :class:`InstanceNorm3dAnyLayout`, of which only ``forward`` differs.

    Args:
        norm: the module to replace.

    Raises:
        ValueError: ``norm`` is not an ``nn.InstanceNorm3d`` or tracks running statistics.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each channel of each sample over its spatial axes.

        Args:
            x: [B, C, D, H, W] in either memory format.

        Returns:
            Same shape, dtype and memory format as ``x``.
        """
        if x.dim() != 5:
            raise ValueError(f"expected a [B, C, D, H, W] tensor, got shape {tuple(x.shape)}")
        return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)


def prepare_for_training(net: ModuleT) -> ModuleT:
    """Swap every ``nn.InstanceNorm3d`` for :class:`InstanceNorm3dAsGroupNorm` and make the weights
    channels-last; modifies ``net`` in place and returns it.

    Inputs may come in either format. Convolutions that ATen keeps on its reference path (small
    ``N*C*D*H``, see the training README) and the one-channel stem return contiguous tensors;
    making the stem's output channels-last measured no faster (1.57 vs 1.62 s per point step,
    0.93 vs 0.91 s per auto step, width 16), so it is left as PyTorch picks. The state dict keeps
    MONAI's keys, so checkpoints load and save unchanged; :func:`unprepare` gives MONAI's modules back.
    """
    for name, module in list(net.named_modules()):
        if name and isinstance(module, nn.InstanceNorm3d):
            parent, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent), child, InstanceNorm3dAsGroupNorm(module))
    return net.to(memory_format=torch.channels_last_3d)


def unprepare(net: ModuleT) -> ModuleT:
    """Undo :func:`prepare_for_training` in place: stock ``nn.InstanceNorm3d`` and contiguous weights
    (the inference engine's :func:`~voxelprompt.families.vista3d.inference.engine.layout.restore_network`)."""
    return restore_network(net)
