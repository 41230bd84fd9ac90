"""The protocols of an evaluation run for one object: the clicks and boxes each simulates from the
ground truth (seeded per dataset, case, object and mode), its predictions and their result rows
(see :mod:`voxelprompt.evaluation.runner` for what each protocol does)."""

from __future__ import annotations

import zlib

import numpy as np

from voxelprompt.evaluation.clicks import (
    Click,
    bounding_box,
    center_click,
    clicks_to_points,
    correction_click,
    patch_center_clicks,
    patch_correction_clicks,
    segvol_points,
)
from voxelprompt.evaluation.config import CORRECTION_STEPS, SEGVOL_MODES, STEPPED_MODES, EvalConfig
from voxelprompt.evaluation.metrics import ClassScore, score_class
from voxelprompt.evaluation.novel import is_novel
from voxelprompt.evaluation.results import ResultRow
from voxelprompt.types import Volume

__all__ = ["run_protocol", "result_rows"]


def run_protocol(model, mode: str, class_id: int, gt: np.ndarray, image: Volume, auto, config: EvalConfig, dataset, case):
    """Predictions of one protocol for one object.

    Args:
        model: an :class:`~voxelprompt.evaluation.adapters.EvalModel` prepared on ``image``.
        mode: a protocol of :data:`~voxelprompt.evaluation.config.MODES` the model runs.
        class_id: the object (model class id, or a novel object's id).
        gt: its bool (H, W, D) ground truth on ``image``'s grid.
        auto: the class-prompt label map of the case (``auto`` and ``auto+point``), else unused.
        config: the run's settings (seed, clicks, oracle trials, correction start).
        dataset, case: name the seeded click streams.

    Returns:
        (bool masks, one per step; (step, clicks) of each).
    """
    if mode == "auto":
        return [auto == class_id], [(0, 0)]
    if mode == "point":
        clicks = patch_center_clicks(gt, model.patch_boxes())
        return [model.patch_clicks(class_id, clicks, with_auto=False)], [(1, sum(c is not None for c in clicks))]
    if mode == "auto+point":
        return _auto_point(model, auto == class_id, gt, image, class_id, config, dataset, case)
    if mode in SEGVOL_MODES:
        return _segvol(model, mode, gt, class_id, config, dataset, case)
    return _iterative(model, gt, image, class_id, config, dataset, case)


def _rng(seed: int, *parts: object) -> np.random.Generator:
    """A stream that depends only on the seed and the names, not on the order of evaluation."""
    return np.random.default_rng([seed, zlib.crc32("/".join(str(p) for p in parts).encode())])


def _score(pred: np.ndarray, gt: np.ndarray, image: Volume, tolerance_mm: float) -> ClassScore:
    return score_class(pred.astype(np.uint8), gt.astype(np.uint8), 1, image.spacing, tolerance_mm)


def _auto_point(model, auto_mask, gt, image, class_id, config: EvalConfig, dataset, case):
    best = None
    for trial in range(config.oracle_best_of):
        rng = _rng(config.seed, dataset.name, case.name, class_id, "auto+point", trial)
        clicks = patch_correction_clicks(auto_mask, gt, model.patch_boxes(), rng)
        pred = model.patch_clicks(class_id, clicks, with_auto=True)
        value = _score(pred, gt, image, config.tolerance_mm).dice
        if best is None or value > best[0]:
            best = (value, pred, sum(c is not None for c in clicks))
    return [best[1]], [(1, best[2])]


def _iterative(model, gt, image, class_id, config: EvalConfig, dataset, case):
    rng = _rng(config.seed, dataset.name, case.name, class_id, "iterative")
    clicks = [_first_click(gt)]
    preds, steps = [], []
    pred, state = None, None
    for step in range(1, config.clicks + 1):
        added = step == 1
        if step > 1:
            nxt = correction_click(pred, gt, rng)
            if nxt is not None:  # None: the prediction is already perfect, nothing to click
                clicks.append(nxt)
                added = True
        if added:
            pred, state = model.clicks(class_id, clicks_to_points(clicks), state)
        preds.append(pred)
        steps.append((step, len(clicks)))
    return preds, steps


def _segvol_start(model, start: str, gt, class_id, config: EvalConfig, dataset, case):
    """The ``box+text`` or ``points7`` prompts and result; returns (mask, box, clicks)."""
    text = _text(class_id)
    if start == "box+text":
        box = bounding_box(gt)
        return model.prompted(class_id, text, box=box), box, []
    clicks = segvol_points(gt, _rng(config.seed, dataset.name, case.name, class_id, "points7"))
    return model.prompted(class_id, text, points=clicks_to_points(clicks)), None, clicks


def _segvol(model, mode: str, gt, class_id, config: EvalConfig, dataset, case):
    start = mode if mode != "correction5" else config.correction_start
    pred, box, clicks = _segvol_start(model, start, gt, class_id, config, dataset, case)
    preds, steps = [pred], [(0 if mode == "correction5" else 1, len(clicks))]
    if mode != "correction5":
        return preds, steps
    rng = _rng(config.seed, dataset.name, case.name, class_id, "correction5")
    text = _text(class_id)
    for step in range(1, CORRECTION_STEPS + 1):
        nxt = correction_click(pred, gt, rng)
        if nxt is not None:  # None: already perfect, nothing to correct
            clicks = [*clicks, nxt]
            pred = model.prompted(class_id, text, box=box, points=clicks_to_points(clicks))
        preds.append(pred)
        steps.append((step, len(clicks)))
    return preds, steps


def _text(class_id: int) -> str | None:
    """SegVol's text prompt: the catalog name of the (mapped) VISTA3D class id; none for a novel object."""
    from voxelprompt.catalog import vista3d_catalog

    return None if is_novel(class_id) else vista3d_catalog().name(int(class_id))


def _first_click(gt: np.ndarray) -> Click:
    return Click(coord=center_click(gt), label=1)


def result_rows(dataset, case, model, mode, class_id, preds, steps, gt, image, config, seconds) -> list[ResultRow]:
    """One row per step of a protocol's result (``best_dice``: the best so far in stepped modes).

    Args:
        dataset, case, model: what was evaluated (their names go into the rows).
        mode: the protocol; ``class_id`` the object (a novel object's id for zero-shot).
        preds: bool (H, W, D) predictions, one per step; ``steps`` their (step, clicks).
        gt: the object's bool ground truth on ``image``'s grid.
        config: the run's settings (NSD tolerance).
        seconds: the protocol's time (all steps).
    """
    rows, best = [], 0.0
    for pred, (step, n_clicks) in zip(preds, steps):
        score = _score(pred, gt, image, config.tolerance_mm)
        best = max(best, score.dice)
        rows.append(
            ResultRow(
                dataset=dataset.name,
                case=case.name,
                model=model.name,
                mode=mode,
                class_id=int(class_id),
                class_name=dataset.mapping.name(class_id),
                step=int(step),
                clicks=int(n_clicks),
                dice=round(score.dice, 6),
                nsd=round(score.nsd, 6),
                best_dice=round(best if mode in STEPPED_MODES else score.dice, 6),
                reference_voxels=score.reference_voxels,
                predicted_voxels=score.predicted_voxels,
                seconds=round(seconds, 3),
                zero_shot=is_novel(class_id),
            )
        )
    return rows
