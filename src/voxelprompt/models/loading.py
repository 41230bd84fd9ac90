"""Models of any registered family: which family a checkpoint is, which weights run by default,
and loading them once for many calls (:mod:`voxelprompt.api` re-exports these)."""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxelprompt.devices import resolve_device
from voxelprompt.errors import CheckpointError
from voxelprompt.families import DEFAULT_FAMILY, ModelFamily, family_of_keys, get_family

if TYPE_CHECKING:  # torch is imported only when a model is loaded
    from voxelprompt.inference.protocol import Segmenter

__all__ = [
    "DEMO_MODEL_WARNING",
    "NamedModel",
    "check_checkpoint_path",
    "default_checkpoint",
    "load_model",
    "load_named_models",
    "resolve_family",
]

logger = logging.getLogger("voxelprompt.api")

#: Printed whenever the shipped demo model segments something other than a phantom.
DEMO_MODEL_WARNING = (
    "WARNING: the shipped DEMO model segments this image: it was trained on synthetic CT phantoms only and its "
    "labels on a real CT are not meaningful; get the official VISTA3D weights with 'voxelprompt weights fetch "
    "vista3d-bundle' (or --download), or pass --checkpoint model.pt"
)

_demo_warned = False


def default_checkpoint(checkpoint: str | os.PathLike | None, family: str | None = None) -> str | os.PathLike | None:
    """``checkpoint`` as given, or for None (and a family whose weights ship) the default model's
    file (:func:`voxelprompt.weights.default.default_model`, with no download and nobody asked):
    the cached official VISTA3D weights, else the demo model, with a ``UserWarning`` once per process."""
    global _demo_warned
    if checkpoint is not None or (family is not None and get_family(family).name != DEFAULT_FAMILY):
        return checkpoint
    from voxelprompt.weights.default import default_model

    choice = default_model()
    if choice.demo and not _demo_warned:
        _demo_warned = True
        warnings.warn(choice.message, UserWarning, stacklevel=3)
    return choice.checkpoint


