"""One rule for merging label maps into one: **an earlier map wins**, a later one writes only where
the merged map is still background (0). Batch tasks and the server's multi-step requests use it.

Family-neutral and torch-free: maps are integer arrays on one grid, each with its value -> name table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from voxelprompt.errors import PromptError

__all__ = ["merge_labels"]


def merge_labels(
    maps: Sequence[np.ndarray],
    names: Sequence[Mapping[int, str]],
    task_labels: Sequence[str] = (),
    *,
    present_only: bool = True,
) -> tuple[np.ndarray, dict[int, str]]:
    """Merge label maps (same shape) by the rule of this module: earlier maps win.

    Args:
        maps: (I, J, K) integer label maps, in precedence order.
        names: each map's label value -> name.
        task_labels: the maps' sources (batch tasks, request steps), for messages.
        present_only: name only the values the merged map holds (False: every value any table names).

    Returns:
        The merged map (the maps' common dtype, widened when a later value needs it) and the
        names of its values.

    Raises:
        PromptError: one label value named differently by two maps.
    """
    merged = np.zeros(maps[0].shape, dtype=np.result_type(*[m.dtype for m in maps]))
    known: dict[int, tuple[str, str]] = {}
    for i, (array, table) in enumerate(zip(maps, names, strict=True)):
        who = (task_labels[i] if i < len(task_labels) else "") or f"task {i + 1}"
        for value, name in table.items():
            if value in known and known[value][0] != name:
                raise PromptError(
                    f"{known[value][1]} and {who} both write label {value} ({known[value][0]!r}, {name!r}); "
                    "give one of them another label_value"
                )
            known.setdefault(value, (name, who))
        free = merged == 0
        merged[free] = array[free]
    if not present_only:
        return merged, {v: name for v, (name, _) in known.items()}
    present = set(np.unique(merged).tolist()) - {0}
    return merged, {v: known[v][0] for v in sorted(present) if v in known}
