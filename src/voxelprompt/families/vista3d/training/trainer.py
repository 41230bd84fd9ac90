"""The VISTA3D training loop of one recipe stage: iterative clicks, class prompts, validation Dice
per class; on CPU, one GPU, or many GPUs under ``torchrun``. The machinery shared with other model
families (optimiser, schedule, exact resume, checkpoints, DDP) is :class:`~voxelprompt.training.loop.StepTrainer`.
"""

from __future__ import annotations

import logging
import math
import os
import warnings

import numpy as np
import torch
import torch.distributed as dist
from monai.data import CacheDataset, Dataset
from monai.losses import DiceCELoss
from monai.utils import set_determinism

from voxelprompt.catalog import LAST_SUPPORTED
from voxelprompt.errors import InputError
from voxelprompt.families.vista3d.network import Vista3DSpec, build_vista3d, load_vista3d, save_vista3d
from voxelprompt.training.layout import prepare_for_training
from voxelprompt.training.loop import CHECKPOINT_NAME, MODEL_NAME, StepTrainer, TrainResult
from voxelprompt.families.vista3d.training.cases import case_probabilities, case_weights, training_cases, validation_cases
from voxelprompt.families.vista3d.training.labels import LABELED_KEY, PSEUDO_CLASSES_KEY, MergePseudoLabeld
from voxelprompt.families.vista3d.training.prompts import PromptBatch, next_clicks, sample_prompts
from voxelprompt.families.vista3d.training.recipe import Recipe
from voxelprompt.training.runtime import any_rank
from voxelprompt.families.vista3d.training.transforms import (
    as_batch,
    first_sample,
    label_set_of,
    read_label_mappings,
    train_transforms,
    val_transforms,
)
from voxelprompt.families.vista3d.training.validation import validation_dice

__all__ = ["Trainer", "TrainResult", "train", "case_weights", "CHECKPOINT_NAME", "MODEL_NAME"]

logger = logging.getLogger(__name__)

_PROMPT_ATTEMPTS = 10