def check_checkpoint_path(checkpoint: str | os.PathLike) -> Path:
    """The checkpoint file, checked to exist before any model code is imported.

    Raises:
        CheckpointError: no such file, or a folder.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"{path}: {'is a folder, not a checkpoint file' if path.is_dir() else 'checkpoint file not found'}")
    return path


def resolve_family(checkpoint: str | os.PathLike | None = None, family: str | None = None) -> ModelFamily:
    """The family of a model: ``family`` when given (checked against the checkpoint's tensors),
    else recognised from the checkpoint's tensor names, else the family of the shipped default.

    Raises:
        CheckpointError: a missing or unreadable checkpoint, one of another family than
            ``family``, or one of no known family.
        MissingExtraError: the family's pip extra is not installed (SegVol: "segvol").
        VoxelPromptError: an unknown family name.
    """
    wanted = None if family is None else get_family(family)
    if checkpoint is None:
        chosen = wanted or get_family(DEFAULT_FAMILY)
        if chosen.default_checkpoint is None:
            raise CheckpointError(chosen.missing_checkpoint)
        chosen.require_extra()
        return chosen
    path = check_checkpoint_path(checkpoint)
    from voxelprompt.models.checkpoint_io import checkpoint_keys

    found = family_of_keys(checkpoint_keys(path), str(path))
    if wanted is not None and found is not wanted:
        raise CheckpointError(
            f"{path}: is a {found.name} checkpoint, not {wanted.name} (model family {found.name!r}: --model {found.name})"
        )
    found.require_extra()  # before any image is read or model loaded
    return found


def load_model(
    checkpoint: str | os.PathLike | None = None,
    family: str | ModelFamily | None = None,
    device: str = "auto",
    options: Any = None,
    *,
    progress: bool = False,
    tune_allocator: bool = False,
) -> Segmenter:
    """Load a model of any registered family (:mod:`voxelprompt.families`) once, for many calls.

    Args:
        checkpoint: weights file (VISTA3D bundle or research layout; SegVol v1); None: the
            default model, the official VISTA3D weights when ``voxelprompt weights fetch
            vista3d-bundle`` put them in the cache, else the shipped demo VISTA3D (trained on
            phantoms only; a ``UserWarning`` says so once).
        family: a registered family's name; None: recognised from the checkpoint's tensors; a
            :class:`~voxelprompt.families.ModelFamily` already resolved for ``checkpoint`` (by
            :func:`resolve_family`) is trusted, so the checkpoint's keys are not read again.
        device: ``auto`` (a CUDA GPU when present), ``cpu``, ``cuda`` or ``cuda:N``.
        options: the family's options (:class:`~voxelprompt.families.Vista3DOptions`,
            :class:`~voxelprompt.families.SegVolOptions`), a mapping of them, or None.
        progress: show progress bars over windows.
        tune_allocator: on the CPU, stop glibc from unmapping every large freed block, a
            process-wide setting that saves 15-35 % per VISTA3D window (see
            :mod:`voxelprompt.inference.allocator`). Off by default: only a caller that owns the
            process (the CLI, a server) should change it.

    Returns:
        A :class:`~voxelprompt.inference.protocol.Segmenter`.

    Raises:
        CheckpointError: a missing, unreadable or foreign checkpoint.
        VoxelPromptError: an unknown family, device or option.
    """
    if isinstance(family, ModelFamily):
        chosen = family
        checkpoint = default_checkpoint(checkpoint, family.name)
    else:
        checkpoint = default_checkpoint(checkpoint, family)
        chosen = resolve_family(checkpoint, family)
    opts = chosen.make_options(options)
    device = resolve_device(device)
    if tune_allocator and device == "cpu":
        from voxelprompt.inference.allocator import keep_freed_memory

        keep_freed_memory()
    logger.info("loading %s (%s) on %s", checkpoint or chosen.default_checkpoint, chosen.name, device)
    return chosen.load(None if checkpoint is None else Path(checkpoint), device, opts, progress)


@dataclass(frozen=True)
class NamedModel:
    """A loaded model with the name listings and results use.

    Args:
        name: ``<family>-demo`` for the shipped default, ``<family>-<file stem>`` for a
            checkpoint (``-2``, ``-3``, ... appended when stems repeat).
        family: its registry entry; ``checkpoint``: its file (None: the shipped default).
        segmenter: the loaded :class:`~voxelprompt.inference.protocol.Segmenter`.
    """

    name: str
    family: ModelFamily
    checkpoint: Path | None
    segmenter: Segmenter


def load_named_models(
    checkpoints: Sequence[str | os.PathLike] = (),
    default_model: bool = False,
    device: str = "auto",
    options: Mapping[str, Any] | None = None,
    *,
    tune_allocator: bool = False,
) -> list[NamedModel]:
    """Load several models of any families, each once, named after what they are.

    Args:
        checkpoints: weights files (each family recognised from its tensors).
        default_model: also load the shipped demo model (first in the list).
        device: auto, cpu, cuda or cuda:N.
        options: option values by name (e.g. ``{"profile": "research", "mode": "zoom"}``); each
            model takes those its family has; None values are left at the defaults.
        tune_allocator: as :func:`load_model`.

    Raises:
        CheckpointError: an unreadable checkpoint or one of no known family.
        VoxelPromptError: an unknown device or a bad option value.
    """
    from voxelprompt.families.vista3d.inference.default_model import default_checkpoint as demo_checkpoint
    from voxelprompt.families.vista3d.inference.default_model import is_demo_checkpoint

    options = options or {}
    chosen = [(demo_checkpoint(), resolve_family(None))] if default_model else []
    chosen += [(Path(c), resolve_family(c)) for c in checkpoints]  # all checked before any loads
    models: list[NamedModel] = []
    seen: dict[str, int] = {}
    for checkpoint, family in chosen:
        fields = {f.name for f in dataclasses.fields(family.options)}
        own = {k: v for k, v in options.items() if k in fields and v is not None}
        base = f"{family.name}-{'demo' if is_demo_checkpoint(checkpoint) else checkpoint.stem}"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}-{seen[base]}"
        segmenter = load_model(checkpoint, family, device=device, options=own, tune_allocator=tune_allocator)
        models.append(NamedModel(name, family, checkpoint, segmenter))
    return models
