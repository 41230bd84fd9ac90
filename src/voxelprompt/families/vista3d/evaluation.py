"""VISTA3D under the evaluation protocols (auto, point, auto+point, iterative), the family's
evaluation adapter (registry entry ``eval_adapter``).

The adapter drives the segmenter through its public parts: :meth:`~Vista3DSegmenter.prepare`
(the pre-processed case), :meth:`~Vista3DSegmenter.automatic_labels` (class prompts by the
segmenter's engine), :meth:`~Vista3DSegmenter.monai_net` (MONAI's network for the per-window and
point inferers), ``profile`` (window size, overlap), ``preprocessing`` and ``unpredicted_fill``
(inverting model-space labels onto the input grid), ``spec.last_supported``, ``device`` and
``lock``. The sliding-window grid of the per-window protocols is the one
:func:`~voxelprompt.families.vista3d.inference.engine.window_grid` gives the segmenter's engines.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from monai.apps.vista3d.inferer import point_based_window_inferer
from monai.data import MetaTensor

from voxelprompt.catalog import UNNAMED_IDS, click_label_shift
from voxelprompt.evaluation.adapters import ClickState, PatchSlices
from voxelprompt.evaluation.clicks import Click
from voxelprompt.families.vista3d import FAMILY
from voxelprompt.families.vista3d.inference.engine import window_grid
from voxelprompt.families.vista3d.inference.postprocess import invert_to_input, logits_to_labels
from voxelprompt.families.vista3d.inference.preprocess import to_model_voxels
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
from voxelprompt.families.vista3d.inference.windows import ClickPrompt, WindowCounter, pad_to_window, unpad
from voxelprompt.inference.sliding import OverlapAverage
from voxelprompt.types import Points, Volume

__all__ = ["Vista3DEvalModel"]

#: Logit of a window that predicts nothing (``VISTA3D.NINF_VALUE``).
_NINF = -9999.0


class Vista3DEvalModel:
    """VISTA3D under the evaluation protocols, built from :class:`Vista3DSegmenter`'s parts.

    Per-window prompts follow MONAI's validation path of ``VISTA3D.forward`` (``patch_coords``
    given): a click is moved into its window's frame, windows without a click give background
    ("point") or the automatic logits ("auto+point", where the network merges the click result
    with its connected-component rule, Algorithm 1). Windows are blended with constant weights
    on the profile's grid and overlap. A novel object's id (512 + its label value) is passed as
    the prompt class like any class: it lies above ``last_supported``, so the point head uses its
    zero-shot embedding, as the official zero-shot evaluation's ``prompt_class`` 600 (paper Sec. 5).

    Args:
        segmenter: a loaded segmenter (its profile decides spacing, window size and overlap).
        name: model name written to the results.
    """

    protocols = FAMILY.capabilities.protocols
    default_protocol = "auto"
    zero_shot_protocol = "iterative"  # VISTA3D Fig. 5

    def __init__(self, segmenter: Vista3DSegmenter, name: str = "vista3d") -> None:
        self.segmenter = segmenter
        self.name = name
        self._image: Volume | None = None

    # ---- per case ----------------------------------------------------------------------------

    def prepare(self, image: Volume) -> None:
        seg = self.segmenter
        prepared = seg.prepare(image)
        self._image = image
        self._model_image = prepared.image
        self._batch = prepared.batch
        self._padded, self._before = pad_to_window(self._batch, seg.profile.roi_size)
        self._counter = WindowCounter(seg.monai_net())  # MONAI's inferers run it
        roi = seg.profile.roi_size
        size = tuple(self._padded.shape[-3:])
        self._windows = [w.slices for w in window_grid(size, roi, seg.profile.class_overlap)]
        self._boxes = [self._input_box(w) for w in self._windows]

    def _input_box(self, window: tuple[slice, ...]) -> PatchSlices:
        """Input voxels whose centres fall inside a padded model-space window."""
        lo = np.array([s.start for s in window], float) - np.array(self._before) - 0.5
        hi = np.array([s.stop for s in window], float) - np.array(self._before) - 0.5
        corners = np.array([[a[0], b[1], c[2]] for a in (lo, hi) for b in (lo, hi) for c in (lo, hi)])
        ijk = self._to_input(corners)
        shape = np.array(self._image.shape)
        start = np.clip(np.ceil(ijk.min(0) - 1e-6), 0, shape).astype(int)
        stop = np.clip(np.floor(ijk.max(0) + 1e-6) + 1, 0, shape).astype(int)
        return tuple(slice(int(a), int(max(a, b))) for a, b in zip(start, stop))  # type: ignore[return-value]

    def _to_input(self, model_xyz: np.ndarray) -> np.ndarray:
        original = np.asarray(self._model_image.meta["original_affine"], dtype=np.float64)
        after = np.asarray(self._model_image.affine, dtype=np.float64)
        mapping = np.linalg.inv(np.linalg.inv(after) @ original)
        pts = np.concatenate([model_xyz, np.ones((len(model_xyz), 1))], 1)
        return (pts @ mapping.T)[:, :3]

    def _to_model(self, ijk: np.ndarray) -> np.ndarray:
        return to_model_voxels(np.asarray(ijk, dtype=np.float64).reshape(-1, 3), self._model_image)

    def patch_boxes(self) -> list[PatchSlices]:
        return list(self._boxes)

    @property
    def windows(self) -> int:
        """Network windows evaluated since :meth:`prepare`."""
        return self._counter.calls

    # ---- prompts -----------------------------------------------------------------------------

    def _to_input_labels(self, labels: torch.Tensor) -> np.ndarray:
        seg = self.segmenter
        return invert_to_input(labels, self._model_image, seg.preprocessing, seg.unpredicted_fill)

    def auto_classes(self, classes: Sequence[int]) -> list[int]:
        last = self.segmenter.spec.last_supported
        return [int(c) for c in classes if 0 < c <= last and c not in UNNAMED_IDS]

    def auto(self, classes: Sequence[int]) -> np.ndarray:
        seg = self.segmenter
        classes = tuple(int(c) for c in classes)
        with seg.lock:  # the segmenter's parts, called directly: take its turn like its own calls
            return self._to_input_labels(seg.automatic_labels(self._batch, classes, self._counter))

    @torch.no_grad()
    def patch_clicks(self, class_id: int, clicks: Sequence[Click | None], with_auto: bool) -> np.ndarray:
        with self.segmenter.lock:
            return self._patch_clicks(class_id, clicks, with_auto)

    def _patch_clicks(self, class_id: int, clicks: Sequence[Click | None], with_auto: bool) -> np.ndarray:
        if len(clicks) != len(self._windows):
            raise ValueError(f"expected one click entry per window ({len(self._windows)}), got {len(clicks)}")
        device = self.segmenter.device
        prompt = torch.tensor([[int(class_id)]], device=device)
        offset = np.array(self._before, float)
        average = OverlapAverage((1, 1, *self._padded.shape[-3:]))
        for window, click in zip(self._windows, clicks):
            region = (slice(None), slice(None), *window)
            if click is None and not with_auto:
                # Official: a window without the object predicts background (VISTA3D's NINF_VALUE),
                # blended in like any other window; no need to run the network for it.
                average.add(region, torch.full(average.total[region].shape, _NINF))
                continue
            kwargs: dict = {"class_vector": prompt, "prompt_class": prompt} if with_auto else {"prompt_class": prompt}
            if click is not None:
                xyz = self._to_model(np.array(click.coord))[0] + offset
                # VISTA3D keeps only clicks strictly inside the window: keep rounding from dropping it.
                lo = np.array([s.start for s in window], float) + 0.01
                hi = np.array([s.stop for s in window], float) - 1.01
                xyz = np.clip(xyz, lo, hi)
                label = int(click.label) + click_label_shift(class_id)
                kwargs["point_coords"] = torch.tensor(xyz[None, None], dtype=torch.float32, device=device)
                kwargs["point_labels"] = torch.tensor([[label]], device=device)
            out = self._counter(self._padded[region], patch_coords=[region], transpose=True, **kwargs)
            average.add(region, out.float().cpu())
        logits = torch.nan_to_num(average.result(), nan=-1.0)  # a voxel no window reached: background
        logits = unpad(logits, self._before, tuple(self._batch.shape[-3:]))
        labels = logits_to_labels(logits, (int(class_id),))
        return self._to_input_labels(labels) == int(class_id)

    @torch.no_grad()
    def clicks(self, class_id: int, points: Points, previous: ClickState | None = None) -> tuple[np.ndarray, ClickState]:
        """Point-only result with windows centred on the clicks (MONAI's point inferer).

        With ``previous`` (same class, fewer clicks) only the windows of the new clicks run and
        the network merges them into the previous logits, as VISTA3D's iterative evaluation does.
        """
        seg = self.segmenter
        labels = torch.as_tensor(points.labels, dtype=torch.long) + click_label_shift(class_id)
        click = ClickPrompt(
            coords=torch.as_tensor(self._to_model(points.to_voxel(self._image)), dtype=torch.float32)[None].to(seg.device),
            labels=labels[None].to(seg.device),
            prompt_class=torch.tensor([[int(class_id)]], device=seg.device),
        )
        resume = previous is not None and previous.class_id == class_id and 0 < previous.clicks < len(points)
        with seg.lock, warnings.catch_warnings():
            # MONAI's inferer re-wraps its output with an affine its meta already holds.
            warnings.filterwarnings("ignore", message="Setting affine, but the applied meta", category=UserWarning)
            logits = self._point_windows(click, previous if resume else None)
        model_labels = logits_to_labels(logits, None, click.coords.cpu(), click.labels.cpu())
        mask = self._to_input_labels(model_labels) == 1
        return mask, ClickState(int(class_id), len(points), logits.as_tensor() if isinstance(logits, MetaTensor) else logits)

    def _point_windows(self, click: ClickPrompt, previous: ClickState | None) -> torch.Tensor:
        seg = self.segmenter
        return point_based_window_inferer(
            inputs=self._batch,
            roi_size=seg.profile.roi_size,
            predictor=self._counter,
            point_coords=click.coords,
            point_labels=click.labels,
            class_vector=None,
            prompt_class=click.prompt_class,
            # NaN marks voxels no window saw; the network's merge needs numbers there.
            prev_mask=None if previous is None else torch.nan_to_num(previous.logits, nan=_NINF).to(seg.device),
            point_start=0 if previous is None else previous.clicks,
            transpose=True,
            with_coord=True,
        ).cpu()
