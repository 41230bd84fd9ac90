"""The automatic results an interactive session keeps, as the starting point of click edits
(Algorithm 1), in window-padded model space."""

from __future__ import annotations

import torch

__all__ = ["AutomaticMasks"]


class AutomaticMasks:
    """Automatic results an interactive session keeps for click edits (window-padded model space).

    An edit of class ``c`` (Algorithm 1) starts from the automatic result the session holds for
    ``c``: its own single-class mask (computed once, as a one-shot
    :meth:`~voxelprompt.families.vista3d.inference.segmenter.Vista3DSegmenter.segment` call computes it). With ``keep_shown`` it starts instead from
    ``c``'s voxels in the last class-prompt result (everything or several classes) the session
    returned, which is what the annotator sees: such an edit runs only its clicked windows, and
    its labels differ from a one-shot call's.

    Args:
        keep_shown: remember class-prompt results as the starting point of later edits.
    """

    def __init__(self, keep_shown: bool = False) -> None:
        self.keep_shown = keep_shown
        self.masks: dict[int, torch.Tensor] = {}
        self.labels: torch.Tensor | None = None  # (H, W, D) int16 class map of the last class pass
        self.label_classes: frozenset[int] = frozenset()

    def get(self, cls: int) -> torch.Tensor | None:
        """(H, W, D) bool mask of ``cls``, or None when the session holds no result for it."""
        if cls in self.masks:
            return self.masks[cls]
        if self.labels is not None and cls in self.label_classes:
            return self.labels == cls
        return None

    def put(self, cls: int, mask: torch.Tensor) -> None:
        self.masks[cls] = mask

    def remember(self, labels: torch.Tensor, classes: tuple[int, ...]) -> None:
        """Keep a class pass's (H, W, D) label map (with ``keep_shown``; else nothing); its
        classes' own masks are superseded by it."""
        if not self.keep_shown:
            return
        self.labels = labels.to(torch.int16)
        self.label_classes = frozenset(int(c) for c in classes)
        for c in self.label_classes:
            self.masks.pop(c, None)

    def __len__(self) -> int:
        """How many classes the session holds an automatic result for."""
        return len(self.masks.keys() | self.label_classes)

    def clear(self) -> None:
        self.masks.clear()
        self.labels, self.label_classes = None, frozenset()
