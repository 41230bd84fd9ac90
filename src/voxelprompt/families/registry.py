"""The registry of model families: what each can do, how it loads, evaluates and trains.

Torch-free and instant (implementations are imported when first used), in the spirit of
segment-anything's ``sam_model_registry`` and TotalSegmentator's task table. Code asks a family's
:class:`Capabilities` instead of its name: prompt checks, evaluation protocols and the command line
all go through here, so a new family is one entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from voxelprompt.errors import CheckpointError, PromptError, VoxelPromptError
from voxelprompt.families.options import OptionSpec, option, option_specs
from voxelprompt.plugins import EntryPointRegistry, import_target
from voxelprompt.types import Prompts

__all__ = [
    "Capabilities",
    "OptionSpec",
    "option",
    "option_specs",
    "option_flags",
    "ENTRY_POINT_GROUP",
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
        everything: a whole official class set in one call; its segmenter is a
            :class:`~voxelprompt.inference.protocol.ClassResolver` (names its everything set).
        points: positive clicks; ``negative_points``: negative clicks too.
        box: a 3D box around the object.
        text: a free-text class name (CLIP).
        identify: name the class of a given mask.
        zero_shot: clicks on a structure outside its classes get a dedicated embedding
            (``Prompts.new_structure``).
        sessions: interactive sessions that reuse encoded windows.
        previous_mask: clicks edit a given mask (``Prompts.previous_mask``, VISTA3D's Algorithm 1).
        teach: few-shot finetuning from a labelling datastore (the server's ``/train``, VISTA3D's
            :mod:`~voxelprompt.families.vista3d.training.teach`).
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
    teach: bool = False
    protocols: frozenset[str] = frozenset()


def option_flags(families: Iterable[ModelFamily] | None = None) -> dict[str, dict[str, str]]:
    """Flag -> {family name: field of its options record} over the registered families."""
    table: dict[str, dict[str, str]] = {}
    for family in FAMILIES.values() if families is None else families:
        for field, spec in option_specs(family.options).items():
            table.setdefault(spec.flag, {})[family.name] = field
    return table


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
        prompt_check: ``(prompts, volume) -> None``: the checks that need the volume but no model
            (clicks and boxes inside it, class rules), run once per request before a model is
            loaded (:mod:`voxelprompt.request`); segmenters trust a checked request.
        eval_adapter: ``(segmenter, name) -> EvalModel`` for :mod:`voxelprompt.evaluation`; None:
            the family is not evaluated.
        recipes: ``name -> () -> recipe`` of built-in training recipes; None: no training.
        recipe_type: the family's recipe dataclass (``recipe_from_dict``'s default).
        trainer: ``(recipe, resume, progress) -> TrainResult``.
        tiny_model: ``(seed) -> network`` of the family's design at toy size (tests, smoke runs);
            its ``state_dict`` saved with ``torch.save`` is a checkpoint :attr:`loader` takes.
        catalog: ``() -> LabelCatalog``: the family's class table (names <-> ids) through which
            class names in prompts resolve and result values are named.
        describe: ``(checkpoint) -> lines`` for ``voxelprompt info`` (architecture, sizes);
            None: the family loads the checkpoint and its parameters are counted.
        confidence: ``(segmenter, volume) -> float``: how sure the model is of its automatic
            result on ``volume`` (active learning's ``confidence`` strategy picks the lowest);
            None: the family is not scored.
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
    prompt_check: str
    catalog: str
    learnt_classes: str
    eval_adapter: str | None = None
    recipes: str | None = None
    recipe_type: str | None = None
    trainer: str | None = None
    tiny_model: str | None = None
    describe: str | None = None
    confidence: str | None = None
    default_checkpoint: str | None = None
    missing_checkpoint: str = "this model family needs --checkpoint: its weights are not shipped"
    viewer_session: Mapping[str, Any] = dataclasses.field(default_factory=dict)
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
            record = self.options(**given)
        except (TypeError, ValueError) as err:  # e.g. a string where a number belongs
            raise VoxelPromptError(f"bad {self.name} option value ({err})") from None
        for field, spec in option_specs(self.options).items():  # the declared choices hold at every door
            value = getattr(record, field)
            if spec.choices and value is not None and value not in spec.choices:
                raise VoxelPromptError(f"{spec.flag} must be one of {', '.join(spec.choices)}, got {value!r}"[:200])
        return record

    def options_from_flags(self, given: Mapping[str, Any]) -> Any:
        """This family's options record from ``given``: flag (``--engine``) or field name
        (``engine``) -> value, as the command line and batch tasks take them (:func:`option`).

        Raises:
            PromptError: a flag of another family, named with the flags this family takes.
            VoxelPromptError: a bad value (the record's own check).
        """
        own = {spec.flag: field for field, spec in option_specs(self.options).items()}
        own.update({field: field for field in own.values()})  # a field's name is taken too (``mode``)
        foreign = [flag for flag in given if flag not in own]
        if foreign:
            flags = ", ".join(spec.flag for spec in option_specs(self.options).values()) or "none"
            raise PromptError(f"{foreign[0]} is not an option of {self.name} (its options: {flags})")
        return self.make_options({own[flag]: value for flag, value in given.items()})

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

    def class_catalog(self) -> Any:
        """The family's :class:`~voxelprompt.catalog.LabelCatalog` (class names <-> ids)."""
        return import_target(self.catalog)()

    def eval_model(self, segmenter: Any, name: str | None = None) -> Any:
        """The evaluation adapter around a loaded segmenter.

        Raises:
            VoxelPromptError: a family without an evaluation adapter.
        """
        if self.eval_adapter is None:
            raise VoxelPromptError(f"the {self.name} model family has no evaluation adapter")
        return import_target(self.eval_adapter)(segmenter, name=name or self.name)

    def _training(self, what: str) -> Any:
        target = getattr(self, what)
        if target is None:
            raise VoxelPromptError(f"the {self.name} model family has no training")
        return import_target(target)

    def recipe_registry(self) -> Mapping[str, Any]:
        """Built-in recipes by name (empty for a family without training)."""
        return {} if self.recipes is None else import_target(self.recipes)

    def recipe_class(self) -> type:
        return self._training("recipe_type")

    def train(self, recipe: Any, resume: bool = False, progress: bool = True) -> Any:
        self.require_extra()
        return self._training("trainer")(recipe, resume=resume, progress=progress)


#: The Python entry-point group a family registers under (the convention napari and pytest use for
#: plugins): ``[project.entry-points."voxelprompt.families"] name = "package.module:FAMILY"``, the
#: object a :class:`ModelFamily`. voxelprompt's own families are registered the same way.
ENTRY_POINT_GROUP = "voxelprompt.families"

#: voxelprompt's own families, also when the package runs from a source tree without its metadata.
BUILTIN_FAMILIES = {
    "vista3d": "voxelprompt.families.vista3d:FAMILY",
    "segvol": "voxelprompt.families.segvol:FAMILY",
}


def _valid_family(family: ModelFamily) -> None:
    """A plugin family must name its checkpoints' tensors (else every checkpoint would be its) and
    give each option a valid flag (``--lower-case``)."""
    import re

    if not family.key_signature:
        raise ValueError("its key_signature is empty: every checkpoint would be recognised as it")
    for spec in option_specs(family.options).values():
        if not re.fullmatch(r"--[a-z][a-z0-9-]*", spec.flag):
            raise ValueError(f"its option flag {spec.flag!r} is not --lower-case-words")


#: The registered families, by name: :data:`BUILTIN_FAMILIES`, then the entry points of
#: :data:`ENTRY_POINT_GROUP` (:class:`~voxelprompt.plugins.EntryPointRegistry`).
FAMILIES: EntryPointRegistry[ModelFamily] = EntryPointRegistry(ENTRY_POINT_GROUP, BUILTIN_FAMILIES, ModelFamily, "model family", _valid_family)


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
