"""Strict loading of SegVol checkpoints (the released ``SegVol_v1.pth`` and the HF release).

Accepted layouts: a bare ``state_dict`` or one under ``checkpoint["model"]`` (or
``["state_dict"]``), with or without DataParallel's ``module.`` or the HF wrapper's ``model.``
prefix; CLIP text weights named by transformers 4 (``clip_text_model.text_model.*``, with or
without ``position_ids``) or 5 (``clip_text_model.*``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch
from torch import nn

from voxelprompt.errors import CheckpointError
from voxelprompt.models.checkpoint_io import load_checkpoint_file

__all__ = ["normalize_state_dict", "read_state_dict", "load_state_dict_strict"]

logger = logging.getLogger(__name__)

_WRAPPER_KEYS = ("model", "state_dict")
_PREFIXES = ("module.", "model.")
_LEGACY_CLIP = ("text_encoder.clip_text_model.text_model.", "text_encoder.clip_text_model.")
# MONAI >= 1.4 gives every ViT block a LayerNorm for optional cross-attention that SegVol never
# runs; checkpoints saved with older MONAI lack it, so those tensors may be absent.
_OPTIONAL_SUFFIX = ".norm_cross_attn."


def _strip_prefix(name: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix) :], True
    return name


def normalize_state_dict(obj: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Unwrap a loaded checkpoint and map its names onto :class:`~voxelprompt.families.segvol.network.SegVol`'s.

    Raises:
        CheckpointError: ``obj`` holds no dict of tensors.
    """
    for key in _WRAPPER_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source}: not a SegVol state_dict (expected a dict of tensors)")
    out: dict[str, torch.Tensor] = {}
    for name, tensor in obj.items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{source}: entry {name!r} is a {type(tensor).__name__}, not a tensor")
        name = _strip_prefix(name)
        if name.endswith("position_ids"):  # a constant arange buffer, not a weight
            continue
        if name.startswith(_LEGACY_CLIP[0]):
            name = _LEGACY_CLIP[1] + name[len(_LEGACY_CLIP[0]) :]
        out[name] = tensor
    return out


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a SegVol checkpoint file into normalized tensor names (see :func:`normalize_state_dict`).

    Raises:
        CheckpointError: the file is missing, unreadable, or holds no tensors.
    """
    obj = load_checkpoint_file(path)
    return normalize_state_dict(obj, str(path))


def _preview(keys: list[str], n: int = 5) -> str:
    more = f", ... (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_state_dict_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Copy ``state`` (normalized names) into ``model``, requiring every tensor to match.

    Raises:
        CheckpointError: names missing from or unexpected in ``state``, or shapes that differ;
            the message names them.
    """
    expected = model.state_dict()
    missing = sorted(k for k in expected if k not in state and _OPTIONAL_SUFFIX not in k)
    unexpected = sorted(k for k in state if k not in expected)
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = [
        f"{len(keys)} {label}: {_preview(keys)}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
        if keys
    ]
    if problems:
        raise CheckpointError(f"{source}: does not match the SegVol architecture; " + "; ".join(problems))
    complete = {**{k: v for k, v in expected.items() if k not in state}, **state}
    model.load_state_dict(complete, strict=True)
    filled = len(complete) - len(state)
    note = f" ({filled} unused cross-attention norms kept at their defaults)" if filled else ""
    logger.info("loaded %s: %d tensors%s", source, len(state), note)
