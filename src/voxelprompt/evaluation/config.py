"""What an evaluation run does: the protocols (``mode``) of the VISTA3D and SegVol papers and
the settings of one run (:class:`EvalConfig`); the protocols are described in
:mod:`voxelprompt.evaluation.runner`."""

from __future__ import annotations

from dataclasses import dataclass

from voxelprompt.errors import VoxelPromptError
from voxelprompt.evaluation.metrics import DEFAULT_TOLERANCE_MM
from voxelprompt.evaluation.novel import ZERO_SHOT_MODES, zero_shot_modes

__all__ = [
    "VISTA_MODES",
    "SEGVOL_MODES",
    "MODES",
    "STEPPED_MODES",
    "CORRECTION_STEPS",
    "CORRECTION_STARTS",
    "EvalConfig",
]

#: Protocols of the VISTA3D paper (Table 1, Fig. 5) and of the SegVol paper (Table 2); a model runs
#: those its ``protocols`` name (for a family: its registry capabilities).
VISTA_MODES = ("auto", "point", "auto+point", "iterative")
SEGVOL_MODES = ("box+text", "points7", "correction5")
MODES = VISTA_MODES + SEGVOL_MODES
#: Modes whose rows are steps of one interactive session (``best_dice`` is the best so far).
STEPPED_MODES = ("iterative", "correction5")
CORRECTION_STEPS = 5
CORRECTION_STARTS = ("box+text", "points7")


@dataclass(frozen=True)
class EvalConfig:
    """Protocol settings of one evaluation run.

    Args:
        modes: protocols to run, from :data:`MODES`.
        clicks: number of clicks of the ``iterative`` protocol.
        seed: base seed; each (dataset, case, class, mode) derives its own stream from it.
        tolerance_mm: NSD tolerance.
        oracle_best_of: ``auto+point`` trials kept by best Dice (1: no oracle; 3: official).
        classes: restrict to these model class ids (default: every mapped class in the case).
        max_cases: evaluate at most this many cases per dataset.
        progress: show a progress bar over cases.
        correction_start: prompts the ``correction5`` protocol starts from (``box+text`` or ``points7``).
        zero_shot: evaluate novel objects (label values with no VISTA3D class) with clicks;
            off: ignore them as before.
        zero_shot_modes: click protocols for novel objects, from :data:`ZERO_SHOT_MODES`; None:
            those of ``modes``.
    """

    modes: tuple[str, ...] = ("auto",)
    clicks: int = 10
    seed: int = 0
    tolerance_mm: float = DEFAULT_TOLERANCE_MM
    oracle_best_of: int = 1
    classes: tuple[int, ...] | None = None
    max_cases: int | None = None
    progress: bool = True
    correction_start: str = "box+text"
    zero_shot: bool = True
    zero_shot_modes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise VoxelPromptError(f"unknown mode {unknown[0] if unknown else '(none)'!r}; choose from {', '.join(MODES)}")
        if self.clicks < 1:
            raise VoxelPromptError(f"clicks must be >= 1, got {self.clicks}")
        if self.oracle_best_of < 1:
            raise VoxelPromptError(f"oracle_best_of must be >= 1, got {self.oracle_best_of}")
        if self.max_cases is not None and self.max_cases < 1:
            raise VoxelPromptError(f"max_cases must be >= 1, got {self.max_cases}")
        if self.correction_start not in CORRECTION_STARTS:
            raise VoxelPromptError(
                f"correction_start must be one of {', '.join(CORRECTION_STARTS)}, got {self.correction_start!r}"
            )
        bad = [m for m in self.zero_shot_modes or () if m not in ZERO_SHOT_MODES]
        if bad:
            raise VoxelPromptError(f"zero-shot mode {bad[0]!r} is not a click protocol; choose from {', '.join(ZERO_SHOT_MODES)}")

    @property
    def novel_modes(self) -> tuple[str, ...]:
        """Protocols novel objects run (empty: they are not evaluated)."""
        if not self.zero_shot:
            return ()
        return zero_shot_modes(self.modes if self.zero_shot_modes is None else self.zero_shot_modes, self.correction_start)
