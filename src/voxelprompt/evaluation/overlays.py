"""Overlay data of an evaluation run: the axial slice through most of each scored object, kept
under ``overlays/data`` so the report can draw the worst cases later."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voxelprompt.evaluation.results import ResultRow, overlay_name
from voxelprompt.types import Volume

__all__ = ["OVERLAY_DIR", "save_overlay", "overlay_data_path"]

#: Folder of an evaluation's output that holds overlays (``data/`` the slices, PNGs the drawings).
OVERLAY_DIR = "overlays"


def overlay_data_path(out: Path, row: ResultRow) -> Path:
    """Where :func:`save_overlay` keeps ``row``'s slice under the evaluation output ``out``."""
    return out / OVERLAY_DIR / "data" / f"{overlay_name(row)}.npz"


def save_overlay(out: Path, row: ResultRow, image: Volume, gt: np.ndarray, pred: np.ndarray) -> None:
    """Keep the axial slice through most of the object, to draw the worst cases later.

    Args:
        out: the evaluation's output folder.
        row: the result row (names the file, :func:`overlay_data_path`).
        image: the case's CT; ``gt`` and ``pred`` are bool (H, W, D) masks on its grid.
    """
    k = int(np.argmax(gt.sum(axis=(0, 1))))
    path = overlay_data_path(out, row)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        image=image.array[:, :, k].astype(np.float32),
        gt=gt[:, :, k],
        pred=pred[:, :, k],
        spacing=np.asarray(image.spacing[:2]),
        orientation=image.orientation,
        slice=k,
    )
