"""SegVol training recipes: SimMIM pre-training of the ViT encoder and the supervised loop.

Defaults follow the paper (Sec. 2.2, 3.1 and Algorithm 1) and BAAI-DCAI/SegVol ``train.py``:
SimMIM with 60 % of the patches masked; supervised fine-tuning with the text encoder frozen, six
prompt combinations per ground-truth object, six pseudo-mask rounds weighted 0.1, Dice + BCE,
AdamW. A recipe file says ``"family": "segvol"`` and may name a ``base``
(``segvol-pretrain`` or ``segvol-supervised``); fields merge as in VISTA3D recipes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voxelprompt.errors import InputError
from voxelprompt.families.segvol.network.builder import SEGVOL_CONFIGS, SegVolConfig
from voxelprompt.families.vista3d.training.recipe import DataConfig, OptimConfig, recipe_from_dict

__all__ = ["SegVolRecipe", "SEGVOL_MODES", "SEGVOL_RECIPES", "model_config", "build_pretrain", "build_supervised"]

SEGVOL_MODES = ("pretrain", "supervised")


@dataclass(frozen=True)
class SegVolRecipe:
    """One SegVol training run.

    Args:
        name: run name.
        mode: ``pretrain`` (SimMIM, image encoder only) or ``supervised`` (Algorithm 1).
        model: a name in :data:`~voxelprompt.families.segvol.network.builder.SEGVOL_CONFIGS` or the fields
            of a :class:`~voxelprompt.families.segvol.network.builder.SegVolConfig`.
        init: checkpoint to start from: a whole SegVol, or an encoder from a ``pretrain`` run.
        data: datalists and sampling (VISTA3D's :class:`DataConfig`; ``label_set``,
            ``supervoxels``, ``pseudo_labels`` and ``synthetic_datalists`` are unused).
        pseudo: keyword arguments of :func:`voxelprompt.pseudolabels.pseudo_masks` (supervised).
        pseudo_cache: folder that caches pseudo masks between runs (None: no cache).
        mask_ratio: SimMIM's masked fraction of mask units.
        mask_unit: SimMIM mask-unit size in ViT patches (D', H', W').
        pseudo_weight: weight of the pseudo-mask loss (alpha = 0.1).
        pseudo_rounds: pseudo masks per step (n = 6).
        box_jitter: largest jitter of box corners in voxels.
        objects_per_step: ground-truth objects per step; Algorithm 1 updates once per object.
        optim, steps, checkpoint_every, val_every, log_every, output_dir, seed, amp, device: as
            in VISTA3D's :class:`~voxelprompt.families.vista3d.training.recipe.Recipe`.
    """

    name: str = "segvol"
    mode: str = "supervised"
    model: str | Mapping[str, Any] = "segvol_v1"
    init: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    pseudo: Mapping[str, Any] = field(default_factory=dict)
    pseudo_cache: str | None = None
    mask_ratio: float = 0.6
    mask_unit: tuple[int, int, int] = (1, 1, 1)
    pseudo_weight: float = 0.1
    pseudo_rounds: int = 6
    box_jitter: int = 0
    objects_per_step: int = 1
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, weight_decay=1e-5))
    steps: int = 1000
    checkpoint_every: int = 500
    val_every: int = -1
    log_every: int = 10
    output_dir: str = "runs/segvol"
    seed: int = 0
    amp: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.mode not in SEGVOL_MODES:
            raise ValueError(f"mode must be one of {SEGVOL_MODES}, got {self.mode!r}")
        object.__setattr__(self, "mask_unit", tuple(int(u) for u in self.mask_unit))
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.pseudo_weight < 0 or self.pseudo_rounds < 0 or self.box_jitter < 0 or self.objects_per_step < 1:
            raise ValueError("pseudo_weight, pseudo_rounds, box_jitter must be >= 0 and objects_per_step >= 1")
        if self.steps < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("steps, checkpoint_every and log_every must be >= 1")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu or cuda[:N], got {self.device!r}")
        model_config(self)  # fail early on an unknown model


def model_config(recipe: SegVolRecipe) -> SegVolConfig:
    """The network size a recipe names."""
    if isinstance(recipe.model, str):
        try:
            return SEGVOL_CONFIGS[recipe.model]
        except KeyError:
            raise InputError(f"unknown SegVol model {recipe.model!r} (one of {', '.join(SEGVOL_CONFIGS)})") from None
    return SegVolConfig.from_dict(dict(recipe.model))


def _with(base: SegVolRecipe, overrides: dict[str, Any]) -> SegVolRecipe:
    return recipe_from_dict(overrides, base=base) if overrides else base


def build_pretrain(**overrides: Any) -> SegVolRecipe:
    """SimMIM pre-training of the image encoder (the paper: 2000 epochs on 96K CTs)."""
    base = SegVolRecipe(name="segvol-pretrain", mode="pretrain", output_dir="runs/segvol-pretrain", steps=100_000)
    return _with(base, overrides)


def build_supervised(**overrides: Any) -> SegVolRecipe:
    """The supervised loop of Algorithm 1 (the paper: 270 epochs, batch 32, text encoder frozen)."""
    base = SegVolRecipe(name="segvol-supervised", mode="supervised", output_dir="runs/segvol-supervised")
    return _with(base, overrides)


#: Built-in SegVol recipes: name -> builder accepting field overrides.
SEGVOL_RECIPES: dict[str, Callable[..., SegVolRecipe]] = {
    "segvol-pretrain": build_pretrain,
    "segvol-supervised": build_supervised,
}

