"""Exceptions that voxelprompt raises for bad user input.

Every error a user can cause derives from :class:`VoxelPromptError`; the CLI turns it into a
one-line message and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "VoxelPromptError", "InputError", "TooLargeError", "PromptError", "CheckpointError", "WeightsError", "WeightsUnreachable",
]


class VoxelPromptError(ValueError):
    """Base class for errors caused by user input (files, prompts, checkpoints, options)."""

    exit_code = 2


class InputError(VoxelPromptError):
    """An image or label file is missing, unreadable, corrupt or has unusable geometry."""


class TooLargeError(InputError):
    """An input larger than a stated limit (a decoded volume, an array, a buffer): the server
    answers it with HTTP 413."""


class PromptError(VoxelPromptError):
    """A prompt (class name, class index, point, box, text) is invalid for the volume or model."""


class CheckpointError(VoxelPromptError):
    """A checkpoint is unreadable or does not match the model architecture."""


class WeightsError(CheckpointError):
    """Official weights are unknown, missing from the cache, unreachable or fail their digest check."""


class WeightsUnreachable(WeightsError):
    """No source of official weights can be reached (a name that does not resolve, a refused
    connection): the network is off, which retries cannot mend."""
