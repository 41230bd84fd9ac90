"""The four VISTA3D training stages as declarative recipes: dataclasses, named builders, a registry.

Defaults are the full-scale values of Project-MONAI/VISTA ``vista3d/configs/train`` (AdamW 2e-5,
weight decay 1e-5, warm-up + cosine, 128^3 patches at 1.5 mm, 3 clicks, 5 iterative rounds). A
recipe file (JSON or YAML) names a ``base`` stage and overrides fields: ``voxelprompt train r.json``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voxelprompt.catalog import CLASS_TABLE_SIZE
from voxelprompt.errors import InputError
from voxelprompt.families.vista3d.training.prompts import PromptConfig
from voxelprompt.families.vista3d.training.transforms import PatchConfig
# Family-neutral recipe files; kept importable from here, where VISTA3D callers look for them.
from voxelprompt.training.recipe_files import read_recipe_file, recipe_to_dict, save_recipe

__all__ = [
    "DataConfig",
    "SyntheticDatalist",
    "OptimConfig",
    "Recipe",
    "FREEZE_MODES",
    "SAMPLING_MODES",
    "RECIPE_REGISTRY",
    "build_stage1",
    "build_stage2",
    "build_stage3",
    "build_stage4",
    "recipe_to_dict",
    "recipe_from_dict",
    "read_recipe_file",
    "save_recipe",
]

#: ``none`` trains everything; ``point`` freezes encoder + point branch (stages 3-4, MONAI's
#: ``set_auto_grad(point_freeze=True)``); ``auto`` freezes encoder + auto branch.
FREEZE_MODES = ("none", "point", "auto")
#: ``case``: every training case equally likely; ``uniform``: every dataset equally likely
#: (stage 4); ``weighted``: every dataset equally likely times its ``dataset_weights`` entry
#: (stage 2 oversampling; see :func:`~voxelprompt.families.vista3d.training.cases.case_weights`).
SAMPLING_MODES = ("case", "uniform", "weighted")


@dataclass(frozen=True)
class SyntheticDatalist:
    """An extra datalist of generated cases (MAISI's synthetic tumours in the paper's stage 4).

    Args:
        path: datalist JSON (entries as in any datalist; its validation entries are not used).
        dataset: dataset name every entry gets (selects its label mapping, if any).
        weight: the dataset's share of draws relative to a real dataset of share 1 (``uniform``
            and ``weighted`` sampling), or of each of its cases relative to a real case (``case``).
    """

    path: str
    dataset: str = "synthetic"
    weight: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", str(self.path))
        if not float(self.weight) >= 0:
            raise ValueError(f"synthetic datalist weight must be >= 0, got {self.weight!r}")


@dataclass(frozen=True)
class DataConfig:
    """Where training data comes from and how cases are drawn.

    Args:
        datalists: datalist JSON paths (one per dataset, or one for all). Entries without a
            ``label`` are unlabeled images: stage 1 trains on their supervoxels (and any pseudo
            label); a stage without zero-shot objects refuses them unless they have a pseudo label.
        label_mappings: VISTA-style ``label_mappings.json`` path or the mapping itself
            (dataset -> ``[[local, global], ...]``); None keeps label ids as they are.
        label_set: global ids annotated by datasets without a mapping (default 1..132).
        supervoxels: load each entry's ``supervoxel`` map (stage 1).
        pseudo_labels: merge each entry's ``pseudo_label`` (global ids) under its manual label.
        pseudo_label_exclude: dataset name (``"*"``: every dataset) -> global ids dropped from its
            pseudo labels (the paper removes unreliable pseudo labels, Sec. 3.3).
        dataset_sampling: one of :data:`SAMPLING_MODES`.
        dataset_weights: dataset name -> share of draws in ``weighted`` sampling (missing: 1).
        synthetic_datalists: extra generated datasets mixed into sampling (paper stage 4).
        max_cases: use only the first N training cases (few-shot finetuning).
        val_cases: validate on at most this many validation cases.
        skip_bad: log and skip bad datalist entries instead of stopping.
        cache: cache the deterministic preprocessing of every case in memory.
    """

    datalists: tuple[str, ...] = ()
    label_mappings: str | Mapping[str, Any] | None = None
    label_set: tuple[int, ...] | None = None
    supervoxels: bool = False
    pseudo_labels: bool = True
    pseudo_label_exclude: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    dataset_sampling: str = "case"
    dataset_weights: Mapping[str, float] = field(default_factory=dict)
    synthetic_datalists: tuple[SyntheticDatalist, ...] = ()
    max_cases: int | None = None
    val_cases: int | None = None
    skip_bad: bool = False
    cache: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.datalists, (str, os.PathLike)):
            object.__setattr__(self, "datalists", (str(self.datalists),))
        object.__setattr__(self, "datalists", tuple(str(p) for p in self.datalists))
        if self.label_set is not None:
            object.__setattr__(self, "label_set", tuple(int(c) for c in self.label_set))
        exclude = {str(k): tuple(int(c) for c in v) for k, v in dict(self.pseudo_label_exclude).items()}
        object.__setattr__(self, "pseudo_label_exclude", exclude)
        synthetic = tuple(
            s if isinstance(s, SyntheticDatalist) else SyntheticDatalist(**s) if isinstance(s, Mapping) else
            SyntheticDatalist(str(s))
            for s in self.synthetic_datalists
        )  # fmt: skip
        object.__setattr__(self, "synthetic_datalists", synthetic)
        for name, weight in dict(self.dataset_weights).items():
            if not float(weight) >= 0:
                raise ValueError(f"dataset_weights[{name!r}] must be >= 0, got {weight!r}")
        if self.dataset_sampling not in SAMPLING_MODES:
            raise ValueError(f"dataset_sampling must be one of {SAMPLING_MODES}, got {self.dataset_sampling!r}")
        if self.max_cases is not None and self.max_cases < 1:
            raise ValueError(f"max_cases must be >= 1, got {self.max_cases}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with MONAI's ``WarmupCosineSchedule`` (stepped once per training step).

    Args:
        lr: peak learning rate (2e-5).
        weight_decay: AdamW weight decay (1e-5).
        warmup_steps: linear warm-up steps (0 in the official configs).
        warmup_multiplier: warm-up starts at this fraction of ``lr`` (0.1).
        grad_clip: clip the gradient norm to this value, or None.
    """

    lr: float = 2e-5
    weight_decay: float = 1e-5
    warmup_steps: int = 0
    warmup_multiplier: float = 0.1
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError(f"bad optimiser settings: {self}")


