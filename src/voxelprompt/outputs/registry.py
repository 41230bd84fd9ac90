"""The registry of output formats: what each writes, from what, and what it needs.

Torch-free and instant (writers are imported when first used), like the model families'
registry (:mod:`voxelprompt.families.registry`). ``voxelprompt segment --output-format``, the batch
runner's ``--output-format`` kinds and the server's ``output=`` all look formats up here, so a new
format is one entry: voxelprompt's own are declared in :mod:`voxelprompt.outputs.builtin`, another
package adds one through the ``voxelprompt.outputs`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voxelprompt.errors import InputError, PromptError
from voxelprompt.plugins import EntryPointRegistry, import_target

if TYPE_CHECKING:
    from voxelprompt.outputs.context import OutputContext
    from voxelprompt.types import Volume

__all__ = [
    "NEEDS",
    "OutputFormat",
    "ENTRY_POINT_GROUP",
    "BUILTIN_OUTPUTS",
    "OUTPUT_FORMATS",
    "get_output_format",
    "check_output_formats",
    "format_for_path",
]


#: What a writer may declare it needs from its :class:`~voxelprompt.outputs.context.OutputContext`:
#: ``dicom-series`` (``source`` is a DICOM series folder it references), ``image`` (the CT),
#: ``label-names`` (names of the values) and ``model`` (the model's name and demo mark).
NEEDS = ("dicom-series", "image", "label-names", "model")


@dataclass(frozen=True)
class OutputFormat:
    """One output format. Its writer is named ``"module:attribute"`` and imported on use.

    Args:
        name: registry key (``--output-format NAME``, the server's ``output=NAME``).
        description: one line for listings and ``--help``.
        writer: ``(context, path) -> list[Path]``: writes the format's file at ``path`` (and
            companions beside it, named from ``path``) and returns what it wrote, that file first.
            It may leave partial files on failure: callers write into a staging folder.
        file_name: the file's name in a batch case folder (``labels.nii.gz``).
        suffixes: endings ``segment -o PATH --output-format NAME`` accepts for ``PATH``.
        inferred_from: endings that choose this format when no format is named (``.nii.gz``).
        needs: what the writer reads of the context, of :data:`NEEDS`; an output that needs what
            an input lacks is refused before any model work.
        extra: the pip extra its writer needs (:mod:`voxelprompt.extras`), and ``imports`` the
            modules of it that the writer imports; None: the core.
        label_names_beside: a single written file gets ``<stem>.label_names.json`` (value -> name)
            beside it, since the format itself holds no names (``segment -o seg.nii.gz``).
        media_type: the file's MIME type in an HTTP reply.
        check: ``(volume, source, series_uid) -> None``: checks that need the image read but no
            model (an RT-STRUCT's grid against its series); None: none.
    """

    name: str
    description: str
    writer: str
    file_name: str
    suffixes: tuple[str, ...]
    inferred_from: tuple[str, ...] = ()
    needs: frozenset[str] = frozenset()
    extra: str | None = None
    imports: tuple[str, ...] = ()
    label_names_beside: bool = False
    media_type: str = "application/octet-stream"
    check: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.needs) - set(NEEDS))
        if unknown:  # a typo would otherwise pass silently and the need never be checked
            raise ValueError(f"output format {self.name!r} needs {unknown[0]!r}, which is none of {', '.join(NEEDS)}")

    def require_extra(self, purpose: str | None = None) -> None:
        """Raise :class:`~voxelprompt.extras.MissingExtraError` unless the writer's extra is installed (cheap)."""
        if self.extra is not None:
            from voxelprompt.extras import require

            require(self.extra, purpose or f"--output-format {self.name}", self.imports or None)

    def unavailable(self, *, dicom_series: bool, image: bool = True) -> str | None:
        """Why an input cannot have this output (``dicom_series``: it is a DICOM series folder;
        ``image``: the CT is at hand); None: it can."""
        if "dicom-series" in self.needs and not dicom_series:
            return "needs a DICOM source series"
        if "image" in self.needs and not image:
            return "needs the source image"
        return None

    def check_source(self, source: str | Path | None) -> None:
        """Refuse, in one line and without reading it, an input this output cannot reference.

        Raises:
            InputError: the output needs a DICOM series and ``source`` is no folder.
        """
        if "dicom-series" in self.needs and (source is None or not Path(source).is_dir()):
            raise InputError(
                f"{source if source is not None else '<array>'}: not a DICOM series folder; the {self.name} output "
                "references the CT's DICOM images, so it needs a DICOM series as input (use nifti or nrrd for image files)"
            )

    def check_image(self, volume: Volume, source: str | Path | None, series_uid: str | None = None) -> None:
        """The format's own checks of the read image (:attr:`check`), before any model work.

        Raises:
            VoxelPromptError: an image this output cannot describe, in one line.
        """
        self.check_source(source)
        if self.check is not None:
            import_target(self.check)(volume, source, series_uid)

    def write(self, context: OutputContext, path: str | Path) -> list[Path]:
        """Write the format's file at ``path`` (and its companions); the paths written, that file first.

        Raises:
            MissingExtraError: the writer's pip extra is not installed.
            VoxelPromptError: what the writer refuses (e.g. nothing segmented for a DICOM-SEG).
        """
        self.require_extra()
        written = import_target(self.writer)(context, Path(path))
        return [Path(p) for p in written]


#: The Python entry-point group an output format registers under:
#: ``[project.entry-points."voxelprompt.outputs"] name = "package.module:FORMAT"``, the object an
#: :class:`OutputFormat` named ``name``. voxelprompt's own formats are registered the same way.
ENTRY_POINT_GROUP = "voxelprompt.outputs"

#: voxelprompt's own formats, in listing order, also when it runs from a source tree without its metadata.
BUILTIN_OUTPUTS = {
    "nifti": "voxelprompt.outputs.builtin:NIFTI",
    "nrrd": "voxelprompt.outputs.builtin:NRRD",
    "seg-nrrd": "voxelprompt.outputs.builtin:SEG_NRRD",
    "dicom-seg": "voxelprompt.outputs.builtin:DICOM_SEG",
    "rtstruct": "voxelprompt.outputs.builtin:RTSTRUCT",
    "stats": "voxelprompt.outputs.builtin:STATS",
    "preview": "voxelprompt.outputs.builtin:PREVIEW",
}


#: The registered output formats, by name: :data:`BUILTIN_OUTPUTS`, then the entry points of
#: :data:`ENTRY_POINT_GROUP` (:class:`~voxelprompt.plugins.EntryPointRegistry`).
OUTPUT_FORMATS: EntryPointRegistry[OutputFormat] = EntryPointRegistry(ENTRY_POINT_GROUP, BUILTIN_OUTPUTS, OutputFormat, "output format")


def get_output_format(name: str, flag: str = "--output-format") -> OutputFormat:
    """The registered format ``name`` (case-insensitive).

    Raises:
        PromptError: an unknown name, e.g. ``--output-format 'gif': unknown kind; choose from nifti, ...``.
    """
    key = str(name).strip().lower()
    if key not in OUTPUT_FORMATS:
        raise PromptError(f"{flag} {key!r}: unknown kind; choose from {', '.join(OUTPUT_FORMATS)}")
    return OUTPUT_FORMATS[key]


def check_output_formats(names: Sequence[str]) -> tuple[str, ...]:
    """Format names checked, in the order given, without repeats (the batch runner's kinds).

    Raises:
        PromptError: an unknown name, none given, or two formats that write the same file name.
        MissingExtraError: a format whose writer's pip extra is not installed.
    """
    out: list[str] = []
    for name in names:
        key = name.strip().lower()
        if not key or key in out:
            continue
        fmt = get_output_format(key)
        fmt.require_extra()
        clash = next((other for other in out if OUTPUT_FORMATS[other].file_name == fmt.file_name), None)
        if clash is not None:
            raise PromptError(f"--output-format {key} and {clash} both write {fmt.file_name}; choose one")
        out.append(key)
    if not out:
        raise PromptError("--output-format: give at least one output kind")
    return tuple(out)


def format_for_path(path: str | Path, name: str | None = None) -> OutputFormat:
    """The format named ``name``, or the one the ending of ``path`` chooses (the longest matching
    :attr:`OutputFormat.inferred_from`, built-in formats first).

    Raises:
        PromptError: an unknown ``name``.
        InputError: no ``name`` and an ending that chooses no format.
    """
    if name is not None:
        return get_output_format(name)
    lower = Path(path).name.lower()
    best: tuple[int, OutputFormat] | None = None
    for fmt in OUTPUT_FORMATS.values():
        for ending in fmt.inferred_from:
            if lower.endswith(ending.lower()) and (best is None or len(ending) > best[0]):
                best = (len(ending), fmt)
    if best is None:
        from voxelprompt.imageio.readers import _suffix

        endings = [e for fmt in OUTPUT_FORMATS.values() for e in fmt.inferred_from]
        raise InputError(
            f"{path}: unknown output extension {_suffix(Path(path))!r}; expected {', '.join(endings)} "
            f"(or name a format with --output-format: {', '.join(OUTPUT_FORMATS)})"
        )
    return best[1]
