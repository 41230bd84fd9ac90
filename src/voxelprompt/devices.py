"""Compute devices by name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, checked without importing torch.

Every command and API function that takes a device takes these names; ``auto`` picks the first CUDA
GPU when one is available and the CPU otherwise.
"""

from __future__ import annotations

import re

from voxelprompt.errors import VoxelPromptError

__all__ = ["DEVICE_CHOICES", "check_device", "resolve_device"]

#: What ``--device`` accepts (``cuda:N`` picks GPU N).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(name: str) -> str:
    """``name`` if it is a device name this project takes (cheap: torch is not imported).

    Raises:
        VoxelPromptError: anything but auto, cpu, cuda or cuda:N.
    """
    text = str(name).strip().lower()
    if not _DEVICE.match(text):
        raise VoxelPromptError(f"unknown device {name!r}; choose auto, cpu, cuda or cuda:N")
    return text


def resolve_device(name: str) -> str:
    """The torch device string for ``name``: ``auto`` becomes ``cuda`` when a GPU is visible, else ``cpu``.

    Raises:
        VoxelPromptError: an unknown name, or a CUDA device on a machine without one.
    """
    text = check_device(name)
    if text == "cpu":
        return text
    import torch

    available = torch.cuda.is_available()
    if text == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise VoxelPromptError(f"device {text!r} requested but no CUDA GPU is available; use --device cpu")
    index = int(text.split(":")[1]) if ":" in text else 0
    if index >= torch.cuda.device_count():
        raise VoxelPromptError(f"device {text!r} requested but only {torch.cuda.device_count()} CUDA GPU(s) exist")
    return text
