"""The training loop every model family shares: device, DDP, AdamW + warm-up cosine, per-step
seeding, checkpoints with exact resume, logging, progress bar and a validation hook.

A family subclasses :class:`StepTrainer` and supplies the network, the data and ``train_step``
(which draws its sample with :meth:`StepTrainer.seed_step` and updates with
:meth:`StepTrainer.update`). The run settings come from any recipe dataclass with the fields
listed in :class:`StepTrainer` (VISTA3D's :class:`~voxelprompt.families.vista3d.training.recipe.Recipe`, SegVol's
:class:`~voxelprompt.families.segvol.training.recipe.SegVolRecipe`).

Every step re-seeds python, numpy and torch from ``(seed, step, rank, attempt)``, so a resumed run
draws the same samples as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from monai.optimizers import WarmupCosineSchedule
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from voxelprompt.errors import CheckpointError, InputError
from voxelprompt.models.checkpoint_io import load_checkpoint_file, save_checkpoint_file
from voxelprompt.families.vista3d.training.recipe import recipe_to_dict, save_recipe
from voxelprompt.training.runtime import init_distributed, rng_state, set_rng_state

__all__ = ["StepTrainer", "TrainResult", "CHECKPOINT_NAME", "MODEL_NAME"]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
_FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MODEL_NAME = "model.pt"


@dataclass
class TrainResult:
    """What a run produced.

    Args:
        steps: steps done (including resumed ones).
        losses: mean loss per step over its updates (NaN for skipped steps).
        val_dice: class id -> mean validation Dice of the last validation (empty if none).
        checkpoint: resumable checkpoint; model: bare ``state_dict`` for inference.
        seconds: wall time of this call; steps_per_second: this call's steps / seconds.
        stopped: the run was asked to stop before ``recipe.steps`` (its checkpoint resumes it;
            no ``model`` was written).
    """

    steps: int
    losses: list[float] = field(default_factory=list)
    val_dice: dict[int, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    model: Path | None = None
    seconds: float = 0.0
    steps_per_second: float = 0.0
    stopped: bool = False


class StepTrainer:
    """Shared machinery of a training run; subclasses implement :meth:`train_step`.

    The recipe must provide ``name, steps, checkpoint_every, val_every, log_every, output_dir,
    seed, amp, device`` and ``optim`` (an :class:`~voxelprompt.families.vista3d.training.recipe.OptimConfig`).

    Args:
        recipe: the run settings.
        net: the network to train; only parameters with ``requires_grad`` are optimised.
        progress: show a progress bar (rank 0).
        distributed: force a process group and DDP even with one process (tests); default: only
            when ``WORLD_SIZE > 1``.
    """

    def __init__(self, recipe: Any, net: torch.nn.Module, progress: bool = True, distributed: bool = False) -> None:
        self.recipe = recipe
        self.progress = progress
        self.rank, self.world_size, self._owns_group = init_distributed(distributed)
        self.distributed = distributed or self.world_size > 1
        self.device = self._pick_device()
        self.output_dir = Path(recipe.output_dir)
        self.net = net.to(self.device).train()
        self.model: torch.nn.Module = self.net
        self.step = 0
        self.losses: list[float] = []
        self.val_dice: dict[int, float] = {}
        self.amp = bool(recipe.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        #: Wrap the network in DDP; False: :meth:`update` averages gradients across ranks itself.
        self.wrap_ddp = True

    def setup_optimizer(self) -> None:
        """Wrap the network in DDP (if distributed) and build AdamW + the warm-up cosine schedule
        over the parameters that require gradients; call after freezing."""
        if self.distributed and self.wrap_ddp:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.net, device_ids=ids, find_unused_parameters=True)
        params = [p for p in self.net.parameters() if p.requires_grad]
        if not params:
            raise InputError(f"recipe {self.recipe.name!r} leaves no trainable parameter")
        o = self.recipe.optim
        # The fused kernel (one pass over all parameters) updates as the for-loop version does, up
        # to float rounding; it exists for CPU and CUDA float parameters.
        fused = self.device.type in ("cpu", "cuda") and all(p.dtype in _FUSED_DTYPES for p in params)
        self.optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay, fused=fused or None)
        self.scheduler = WarmupCosineSchedule(
            self.optimizer, warmup_steps=o.warmup_steps, t_total=self.recipe.steps, warmup_multiplier=o.warmup_multiplier
        )

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

    # ---- hooks -------------------------------------------------------------------------------
    def train_step(self) -> float:
        """One step (draw, forward, :meth:`update`; then ``self.scheduler.step()`` and
        ``self.step += 1``, see :meth:`finish_step`). Returns the step's mean loss (NaN if skipped)."""
        raise NotImplementedError

    def validate(self) -> dict[int, float]:
        """Validation metric per class (rank 0); default: none."""
        return {}

    def save_model(self, path: Path) -> Path:
        """Write the bare network weights for inference (default: the ``state_dict``)."""
        return save_checkpoint_file({k: v.detach().cpu() for k, v in self.net.state_dict().items()}, path)

    def seed_transforms(self, seed: int) -> None:
        """Re-seed the family's random transforms (default: nothing to seed)."""

    # ---- shared pieces -----------------------------------------------------------------------
    def seed_step(self, step: int, attempt: int = 0) -> np.random.Generator:
        """Seed python, numpy, torch and the transforms from ``(seed, step, rank, attempt)``."""
        ss = np.random.SeedSequence([self.recipe.seed, step, self.rank, attempt])
        a, b, c = (int(x) for x in ss.generate_state(3))
        random.seed(a)
        np.random.seed(b)
        torch.manual_seed(c)
        self.seed_transforms(b)
        return np.random.default_rng(ss)

    def update(self, loss: torch.Tensor) -> float:
        """One optimiser update from ``loss`` (AMP scaling and gradient clipping included)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.distributed and not self.wrap_ddp:
            for p in self.optimizer.param_groups[0]["params"]:
                grad = p.grad if p.grad is not None else torch.zeros_like(p)
                dist.all_reduce(grad)
                p.grad = grad / self.world_size
        if self.recipe.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.recipe.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    def finish_step(self) -> None:
        self.scheduler.step()
        self.step += 1

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
        """Write a resumable checkpoint (rank 0)."""
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
    def run_validation(self) -> dict[int, float]:
        if self.rank != 0:
            return {}
        self.net.eval()
        try:
            self.val_dice = self.validate()
        finally:
            self.net.train()
        if self.val_dice:
            values = list(self.val_dice.values())
            logger.info("step %d validation: mean %.3f over %d classes", self.step, float(np.mean(values)), len(values))
        return self.val_dice

    def fit(
        self,
        resume: str | os.PathLike | bool = False,
        turn: Callable[[], contextlib.AbstractContextManager[bool]] | None = None,
        stop: threading.Event | None = None,
    ) -> TrainResult:
        """Train until ``recipe.steps``; ``resume=True`` continues from ``output_dir/checkpoint.pt``.

        Args:
            turn: called before each step; the step runs inside the context it returns when that
                yields True, and is retried shortly after when it yields False (a server's compute
                gate: training takes one step at a time while no request waits or runs).
            stop: when set, the run saves a checkpoint after the current step and returns with
                ``stopped`` (no ``model.pt``).
        """
        r = self.recipe
        if resume:
            self.load_checkpoint(self.output_dir / CHECKPOINT_NAME if resume is True else resume)
        if self.rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            save_recipe(r, self.output_dir / "recipe.json")
        start, t0 = self.step, time.perf_counter()
        bar = tqdm(total=r.steps, initial=self.step, disable=not self.progress or self.rank != 0, desc=r.name)
        checkpoint = None
        model_path = None
        stopped = False
        try:
            while self.step < r.steps:
                if stop is not None and stop.is_set():
                    stopped = True
                    checkpoint = self.save_checkpoint()
                    break
                with turn() if turn is not None else contextlib.nullcontext(True) as go:
                    loss = self.train_step() if go else None
                if loss is None:
                    time.sleep(0.05)  # requests hold the compute; try again shortly
                    continue
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
                    self.run_validation()
            if not stopped and r.val_every >= 0:
                self.run_validation()
            if not stopped and self.rank == 0:
                model_path = self.save_model(self.output_dir / MODEL_NAME)
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
            stopped=stopped,
        )
