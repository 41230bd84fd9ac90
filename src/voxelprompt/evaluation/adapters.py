"""Models as the evaluation runner sees them: VISTA3D (through the segmenter's parts), SegVol and region growing.

The runner computes every click from the ground truth in input voxel indices (see
:mod:`voxelprompt.types`); an adapter maps them to its own frame. Per-patch protocols (VISTA3D
Table 1 "point" and "auto+point") need the sliding-window grid, so an adapter also reports its
windows as (i, j, k) boxes of the input volume and accepts one click per window.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from monai.apps.vista3d.inferer import point_based_window_inferer
from monai.data import MetaTensor

from voxelprompt.catalog import UNNAMED_IDS, click_label_shift
from voxelprompt.evaluation.baselines import region_grow
from voxelprompt.evaluation.clicks import Click
from voxelprompt.evaluation.novel import is_novel
from voxelprompt.families import FAMILIES
from voxelprompt.inference.sliding import OverlapAverage, grid_starts
from voxelprompt.families.vista3d.inference.engine import window_grid
from voxelprompt.families.vista3d.inference.postprocess import invert_to_input, logits_to_labels
from voxelprompt.families.vista3d.inference.preprocess import (
    to_model_voxels,
)
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
from voxelprompt.families.vista3d.inference.windows import (
    ClickPrompt,
    WindowCounter,
    pad_to_window,
    unpad,
)
from voxelprompt.types import Box, Points, Prompts, Volume

__all__ = ["ClickState", "EvalModel", "PatchSlices", "RegionGrowModel", "SegVolEvalModel", "Vista3DEvalModel"]

PatchSlices = tuple[slice, slice, slice]


@dataclass(frozen=True)
class ClickState:
    """What an interactive step leaves for the next one.

    Args:
        class_id: the object's class.
        clicks: number of clicks the state accounts for.
        logits: model-specific result of those clicks (VISTA3D: [1, 1, H, W, D] model-space logits).
    """

    class_id: int
    clicks: int
    logits: torch.Tensor | None = None

#: Logit of a window that predicts nothing (``VISTA3D.NINF_VALUE``).
_NINF = -9999.0


class EvalModel(Protocol):
    """What the runner needs from a model; masks are (I, J, K) bool arrays on the input grid.

    A model declares the evaluation ``protocols`` it runs (for a model family, its registry
    entry's :attr:`~voxelprompt.families.Capabilities.protocols`) and implements the methods they
    need, and only those:

    * ``auto``: :meth:`auto_classes`, :meth:`auto`;
    * ``point``: :meth:`patch_boxes`, :meth:`patch_clicks`; ``auto+point``: all four above;
    * ``iterative``: :meth:`clicks`;
    * ``box+text``, ``points7``, ``correction5``: :meth:`prompted`.

    ``class_id`` is a VISTA3D class id or a novel object's id (a label value with no class,
    :func:`~voxelprompt.evaluation.novel.is_novel`), which the runner only passes to click protocols:
    a model prompts such an object by its clicks alone (VISTA3D: zero-shot embedding; SegVol: no text).
    ``zero_shot_protocol`` is the protocol novel objects run when the user names none.
    """

    name: str
    protocols: frozenset[str]
    default_protocol: str
    zero_shot_protocol: str

    def prepare(self, image: Volume) -> None:
        """Take the case's CT (pre-process or encode once; later calls answer prompts on it)."""

    def auto_classes(self, classes: Sequence[int]) -> list[int]:
        """The subset of ``classes`` that the model segments automatically."""

    def auto(self, classes: Sequence[int]) -> np.ndarray:
        """Automatic label map (class ids, 0 background) for ``classes``."""

    def patch_boxes(self) -> list[PatchSlices]:
        """The sliding windows of the prepared image as (i, j, k) boxes of the input volume."""

    def patch_clicks(self, class_id: int, clicks: Sequence[Click | None], with_auto: bool) -> np.ndarray:
        """One click per window (``None``: no click there); ``with_auto`` edits the automatic result."""

    def clicks(self, class_id: int, points: Points, previous: ClickState | None = None) -> tuple[np.ndarray, ClickState]:
        """Whole-volume interactive segmentation of one object from all its clicks so far.

        ``previous`` is the state returned for the same object with fewer clicks: a model may then
        only evaluate what the new clicks change (VISTA3D's iterative ``prev_mask``).
        """

    def prompted(self, class_id: int, text: str | None, box: Box | None = None, points: Points | None = None) -> np.ndarray:
        """One object from a text, a voxel box and/or voxel points (SegVol's protocols)."""


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

    protocols = FAMILIES["vista3d"].capabilities.protocols
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


