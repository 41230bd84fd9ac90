"""Strict loading of official VISTA3D checkpoints (MONAI bundle and Project-MONAI/VISTA research).

* Bundle ``models/model.pt``: a bare ``state_dict`` of ``vista3d132``, possibly wrapped under a
  ``state_dict`` or ``model`` key, possibly with DataParallel's ``module.`` prefix.
* Research ``model_monai1.3.pt``: the same network with the two-way transformer's MLP layers named
  ``mlp.lin1``/``mlp.lin2`` and extra tensors the released network never uses
  (``weight_mapper.*``, ``point_head.output_add_hypernetworks_mlps.*``).

The architecture (encoder width, channels, class-table size) is read off the tensor shapes, so
the same loader takes the 218 M-parameter release and smaller models of the same design.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch
from monai.networks.nets.vista3d import VISTA3D

from voxelprompt.errors import CheckpointError
from voxelprompt.models.checkpoint_io import load_checkpoint_file, save_checkpoint_file
from voxelprompt.families.vista3d.network.builder import Vista3DSpec, build_vista3d

__all__ = ["read_state_dict", "spec_from_state_dict", "load_vista3d", "save_vista3d"]

logger = logging.getLogger(__name__)

_UNUSED_PREFIXES = ("weight_mapper.", "point_head.output_add_hypernetworks_mlps.")
_RESEARCH_RENAMES = ((re.compile(r"\.mlp\.lin1\."), ".mlp.linear1."), (re.compile(r"\.mlp\.lin2\."), ".mlp.linear2."))
_WIDTH_KEY = "image_encoder.encoder.conv_init.weight"
_CLASS_KEY = "class_head.class_embeddings.weight"


def _unwrap(obj: object, source: str) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{source}: not a VISTA3D state_dict (expected a dict of tensors)")
    return obj  # type: ignore[return-value]


def normalize_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map either official key layout onto MONAI 1.6's ``VISTA3D`` names."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name.startswith("module."):
            name = name[len("module."):]
        if name.startswith(_UNUSED_PREFIXES):
            continue
        for pattern, replacement in _RESEARCH_RENAMES:
            name = pattern.sub(replacement, name)
        out[name] = tensor
    return out


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into MONAI-named tensors.

    Raises:
        CheckpointError: the file is missing, unreadable, or holds no tensors.
    """
    return normalize_state_dict(_unwrap(load_checkpoint_file(path), str(path)))


def spec_from_state_dict(state: dict[str, torch.Tensor], source: str = "checkpoint") -> Vista3DSpec:
    """Architecture hyperparameters implied by the tensor shapes."""
    if _WIDTH_KEY not in state or _CLASS_KEY not in state:
        raise CheckpointError(f"{source}: not a VISTA3D checkpoint (no {_WIDTH_KEY!r} or {_CLASS_KEY!r})")
    if state[_WIDTH_KEY].ndim != 5 or state[_CLASS_KEY].ndim != 2:
        raise CheckpointError(
            f"{source}: not a VISTA3D checkpoint ({_WIDTH_KEY} has shape {tuple(state[_WIDTH_KEY].shape)}, "
            f"{_CLASS_KEY} {tuple(state[_CLASS_KEY].shape)})"
        )
    width, in_channels = (int(s) for s in state[_WIDTH_KEY].shape[:2])
    n_classes = int(state[_CLASS_KEY].shape[0])
    try:
        return Vista3DSpec(width=width, in_channels=in_channels, n_classes=n_classes)
    except ValueError as err:
        raise CheckpointError(f"{source}: {err}") from err


def load_vista3d(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[VISTA3D, Vista3DSpec]:
    """Build the network a checkpoint describes and load it strictly, in eval mode.

    Raises:
        CheckpointError: unreadable file or tensors that do not match the architecture.
    """
    state = read_state_dict(path)
    spec = spec_from_state_dict(state, str(path))
    net = build_vista3d(spec)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
        raise CheckpointError(f"{path}: does not match the VISTA3D architecture: {'; '.join(parts)}")
    net.load_state_dict(state, strict=True)
    n_params = sum(p.numel() for p in net.parameters())
    logger.info("loaded %s: VISTA3D width %d, %d parameters", path, spec.width, n_params)
    return net.to(device).eval(), spec


def save_vista3d(net: VISTA3D, path: str | os.PathLike) -> Path:
    """Write a bare ``state_dict`` (the MONAI bundle format), atomically."""
    return save_checkpoint_file({k: v.detach().cpu() for k, v in net.state_dict().items()}, path)


def describe_checkpoint(checkpoint: str | os.PathLike) -> list[str]:
    """``voxelprompt info``'s lines for a VISTA3D checkpoint, after loading it strictly."""
    net, spec = load_vista3d(checkpoint)
    return [
        "architecture: VISTA3D (MONAI vista3d132 layout), loads strictly",
        f"encoder width: {spec.width}",
        f"input channels: {spec.in_channels}",
        f"class table: {spec.n_classes} rows, trained ids up to {spec.last_supported}",
        f"parameters: {sum(p.numel() for p in net.parameters()):,}",
    ]
