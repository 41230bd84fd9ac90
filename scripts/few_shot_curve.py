"""The few-shot curve of the README and the demo model card: teach the shipped demo VISTA3D a
structure it does not segment (the phantoms' hepatic tumour, VISTA3D id 26) from 1, 3 and 5
labelled cases, through a labelling datastore as the viewer fills it, and measure held-out Dice of
the new class and of the classes the model already had, before and after.

    python scripts/few_shot_curve.py OUT_DIR [--cases 1 3 5] [--steps 60] [--scope auto] [--held-out 2] [--no-rehearsal]

Writes ``OUT_DIR/curve.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np

from voxelprompt.catalog import vista3d_catalog
from voxelprompt.data.phantom import PhantomConfig, make_phantom
from voxelprompt.evaluation.metrics import dice
from voxelprompt.imageio import write_volume
from voxelprompt.families.vista3d.inference.default_model import default_checkpoint, default_profile
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
from voxelprompt.server.datastore import ImageStore
from voxelprompt.families.vista3d.training.teach import teach
from voxelprompt.types import Prompts

TARGET, NAME = 26, "hepatic tumor"
SHAPE = (128, 128, 128)


def _store(folder: Path, seeds: list[int]) -> Path:
    """A datastore holding phantoms ``seeds`` with the target saved as the viewer saves a label."""
    store = ImageStore(folder)
    for seed in seeds:
        ct, truth = make_phantom(PhantomConfig(shape=SHAPE, seed=seed))
        tmp = folder / f"tmp-{seed}"
        image = write_volume(ct, tmp / "ct.nii.gz")
        label = write_volume(truth.with_array((np.asarray(truth.array) == TARGET).astype(np.uint8)), tmp / "label.nii.gz")
        store.add_image(f"case{seed}", io.BytesIO(image.read_bytes()), "ct.nii.gz")
        store.add_label(f"case{seed}", "final", io.BytesIO(label.read_bytes()), "label.nii.gz", {"label_info": [{"name": NAME, "idx": 1}]})
    return folder


def _dice(segmenter: Vista3DSegmenter, cases, classes: tuple[int, ...]) -> dict[int, float]:
    scores: dict[int, list[float]] = {c: [] for c in classes}
    for ct, truth in cases:
        pred = np.asarray(segmenter.segment(ct, Prompts(classes=classes)).labels.array)
        gt = np.asarray(truth.array)
        for c in classes:
            want = gt == c
            if c == 1:  # the liver target includes its tumours and vessels (the demo's ground truth)
                want = np.isin(gt, (1, 25, 26))
            if want.any():
                scores[c].append(dice(pred == c, want))
    return {c: float(np.mean(v)) for c, v in scores.items() if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--cases", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--scope", default="auto")
    parser.add_argument("--held-out", type=int, default=2)
    parser.add_argument("--no-rehearsal", action="store_true", help="train on the new labels alone (no pseudo labels of the existing classes)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    profile = default_profile()
    known = {c: vista3d_catalog().name(c) for c in profile.everything}
    held = [make_phantom(PhantomConfig(shape=SHAPE, seed=1000 + i)) for i in range(args.held_out)]
    classes = (*profile.everything, TARGET)
    base = Vista3DSegmenter.from_checkpoint(default_checkpoint(), profile=profile)
    t0 = time.perf_counter()
    before = _dice(base, held, classes)
    rows = [{"cases": 0, "seconds_train": 0.0, "dice": before}]
    print(f"before: {NAME} {before.get(TARGET, 0):.3f}, existing mean {np.mean([before[c] for c in profile.everything if c in before]):.3f} ({time.perf_counter() - t0:.0f} s)")
    for n in args.cases:
        store = _store(args.out / f"store{n}", list(range(n)))
        t0 = time.perf_counter()
        run = teach(
            default_checkpoint(), store, args.out / f"run{n}", known=known, scope=args.scope, steps=args.steps, lr=args.lr,
            profile=profile if not args.no_rehearsal else None,
            patch={"roi": list(profile.roi_size), "spacing": list(profile.spacing)},
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        tuned = Vista3DSegmenter.from_checkpoint(run.result.model, profile=profile, taught_classes=run.plan.taught())
        after = _dice(tuned, held, classes)
        rows.append({"cases": n, "seconds_train": round(seconds, 1), "dice": after})
        print(f"{n} cases: {NAME} {after.get(TARGET, 0):.3f}, existing mean {np.mean([after[c] for c in profile.everything if c in after]):.3f} (train {seconds:.0f} s)")
    (args.out / "curve.json").write_text(json.dumps({"target": TARGET, "steps": args.steps, "lr": args.lr, "scope": args.scope, "rehearsal": not args.no_rehearsal, "rows": rows}, indent=1))
    existing = [c for c in profile.everything if c in before]
    print(f"\n| labelled cases | {NAME} Dice | existing classes mean Dice | largest drop of an existing class |\n|---|---|---|---|")
    for row in rows:
        d = row["dice"]
        drop = max(before[c] - d.get(c, 0.0) for c in existing)
        print(f"| {row['cases']} | {d.get(TARGET, 0):.3f} | {np.mean([d.get(c, 0.0) for c in existing]):.3f} | {drop:.3f} |")


if __name__ == "__main__":
    main()
