"""Few-shot finetuning from a labelling datastore: the labels saved from a viewer (``PUT
/datastore/label``, a structure name per value) become a datalist with one global class id per
structure, and :func:`teach` finetunes a VISTA3D on it (paper Sec. 6).

Class ids: a structure the model already learnt keeps its id, a name of the VISTA3D catalog takes
the catalog's id, any other name takes a free row of the class embedding above the catalog's
trained ids (133, 134, ...: "new embedding rows"); a new row starts from a related known class
when the caller names one. ``scope`` chooses what trains: ``"auto"`` (default) the paper's
automatic branch (auto decoder and class head; encoder and point branch frozen), which learns a new
structure in tens of steps; trained on the new labels alone it overwrites the existing classes
(on the demo model: mean Dice 0.43 -> 0.02 after 60 steps), so given the model's inference profile
each case also carries the model's own automatic result as a pseudo label (rehearsal): even steps
prompt the taught classes, odd steps the existing ones on what the model segments now. ``"embedding"`` only the new classes' embedding rows, so every existing class segments
exactly as before, but it learns far more slowly (on the demo model, loss still ~1.3 after 12
steps where ``auto`` reached 0.2).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxelprompt.catalog import CLASS_TABLE_SIZE, LAST_SUPPORTED
from voxelprompt.errors import InputError

# The class plan lives in class_plan; its names stay importable from here.
from voxelprompt.families.vista3d.training.class_plan import (
    ClassPlan,
    LabelledImage,
    assign_classes,
    labelled_images,
    structure_names,
)

__all__ = [
    "SCOPES", "LabelledImage", "ClassPlan", "TeachResult", "structure_names", "labelled_images", "assign_classes",
    "write_datalist", "own_labels", "same_run", "teach", "train_rows_only",
]

logger = logging.getLogger(__name__)

#: What finetuning trains: only the new classes' embedding rows, or the automatic branch.
SCOPES = ("embedding", "auto")
PLAN_NAME = "classes.json"


@dataclass(frozen=True)
class TeachResult:
    """A finished (or stopped) run: the trainer's result, the class plan and the labelled images used."""

    result: Any
    plan: ClassPlan
    images: tuple[str, ...]


def write_datalist(
    images: Iterable[LabelledImage], plan: ClassPlan, folder: str | os.PathLike, rehearsal: Callable[[Any], Any] | None = None
) -> Path:
    """Labels relabelled to global ids (values of other structures become background) under
    ``folder/labels``, images as NIfTI (NRRD uploads converted), and ``folder/datalist.json``.

    Args:
        rehearsal: image :class:`~voxelprompt.types.Volume` -> the model's own automatic labels
            (global ids, same grid), written as each case's ``pseudo_label``: the trainer then
            keeps training the classes the model has on what it segments now, so learning a new
            structure does not make it forget them. Files already written (a resumed run) are kept.
    """
    from voxelprompt.imageio import read_labels, read_volume, write_volume

    folder = Path(folder)
    entries = []
    for k, item in enumerate(images):
        labels = read_labels(item.label)
        array = np.asarray(labels.array)
        lut = np.zeros(int(max(array.max(initial=0), max(item.names))) + 1, dtype=np.uint16)
        for value, name in item.names.items():
            lut[value] = plan.ids.get(name, 0)
        image = item.image
        if not str(image).endswith((".nii", ".nii.gz")):
            image = write_volume(read_volume(image), folder / "images" / f"case{k:04d}.nii.gz")
        label = write_volume(labels.with_array(lut[array]), folder / "labels" / f"case{k:04d}.nii.gz", dtype=np.uint16)
        entry = {"image": str(Path(image).resolve()), "label": str(label.resolve()), "image_id": item.image_id}
        if rehearsal is not None:
            pseudo = folder / "pseudo" / f"case{k:04d}.nii.gz"
            if not pseudo.is_file():
                write_volume(rehearsal(read_volume(image)), pseudo, dtype=np.uint16)
            entry["pseudo_label"] = str(pseudo.resolve())
        entries.append(entry)
    path = folder / "datalist.json"
    path.write_text(json.dumps({"training": entries}, indent=1))
    return path


