"""A voxelprompt model family of Hounsfield-unit thresholds: the registry entry (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from voxelprompt.catalog import LabelCatalog
from voxelprompt.errors import VoxelPromptError
from voxelprompt.families import Capabilities, ModelFamily, option

__all__ = ["FAMILY", "ThresholdOptions", "CLASSES", "catalog"]

#: Class id -> (name, lowest HU, highest HU), both inclusive.
CLASSES = {1: ("bone", 200.0, 3071.0), 2: ("air", -1024.0, -500.0), 3: ("soft tissue", -100.0, 199.0)}


def catalog() -> LabelCatalog:
    """This family's own class table."""
    return LabelCatalog(names={i: name for i, (name, _, _) in CLASSES.items()})


@dataclass(frozen=True)
class ThresholdOptions:
    """How the thresholds run."""

    min_voxels: int = option(0, "--min-voxels", "Thresholds: drop connected components smaller than N voxels; omitted: 0.", metavar="N")

    def __post_init__(self) -> None:
        if isinstance(self.min_voxels, bool) or not isinstance(self.min_voxels, int) or self.min_voxels < 0:
            raise VoxelPromptError(f"min_voxels must be a whole number >= 0, got {self.min_voxels!r}")


FAMILY = ModelFamily(
    name="thresholds",
    description="Hounsfield-unit thresholds (a test plugin): bone, air and soft tissue; clicks pick a component",
    capabilities=Capabilities(classes=True, points=True, negative_points=True, sessions=True, protocols=frozenset({"auto", "iterative"})),
    options=ThresholdOptions,
    loader="voxelprompt_thresholds.segmenter:load",
    key_signature=("thresholds.ranges",),
    prompt_check="voxelprompt_thresholds.segmenter:check_prompts",
    eval_adapter="voxelprompt_thresholds.evaluation:ThresholdEvalModel",
    tiny_model="voxelprompt_thresholds.segmenter:tiny_model",
    catalog="voxelprompt_thresholds:catalog",
    default_checkpoint="the built-in Hounsfield-unit ranges",
    learnt_classes="voxelprompt_thresholds.segmenter:learnt_classes",
)
