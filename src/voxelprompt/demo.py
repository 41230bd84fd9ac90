"""``voxelprompt demo``: one phantom case through the three things VISTA3D does, with pictures.

1. generate an anatomical CT phantom with a liver tumour (a class the automatic set lacks);
2. "everything": every class the model knows, automatically;
3. a click on the tumour: a point-only zero-shot object (the interactive branch);
4. a click edit (paper Algorithm 1): the organ with the lowest automatic Dice gets one corrective
   click where its error is largest; an interactive session answers it from the everything
   result, running only the clicked window;
5. NIfTI files of all of it, a PNG of axial / coronal / sagittal overlays, and ``summary.json``
   with Dice against the phantom's ground truth and a plain verdict per feature.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voxelprompt.catalog import vista3d_catalog
from voxelprompt.data import PhantomConfig, make_phantom
from voxelprompt.errors import VoxelPromptError
from voxelprompt.evaluation.clicks import center_click, correction_click
from voxelprompt.evaluation.metrics import dice
from voxelprompt.imageio import write_text, write_volume
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
from voxelprompt.families.vista3d.inference.session import InteractiveSession
from voxelprompt.types import Points, PointSpace, Prompts
from voxelprompt.visualize import default_point, overlay_png

__all__ = ["DemoResult", "run_demo", "verdict", "ORGAN_CLASSES", "LESION_CLASS"]

logger = logging.getLogger(__name__)

#: Dice from which the demo calls a feature working (below it: weak; 0: failed).
WORKS_FROM = 0.5

#: Soft-tissue organs of the phantom whose automatic Dice the demo reports (and the model card
#: targets): liver, spleen, pancreas, kidneys, aorta, IVC, gallbladder, stomach, bladder, lung lobes.
ORGAN_CLASSES = (1, 3, 4, 5, 6, 7, 10, 12, 14, 15, 28, 29, 30, 31, 32)
#: The phantom's hepatic tumour: not in the demo model's automatic class set.
LESION_CLASS = 26


@dataclass
class DemoResult:
    """What the demo wrote and measured.

    Args:
        files: name -> written path.
        organ_dice: class id -> automatic Dice on the ORGAN_CLASSES present.
        lesion_dice: Dice of the one-click tumour.
        edited_class: class edited by a click; dice_before / dice_after: its Dice around the edit.
        seconds: step -> wall time.
        windows: step -> network windows it ran (the click edit runs only the clicked one).
    """

    files: dict[str, Path] = field(default_factory=dict)
    organ_dice: dict[int, float] = field(default_factory=dict)
    lesion_dice: float = float("nan")
    edited_class: int | None = None
    dice_before: float = float("nan")
    dice_after: float = float("nan")
    seconds: dict[str, float] = field(default_factory=dict)
    windows: dict[str, int] = field(default_factory=dict)

    @property
    def mean_organ_dice(self) -> float:
        return float(np.mean(list(self.organ_dice.values()))) if self.organ_dice else float("nan")

    def verdicts(self) -> dict[str, str]:
        """One plain sentence per feature, saying when it failed (see :func:`verdict`)."""
        name = vista3d_catalog().name
        edited = "click edit" + ("" if self.edited_class is None else f" of the {name(self.edited_class)}")
        weak = [f"{name(c)} {d:.2f}" for c, d in sorted(self.organ_dice.items(), key=lambda kv: kv[1]) if d < WORKS_FROM]
        out = {
            "everything": verdict("automatic everything (mean organ Dice)", self.mean_organ_dice)
            + (f"; below {WORKS_FROM}: {', '.join(weak)}" if weak else ""),
            "lesion_click": verdict("zero-shot tumour from one click", self.lesion_dice),
            "click_edit": verdict(edited, self.dice_after),
        }
        if self.dice_after <= self.dice_before:
            out["click_edit"] += f"; the click did not improve it (Dice {self.dice_before:.2f} -> {self.dice_after:.2f})"
        return out


def verdict(feature: str, score: float) -> str:
    """``"<feature>: works (Dice 0.83)"``, ``"... weak (Dice 0.31)"`` or ``"... FAILED (Dice 0.00) ..."``."""
    if not score > 0:
        return f"{feature}: FAILED (Dice {score:.2f}): the demo model does not do this yet, see its MODEL_CARD.md"
    return f"{feature}: {'works' if score >= WORKS_FROM else 'weak'} (Dice {score:.2f})"


def _clicks(coords: list[tuple[int, int, int]], labels: list[int]) -> Points:
    return Points(
        coords=np.asarray(coords, dtype=np.float64).reshape(-1, 3),
        labels=np.asarray(labels, dtype=np.int64),
        space=PointSpace.VOXEL,
    )


def run_demo(
    out_dir: str | os.PathLike,
    segmenter: Vista3DSegmenter,
    seed: int = 2026,
    shape: tuple[int, int, int] = (128, 128, 192),
    spacing: tuple[float, float, float] | None = None,
) -> DemoResult:
    """Generate, segment, edit, and write one demo case into ``out_dir``.

    Progress is logged one line per step (``voxelprompt.demo`` logger) and, when
    ``segmenter.progress`` is set, a bar over each step's windows.

    Args:
        out_dir: output folder (created).
        segmenter: a loaded VISTA3D segmenter (the shipped demo model by default in the CLI).
        seed: phantom seed; the demo model was trained on seeds 0-23 and validated on 500-501.
        shape, spacing: phantom grid (spacing None fits the default trunk field of view).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult()
    t0 = time.perf_counter()
    logger.info("[1/5] generating CT phantom (seed %d, %s voxels)", seed, "x".join(map(str, shape)))
    image, truth = make_phantom(PhantomConfig(shape=shape, spacing=spacing, seed=seed))
    gt = np.asarray(truth.array)
    if not (gt == LESION_CLASS).any():
        raise VoxelPromptError(f"phantom seed {seed} has no liver tumour; pick another --seed")
    result.files["image"] = write_volume(image, out / "image.nii.gz")
    result.files["ground_truth"] = write_volume(truth, out / "ground_truth.nii.gz")
    result.seconds["phantom"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    session = InteractiveSession(segmenter, image, edit_shown=True)  # the edit starts from what was shown
    logger.info("[2/5] everything: all %d classes of the model, automatically", len(segmenter.resolve_classes(Prompts(everything=True))))
    everything = session.segment(Prompts(everything=True))
    auto = everything.labels
    result.seconds["everything"], result.windows["everything"] = time.perf_counter() - t0, everything.windows
    result.files["everything"] = write_volume(auto, out / "everything.nii.gz")
    pred = np.asarray(auto.array)
    known = set(everything.classes)
    for c in ORGAN_CLASSES:
        if c in known and (gt == c).any():
            target = (gt == c) | ((gt == LESION_CLASS) if c == 1 else False)  # liver includes its tumour
            result.organ_dice[c] = dice(pred == c, target)

    t0 = time.perf_counter()
    logger.info("[3/5] one click on the liver tumour, a structure outside the automatic classes (zero-shot)")
    lesion_gt = gt == LESION_CLASS
    click = center_click(lesion_gt)
    lesion_result = session.segment(Prompts(points=_clicks([click], [1]), new_structure=True))
    lesion = lesion_result.labels
    result.seconds["lesion_click"], result.windows["lesion_click"] = time.perf_counter() - t0, lesion_result.windows
    lesion_mask = np.asarray(lesion.array) > 0
    result.lesion_dice = dice(lesion_mask, lesion_gt)
    lesion_out = image.with_array(np.where(lesion_mask, LESION_CLASS, 0).astype(np.uint8))
    result.files["lesion_click"] = write_volume(lesion_out, out / "lesion_click.nii.gz")

    t0 = time.perf_counter()
    worst = min(result.organ_dice, key=result.organ_dice.get) if result.organ_dice else 1
    name = vista3d_catalog().name
    logger.info("[4/5] one corrective click on the worst organ, %s (Algorithm 1, only the clicked window)", name(worst))
    target = (gt == worst) | ((gt == LESION_CLASS) if worst == 1 else False)  # as Dice before the edit counts it
    fix = correction_click(pred == worst, target, rng=seed, strategy="center")
    edit_clicks = [] if fix is None else [fix]
    edited = pred.copy()
    result.windows["click_edit"] = 0
    if edit_clicks:
        prompts = Prompts(classes=(worst,), points=_clicks([c.coord for c in edit_clicks], [c.label for c in edit_clicks]))
        edit_result = session.segment(prompts)
        result.windows["click_edit"] = edit_result.windows
        edited[pred == worst] = 0
        edited[np.asarray(edit_result.labels.array) == worst] = worst
    result.seconds["click_edit"] = time.perf_counter() - t0
    result.edited_class, result.dice_before = worst, result.organ_dice.get(worst, float("nan"))
    result.dice_after = dice(edited == worst, target)
    edited_volume = auto.with_array(edited.astype(pred.dtype))
    result.files["edited"] = write_volume(edited_volume, out / "everything_edited.nii.gz")

    logger.info("[5/5] writing overlays.png and summary.json")
    # The first rows cross at the tumour click, the last at the corrective click (or the organ).
    edit_point = edit_clicks[0].coord if edit_clicks else default_point(auto.with_array((gt == worst).astype(np.uint8)))
    rows = [
        ("ground truth", truth),
        ("everything (automatic)", auto),
        ("one click on the tumour (zero-shot)", lesion_out),
        (f"{name(worst)} after one corrective click", edited_volume, None, edit_point),
    ]
    shown = [click] + [c.coord for c in edit_clicks]
    result.files["overlays"] = overlay_png(
        image, rows, out / "overlays.png", point=click, clicks=shown, title=f"voxelprompt demo, phantom seed {seed}"
    )
    summary = {
        "seed": seed,
        "verdicts": result.verdicts(),
        "organ_dice": {name(c): round(v, 4) for c, v in result.organ_dice.items()},
        "mean_organ_dice": round(result.mean_organ_dice, 4),
        "lesion_click": {"click": list(click), "dice": round(result.lesion_dice, 4)},
        "click_edit": {
            "class": name(worst),
            "click": None if fix is None else {"coord": list(fix.coord), "label": fix.label},
            "dice_before": round(result.dice_before, 4),
            "dice_after": round(result.dice_after, 4),
        },
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
        "windows": dict(result.windows),
    }
    result.files["summary"] = write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return result
