"""Zero-shot (novel) objects of an evaluation: label values with no VISTA3D class, prompted by clicks only.

VISTA3D Sec. 5 evaluates structures its automatic branch does not support (mouse organs, kidney
tumours, adrenocortical and hepatocellular carcinoma) with iterative clicks and the point head's
zero-shot embedding. The official script (VISTA ``scripts/validation/val_multigpu_point_iterative.py``
with ``configs/zeroshot_eval/*.yaml``) treats each label value of ``label_set`` as one object (all
its voxels, whatever the number of connected components) and prompts it with ``prompt_class`` 600,
any id above the last supported class. This evaluation does the same: a dataset label value with
no VISTA3D class is one novel object, whose id in the mapped label map is :func:`novel_id` of the
value. Those ids start past the class table (as the training's zero-shot ids,
:data:`voxelprompt.families.vista3d.training.prompts.ZERO_SHOT_BASE`), so they never meet a class id and,
given to VISTA3D as the prompt class, select its zero-shot embedding (any id > ``last_supported``).
SegVol gets the same clicks without a text prompt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from voxelprompt.catalog import CLASS_TABLE_SIZE
from voxelprompt.errors import InputError

__all__ = [
    "MAX_NOVEL_VALUE",
    "NOVEL_BASE",
    "ZERO_SHOT_MODES",
    "is_novel",
    "novel_message",
    "novel_id",
    "novel_value",
    "zero_shot_modes",
]

#: Id of dataset label value ``v`` as a novel object: ``NOVEL_BASE + v`` (past the class table).
NOVEL_BASE = CLASS_TABLE_SIZE

#: Largest label value that can be a novel object (mapped label maps are int16).
MAX_NOVEL_VALUE = 32767 - NOVEL_BASE

#: Click protocols a novel object can be evaluated with: no class prompt, no text, no box.
#: ``correction5`` only when it starts from ``points7`` (its ``box+text`` start needs a class name).
ZERO_SHOT_MODES = ("point", "iterative", "points7", "correction5")


def novel_id(value: int) -> int:
    """Object id of dataset label value ``value`` evaluated as a novel object.

    Raises:
        InputError: ``value`` outside 1..:data:`MAX_NOVEL_VALUE`.
    """
    if not 0 < int(value) <= MAX_NOVEL_VALUE:
        raise InputError(f"label value {value} cannot be a novel (zero-shot) object: values must be in 1..{MAX_NOVEL_VALUE}")
    return NOVEL_BASE + int(value)


def novel_value(object_id: int) -> int:
    """The dataset label value of a novel object id (inverse of :func:`novel_id`)."""
    return int(object_id) - NOVEL_BASE


def is_novel(object_id: int) -> bool:
    """Whether an evaluated object id is a novel (zero-shot) object rather than a VISTA3D class."""
    return int(object_id) > NOVEL_BASE


def zero_shot_modes(modes: Iterable[str], correction_start: str) -> tuple[str, ...]:
    """The protocols among ``modes`` that novel objects run (see :data:`ZERO_SHOT_MODES`)."""
    return tuple(
        m for m in dict.fromkeys(modes) if m in ZERO_SHOT_MODES and (m != "correction5" or correction_start == "points7")
    )


def novel_message(
    dataset: str, names: Sequence[str], runs: Sequence[str], zero_shot: bool, modes: Sequence[str], novel_modes: Sequence[str]
) -> tuple[int, str]:
    """Log level and line telling the user what happens to a dataset's novel objects.

    Args:
        dataset: dataset name.
        names: the novel objects, as shown (name and label value).
        runs: click protocols that some model runs on them (empty: not evaluated).
        zero_shot: whether zero-shot evaluation is on.
        modes: the protocols requested for classes; ``novel_modes``: those for novel objects.
    """
    what = f"{dataset}: label values with no VISTA3D class: {', '.join(names)}"
    if runs:
        return logging.INFO, (
            f"{what}: evaluated as zero-shot (novel) objects with clicks only ({', '.join(runs)}; VISTA3D: zero-shot "
            "class id, SegVol: no text); the report lists them under 'zero-shot (novel objects)'"
        )
    if not zero_shot:
        return logging.WARNING, f"{what}: ignored (zero-shot evaluation is off)"
    if novel_modes:
        return logging.WARNING, f"{what}: ignored: no model runs the click protocols {', '.join(novel_modes)}"
    return logging.WARNING, (
        f"{what}: ignored: the modes run ({', '.join(modes)}) prompt classes, and novel objects are evaluated "
        f"with clicks only (modes {', '.join(ZERO_SHOT_MODES[:3])})"
    )
