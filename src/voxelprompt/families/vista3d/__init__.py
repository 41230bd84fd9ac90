"""VISTA3D (MONAI): network, inference, training, evaluation and options of one family.

Torch-free: this module is the family's registry entry (the ``voxelprompt.families`` entry point
``vista3d = "voxelprompt.families.vista3d:FAMILY"``); implementations are imported on first use.
"""

from __future__ import annotations

from voxelprompt.families.registry import Capabilities, ModelFamily
from voxelprompt.families.vista3d.options import Vista3DOptions

__all__ = ["FAMILY", "Vista3DOptions"]

FAMILY = ModelFamily(
    name="vista3d",
    description="VISTA3D (MONAI): 127 automatic classes, everything, 3D clicks, Algorithm 1 edits, zero-shot clicks",
    capabilities=Capabilities(
        classes=True, everything=True, points=True, negative_points=True, text=True, zero_shot=True,
        sessions=True, previous_mask=True, teach=True, protocols=frozenset({"auto", "point", "auto+point", "iterative"}),
    ),  # fmt: skip
    options=Vista3DOptions,
    loader="voxelprompt.families.vista3d.inference.loader:load",
    key_signature=("class_head.class_embeddings.weight", "image_encoder.encoder.conv_init.weight"),
    eval_adapter="voxelprompt.families.vista3d.evaluation:Vista3DEvalModel",
    recipes="voxelprompt.families.vista3d.training.recipe:RECIPE_REGISTRY",
    recipe_type="voxelprompt.families.vista3d.training.recipe:Recipe",
    trainer="voxelprompt.families.vista3d.training.trainer:train",
    prompt_check="voxelprompt.families.vista3d.prompts:check_vista3d_prompts",
    tiny_model="voxelprompt.families.vista3d.network.builder:tiny_vista3d",
    describe="voxelprompt.families.vista3d.network.checkpoint:describe_checkpoint",
    confidence="voxelprompt.families.vista3d.inference.confidence:everything_confidence",
    default_checkpoint="the shipped demo VISTA3D (phantoms only)",
    # Clicks near earlier ones reuse an encoded window of the sliding grid; an edit starts from
    # the class as last shown (see InteractiveSession).
    viewer_session={"click_windows": "grid", "edit_shown": True},
    learnt_classes="voxelprompt.families.vista3d.inference.default_model:learnt_classes",
    catalog="voxelprompt.catalog:vista3d_catalog",
)
