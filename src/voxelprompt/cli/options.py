"""The option vocabulary every command shares (see README.md here), and parsing of comma-separated
values (clicks, boxes).

An option means the same thing in every command that has it; commands take these definitions
instead of spelling their own. Fixed choices are enums, so ``--help`` lists them and a bad value
is a usage error (one line, exit code 2).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.devices import check_device
from voxelprompt.errors import PromptError, VoxelPromptError
from voxelprompt.families import FAMILIES

__all__ = [
    "AllowUnlearntOption",
    "DownloadOption",
    "OfflineOption",
    "InputArgument",
    "LabelOutputOption",
    "BoxOption",
    "Family",
    "Space",
    "DeviceOption",
    "QuietOption",
    "SeriesUidOption",
    "PointOption",
    "NegativePointOption",
    "PointSpaceOption",
    "checkpoint_option",
    "parse_numbers",
    "parse_point",
    "parse_box",
    "split_names",
    "output_path",
    "tune_process",
    "as_flags",
]

#: Library messages name the API's keywords (a server reply must not give command-line flags);
#: the command line shows them as its flags.
_FLAGS = {"new_structure=True": "--new-structure"}


def as_flags(text: str) -> str:
    """A library message with the API keywords of :data:`_FLAGS` written as this CLI's flags."""
    for keyword, flag in _FLAGS.items():
        text = text.replace(keyword, flag)
    return text


#: Model families (``--model``): the registry's names (:data:`voxelprompt.families.FAMILIES`).
Family = enum.Enum("Family", {name: name for name in FAMILIES}, type=str)  # type: ignore[misc]


class Space(str, enum.Enum):
    """Frame of clicks and boxes (``--point-space``): input voxel indices or RAS+ millimetres."""

    voxel = "voxel"
    world = "world"


def _device(value: str) -> str:
    try:
        return check_device(value)
    except VoxelPromptError as err:
        raise typer.BadParameter(str(err)) from None


InputArgument = Annotated[
    Path, typer.Argument(metavar="INPUT", help="CT image in HU: .nii/.nii.gz/.nrrd file or a DICOM series folder.")
]

LabelOutputOption = Annotated[
    Path,
    typer.Option(
        "--output", "-o", metavar="PATH",
        help="Label map to write (.nii.gz, .nii or .nrrd), with its class names beside it (<stem>.label_names.json), "
        "or an RT-STRUCT of a DICOM series input (.rtstruct.dcm); a missing folder is created.",
    ),
]

BoxOption = Annotated[
    str | None,
    typer.Option("--box", metavar="I0,J0,K0,I1,J1,K1", help="SegVol box, inclusive corners in --point-space; omitted: none."),
]

DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        metavar="auto|cpu|cuda[:N]",
        callback=_device,
        help="Where the network runs: auto (a CUDA GPU when one is present, else the CPU), cpu, cuda or cuda:N.",
    ),
]

QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bars (results, warnings and errors still print).")
]

SeriesUidOption = Annotated[
    str | None,
    typer.Option(
        "--series-uid",
        metavar="UID",
        help="Which DICOM series to read when the input folder holds several (the error lists them); "
        "omitted: the folder's only series.",
    ),
]

PointOption = Annotated[
    list[str] | None,
    typer.Option("--point", metavar="I,J,K", help="Positive click (repeatable); omitted: no clicks."),
]

NegativePointOption = Annotated[
    list[str] | None,
    typer.Option("--negative-point", metavar="I,J,K", help="Negative click (repeatable); omitted: none."),
]

DownloadOption = Annotated[
    bool,
    typer.Option(
        "--download",
        help="No --checkpoint and the official VISTA3D weights are not cached yet: download them (872 MB, "
        "resumable, verified) without asking. Omitted: asked on a terminal; scripts and CI get the demo model.",
    ),
]

OfflineOption = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="Never touch the network: report what is cached and which file to place where (also VOXELPROMPT_OFFLINE=1).",
    ),
]

AllowUnlearntOption = Annotated[
    bool,
    typer.Option(
        "--allow-unlearnt",
        help="Segment classes the model never learnt (`voxelprompt classes -c MODEL` lists those it did); the output "
        "then says UNLEARNT. Omitted: such a class is refused.",
    ),
]

PointSpaceOption = Annotated[
    Space,
    typer.Option(
        "--point-space",
        help="Frame of clicks and boxes: voxel (indices of the input as stored) or world (RAS+ mm, as 3D Slicer shows).",
    ),
]


def _checkpoint(value: Path | list[Path] | None) -> Path | list[Path] | None:
    """Registry names among ``-c`` values become their fetched files (``evaluate`` repeats ``-c``)."""
    from voxelprompt.weights.cache import resolve_checkpoint  # torch-free

    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [resolve_checkpoint(Path(item)) for item in value]
    return resolve_checkpoint(value)


def checkpoint_option(help: str) -> typer.models.OptionInfo:  # noqa: A002 - Typer's own keyword
    """``-c/--checkpoint PATH|NAME``: a model weights file, or the name of fetched official weights
    (``voxelprompt weights list``); ``help`` says which and what happens when omitted."""
    return typer.Option(
        "--checkpoint", "-c", metavar="PATH|NAME", callback=_checkpoint, help=f"{help} A NAME from 'voxelprompt weights list' means its fetched file."
    )


def parse_numbers(text: str, count: int, option: str, form: str) -> tuple[float, ...]:
    """``"1,2,3"`` -> ``(1.0, 2.0, 3.0)``; a PromptError naming ``option`` otherwise."""
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise PromptError(f"{option} {text!r}: expected {count} numbers {form}") from None
    if len(values) != count:
        raise PromptError(f"{option} {text!r}: expected {count} numbers {form}, got {len(values)}")
    return values


def parse_point(text: str, option: str = "--point") -> tuple[float, float, float]:
    """A click ``I,J,K``."""
    return parse_numbers(text, 3, option, "I,J,K")  # type: ignore[return-value]


def parse_box(text: str, option: str = "--box") -> tuple[float, ...]:
    """A box ``I0,J0,K0,I1,J1,K1`` (both corners inclusive)."""
    return parse_numbers(text, 6, option, "I0,J0,K0,I1,J1,K1")


def split_names(text: str) -> list[str]:
    """``"liver, spleen"`` -> ``["liver", "spleen"]`` (empty parts dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def output_path(path: Path | None, suffixes: tuple[str, ...] | None = None, inputs: tuple[Path, ...] = ()) -> Path | None:
    """Check an output path before any work (not a folder nor an input, suffix, folder writable,
    created when missing); see :func:`voxelprompt.imageio.check_output_path`."""
    if path is None:
        return None
    from voxelprompt.imageio import check_output_path
    from voxelprompt.imageio.writers import IMAGE_SUFFIXES

    return check_output_path(path, suffixes=suffixes or IMAGE_SUFFIXES, inputs=inputs)


def tune_process(device: str) -> None:
    """The CLI owns its process: on the CPU, let glibc keep freed memory for the next window
    (:mod:`voxelprompt.inference.allocator`; ``VOXELPROMPT_KEEP_MALLOC=1`` opts out). Call it just
    before a model is loaded, after the cheap checks."""
    from voxelprompt.devices import resolve_device
    from voxelprompt.inference.allocator import keep_freed_memory

    if resolve_device(device) == "cpu":
        keep_freed_memory()
