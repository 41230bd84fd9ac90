"""The width-16 demo-model campaign: resumable across kills and sessions, milestones kept outside git.

    python scripts/demo_campaign.py run WORK_DIR [--minutes 60] [--device cpu|cuda]
    python scripts/demo_campaign.py status WORK_DIR
    python scripts/demo_campaign.py pack WORK_DIR PARTS_DIR    # float16 weights in <= 15 MiB parts
    python scripts/demo_campaign.py run WORK_DIR --from-packed PARTS_DIR [--pack-to OUT]

WORK_DIR (keep it outside the repository, e.g. ``~/voxelprompt-campaign``) holds the data
(phantoms, supervoxels, easy-task blobs; made once by ``scripts/train_demo_model.py``'s
``make_data`` and ``voxelprompt.data.write_blob_dataset``), the recipes, each stage's resumable
``runs/<stage>/checkpoint.pt`` (weights, AdamW moments, schedule, RNG states, losses: a resumed
stage draws exactly the samples an uninterrupted one would) and ``milestones/`` (each finished
stage's model and loss curve). ``run`` goes on from wherever the state stands; SIGTERM or SIGINT
ends the current step, writes the checkpoint and exits 0, and so does ``--minutes``. Run it
``nice``d beside other work; never beside a CI run (the suite's timings and the campaign's would
both suffer, and CI machines are not kept).

Stages (width 16, 64^3 patches at 3 mm; held-out phantoms are seeds >= 1000, never trained on):
  * ``auto16``: paper stage 3 with the encoder trained (the width-8 history in MODEL_CARD.md showed
    an untrained encoder is the bottleneck), the 35 demo classes, 16 present + 4 absent class
    prompts per step, class-centred patches;
  * ``point16``: paper stage 2 (encoder and automatic branch frozen): clicks on the demo classes,
    3 iterative rounds, zero-shot objects from supervoxels (phantoms) and from the easy-task blobs
    (a second dataset whose labelled blobs are mapped away, so they stay as distractors).

``pack`` and ``--from-packed``/``--pack-to`` carry a campaign to a GPU and back within the device
tool's transfer limits (64 MiB in all; ``scripts/gpu_campaign.sh``): only float16 weights, step and
losses travel (the width-16 AdamW state alone is 190 MB), so a stage continued from packed weights
starts fresh AdamW moments (logged), unlike the exact CPU resume.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import signal
import sys
import threading
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))
from train_demo_model import FOCUS, make_data  # noqa: E402

from voxelprompt.data.blobs import BlobConfig, write_blob_dataset  # noqa: E402
from voxelprompt.models.checkpoint_io import load_checkpoint_file, save_checkpoint_file  # noqa: E402
from voxelprompt.families.vista3d.training import Trainer
from voxelprompt.training import load_recipe  # noqa: E402

WIDTH = 16
PART_BYTES = 15 * 2**20
COMMON = {"width": WIDTH, "patch": {"roi": [64, 64, 64], "spacing": [3.0, 3.0, 3.0]}, "log_every": 10, "seed": 0}
CENTRED = {"crop_class_ratios": {str(c): float(c in FOCUS) for c in range(1, 133)}}
STAGES: dict[str, dict] = {
    "auto16": {
        "base": "stage3", "freeze": "none", "steps": 3000, "val_every": 500, "checkpoint_every": 25,
        "optim": {"lr": 1e-3, "warmup_steps": 20}, "prompts": {"max_foreground": 16, "max_background": 4},
        "data": {"datalists": ["../data/datalist.json"], "label_set": FOCUS, "val_cases": 2},
        "patch": CENTRED,
    },
    "point16": {
        "base": "stage2", "freeze": "auto", "init": "../runs/auto16/model.pt", "steps": 1500, "val_every": -1,
        "checkpoint_every": 10, "optim": {"lr": 1e-3, "warmup_steps": 10},
        "prompts": {"iterations": 3, "zero_shot_source": "supervoxel"},
        "data": {"datalists": ["../data/datalist_sv.json", "../data/blobs/datalist.json"], "label_set": FOCUS,
                 "val_cases": 2, "supervoxels": True, "label_mappings": {"blobs": [[c, 0] for c in BlobConfig().classes]}},
    },
}  # fmt: skip

logger = logging.getLogger("campaign")


def prepare(root: Path) -> None:
    """Data (once) and the stage recipes."""
    if not (root / "data" / "datalist_sv.json").is_file():
        make_data(root)
    blobs = root / "data" / "blobs"
    if not (blobs / "datalist.json").is_file():
        write_blob_dataset(blobs, 24, BlobConfig(shape=(96, 96, 96), objects=(3, 8)), seed0=0)
    (root / "recipes").mkdir(parents=True, exist_ok=True)
    for name, stage in STAGES.items():
        fields = json.loads(json.dumps({**COMMON, **stage, "name": f"demo-{name}", "output_dir": f"../runs/{name}"}))
        fields["patch"] = {**COMMON["patch"], **stage.get("patch", {})}
        (root / "recipes" / f"{name}.json").write_text(json.dumps(fields, indent=1))


def stop_event(minutes: float | None) -> threading.Event:
    """Set by SIGTERM/SIGINT or after ``minutes``; the shared loop (``StepTrainer.fit(stop=)``)
    checks it between steps and then writes the checkpoint."""
    event = threading.Event()

    def handle(signum, frame) -> None:
        logger.info("signal %d: stopping after this step", signum)
        event.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    if minutes:
        timer = threading.Timer(minutes * 60, event.set)
        timer.daemon = True
        timer.start()
    return event


class CampaignTrainer(Trainer):
    """The VISTA3D trainer that also appends each validation to ``validation.jsonl`` of its run."""

    def run_validation(self) -> dict[int, float]:
        dice = super().run_validation()
        if dice:
            row = {"step": self.step, "mean_dice": sum(dice.values()) / len(dice), "dice": dice}
            with (self.output_dir / "validation.jsonl").open("a") as f:
                f.write(json.dumps(row) + "\n")
        return dice


def run_stage(root: Path, name: str, device: str, stop: threading.Event, packed: dict | None = None) -> bool:
    """Train one stage until done or stopped; True when it finished (its milestone is written).

    ``packed`` (from :func:`read_packed`, for this stage) replaces the checkpoint: its weights and
    step, with fresh AdamW moments and the schedule advanced to that step.
    """
    out = root / "runs" / name
    if (out / "model.pt").is_file():
        return True
    recipe = load_recipe(root / "recipes" / f"{name}.json")
    trainer = CampaignTrainer(dataclasses.replace(recipe, device=device), progress=False)
    if packed is not None:
        trainer.net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in packed["model"].items()})
        for _ in range(packed["step"]):
            trainer.scheduler.step()
        trainer.step = packed["step"]
        logger.info("%s: continuing from packed weights at step %d (fresh AdamW moments)", name, trainer.step)
    elif (out / "checkpoint.pt").is_file():
        trainer.load_checkpoint(out / "checkpoint.pt")
    result = trainer.fit(stop=stop)  # checkpoints, logging, validation, model.pt: the shared loop's
    if result.stopped:
        return False
    milestones = root / "milestones"
    milestones.mkdir(exist_ok=True)
    shutil.copy2(out / "model.pt", milestones / f"{name}.pt")
    (milestones / f"{name}_losses.json").write_text(json.dumps(trainer.losses))
    logger.info("%s finished: milestone %s", name, milestones / f"{name}.pt")
    return True


def status(root: Path) -> None:
    for name in STAGES:
        ckpt = root / "runs" / name / "checkpoint.pt"
        if not ckpt.is_file():
            print(f"{name}: not started")
            continue
        state = load_checkpoint_file(ckpt)
        losses = [x for x in state["losses"][-50:] if x == x]
        done = (root / "runs" / name / "model.pt").is_file()
        mean = sum(losses) / max(len(losses), 1)
        print(f"{name}: step {state['step']}{' (finished)' if done else ''}, mean loss of the last 50 steps {mean:.4f}")
        val = root / "runs" / name / "validation.jsonl"
        for line in val.read_text().splitlines() if val.is_file() else []:
            row = json.loads(line)
            print(f"  step {row['step']}: validation mean Dice {row['mean_dice']:.3f}")


def current_stage(root: Path) -> str:
    return next((n for n in STAGES if not (root / "runs" / n / "model.pt").is_file()), list(STAGES)[-1])


def pack(root: Path, out: Path) -> None:
    """The current stage's weights in float16, split into parts the device tool can carry."""
    name = current_stage(root)
    state = load_checkpoint_file(root / "runs" / name / "checkpoint.pt")
    half = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    out.mkdir(parents=True, exist_ok=True)
    blob = out / "weights.pt"
    save_checkpoint_file({"stage": name, "step": state["step"], "model": half, "losses": state["losses"]}, blob)
    data = blob.read_bytes()
    blob.unlink()
    for i in range(0, len(data), PART_BYTES):
        (out / f"part{i // PART_BYTES:02d}").write_bytes(data[i : i + PART_BYTES])
    logger.info("packed %s at step %d into %s", name, state["step"], out)


