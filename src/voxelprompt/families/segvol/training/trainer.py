"""SegVol training on the shared loop (:class:`~voxelprompt.training.loop.StepTrainer`):
SimMIM pre-training and the supervised loop of SegVol's Algorithm 1.

Supervised step (one ground-truth object, as Algorithm 1's body): encode the window once; for each
of the six prompt combinations decode and add Dice + BCE against the object; for each of the
pseudo rounds draw a pseudo mask, prompt it with points or a box, decode and add Dice + BCE; the
update minimises ``l_gt + alpha * l_pseudo``. The text encoder is frozen (the paper).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.utils import set_determinism

from voxelprompt.catalog import vista3d_catalog
from voxelprompt.models.checkpoint_io import save_checkpoint_file
from voxelprompt.families.segvol.network.builder import build_segvol_config
from voxelprompt.families.segvol.network.checkpoint import load_state_dict_strict, read_state_dict
from voxelprompt.training.datalist import load_datalists
from voxelprompt.training.loop import StepTrainer, TrainResult
from voxelprompt.families.segvol.training.data import SegVolSample, prepare_case, window_transforms
from voxelprompt.families.segvol.training.prompts import COMBINATIONS, object_prompt, pseudo_target
from voxelprompt.families.segvol.training.recipe import SegVolRecipe, model_config
from voxelprompt.families.segvol.training.simmim import SimMIM, random_patch_mask
from voxelprompt.families.vista3d.training.cases import case_weights
from voxelprompt.families.vista3d.training.transforms import read_label_mappings

__all__ = ["SegVolTrainer", "train_segvol", "ENCODER_PREFIX"]

logger = logging.getLogger(__name__)

#: Pre-training saves the encoder under SegVol's names, so ``init`` loads it into SegVol.
ENCODER_PREFIX = "image_encoder."
_ATTEMPTS = 10


class SegVolTrainer(StepTrainer):
    """Runs one :class:`SegVolRecipe` (``pretrain`` or ``supervised``).

    Args:
        recipe: the run.
        net: a SegVol network (default: built from ``recipe.model`` and ``recipe.init``).
        progress: show a progress bar.
        distributed: force DDP even with one process (tests).
    """

    def __init__(self, recipe: SegVolRecipe, net=None, progress: bool = True, distributed: bool = False) -> None:
        self.segvol = net if net is not None else _build(recipe)
        pretrain = recipe.mode == "pretrain"
        trained = SimMIM(self.segvol.image_encoder) if pretrain else self.segvol
        super().__init__(recipe, trained, progress, distributed)
        # The supervised step calls the encoder and decoder separately (one encoding, twelve
        # decodings), which DDP's forward hook cannot see: gradients are averaged by hand instead.
        self.wrap_ddp = pretrain
        if not pretrain:
            for p in self.segvol.text_encoder.parameters():
                p.requires_grad_(False)
        self.setup_optimizer()
        self.loss_fn = DiceCELoss(sigmoid=True)  # Dice + BCE of one object channel
        self._setup_data()
        self._text_cache: dict[str, torch.Tensor] = {}

    # ---- setup -------------------------------------------------------------------------------
    def _setup_data(self) -> None:
        d, r = self.recipe.data, self.recipe
        datalist = load_datalists(d.datalists, skip_bad=d.skip_bad)
        self.cases = list(datalist.training)[: d.max_cases]
        self.weights = case_weights([c.dataset for c in self.cases], d.dataset_sampling, dict(d.dataset_weights))
        self.mappings = read_label_mappings(d.label_mappings)
        self.window = self.segvol.image_size
        self.transform = window_transforms(self.window)
        self._samples: dict[int, SegVolSample] = {}
        self.catalog = vista3d_catalog()
        logger.info("SegVol %s: %d training cases, window %s", r.mode, len(self.cases), self.window)

    def _sample(self, index: int) -> SegVolSample:
        if index not in self._samples or not self.recipe.data.cache:
            self._samples[index] = prepare_case(
                self.cases[index], self.mappings, pseudo=self.recipe.pseudo, cache_dir=self.recipe.pseudo_cache
            )
        return self._samples[index]

    def seed_transforms(self, seed: int) -> None:
        self.transform.set_random_state(seed=seed)

    def _window(self, step: int, attempt: int) -> tuple[np.random.Generator, dict]:
        rng = self.seed_step(step, attempt)
        index = int(rng.choice(len(self.cases), p=self.weights))
        out = self.transform(self._sample(index).as_dict())
        out = out[0] if isinstance(out, list) else out
        window = {k: np.asarray(torch.as_tensor(v))[0] for k, v in out.items()}
        for key in ("label", "pseudo"):  # MONAI hands ids back as floats
            window[key] = np.rint(window[key]).astype(np.int32)
        return rng, window

    # ---- steps -------------------------------------------------------------------------------
    def train_step(self) -> float:
        loss = self._pretrain_loss() if self.recipe.mode == "pretrain" else self._supervised_loss()
        if loss is None:
            logger.warning("step %d skipped: no labelled object in %d windows", self.step, _ATTEMPTS)
            self.finish_step()
            return math.nan
        value = self.update(loss)
        self.finish_step()
        return value

    def _pretrain_loss(self) -> torch.Tensor:
        rng, window = self._window(self.step, 0)
        image = torch.from_numpy(window["image"].astype(np.float32))[None, None].to(self.device)
        grid = self.segvol.image_encoder.feature_size
        mask = random_patch_mask(grid, self.recipe.mask_ratio, self.recipe.mask_unit, rng)
        with torch.autocast(device_type=self.device.type, enabled=self.amp):
            return self.model(image, mask)

    def _text(self, class_id: int) -> torch.Tensor:
        name = self.catalog.name(class_id)
        if name not in self._text_cache:
            with torch.no_grad():
                self._text_cache[name] = self.segvol.encode_text([name])
        return self._text_cache[name]

    def _object_loss(self, embedding, target: torch.Tensor, **prompt) -> torch.Tensor:
        logits = self.segvol.decode(embedding, **prompt)
        return self.loss_fn(logits.float(), target)

    def _supervised_loss(self) -> torch.Tensor | None:
        r = self.recipe
        for attempt in range(_ATTEMPTS):
            rng, window = self._window(self.step, attempt)
            present = [int(c) for c in np.unique(window["label"]) if c > 0]
            if present:
                break
        else:
            return None
        image = torch.from_numpy(window["image"].astype(np.float32))[None, None].to(self.device)
        chosen = rng.choice(present, size=min(r.objects_per_step, len(present)), replace=False)
        with torch.autocast(device_type=self.device.type, enabled=self.amp):
            embedding = self.segvol.encode_image(image)
            gt_loss = image.new_zeros(())
            for class_id in chosen:
                mask = window["label"] == int(class_id)
                target = torch.from_numpy(mask.astype(np.float32))[None, None].to(self.device)
                prompt = object_prompt(mask, rng, jitter=r.box_jitter)
                for kinds in COMBINATIONS:
                    text = self._text(int(class_id)) if "text" in kinds else None
                    gt_loss = gt_loss + self._object_loss(
                        embedding, target, text_embedding=text, **prompt.network_kwargs(kinds)
                    )
            pseudo_loss = image.new_zeros(())
            for round_ in range(r.pseudo_rounds if r.pseudo_weight > 0 else 0):
                drawn = pseudo_target(window["pseudo"], rng, use_box=round_ % 2 == 1, jitter=r.box_jitter)
                if drawn is None:
                    break
                mask, prompt = drawn
                target = torch.from_numpy(mask.astype(np.float32))[None, None].to(self.device)
                kinds = ("box",) if round_ % 2 else ("points",)
                pseudo_loss = pseudo_loss + self._object_loss(embedding, target, **prompt.network_kwargs(kinds))
        self.last_losses = {"gt": float(gt_loss.detach()), "pseudo": float(pseudo_loss.detach())}
        return gt_loss + r.pseudo_weight * pseudo_loss

    # ---- outputs -----------------------------------------------------------------------------
    def save_model(self, path: Path) -> Path:
        """Pre-training: the encoder under SegVol's names; supervised: the whole SegVol."""
        if self.recipe.mode == "pretrain":
            state = {ENCODER_PREFIX + k: v.detach().cpu() for k, v in self.segvol.image_encoder.state_dict().items()}
        else:
            state = {k: v.detach().cpu() for k, v in self.segvol.state_dict().items()}
        return save_checkpoint_file(state, path)


def _build(recipe: SegVolRecipe):
    torch.manual_seed(recipe.seed)
    net = build_segvol_config(model_config(recipe)).train()
    if recipe.init:
        state = read_state_dict(recipe.init)
        if state and all(k.startswith(ENCODER_PREFIX) for k in state):
            encoder_state = {k[len(ENCODER_PREFIX) :]: v for k, v in state.items()}
            load_state_dict_strict(net.image_encoder, encoder_state, source=str(recipe.init))
        else:
            load_state_dict_strict(net, state, source=str(recipe.init))
    return net


def train_segvol(recipe: SegVolRecipe, resume: str | os.PathLike | bool = False, progress: bool = True) -> TrainResult:
    """Run one SegVol recipe (see :class:`SegVolTrainer`)."""
    set_determinism(seed=recipe.seed)
    return SegVolTrainer(recipe, progress=progress).fit(resume=resume)
