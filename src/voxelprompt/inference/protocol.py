"""What every model family's segmenter and session offer (:mod:`voxelprompt.families` lists them).

A segmenter is loaded once and answers many calls; an interactive session holds one volume and
answers many prompts on it with cached work, with the same labels as one-shot calls. Threads may
share a segmenter: each call takes the segmenter's ``lock`` (a re-entrant lock), so concurrent
calls take turns; a caller that needs several calls in a row to see no other thread in between
holds ``with segmenter.lock:`` around them.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable

from voxelprompt.types import Prompts, Segmentation, Volume

__all__ = ["Segmenter", "Session", "Identifier", "ClassResolver", "DEMO_MARK", "demo_mark"]

#: How every output of a demo model (``Segmenter.demo``) says so: picture titles, series
#: descriptions of DICOM-SEG and RT-STRUCT, statistics, the viewer's banner.
DEMO_MARK = "DEMO model: trained on phantoms only, not for real CTs"


def demo_mark(segmenter: Any) -> str | None:
    """:data:`DEMO_MARK` for a demo model's segmenter, else None."""
    return DEMO_MARK if getattr(segmenter, "demo", False) else None


@runtime_checkable
class Session(Protocol):
    """One volume, many prompts; results equal :meth:`Segmenter.segment` on the same prompts."""

    def segment(self, prompts: Prompts) -> Segmentation:
        """Segment the session's volume; the label map is on its exact grid."""

    def reset(self) -> None:
        """Drop cached work (the session stays usable)."""


@runtime_checkable
class Segmenter(Protocol):
    """A loaded model of one family.

    Attributes:
        family: the registry name (:data:`voxelprompt.families.FAMILIES`).
        lock: re-entrant lock every call below takes; hold it to run several calls in a row.
        network: the loaded ``torch.nn.Module`` (its ``state_dict`` is the checkpoint's).
        learnt: the classes these weights learnt (:class:`~voxelprompt.catalog.LearntClasses`);
            class prompts outside them are refused unless ``Prompts.allow_unlearnt``.
        demo: these are the shipped demo weights (results are marked as the demo model's).
    """

    family: str
    lock: threading.RLock
    learnt: Any
    demo: bool

    @property
    def network(self) -> Any:
        """The loaded network."""

    def prepare(self, volume: Volume) -> Any:
        """Pre-process ``volume`` once, for several :meth:`segment_prepared` calls."""

    def segment(self, volume: Volume, prompts: Prompts) -> Segmentation:
        """Segment ``volume`` (a CT in HU; conventions in :mod:`voxelprompt.types`); the label map
        has the input's exact shape and affine and holds only 0 and the prompted ids."""

    def segment_prepared(self, prepared: Any, prompts: Prompts) -> Segmentation:
        """:meth:`segment` on the result of :meth:`prepare`."""

    def open_session(self, volume: Volume, memory_budget_mb: float = 4096) -> Session:
        """An interactive session on ``volume`` whose caches stay under ``memory_budget_mb``."""


@runtime_checkable
class Identifier(Protocol):
    """A segmenter of a family with the ``identify`` capability (SegVol paper, Fig. 5)."""

    def identify(self, volume: Volume, mask: Any, categories: Any = None) -> Any:
        """Ranked class names for an (I, J, K) mask on ``volume``'s grid."""


@runtime_checkable
class ClassResolver(Protocol):
    """A segmenter of a family with the ``everything`` capability: which class ids a class prompt
    asks this model for (its everything set, groups expanded), e.g. for the server's class lists."""

    def resolve_classes(self, prompts: Prompts, volume: Volume | None = None) -> tuple[int, ...]:
        """The model's class ids for ``prompts`` (``Prompts(everything=True)``: its everything set)."""