def own_labels(checkpoint: str | os.PathLike, profile: Any, learnt: Mapping[int, str] | None = None) -> Callable[[Any], Any]:
    """The rehearsal of :func:`write_datalist`: ``checkpoint``'s automatic "everything" labels
    under ``profile`` (an :class:`~voxelprompt.families.vista3d.inference.profiles.InferenceProfile`),
    from a network of its own loaded on first use (a server's served copy stays free for requests)."""
    loaded: list[Any] = []

    def label(volume: Any) -> Any:
        from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
        from voxelprompt.types import Prompts

        if not loaded:
            loaded.append(Vista3DSegmenter.from_checkpoint(checkpoint, profile=profile, taught_classes=dict(learnt or {})))
        return loaded[0].segment(volume, Prompts(everything=True)).labels

    return label


def teach(
    checkpoint: str | os.PathLike,
    datastore: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    known: Mapping[int, str],
    learnt: Mapping[int, str] | None = None,
    tag: str = "final",
    only: Iterable[str] | None = None,
    fixed: Mapping[str, int] | None = None,
    related: Mapping[str, str] | None = None,
    scope: str = "auto",
    steps: int = 100,
    lr: float = 2e-3,
    patch: Mapping[str, Any] | None = None,
    profile: Any = None,
    resume: bool = False,
    turn: Callable[[], contextlib.AbstractContextManager[bool]] | None = None,
    stop: threading.Event | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    progress: bool = False,
) -> TeachResult:
    """Finetune ``checkpoint`` on the labels of a datastore folder.

    Args:
        checkpoint: the VISTA3D to start from; datastore: the server's ``--datastore`` folder.
        output_dir: the run folder (datalist, ``classes.json``, checkpoint, ``model.pt``).
        known, learnt: id -> name of the classes the model segments, and of those finetuning
            added (see :func:`assign_classes`).
        tag: the label tag to train on; only: train these structure names only (default: all).
        fixed, related: see :func:`assign_classes`.
        scope: one of :data:`SCOPES`; steps, lr: optimisation steps and peak learning rate.
        patch: the recipe's patch fields (default: ``profile``'s ``roi`` and ``spacing``).
        profile: the model's inference profile; given, each labelled image also gets the model's
            own automatic labels as a pseudo label (rehearsal, see :func:`write_datalist`), so
            ``scope="auto"`` keeps the existing classes.
        resume: continue the run in ``output_dir`` (its ``classes.json`` must match).
        turn, stop: see :meth:`~voxelprompt.training.loop.StepTrainer.fit`.
        on_step: called with (step, steps, loss) after each step (progress reports).

    Raises:
        InputError: no labels, unknown structure names, conflicting ids, a bad scope.
    """
    if scope not in SCOPES:
        raise InputError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    images = labelled_images(datastore, tag)
    present = list(dict.fromkeys(n for item in images for n in item.names.values()))
    wanted = list(dict.fromkeys(only)) if only else present
    missing = [n for n in wanted if n not in present]
    if missing:
        raise InputError(f"unknown label name {missing[0]!r}: the saved labels name {', '.join(map(repr, present))}")
    plan = assign_classes(wanted, known, learnt, CLASS_TABLE_SIZE, fixed, related)  # checked before the model loads
    from voxelprompt.families.vista3d.network import load_vista3d

    net, spec = load_vista3d(checkpoint)
    if spec.n_classes != CLASS_TABLE_SIZE:
        plan = assign_classes(wanted, known, learnt, spec.n_classes, fixed, related)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if resume and (out / PLAN_NAME).is_file() and not same_run(out, plan, scope):
        raise InputError(f"{out}: the run there trained other classes; give another output folder or drop --resume")
    (out / PLAN_NAME).write_text(json.dumps(_plan_record(plan, scope), indent=1))
    rehearsal = own_labels(checkpoint, profile, learnt) if profile is not None else None
    if profile is not None and not patch:
        patch = {"roi": list(profile.roi_size), "spacing": list(profile.spacing)}
    datalist = write_datalist(images, plan, out / "data", rehearsal)
    return TeachResult(_run(net, checkpoint, datalist, plan, scope, steps, lr, patch, out, resume, turn, stop, on_step, progress), plan, tuple(i.image_id for i in images))