class Trainer(StepTrainer):
    """Runs one VISTA3D :class:`~voxelprompt.families.vista3d.training.recipe.Recipe`.

    Args:
        recipe: the stage to run.
        net: a VISTA3D network to train (default: ``recipe.init`` or a fresh one of ``recipe.width``).
        progress: show a progress bar (rank 0).
        distributed: force a process group and DDP even with one process (tests); default: only
            when ``WORLD_SIZE > 1``.
    """

    def __init__(
        self, recipe: Recipe, net: torch.nn.Module | None = None, progress: bool = True, distributed: bool = False
    ) -> None:
        net = net if net is not None else self._build_net(recipe)
        # Channels-last weights with fused instance norms: same parameters and gradients, 1.06-1.21x
        # faster steps on a quiet CPU (training README, benchmarks/training_step.py); the saved state
        # dict keeps MONAI's keys.
        super().__init__(recipe, prepare_for_training(net), progress, distributed)
        self.net.set_auto_grad(auto_freeze=recipe.freeze == "auto", point_freeze=recipe.freeze == "point")
        self.setup_optimizer()
        # The official per-object loss; one call over all objects averages it (same voxel counts).
        self.loss_fn = DiceCELoss(
            sigmoid=True, squared_pred=True, include_background=False, smooth_nr=0.0, smooth_dr=1e-5
        )
        self._setup_data()

    # ---- setup -------------------------------------------------------------------------------
    @staticmethod
    def _build_net(r: Recipe) -> torch.nn.Module:
        if r.init:
            net, _ = load_vista3d(r.init)
            return net
        torch.manual_seed(r.seed)
        return build_vista3d(Vista3DSpec(width=r.width, n_classes=r.n_classes))

    def _setup_data(self) -> None:
        d, r = self.recipe.data, self.recipe
        training = training_cases(r)
        self.train_cases = training
        self.mappings = read_label_mappings(d.label_mappings)
        self.default_label_set = d.label_set or tuple(range(1, LAST_SUPPORTED + 1))
        n_rows = self.net.class_head.class_embeddings.num_embeddings
        too_big = [c for c in self._all_label_ids() if c >= n_rows]
        if too_big:
            raise InputError(f"class id {too_big[0]} does not fit the model's {n_rows}-row class embedding")
        self.weights = case_probabilities(training, d)
        pseudo = MergePseudoLabeld(self._manual_label_set, d.pseudo_label_exclude) if d.pseudo_labels else None
        self.train_tf = train_transforms(r.patch, self.mappings, supervoxels=d.supervoxels, pseudo_labels=pseudo)
        items = [c.as_dict() for c in training]
        show = self.progress and self.rank == 0
        if d.cache:
            self.train_ds = CacheDataset(items, self.train_tf, num_workers=0, progress=show)
        else:
            self.train_ds = Dataset(items, self.train_tf)
        val = validation_cases(r)
        self.val_ds = Dataset([c.as_dict() for c in val], val_transforms(r.patch, self.mappings))

    def _label_set(self, dataset: str) -> list[int]:
        return label_set_of(dataset, self.mappings, self.default_label_set)

    def _manual_label_set(self, dataset: str, labeled: bool) -> list[int]:
        return self._label_set(dataset) if labeled else []

    def _sample_label_set(self, sample: dict) -> list[int]:
        """Global ids a training sample annotates: its dataset's (none for an unlabeled image) and
        the pseudo-label classes merged into it."""
        manual = self._manual_label_set(sample["dataset_name"], bool(sample.get(LABELED_KEY, True)))
        return sorted(set(manual) | set(sample.get(PSEUDO_CLASSES_KEY, ())))

    def _all_label_ids(self) -> set[int]:
        ids = set(self.default_label_set)
        for pairs in self.mappings.values():
            ids |= {int(g) for _, g in pairs}
        return ids

    # ---- one step ----------------------------------------------------------------------------
    def seed_transforms(self, seed: int) -> None:
        self.train_tf.set_random_state(seed=seed)

    def _draw(self, step: int) -> tuple[torch.Tensor, PromptBatch] | None:
        for attempt in range(_PROMPT_ATTEMPTS):
            rng = self.seed_step(step, attempt)
            index = int(rng.choice(len(self.train_cases), p=self.weights))
            sample = first_sample(self.train_ds[index])
            image, labels, sv = (as_batch(sample.get(k), self.device) for k in ("image", "label", "supervoxel"))
            prompts = sample_prompts(
                labels, self._sample_label_set(sample), self.recipe.prompts, supervoxels=sv, image=image
            )
            if prompts is not None:
                return image, prompts
        return None

    def _forward(self, image: torch.Tensor, prompts: PromptBatch) -> torch.Tensor:
        with torch.autocast(device_type=self.device.type, enabled=self.amp):
            return self.model(input_images=image, **prompts.network_kwargs())

    def train_step(self) -> float:
        """One step: draw a patch and prompts, then one update per click round. Returns the mean loss."""
        drawn = self._draw(self.step)
        if any_rank(drawn is None, self.distributed, self.device):
            logger.warning("step %d skipped: no prompt could be drawn", self.step)
            self.finish_step()
            return math.nan
        image, prompts = drawn  # type: ignore[misc]
        rounds = self.recipe.prompts.iterations if self.recipe.prompts.branch == "point" else 1
        losses = []
        for round_ in range(rounds):
            logits = self._forward(image, prompts)
            with warnings.catch_warnings():  # one channel per object is intended
                warnings.filterwarnings("ignore", message="single channel prediction")
                loss = self.loss_fn(logits.float(), prompts.targets)
            losses.append(self.update(loss))
            if round_ == rounds - 1:
                break
            coords, labels = next_clicks(
                logits.detach().float().sigmoid(),
                prompts.targets,
                prompts.point_coords,
                prompts.point_labels,
                prompts.prompt_class,
            )
            prompts.point_coords, prompts.point_labels = coords, labels
            # Stop when every object is right (no new click anywhere); ranks must agree.
            done = bool((labels[:, -2:] == -1).all())
            if self.distributed:
                t = torch.tensor([0.0 if done else 1.0], device=self.device)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                done = t.item() == 0
            if done:
                break
        self.finish_step()
        return float(np.mean(losses))

    # ---- validation and outputs --------------------------------------------------------------
    def validate(self) -> dict[int, float]:
        """Mean Dice per class on the validation cases; see :func:`validation_dice`."""
        if len(self.val_ds) == 0:
            return {}
        return validation_dice(self.net, self.val_ds, self.recipe, self._label_set)

    def save_model(self, path) -> os.PathLike:
        return save_vista3d(self.net, path)


def train(recipe: Recipe, resume: str | os.PathLike | bool = False, progress: bool = True) -> TrainResult:
    """Run one recipe stage (see :class:`Trainer`)."""
    set_determinism(seed=recipe.seed)
    return Trainer(recipe, progress=progress).fit(resume=resume)
