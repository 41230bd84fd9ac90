"""Held-out metrics of a VISTA3D model on phantoms it never saw (the demo model card's numbers).

    python scripts/evaluate_demo_model.py DATALIST OUT.json [--checkpoint model.pt --recipes DIR]

Per case (one InteractiveSession, so the CT is pre-processed once):
* automatic: "everything" with the model's class set, Dice per class;
* interactive organs: a centre click, then corrective clicks on the largest error (VISTA3D's
  iterative protocol, ``evaluation.clicks``) with the organ's class id as the point prompt's class
  (VISTA3D's "point" mode); point-only Dice after 1, 3 and 5 clicks;
* zero-shot lesions (hepatic tumour 26, kidney cysts 116/117, lung nodule 23 - never in the
  automatic training set): the same clicks with the zero-shot class id 133.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from voxelprompt.api import load_model
from voxelprompt.catalog import vista3d_catalog
from voxelprompt.demo import LESION_CLASS, ORGAN_CLASSES
from voxelprompt.evaluation.clicks import Click, center_click, correction_click
from voxelprompt.evaluation.metrics import dice
from voxelprompt.imageio import read_labels, read_volume
from voxelprompt.families.vista3d.inference.default_model import card_from_recipe, profile_from_card
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
from voxelprompt.families.vista3d.inference.session import InteractiveSession
from voxelprompt.types import Points, PointSpace, Prompts

LESIONS = (26, 116, 117, 23)
CLICKS = (1, 3, 5)


def _points(clicks) -> Points:
    return Points(
        coords=np.array([c.coord for c in clicks], dtype=np.float64).reshape(-1, 3),
        labels=np.array([c.label for c in clicks], dtype=np.int64),
        space=PointSpace.VOXEL,
    )


def _clicked(session: InteractiveSession, gt: np.ndarray, classes: tuple[int, ...], new_structure: bool) -> dict[int, float]:
    """Dice after each click count in CLICKS (clicks with the class id, or a new structure)."""
    clicks = [Click(center_click(gt), 1)]
    out: dict[int, float] = {}
    for n in range(1, max(CLICKS) + 1):
        prompts = Prompts(classes=classes, points=_points(clicks), new_structure=new_structure)
        pred = np.asarray(session.segment(prompts).labels.array) > 0
        if n in CLICKS:
            out[n] = dice(pred, gt)
        nxt = correction_click(pred, gt, rng=n, strategy="center")
        if nxt is None:
            out.update({m: out.get(m, 1.0) for m in CLICKS if m > n})
            break
        clicks.append(nxt)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datalist", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoint", type=Path, help="default: the shipped demo model")
    parser.add_argument("--max-cases", type=int, default=None, help="evaluate only the first N cases")
    parser.add_argument("--auto", default="auto3", help="the recipe of the last automatic stage (classes, spacing)")
    parser.add_argument("--recipes", type=Path, help="with --checkpoint: the run's recipes (spacing, window, classes)")
    args = parser.parse_args()
    if args.checkpoint is None:
        segmenter = load_model(None, "vista3d", device="cpu")
    else:
        auto = json.loads((args.recipes / f"{args.auto}.json").read_text())
        profile = profile_from_card(card_from_recipe(auto))
        segmenter = Vista3DSegmenter.from_checkpoint(args.checkpoint, profile=profile)
    name = vista3d_catalog().name
    root = args.datalist.parent
    entries = json.loads(args.datalist.read_text())["training"][: args.max_cases]
    cases = []
    for entry in entries:
        t0 = time.perf_counter()
        volume, truth = read_volume(root / entry["image"]), read_labels(root / entry["label"])
        gt = np.asarray(truth.array)
        session = InteractiveSession(segmenter, volume, click_windows="grid")
        auto = np.asarray(session.segment(Prompts(everything=True)).labels.array)
        t_auto = time.perf_counter() - t0
        auto_dice = {}
        for c in segmenter.profile.everything or ():
            if (gt == c).any():
                target = (gt == c) | ((gt == LESION_CLASS) if c == 1 else False)
                auto_dice[name(c)] = dice(auto == c, target)
        organ_clicks = {name(c): _clicked(session, gt == c, (c,), False) for c in ORGAN_CLASSES if (gt == c).any()}
        lesion_clicks = {name(c): _clicked(session, gt == c, (), True) for c in LESIONS if (gt == c).any()}
        cases.append({
            "case": entry["image"], "seconds_everything": round(t_auto, 1),
            "seconds_total": round(time.perf_counter() - t0, 1), "auto": auto_dice,
            "organ_clicks": organ_clicks, "lesion_clicks": lesion_clicks,
        })  # fmt: skip
        organs = [auto_dice[name(c)] for c in ORGAN_CLASSES if name(c) in auto_dice]
        print(f"{entry['image']}: organ auto Dice {np.mean(organs):.3f}, {time.perf_counter() - t0:.0f} s", flush=True)

    def mean_of(key: str) -> dict:
        values: dict[str, list[float]] = {}
        for case in cases:
            for cls, v in case[key].items():
                for k, x in (v.items() if isinstance(v, dict) else [(None, v)]):
                    values.setdefault(cls if k is None else f"{cls}@{k}", []).append(x)
        return {k: round(float(np.mean(v)), 4) for k, v in sorted(values.items())}

    auto_mean = mean_of("auto")
    organ_names = {name(c) for c in ORGAN_CLASSES}
    summary = {
        "cases": len(cases),
        "auto_dice_per_class": auto_mean,
        "auto_mean_organs": round(float(np.mean([v for k, v in auto_mean.items() if k in organ_names])), 4),
        "auto_mean_all_classes": round(float(np.mean(list(auto_mean.values()))), 4),
        "organ_clicks": {f"{n} clicks": round(float(np.mean([c["organ_clicks"][o][n] for c in cases
                                                            for o in c["organ_clicks"]])), 4) for n in CLICKS},
        "lesion_clicks_zero_shot": mean_of("lesion_clicks"),
        "per_case": cases,
    }  # fmt: skip
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("per_case", "auto_dice_per_class")}, indent=1))


if __name__ == "__main__":
    main()
