"""The training loop of one recipe stage: AdamW + warm-up cosine, iterative clicks, checkpoints
with exact resume, validation Dice per class; on CPU, one GPU, or many GPUs under ``torchrun``.

Every step re-seeds python, numpy, torch and the transforms from ``(seed, step, rank)``, so a
resumed run draws the same patches and prompts as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from monai.data import CacheDataset, Dataset
from monai.losses import DiceCELoss
from monai.optimizers import WarmupCosineSchedule
from monai.utils import set_determinism
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from voxelprompt.catalog import LAST_SUPPORTED
from voxelprompt.errors import CheckpointError, InputError
from voxelprompt.models.checkpoint_io import load_checkpoint_file, save_checkpoint_file
from voxelprompt.models.vista3d import Vista3DSpec, build_vista3d, load_vista3d, save_vista3d
from voxelprompt.training.datalist import Datalist, load_datalists
from voxelprompt.training.prompts import PromptBatch, next_clicks, sample_prompts
from voxelprompt.training.recipe import Recipe, recipe_to_dict, save_recipe
from voxelprompt.training.runtime import any_rank, init_distributed, rng_state, set_rng_state
from voxelprompt.training.transforms import (
    first_sample,
    label_set_of,
    read_label_mappings,
    train_transforms,
    val_transforms,
)
from voxelprompt.training.validation import validation_dice

__all__ = ["Trainer", "TrainResult", "train", "case_weights", "CHECKPOINT_NAME", "MODEL_NAME"]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.pt"
_PROMPT_ATTEMPTS = 10


@dataclass
class TrainResult:
    """What a run produced.

    Args:
        steps: steps done (including resumed ones).
        losses: mean loss per step over its click rounds (NaN for skipped steps).
        val_dice: class id -> mean validation Dice of the last validation.
        checkpoint: resumable checkpoint; model: bare ``state_dict`` for inference.
        seconds: wall time of this call; steps_per_second: this call's steps / seconds.
    """

    steps: int
    losses: list[float] = field(default_factory=list)
    val_dice: dict[int, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    model: Path | None = None
    seconds: float = 0.0
    steps_per_second: float = 0.0


def case_weights(datasets: list[str], mode: str, weights: dict[str, float] | None = None) -> np.ndarray:
    """Probability of drawing each training case (see :data:`~voxelprompt.training.recipe.SAMPLING_MODES`).

    Args:
        datasets: dataset name of each case.
    """
    names = np.array(datasets)
    if mode == "case":
        w = np.ones(len(names))
    elif mode == "uniform":
        counts = {n: int((names == n).sum()) for n in set(datasets)}
        w = np.array([1.0 / counts[n] for n in datasets])
    elif mode == "weighted":
        w = np.array([float((weights or {}).get(n, 1.0)) for n in datasets])
    else:
        raise ValueError(f"unknown dataset sampling {mode!r}")
    if not (w >= 0).all() or w.sum() <= 0:
        raise InputError(f"dataset weights must be >= 0 and not all 0, got {weights}")
    return w / w.sum()


def _plain(x: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    """[C, X, Y, Z] (Meta)Tensor -> plain [1, C, X, Y, Z] tensor (MetaTensor ops are slow)."""
    if x is None:
        return None
    return torch.as_tensor(x).as_subclass(torch.Tensor).unsqueeze(0).to(device)


class Trainer:
    """Runs one :class:`~voxelprompt.training.recipe.Recipe`.

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
        self.recipe = recipe
        self.progress = progress
        self.rank, self.world_size, self._owns_group = init_distributed(distributed)
        self.distributed = distributed or self.world_size > 1
        self.device = self._pick_device()
        self.output_dir = Path(recipe.output_dir)
        self.net = (net if net is not None else self._build_net()).to(self.device).train()
        self.net.set_auto_grad(auto_freeze=recipe.freeze == "auto", point_freeze=recipe.freeze == "point")
        self.model: torch.nn.Module = self.net
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.net, device_ids=ids, find_unused_parameters=True)
        params = [p for p in self.net.parameters() if p.requires_grad]
        o = recipe.optim
        self.optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        self.scheduler = WarmupCosineSchedule(
            self.optimizer, warmup_steps=o.warmup_steps, t_total=recipe.steps, warmup_multiplier=o.warmup_multiplier
        )
        # The official per-object loss; one call over all objects averages it (same voxel counts).
        self.loss_fn = DiceCELoss(
            sigmoid=True, squared_pred=True, include_background=False, smooth_nr=0.0, smooth_dr=1e-5
        )
        self.amp = bool(recipe.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.step = 0
        self.losses: list[float] = []
        self.val_dice: dict[int, float] = {}
        self._setup_data()

    # ---- setup -------------------------------------------------------------------------------
    def _pick_device(self) -> torch.device:
        wanted = self.recipe.device
        if wanted == "auto":
            wanted = "cuda" if torch.cuda.is_available() else "cpu"
        if wanted.startswith("cuda"):
            if not torch.cuda.is_available():
                raise InputError("device cuda requested but no CUDA device is available")
            if wanted == "cuda":
                wanted = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            torch.cuda.set_device(torch.device(wanted))
        return torch.device(wanted)

    def _build_net(self) -> torch.nn.Module:
        r = self.recipe
        if r.init:
            net, _ = load_vista3d(r.init)
            return net
        torch.manual_seed(r.seed)
        return build_vista3d(Vista3DSpec(width=r.width, n_classes=r.n_classes))

    def _setup_data(self) -> None:
        d, r = self.recipe.data, self.recipe
        self.datalist: Datalist = load_datalists(d.datalists, skip_bad=d.skip_bad)
        training = list(self.datalist.training)[: d.max_cases]
        self.train_cases = training
        self.mappings = read_label_mappings(d.label_mappings)
        self.default_label_set = d.label_set or tuple(range(1, LAST_SUPPORTED + 1))
        n_rows = self.net.class_head.class_embeddings.num_embeddings
        too_big = [c for c in self._all_label_ids() if c >= n_rows]
        if too_big:
            raise InputError(f"class id {too_big[0]} does not fit the model's {n_rows}-row class embedding")
        self.weights = case_weights([c.dataset for c in training], d.dataset_sampling, dict(d.dataset_weights))
        self.train_tf = train_transforms(r.patch, self.mappings, supervoxels=d.supervoxels)
        items = [c.as_dict() for c in training]
        show = self.progress and self.rank == 0
        if d.cache:
            self.train_ds = CacheDataset(items, self.train_tf, num_workers=0, progress=show)
        else:
            self.train_ds = Dataset(items, self.train_tf)
        val = list(self.datalist.validation)[: d.val_cases]
        self.val_ds = Dataset([c.as_dict() for c in val], val_transforms(r.patch, self.mappings))

    def _label_set(self, dataset: str) -> list[int]:
        return label_set_of(dataset, self.mappings, self.default_label_set)

    def _all_label_ids(self) -> set[int]:
        ids = set(self.default_label_set)
        for pairs in self.mappings.values():
            ids |= {int(g) for _, g in pairs}
        return ids

    # ---- one step ----------------------------------------------------------------------------
    def _seed(self, step: int, attempt: int) -> np.random.Generator:
        ss = np.random.SeedSequence([self.recipe.seed, step, self.rank, attempt])
        a, b, c = (int(x) for x in ss.generate_state(3))
        random.seed(a)
        np.random.seed(b)
        torch.manual_seed(c)
        self.train_tf.set_random_state(seed=b)
        return np.random.default_rng(ss)

    def _draw(self, step: int) -> tuple[torch.Tensor, PromptBatch] | None:
        for attempt in range(_PROMPT_ATTEMPTS):
            rng = self._seed(step, attempt)
            index = int(rng.choice(len(self.train_cases), p=self.weights))
            sample = first_sample(self.train_ds[index])
            image, labels, sv = (_plain(sample.get(k), self.device) for k in ("image", "label", "supervoxel"))
            prompts = sample_prompts(
                labels, self._label_set(sample["dataset_name"]), self.recipe.prompts, supervoxels=sv, image=image
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
            self.step += 1
            self.scheduler.step()
            return math.nan
        image, prompts = drawn  # type: ignore[misc]
        rounds = self.recipe.prompts.iterations if self.recipe.prompts.branch == "point" else 1
        losses = []
        for round_ in range(rounds):
            logits = self._forward(image, prompts)
            with warnings.catch_warnings():  # one channel per object is intended
                warnings.filterwarnings("ignore", message="single channel prediction")
                loss = self.loss_fn(logits.float(), prompts.targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.recipe.optim.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.recipe.optim.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            losses.append(float(loss.detach()))
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
        self.scheduler.step()
        self.step += 1
        return float(np.mean(losses))

    # ---- validation --------------------------------------------------------------------------
    def validate(self) -> dict[int, float]:
        """Mean Dice per class on the validation cases (rank 0); see :func:`validation_dice`."""
        if self.rank != 0 or len(self.val_ds) == 0:
            return {}
        self.net.eval()
        try:
            self.val_dice = validation_dice(self.net, self.val_ds, self.recipe, self._label_set)
        finally:
            self.net.train()
        if self.val_dice:
            logger.info(
                "step %d validation: mean Dice %.3f over %d classes",
                self.step,
                float(np.mean(list(self.val_dice.values()))),
                len(self.val_dice),
            )
        return self.val_dice

    # ---- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "losses": list(self.losses),
            "rng": rng_state(),
            "recipe": recipe_to_dict(self.recipe),
        }

    def save_checkpoint(self, path: str | os.PathLike | None = None) -> Path:
        """Write a resumable checkpoint (rank 0); its ``model`` entry loads with ``load_vista3d``."""
        path = Path(path) if path is not None else self.output_dir / CHECKPOINT_NAME
        if self.rank == 0:
            save_checkpoint_file(self.state_dict(), path)
        return path

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore model, optimiser, scheduler, RNG states and step from :meth:`save_checkpoint`."""
        state = load_checkpoint_file(path)
        try:
            self.net.load_state_dict(state["model"], strict=True)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            # A resumed run may extend ``steps``: the schedule follows the recipe, not the checkpoint.
            self.scheduler.t_total = self.recipe.steps
            self.scheduler.warmup_steps = min(self.recipe.optim.warmup_steps, self.recipe.steps)
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(f"{path}: not a resumable checkpoint of this recipe ({str(err)[:160]})") from err
        self.step = int(state["step"])
        self.losses = [float(x) for x in state["losses"]]
        set_rng_state(state["rng"])
        logger.info("resumed %s at step %d", path, self.step)

    # ---- loop --------------------------------------------------------------------------------
    def fit(self, resume: str | os.PathLike | bool = False) -> TrainResult:
        """Train until ``recipe.steps``; ``resume=True`` continues from ``output_dir/checkpoint.pt``."""
        r = self.recipe
        if resume:
            self.load_checkpoint(self.output_dir / CHECKPOINT_NAME if resume is True else resume)
        if self.rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            save_recipe(r, self.output_dir / "recipe.json")
        start, t0 = self.step, time.perf_counter()
        bar = tqdm(total=r.steps, initial=self.step, disable=not self.progress or self.rank != 0, desc=r.name)
        checkpoint = None
        try:
            while self.step < r.steps:
                loss = self.train_step()
                self.losses.append(loss)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                if self.step % r.log_every == 0 and self.rank == 0:
                    recent = [x for x in self.losses[-r.log_every :] if not math.isnan(x)]
                    rate = (self.step - start) / max(time.perf_counter() - t0, 1e-9)
                    logger.info(
                        "step %d/%d loss %.4f lr %.2e (%.2f steps/s)",
                        self.step, r.steps, float(np.mean(recent)) if recent else math.nan,
                        self.scheduler.get_last_lr()[0], rate,
                    )  # fmt: skip
                if self.step % r.checkpoint_every == 0 or self.step == r.steps:
                    checkpoint = self.save_checkpoint()
                if r.val_every > 0 and self.step % r.val_every == 0 and self.step < r.steps:
                    self.validate()
            if r.val_every >= 0:
                self.validate()
            model_path = save_vista3d(self.net, self.output_dir / MODEL_NAME) if self.rank == 0 else None
        finally:
            bar.close()
            if self._owns_group:
                dist.destroy_process_group()
        seconds = time.perf_counter() - t0
        done = self.step - start
        return TrainResult(
            steps=self.step,
            losses=list(self.losses),
            val_dice=dict(self.val_dice),
            checkpoint=checkpoint,
            model=model_path,
            seconds=seconds,
            steps_per_second=done / seconds if seconds > 0 else 0.0,
        )


def train(recipe: Recipe, resume: str | os.PathLike | bool = False, progress: bool = True) -> TrainResult:
    """Run one recipe stage (see :class:`Trainer`)."""
    set_determinism(seed=recipe.seed)
    return Trainer(recipe, progress=progress).fit(resume=resume)