@dataclass(frozen=True)
class Recipe:
    """One training stage.

    Args:
        name: run name (folder under ``output_dir``'s parent by default).
        stage: 1-4 (paper Sec. 3.4), or 0 for custom runs such as few-shot finetuning.
        width: VISTA3D encoder width of a fresh model (48 released); ignored with ``init``.
        n_classes: class-embedding rows of a fresh model (512).
        init: checkpoint to start from (the previous stage), or None for random weights.
        freeze: one of :data:`FREEZE_MODES`.
        data / patch / prompts / optim: see :class:`DataConfig`, :class:`PatchConfig`,
            :class:`PromptConfig`, :class:`OptimConfig`.
        steps: optimisation steps (one patch each; every iterative click round also updates).
        checkpoint_every: save a resumable checkpoint every N steps (and at the end).
        val_every: validate every N steps (0: only at the end; -1: never).
        log_every: log the running loss every N steps.
        output_dir: where checkpoints, ``model.pt`` and ``recipe.json`` go.
        seed: seeds weights, patches and prompts; a run is reproducible from it.
        amp: mixed precision on CUDA (ignored on CPU).
        device: ``auto`` (CUDA if available), ``cpu`` or ``cuda``.
    """

    name: str = "run"
    stage: int = 0
    width: int = 48
    n_classes: int = CLASS_TABLE_SIZE
    init: str | None = None
    freeze: str = "none"
    data: DataConfig = field(default_factory=DataConfig)
    patch: PatchConfig = field(default_factory=PatchConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    steps: int = 1000
    checkpoint_every: int = 500
    val_every: int = 0
    log_every: int = 10
    output_dir: str = "runs/run"
    seed: int = 0
    amp: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.freeze not in FREEZE_MODES:
            raise ValueError(f"freeze must be one of {FREEZE_MODES}, got {self.freeze!r}")
        if self.steps < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("steps, checkpoint_every and log_every must be >= 1")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu or cuda[:N], got {self.device!r}")

    def replace(self, **changes: Any) -> Recipe:
        """A copy with top-level fields changed (nested configs: pass a whole new dataclass)."""
        return dataclasses.replace(self, **changes)


def _stage(name: str, stage: int, branch: str, /, **overrides: Any) -> Recipe:
    point = branch == "point"
    prompts = PromptConfig(
        branch=branch,
        max_foreground=4 if point else 32,
        max_background=0 if point else 4,
        max_clicks=3,
        iterations=5 if point else 1,
        zero_shot_source="supervoxel" if stage == 1 else None,
    )
    data = DataConfig(
        supervoxels=stage == 1,
        dataset_sampling={1: "case", 2: "weighted", 3: "case", 4: "uniform"}[stage],
    )
    base = Recipe(
        name=name,
        stage=stage,
        freeze="none" if point else "point",
        data=data,
        prompts=prompts,
        steps={1: 100_000, 2: 20_000, 3: 50_000, 4: 10_000}[stage],
        output_dir=f"runs/{name}",
    )
    return recipe_from_dict(overrides, base=base) if overrides else base


def build_stage1(**overrides: Any) -> Recipe:
    """Stage 1: interactive branch from scratch, labels + supervoxel zero-shot objects, 5 click rounds."""
    return _stage("stage1", 1, "point", **overrides)


def build_stage2(**overrides: Any) -> Recipe:
    """Stage 2: interactive finetune, no supervoxels, datasets oversampled: every dataset equally
    likely (the official ``dataset_weights.yaml`` rule, 100 / cases per case), times its
    ``dataset_weights`` entry."""
    return _stage("stage2", 2, "point", **overrides)


def build_stage3(**overrides: Any) -> Recipe:
    """Stage 3: automatic branch, encoder and point branch frozen, 32 + 4 class prompts."""
    return _stage("stage3", 3, "auto", **overrides)


def build_stage4(**overrides: Any) -> Recipe:
    """Stage 4: automatic finetune with every dataset equally likely; ``data.synthetic_datalists``
    adds generated cases (MAISI synthetic tumours in the paper) as datasets of their own."""
    return _stage("stage4", 4, "auto", **overrides)


#: Named recipes, SAM-style: name -> builder accepting field overrides.
RECIPE_REGISTRY: dict[str, Callable[..., Recipe]] = {
    "stage1": build_stage1,
    "stage2": build_stage2,
    "stage3": build_stage3,
    "stage4": build_stage4,
}


def _merge(cls: type, current: Any, changes: Mapping[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(changes) - set(names))
    if unknown:
        raise InputError(f"recipe: unknown field {where}{unknown[0]!r} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for key, value in changes.items():
        sub = getattr(current, key)
        if dataclasses.is_dataclass(sub) and isinstance(value, Mapping):
            value = _merge(type(sub), sub, value, f"{where}{key}.")
        elif key in ("roi", "spacing", "label_set", "datalists") and isinstance(value, list):
            value = tuple(value)
        elif key == "crop_class_ratios" and isinstance(value, Mapping):
            value = {int(k): float(v) for k, v in value.items()}
        elif key == "synthetic_datalists" and isinstance(value, (list, tuple)):
            try:
                value = tuple(SyntheticDatalist(**v) if isinstance(v, Mapping) else v for v in value)
            except (TypeError, ValueError) as err:
                raise InputError(f"recipe: {where}{key}: entries take path, dataset, weight ({err})") from err
        kwargs[key] = value
    try:
        return dataclasses.replace(current, **kwargs)
    except (TypeError, ValueError) as err:
        raise InputError(f"recipe: {where or 'top level'}: {err}") from err


def recipe_from_dict(
    data: Mapping[str, Any],
    base: Any | None = None,
    registry: Mapping[str, Callable[..., Any]] | None = None,
    default: Callable[[], Any] = Recipe,
) -> Any:
    """A recipe from plain data: ``base`` (or the ``registry`` entry named by ``data["base"]``, or
    ``default()``) with the given fields replaced, nested configs merged field by field.

    Args:
        registry: named recipes (VISTA3D's :data:`RECIPE_REGISTRY` unless given).
        default: the recipe class (or builder) used when neither ``base`` nor a name is given.

    Raises:
        InputError: unknown base or field, or an invalid value (named).
    """
    data = dict(data)
    base_name = data.pop("base", None)
    registry = RECIPE_REGISTRY if registry is None else registry
    if base is None:
        if base_name is None:
            base = default()
        elif base_name in registry:
            base = registry[base_name]()
        else:
            raise InputError(f"recipe: unknown base {base_name!r} (one of {', '.join(registry)})")
    return _merge(type(base), base, data, "")