def _plan_record(plan: ClassPlan, scope: str) -> dict[str, Any]:
    return {"ids": plan.ids, "new": list(plan.new), "init_from": {str(k): v for k, v in plan.init_from.items()}, "scope": scope}


def same_run(folder: str | os.PathLike, plan: ClassPlan, scope: str) -> bool:
    """Whether the run folder ``folder`` trains ``plan``'s classes with ``scope`` (so it can be resumed)."""
    path = Path(folder) / PLAN_NAME
    return path.is_file() and json.loads(path.read_text()) == _plan_record(plan, scope)


def _run(net, checkpoint, datalist, plan: ClassPlan, scope, steps, lr, patch, out, resume, turn, stop, on_step, progress):
    from monai.utils import set_determinism

    from voxelprompt.families.vista3d.training.finetune import add_classes, finetune_recipe
    from voxelprompt.families.vista3d.training.trainer import Trainer

    ids = sorted(plan.ids.values())
    overrides: dict[str, Any] = {"optim": {"lr": lr, "weight_decay": 0.0 if scope == "embedding" else 1e-5}, "val_every": -1}
    overrides["checkpoint_every"] = max(1, min(25, steps))
    taught = {plan.ids[n] for n in plan.new} or set(plan.ids.values())
    # Patch centres: half in the taught structures (a lesion is 1 of ~36 classes of a rehearsed case).
    overrides["patch"] = {
        **dict(patch or {}), "crop_num_classes": max(LAST_SUPPORTED, *ids) + 1,
        "crop_class_ratios": {c: 32.0 for c in taught},
    }  # fmt: skip
    recipe = finetune_recipe(checkpoint, datalist, {i: i for i in ids}, steps=steps, output_dir=out, **overrides)
    add_classes(net, plan.init_from)
    set_determinism(seed=recipe.seed)
    trainer = Trainer(recipe, net=net.train(), progress=progress)
    step_classes = trainer._sample_label_set

    def alternate(sample: dict) -> list[int]:
        """Even steps prompt the taught classes, odd steps the rest (the pseudo labels' classes:
        rehearsal); mixing them in one step would give a new class 1/30 of the loss."""
        every = step_classes(sample)
        others = [c for c in every if c not in taught]
        return others if trainer.step % 2 and others else [c for c in every if c in taught]

    trainer._sample_label_set = alternate  # type: ignore[method-assign]
    if scope == "embedding":
        train_rows_only(trainer.net, [plan.ids[n] for n in plan.new])
        trainer.setup_optimizer()
    if on_step is not None:
        step = trainer.train_step

        def reporting_step() -> float:
            loss = step()
            on_step(trainer.step, recipe.steps, loss)
            return loss

        trainer.train_step = reporting_step  # type: ignore[method-assign]
    return trainer.fit(resume=resume and (out / "checkpoint.pt").is_file(), turn=turn, stop=stop)


def train_rows_only(net: Any, rows: Iterable[int]) -> None:
    """Freeze everything but the class-embedding rows ``rows`` (their gradient is masked to them).

    Raises:
        InputError: no new class: every labelled structure is one the model already segments.
    """
    rows = sorted({int(r) for r in rows})
    if not rows:
        raise InputError("scope 'embedding' trains new structures only; every labelled structure is a class the model has (use scope 'auto')")
    import torch

    for p in net.parameters():
        p.requires_grad_(False)
    table = net.class_head.class_embeddings.weight
    table.requires_grad_(True)
    mask = torch.zeros_like(table)
    mask[rows] = 1.0
    table.register_hook(lambda grad: grad * mask.to(grad.device, grad.dtype))
