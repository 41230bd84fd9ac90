"""The registry of model families: what each can do, how it loads, evaluates and trains.

Torch-free and instant (implementations are imported when first used), in the spirit of
segment-anything's ``sam_model_registry`` and TotalSegmentator's task table. Code asks a family's
:class:`Capabilities` instead of its name: prompt checks, evaluation protocols and the command line
all go through here, so a new family is one entry.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from voxelprompt.errors import CheckpointError, PromptError, VoxelPromptError
from voxelprompt.types import Prompts

__all__ = [
    "Capabilities",
    "Vista3DOptions",
    "SegVolOptions",
    "ModelFamily",
    "FAMILIES",
    "get_family",
    "family_of_keys",
    "families_with",
    "check_capabilities",
    "import_target",
    "DEFAULT_FAMILY",
]

#: The family of a model given without a checkpoint (its weights ship with the package), and of a
#: recipe file that names none.
DEFAULT_FAMILY = "vista3d"


@dataclass(frozen=True)
class Capabilities:
    """What a family's prompts and tools can be.

    Args:
        classes: automatic segmentation of class ids (VISTA3D's class head).
        everything: a whole official class set in one call.
        points: positive clicks; ``negative_points``: negative clicks too.
        box: a 3D box around the object.
        text: a free-text class name (CLIP).
        identify: name the class of a given mask.
        zero_shot: clicks on a structure outside its classes get a dedicated embedding
            (``Prompts.new_structure``).
        sessions: interactive sessions that reuse encoded windows.
        previous_mask: clicks edit a given mask (``Prompts.previous_mask``, VISTA3D's Algorithm 1).
        protocols: evaluation protocols it runs (:mod:`voxelprompt.evaluation.runner`).
    """

    classes: bool = False
    everything: bool = False
    points: bool = False
    negative_points: bool = False
    box: bool = False
    text: bool = False
    identify: bool = False
    zero_shot: bool = False
    sessions: bool = False
    previous_mask: bool = False
    protocols: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Vista3DOptions:
    """How a VISTA3D model runs.

    Args:
        profile: official pipeline, ``bundle`` (MONAI model zoo) or ``research`` (VISTA repository).
        engine: ``exact``, ``reference`` or ``fast`` (:mod:`voxelprompt.inference.vista3d.engine`).
        amp: float16 autocast (CUDA only).
        roi_size: sliding-window size in model voxels; None: the profile's.
    """

    profile: str = "bundle"
    engine: str = "exact"
    amp: bool = False
    roi_size: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.profile not in ("bundle", "research"):
            raise VoxelPromptError(f"unknown profile {self.profile!r}; choose bundle or research")
        if self.engine not in ("exact", "reference", "fast"):
            raise VoxelPromptError(f"unknown engine {self.engine!r}; choose exact, reference or fast")


@dataclass(frozen=True)
class SegVolOptions:
    """How a SegVol model runs.

    Args:
        mode: ``zoom`` (zoom-out-zoom-in, the paper's), ``sliding`` or ``zoom-out``.
        overlap: sliding-window overlap in [0, 1) (the reference uses 0.5).
    """

    mode: str = "zoom"
    overlap: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in ("zoom", "sliding", "zoom-out"):
            raise VoxelPromptError(f"unknown SegVol mode {self.mode!r}; choose zoom, sliding or zoom-out")
        if not isinstance(self.overlap, int | float) or not 0.0 <= self.overlap < 1.0:
            raise VoxelPromptError(f"overlap must be a number in [0, 1), got {self.overlap!r}")


def import_target(target: str) -> Any:
    """The object a ``"package.module:attribute"`` string names (imported on first use)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class ModelFamily:
    """One registry entry. Implementations are named ``"module:attribute"`` and imported on use.

    Args:
        name: registry key (``--model``).
        description: one line for listings.
        capabilities: see :class:`Capabilities`.
        options: the options record type (a frozen dataclass).
        loader: ``(checkpoint or None, device, options, progress) -> Segmenter``; None loads the
            shipped default (families without one raise :class:`CheckpointError`).
        key_signature: state_dict keys that only this family's checkpoints hold.
        eval_adapter: ``(segmenter, name) -> EvalModel`` for :mod:`voxelprompt.evaluation`.
        recipes: ``name -> () -> recipe`` of built-in training recipes.
        recipe_type: the family's recipe dataclass (``recipe_from_dict``'s default).
        trainer: ``(recipe, resume, progress) -> TrainResult``.
        prompt_check: ``(prompts, volume) -> None``: the checks that need the volume but no model
            (clicks and boxes inside it, class rules), run before a model is loaded.
        tiny_model: ``(seed) -> network`` of the family's design at toy size (tests, smoke runs);
            its ``state_dict`` saved with ``torch.save`` is a checkpoint :attr:`loader` takes.
        default_checkpoint: what :attr:`loader` uses without a checkpoint, for messages; None
            when nothing ships, and then ``missing_checkpoint`` is the message.
        missing_checkpoint: the one-line answer to this family without a checkpoint.
        viewer_session: ``open_session`` keywords for a person clicking in a viewer (the server's
            sessions): faster later clicks, labels no longer bound to equal one-shot calls.
        learnt_classes: ``(checkpoint or None) -> LearntClasses``, torch-free: the classes a
            checkpoint of this family learnt (:mod:`voxelprompt.catalog.learnt`); the loader
            gives its segmenter the same record (``segmenter.learnt``).
        extra: the pip extra its implementation needs (:mod:`voxelprompt.extras`); None: the core.
    """

    name: str
    description: str
    capabilities: Capabilities
    options: type
    loader: str
    key_signature: tuple[str, ...]
    eval_adapter: str
    recipes: str
    recipe_type: str
    trainer: str
    prompt_check: str
    tiny_model: str
    default_checkpoint: str | None = None
    missing_checkpoint: str = "this model family needs --checkpoint: its weights are not shipped"
    viewer_session: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    learnt_classes: str = "voxelprompt.catalog.learnt:segvol_learnt"
    extra: str | None = None

    def learnt(self, checkpoint: Any = None) -> Any:
        """The :class:`~voxelprompt.catalog.LearntClasses` of ``checkpoint`` (None: the shipped default)."""
        return import_target(self.learnt_classes)(checkpoint)

    def require_extra(self) -> None:
        """Raise :class:`~voxelprompt.extras.MissingExtraError` (one line naming the pip extra)
        unless the packages of :attr:`extra` are installed; cheap, imports nothing."""
        if self.extra is not None:
            from voxelprompt.extras import require

            require(self.extra, f"the {self.name} model family")

    def make_options(self, options: Any = None, **values: Any) -> Any:
        """This family's options record from ``options`` (a record, a mapping or None) and ``values``.

        Raises:
            VoxelPromptError: an option this family does not have, or a bad value.
        """
        if isinstance(options, self.options):
            return dataclasses.replace(options, **values) if values else options
        if dataclasses.is_dataclass(options):
            raise VoxelPromptError(f"{type(options).__name__} are not {self.name} options ({self.options.__name__})")
        if options is not None and not isinstance(options, Mapping):
            raise VoxelPromptError(f"options must be a mapping or {self.options.__name__}, got {type(options).__name__}")
        given = {**dict(options or {}), **values}
        known = {f.name for f in dataclasses.fields(self.options)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise VoxelPromptError(f"{self.name} has no option {unknown[0]!r}; its options: {', '.join(sorted(known))}")
        try:
            return self.options(**given)
        except (TypeError, ValueError) as err:  # e.g. a string where a number belongs
            raise VoxelPromptError(f"bad {self.name} option value ({err})") from None

    def load(self, checkpoint: Any = None, device: str = "cpu", options: Any = None, progress: bool = False) -> Any:
        """A loaded segmenter (see :class:`voxelprompt.inference.protocol.Segmenter`)."""
        self.require_extra()
        return import_target(self.loader)(checkpoint, device, self.make_options(options), progress)

    def check_prompts(self, prompts: Prompts, volume: Any) -> None:
        """Capabilities first (:func:`check_capabilities`), then the family's own volume checks.

        Raises:
            PromptError: prompts this family cannot answer, or that do not fit ``volume``.
        """
        check_capabilities(prompts, self)
        import_target(self.prompt_check)(prompts, volume)

    def eval_model(self, segmenter: Any, name: str | None = None) -> Any:
        """The evaluation adapter around a loaded segmenter."""
        return import_target(self.eval_adapter)(segmenter, name=name or self.name)

    def recipe_registry(self) -> Mapping[str, Any]:
        return import_target(self.recipes)

    def recipe_class(self) -> type:
        return import_target(self.recipe_type)

    def train(self, recipe: Any, resume: bool = False, progress: bool = True) -> Any:
        self.require_extra()
        return import_target(self.trainer)(recipe, resume=resume, progress=progress)


#: The registered families, by name.
FAMILIES: dict[str, ModelFamily] = {
    "vista3d": ModelFamily(
        name="vista3d",
        description="VISTA3D (MONAI): 127 automatic classes, everything, 3D clicks, Algorithm 1 edits, zero-shot clicks",
        capabilities=Capabilities(
            classes=True, everything=True, points=True, negative_points=True, text=True, zero_shot=True,
            sessions=True, previous_mask=True, protocols=frozenset({"auto", "point", "auto+point", "iterative"}),
        ),  # fmt: skip
        options=Vista3DOptions,
        loader="voxelprompt.inference.vista3d.segmenter:load",
        key_signature=("class_head.class_embeddings.weight", "image_encoder.encoder.conv_init.weight"),
        eval_adapter="voxelprompt.evaluation.adapters:Vista3DEvalModel",
        recipes="voxelprompt.training.vista3d.recipe:RECIPE_REGISTRY",
        recipe_type="voxelprompt.training.vista3d.recipe:Recipe",
        trainer="voxelprompt.training.vista3d.trainer:train",
        prompt_check="voxelprompt.prompts:check_vista3d_prompts",
        tiny_model="voxelprompt.models.vista3d.builder:tiny_vista3d",
        default_checkpoint="the shipped demo VISTA3D (phantoms only)",
        # Clicks near earlier ones reuse an encoded window of the sliding grid; an edit starts from
        # the class as last shown (see InteractiveSession).
        viewer_session={"click_windows": "grid", "edit_shown": True},
        learnt_classes="voxelprompt.inference.vista3d.default_model:learnt_classes",
    ),
    "segvol": ModelFamily(
        name="segvol",
        description="SegVol (BAAI): text (CLIP), box and click prompts, zoom-out-zoom-in, identify",
        capabilities=Capabilities(
            points=True, negative_points=True, box=True, text=True, identify=True, sessions=True,
            protocols=frozenset({"box+text", "points7", "correction5", "iterative"}),
        ),  # fmt: skip
        options=SegVolOptions,
        loader="voxelprompt.inference.segvol.segmenter:load",
        key_signature=("image_encoder.patch_embedding.patch_embeddings.1.weight", "prompt_encoder.point_embeddings.0.weight"),
        eval_adapter="voxelprompt.evaluation.adapters:SegVolEvalModel",
        recipes="voxelprompt.training.segvol.recipe:SEGVOL_RECIPES",
        recipe_type="voxelprompt.training.segvol.recipe:SegVolRecipe",
        trainer="voxelprompt.training.segvol.trainer:train_segvol",
        prompt_check="voxelprompt.inference.segvol.prompts:check_prompts",
        tiny_model="voxelprompt.models.segvol.builder:tiny_segvol",
        learnt_classes="voxelprompt.catalog.learnt:segvol_learnt",
        missing_checkpoint=(
            "SegVol needs --checkpoint SegVol_v1.pth: its weights are not shipped "
            "(the SegVol authors publish them as BAAI/SegVol on Hugging Face)"
        ),
        extra="segvol",  # transformers (CLIP text tower), instant-clip-tokenizer
    ),
}


def get_family(name: str) -> ModelFamily:
    """The registered family ``name``.

    Raises:
        VoxelPromptError: an unknown name (the message lists the known ones).
    """
    try:
        return FAMILIES[str(name).lower()]
    except KeyError:
        raise VoxelPromptError(f"unknown model family {name!r}; choose {' or '.join(FAMILIES)}") from None


def families_with(capability: str) -> list[str]:
    """Names of the families that have ``capability`` (a :class:`Capabilities` field)."""
    return [f.name for f in FAMILIES.values() if getattr(f.capabilities, capability)]


def family_of_keys(keys: Iterable[str], source: str = "checkpoint") -> ModelFamily:
    """The family whose checkpoints hold these state_dict keys (prefixes such as ``module.``,
    ``model.`` tolerated).

    Raises:
        CheckpointError: the keys fit no registered family.
    """
    names = list(keys)
    for family in FAMILIES.values():
        if all(any(k == s or k.endswith("." + s) for k in names) for s in family.key_signature):
            return family
    raise CheckpointError(
        f"{source}: not a checkpoint of a known model family ({', '.join(FAMILIES)}): "
        f"none holds its tensors (e.g. {names[0] if names else 'no tensors at all'})"
    )


def check_capabilities(prompts: Prompts, family: ModelFamily | str) -> None:
    """Raise unless ``family`` can answer ``prompts``, naming the families that can.

    Raises:
        PromptError: e.g. "box prompts need a family with box prompts (segvol)".
    """
    family = get_family(family) if isinstance(family, str) else family
    caps = family.capabilities
    # A family with text prompts reads one class id as its catalog name (SegVol).
    as_text = caps.text and len(prompts.classes) == 1 and prompts.text is None
    needs = [
        ("classes", bool(prompts.classes) and not as_text, "class prompts"),
        ("everything", prompts.everything, "everything prompts"),
        ("points", prompts.points is not None, "click prompts"),
        ("negative_points", prompts.points is not None and bool((prompts.points.labels == 0).any()), "negative clicks"),
        ("box", prompts.box is not None, "box prompts"),
        ("text", prompts.text is not None, "text prompts"),
        ("zero_shot", prompts.new_structure, "zero-shot clicks (new_structure)"),
        ("previous_mask", prompts.previous_mask is not None, "previous-mask edits"),
    ]
    for capability, used, what in needs:
        if used and not getattr(caps, capability):
            others = ", ".join(families_with(capability)) or "none"
            raise PromptError(f"{what} need a model family that has them ({others}); {family.name} has not")
