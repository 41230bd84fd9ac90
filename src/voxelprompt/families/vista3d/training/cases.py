"""The cases a VISTA3D recipe trains on and how often each is drawn: its datalists plus synthetic
datalists (paper stage 4), unlabeled images where the stage can use them (stage 1), and the
per-case probabilities of the recipe's dataset sampling (stage 2 oversampling, stage 4 uniform).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

import numpy as np

from voxelprompt.errors import InputError
from voxelprompt.datasets import Case
from voxelprompt.training.datalist import load_datalist, load_datalists
from voxelprompt.families.vista3d.training.recipe import DataConfig, Recipe

__all__ = ["training_cases", "validation_cases", "unlabeled_refusal", "case_weights", "case_probabilities"]

logger = logging.getLogger(__name__)


def unlabeled_refusal(case: Case, recipe: Recipe) -> str | None:
    """Why ``recipe`` cannot train on ``case``, or None when it can.

    A labelled case always works. An unlabeled image (paper Sec. 3.3: five of the datasets have no
    manual labels) works when its pseudo label stands in for the label (the official loop does so),
    or when the recipe draws zero-shot objects on the point branch (stage 1) and the case has what
    the zero-shot source needs (a supervoxel map for ``supervoxel``); its label map is then all
    zero, so it adds zero-shot objects only.
    """
    if case.label is not None:
        return None
    d, p = recipe.data, recipe.prompts
    if case.pseudo_label is not None and d.pseudo_labels:
        return None
    if p.branch != "point" or p.zero_shot_source is None:
        return (
            f"{case.name}: has no label, and stage {recipe.stage} ({p.branch} branch, no zero-shot objects) "
            "trains on labels only; give it a 'label' or 'pseudo_label', or drop it"
        )
    if p.zero_shot_source == "supervoxel" and (case.supervoxel is None or not d.supervoxels):
        why = "has no 'supervoxel' map" if case.supervoxel is None else "the recipe does not load supervoxels"
        return f"{case.name}: has no label and {why}, so it offers nothing to train on"
    return None


def _keep(cases: Sequence[Case], refusal, skip_bad: bool) -> list[Case]:
    out = []
    for case in cases:
        why = refusal(case)
        if why is None:
            out.append(case)
        elif skip_bad:
            logger.warning("skipping datalist entry: %s", why)
        else:
            raise InputError(why)
    return out


def training_cases(recipe: Recipe) -> list[Case]:
    """The recipe's training cases: its datalists' (the first ``max_cases``), then every synthetic
    datalist's under its own dataset name.

    Raises:
        InputError: an unreadable datalist or bad entry, or an unlabeled case the stage cannot use
            (named; with ``skip_bad`` these are logged and dropped).
    """
    d = recipe.data
    cases = list(load_datalists(d.datalists, skip_bad=d.skip_bad, require_label=False).training)[: d.max_cases]
    for synthetic in d.synthetic_datalists:
        extra = load_datalist(synthetic.path, skip_bad=d.skip_bad, require_label=False).training
        cases += [dataclasses.replace(c, dataset=synthetic.dataset) for c in extra]
    cases = _keep(cases, lambda c: unlabeled_refusal(c, recipe), d.skip_bad)
    if not cases:
        raise InputError(f"recipe {recipe.name!r}: no usable training case")
    return cases


def validation_cases(recipe: Recipe) -> list[Case]:
    """The first ``val_cases`` validation cases of the recipe's datalists (Dice needs manual labels).

    Raises:
        InputError: an unlabeled validation entry (named; with ``skip_bad`` logged and dropped).
    """
    d = recipe.data
    cases = load_datalists(d.datalists, skip_bad=d.skip_bad, require_label=False).validation
    no_label = lambda c: None if c.label is not None else f"{c.name}: a validation entry needs a 'label'"  # noqa: E731
    return _keep(cases, no_label, d.skip_bad)[: d.val_cases]


def case_weights(datasets: Sequence[str], mode: str, weights: Mapping[str, float] | None = None) -> np.ndarray:
    """Probability of drawing each training case.

    ``case``: every case alike, times its dataset's weight. ``uniform`` and ``weighted``: every
    dataset alike, times its weight, shared evenly by its cases: a case weighs ``w / n`` for a
    dataset of ``n`` cases and weight ``w`` (missing: 1). The official stage 2 table
    (Project-MONAI/VISTA ``vista3d/data/dataset_weights.yaml``, made by ``calculate_dataset_weights``
    in ``data/datasets.py``) is exactly ``100 / n`` per case, i.e. this rule with every weight 1.

    Args:
        datasets: dataset name of each case.
        mode: one of :data:`~voxelprompt.families.vista3d.training.recipe.SAMPLING_MODES`.
        weights: dataset name -> weight (>= 0).

    Returns:
        [N] probabilities summing to 1.

    Raises:
        ValueError: unknown mode. InputError: negative weights, or all zero.
    """
    names = list(datasets)
    table = dict(weights or {})
    mult = np.array([float(table.get(n, 1.0)) for n in names])
    if mode == "case":
        w = mult
    elif mode in ("uniform", "weighted"):
        counts = {n: names.count(n) for n in set(names)}
        w = mult / np.array([counts[n] for n in names], dtype=float)
    else:
        raise ValueError(f"unknown dataset sampling {mode!r}")
    if not (w >= 0).all() or w.sum() <= 0:
        raise InputError(f"dataset weights must be >= 0 and not all 0, got {table}")
    return w / w.sum()


def case_probabilities(cases: Sequence[Case], data: DataConfig) -> np.ndarray:
    """:func:`case_weights` of ``cases`` under ``data``'s sampling: ``dataset_weights`` (``weighted``
    only) and the synthetic datalists' weights. Logs what an unusual table does (a name of no
    dataset, a table the mode ignores, weighted sampling over one dataset)."""
    names = [c.dataset for c in cases]
    present = set(names)
    table: dict[str, float] = {}
    given = {str(k): float(v) for k, v in dict(data.dataset_weights).items()}
    if given and data.dataset_sampling != "weighted":
        logger.warning("dataset_weights are ignored with dataset_sampling=%r", data.dataset_sampling)
    elif data.dataset_sampling == "weighted":
        unknown = sorted(set(given) - present)
        if unknown:
            logger.warning("dataset_weights name no training dataset: %s (datasets: %s)", unknown, sorted(present))
        if len(present) == 1:
            logger.warning("weighted sampling over one dataset (%s) draws its cases uniformly", names[0])
        elif not given:
            logger.info("weighted sampling without dataset_weights: every dataset equally likely")
        table.update(given)
    table.update({s.dataset: float(s.weight) for s in data.synthetic_datalists})
    return case_weights(names, data.dataset_sampling, table)