def read_packed(parts: Path) -> dict:
    """What :func:`pack` wrote: ``{"stage", "step", "model", "losses"}``."""
    files = sorted(parts.glob("part*"))
    if not files:
        raise SystemExit(f"no packed parts (part00, ...) in {parts}")
    blob = parts / "joined.pt.tmp"
    blob.write_bytes(b"".join(p.read_bytes() for p in files))
    try:
        return load_checkpoint_file(blob)
    finally:
        blob.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("work_dir", type=Path)
    run.add_argument("--minutes", type=float, help="stop (with a checkpoint) after this long")
    run.add_argument("--device", default="cpu")
    sub.add_parser("status").add_argument("work_dir", type=Path)
    run.add_argument("--from-packed", type=Path, help="continue from weights that 'pack' wrote (e.g. on a GPU)")
    run.add_argument("--pack-to", type=Path, help="after the run, pack the current stage's weights here")
    p = sub.add_parser("pack")
    p.add_argument("work_dir", type=Path)
    p.add_argument("parts", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    root = args.work_dir.resolve()
    if args.command == "status":
        return status(root)
    if args.command == "pack":
        return pack(root, args.parts)
    prepare(root)
    stop = stop_event(args.minutes)
    packed = read_packed(args.from_packed) if args.from_packed else None
    for name in STAGES:
        if not run_stage(root, name, args.device, stop, packed if packed and packed["stage"] == name else None):
            break
    if args.pack_to:
        pack(root, args.pack_to)


if __name__ == "__main__":
    main()