class RegionGrowModel:
    """The classical baseline (:func:`~voxelprompt.evaluation.baselines.region_grow`) on the same protocols.

    Its windows tile the input volume like a sliding-window network of ``window_mm`` edge
    (VISTA3D's 128 voxels at 1.5 mm by default), so the per-patch protocols give it the same
    number of clicks; every click grows only inside its own window. It has no automatic mode.

    Args:
        window_mm: window edge in millimetres.
        overlap: window overlap in [0, 1).
        name: model name written to the results.
    """

    protocols = frozenset({"point", "iterative"})
    default_protocol = "point"
    zero_shot_protocol = "iterative"

    def __init__(self, window_mm: float = 192.0, overlap: float = 0.25, name: str = "region-grow") -> None:
        self.window_mm = float(window_mm)
        self.overlap = float(overlap)
        self.name = name
        self._image: Volume | None = None

    def prepare(self, image: Volume) -> None:
        self._image = image
        shape = image.shape
        self._window = tuple(max(1, min(int(round(self.window_mm / s)), n)) for s, n in zip(image.spacing, shape))
        self._boxes = [
            tuple(slice(a, a + w) for a, w in zip(start, self._window)) for start in grid_starts(shape, self._window, self.overlap)
        ]

    def patch_boxes(self) -> list[PatchSlices]:
        return list(self._boxes)  # type: ignore[arg-type]

    def patch_clicks(self, class_id: int, clicks: Sequence[Click | None], with_auto: bool = False) -> np.ndarray:
        if with_auto:
            raise ValueError("region growing has no automatic result to edit (it runs point and iterative)")
        image = self._image.array
        mask = np.zeros(image.shape, dtype=bool)
        for box, click in zip(self._boxes, clicks):
            if click is None or click.label != 1:
                continue
            local = tuple(c - s.start for c, s in zip(click.coord, box))
            mask[box] |= region_grow(image[box], [local], window=tuple(s.stop - s.start for s in box))
        return mask

    def clicks(self, class_id: int, points: Points, previous: ClickState | None = None) -> tuple[np.ndarray, ClickState]:
        state = ClickState(int(class_id), len(points))
        coords = points.to_voxel(self._image)
        positive = [tuple(c) for c in coords[points.labels == 1]]
        negative = [tuple(c) for c in coords[points.labels == 0]]
        if not positive:
            return np.zeros(self._image.shape, dtype=bool), state
        return region_grow(self._image.array, positive, negative, window=self._window), state


class SegVolEvalModel:
    """SegVol under its own protocols (box+text, 1 + 3 pairs of points + text, 5-step correction).

    Every call runs :meth:`SegVolSegmenter.segment` on the whole case with all the prompts of the
    step (SegVol has no previous-mask input: a correction step re-segments with the initial
    prompts plus every correction click so far). It also answers VISTA3D's whole-volume
    ``iterative`` protocol with the clicks plus the class name as text (a novel object: the clicks
    alone); it has no per-window protocols and no automatic label map.

    Args:
        segmenter: a loaded :class:`~voxelprompt.families.segvol.inference.SegVolSegmenter`.
        name: model name written to the results.
    """

    protocols = FAMILIES["segvol"].capabilities.protocols
    default_protocol = "box+text"
    zero_shot_protocol = "points7"  # SegVol's setting in VISTA3D's zero-shot comparison (Sec. 5)

    def __init__(self, segmenter, name: str = "segvol") -> None:
        self.segmenter = segmenter
        self.name = name
        self._image: Volume | None = None

    def prepare(self, image: Volume) -> None:
        # A session: the case is normalised once and each window and text encoded once across
        # all protocols and steps, with labels identical to one-shot calls.
        self._image = image
        self._session = self.segmenter.open_session(image)

    def prompted(self, class_id: int, text: str | None, box: Box | None = None, points: Points | None = None) -> np.ndarray:
        """(I, J, K) bool mask of one object from a text, a voxel box and/or voxel points."""
        prompts = Prompts(text=text, box=box, points=points if points is not None and len(points) else None, label_value=1)
        result = self._session.segment(prompts)
        return np.asarray(result.labels.array) != 0

    def _name(self, class_id: int) -> str | None:
        from voxelprompt.catalog import vista3d_catalog

        return None if is_novel(class_id) else vista3d_catalog().name(int(class_id))

    def clicks(self, class_id: int, points: Points, previous: ClickState | None = None) -> tuple[np.ndarray, ClickState]:
        mask = self.prompted(class_id, self._name(class_id), points=points)
        return mask, ClickState(int(class_id), len(points))
