"""From model-space logits to a label map on the input grid (MONAI's VISTA3D post-processing).

``VistaPostTransformd`` turns logits into class indices (argmax across prompted classes, background
where every logit is <= 0; point-only results keep the components holding a positive click), and
``Invertd`` undoes the pre-processing with nearest-neighbour interpolation.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.apps.vista3d.transforms import VistaPostTransformd
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd

from voxelprompt.families.vista3d.inference.preprocess import IMAGE_KEY

__all__ = ["logits_to_labels", "clicks_on_grid", "invert_to_input", "label_dtype"]

PRED_KEY = "pred"


def logits_to_labels(
    logits: torch.Tensor,
    classes: tuple[int, ...] | None,
    points: torch.Tensor | None = None,
    point_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Class-index map in model space.

    Args:
        logits: [1, B, H, W, D] logits (NaN where no window predicted).
        classes: the B prompted class indices, or None for a point-only object (labelled 1).
        points: [1, N, 3] model-space clicks (point-only post-processing).
        point_labels: [1, N] click labels.

    Returns:
        [1, H, W, D] float map of class indices (NaN kept where nothing was predicted).
    """
    data: dict[str, object] = {PRED_KEY: logits[0]}
    if classes is not None:
        data["label_prompt"] = torch.tensor(classes, device=logits.device)
    if points is not None:
        point_labels = clicks_on_grid(points, point_labels, tuple(logits.shape[-3:]))
        if classes is None and not _positive(point_labels).any():
            # Every positive click lies outside the model-space image (air cropped away with the
            # foreground box): no predicted component holds one, so the object is empty.
            data[PRED_KEY] = torch.where(torch.isnan(logits[0]), logits[0], torch.full_like(logits[0], -1.0))
        data["points"], data["point_labels"] = points, point_labels
    return VistaPostTransformd(keys=PRED_KEY)(data)[PRED_KEY]


def clicks_on_grid(points: torch.Tensor, point_labels: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """``point_labels`` with the clicks that round to no voxel of ``shape`` set to -1 (ignored).

    MONAI's component filter reads the component under each click by index: a click outside the
    grid would raise IndexError, or (negative) wrap round to the far side of the image.

    Args:
        points: [1, N, 3] model-space voxel coordinates; point_labels: [1, N].
        shape: (H, W, D) of the model-space logits.
    """
    rounded = torch.round(points)
    upper = torch.as_tensor(shape, dtype=rounded.dtype, device=rounded.device) - 1
    inside = ((rounded >= 0) & (rounded <= upper)).all(dim=-1)
    return torch.where(inside, point_labels, torch.full_like(point_labels, -1))


def _positive(point_labels: torch.Tensor) -> torch.Tensor:
    return (point_labels == 1) | (point_labels == 3)  # 3: positive with the ambiguity shift


def invert_to_input(
    labels: torch.Tensor, model_image: torch.Tensor, preprocessing: Compose, unpredicted_value: int
) -> np.ndarray:
    """Undo the pre-processing (nearest interpolation) and return an (I, J, K) integer array."""
    if not isinstance(labels, MetaTensor):
        labels = MetaTensor(labels)  # Invertd only inverts MetaTensors against the image's record
    data = {IMAGE_KEY: model_image, PRED_KEY: labels}
    inverter = Invertd(
        keys=PRED_KEY, transform=preprocessing, orig_keys=IMAGE_KEY, nearest_interp=True, to_tensor=True
    )
    out = torch.nan_to_num(inverter(data)[PRED_KEY], nan=float(unpredicted_value))
    array = out[0].detach().cpu().numpy()
    return np.rint(array).astype(label_dtype(int(array.max(initial=0))))


def label_dtype(max_label: int) -> type[np.integer]:
    """uint8 when the labels fit (VISTA3D ids and 255), int16 otherwise (zero-shot ids up to 511)."""
    return np.uint8 if max_label <= 255 else np.int16
