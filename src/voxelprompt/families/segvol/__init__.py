"""SegVol (BAAI): network, inference, training, evaluation and options of one family.

Torch-free: this module is the family's registry entry (the ``voxelprompt.families`` entry point
``segvol = "voxelprompt.families.segvol:FAMILY"``); implementations are imported on first use.
"""

from __future__ import annotations

from voxelprompt.families.registry import Capabilities, ModelFamily
from voxelprompt.families.segvol.options import SegVolOptions

__all__ = ["FAMILY", "SegVolOptions"]

FAMILY = ModelFamily(
    name="segvol",
    description="SegVol (BAAI): text (CLIP), box and click prompts, zoom-out-zoom-in, identify",
    capabilities=Capabilities(
        points=True, negative_points=True, box=True, text=True, identify=True, sessions=True,
        protocols=frozenset({"box+text", "points7", "correction5", "iterative"}),
    ),  # fmt: skip
    options=SegVolOptions,
    loader="voxelprompt.families.segvol.inference.segmenter:load",
    key_signature=("image_encoder.patch_embedding.patch_embeddings.1.weight", "prompt_encoder.point_embeddings.0.weight"),
    eval_adapter="voxelprompt.families.segvol.evaluation:SegVolEvalModel",
    recipes="voxelprompt.families.segvol.training.recipe:SEGVOL_RECIPES",
    recipe_type="voxelprompt.families.segvol.training.recipe:SegVolRecipe",
    trainer="voxelprompt.families.segvol.training.trainer:train_segvol",
    prompt_check="voxelprompt.families.segvol.inference.prompts:check_prompts",
    tiny_model="voxelprompt.families.segvol.network.builder:tiny_segvol",
    learnt_classes="voxelprompt.catalog.learnt:segvol_learnt",
    catalog="voxelprompt.catalog:vista3d_catalog",  # SegVol reads class names as text; ids and names are VISTA3D's
    missing_checkpoint=(
        "SegVol needs --checkpoint SegVol_v1.pth: its weights are not shipped "
        "(the SegVol authors publish them as BAAI/SegVol on Hugging Face)"
    ),
    extra="segvol",  # transformers (CLIP text tower), instant-clip-tokenizer
)
