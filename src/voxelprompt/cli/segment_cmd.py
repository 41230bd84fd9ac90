"""``voxelprompt segment``: a thin adapter over :func:`voxelprompt.api.segment`."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.cli.options import (
    AllowUnlearntOption,
    BoxOption,
    DeviceOption,
    DownloadOption,
    Engine,
    Family,
    InputArgument,
    LabelOutputOption,
    NegativePointOption,
    OfflineOption,
    PointOption,
    PointSpaceOption,
    Profile,
    QuietOption,
    SegVolMode,
    SeriesUidOption,
    Space,
    checkpoint_option,
    output_path,
    parse_box,
    parse_point,
    split_names,
    tune_process,
)
from voxelprompt.errors import PromptError
from voxelprompt.outputs import OUTPUT_FORMATS

__all__ = ["segment"]

#: ``--output-format``: a name of the output registry (:data:`voxelprompt.outputs.OUTPUT_FORMATS`,
#: plugins included), listed by ``--help``.
OutputFormatOption = Annotated[
    str | None,
    typer.Option(
        "--output-format", metavar="NAME",
        help=f"Format of -o: {', '.join(OUTPUT_FORMATS)}; omitted: chosen by the ending of -o "
        "(.nii.gz, .nii, .nrrd: label map; .rtstruct.dcm: RT-STRUCT of a DICOM series input).",
    ),
]  # fmt: skip


def segment(
    input: InputArgument,
    output: LabelOutputOption,
    output_format: OutputFormatOption = None,
    checkpoint: Annotated[
        Path | None,
        checkpoint_option(
            "Model weights: VISTA3D (MONAI bundle models/model.pt or research layout) or SegVol (SegVol_v1.pth); "
            "omitted: the official VISTA3D weights when cached (see --download), else the shipped demo VISTA3D "
            "(phantoms only, not for real CTs); 'demo' names the demo model."
        ),
    ] = None,
    model: Annotated[
        Family | None,
        typer.Option("--model", help="Model family; omitted: recognised from the checkpoint's tensors (vista3d without one)."),
    ] = None,
    classes: Annotated[
        str, typer.Option("--classes", metavar="NAMES", help="Comma-separated class names or ids, e.g. liver,spleen (`voxelprompt classes` lists them); omitted: none.")
    ] = "",
    everything: Annotated[bool, typer.Option("--everything", help="Segment the official everything class set (VISTA3D).")] = False,
    text: Annotated[
        str | None, typer.Option("--text", metavar="NAME", help="Class name as free text (SegVol: CLIP-encoded; VISTA3D: looked up in the class table); omitted: none.")
    ] = None,
    box: BoxOption = None,
    point: PointOption = None,
    negative_point: NegativePointOption = None,
    point_space: PointSpaceOption = Space.voxel,
    new_structure: Annotated[
        bool,
        typer.Option(
            "--new-structure",
            help="Clicks without --classes mark a structure outside VISTA3D's classes (zero-shot point embedding). "
            "Omitted: VISTA3D's embedding of supported classes, as the official pipeline does.",
        ),
    ] = False,
    label_value: Annotated[
        int | None,
        typer.Option("--label-value", min=1, metavar="N", help="Value of a single object (SegVol's, or VISTA3D's from clicks alone); omitted: the class its text names, else 1."),
    ] = None,
    allow_unlearnt: AllowUnlearntOption = False,
    series_uid: SeriesUidOption = None,
    profile: Annotated[
        Profile | None, typer.Option("--profile", help="VISTA3D: official pipeline, bundle (MONAI model zoo) or research (VISTA repository); omitted: bundle.")
    ] = None,
    engine: Annotated[
        Engine | None, typer.Option("--engine", help="VISTA3D class prompts: exact (official labels, faster), reference (MONAI's inferer) or fast (approximate); omitted: exact.")
    ] = None,
    amp: Annotated[bool, typer.Option("--amp", help="VISTA3D: float16 autocast (CUDA only).")] = False,
    roi: Annotated[
        tuple[int, int, int] | None,
        typer.Option("--roi", metavar="H W D", help="VISTA3D: sliding-window size in model voxels; omitted: the profile's (128 128 128)."),
    ] = None,
    segvol_mode: Annotated[
        SegVolMode | None, typer.Option("--segvol-mode", help="SegVol: zoom (zoom-out-zoom-in, the paper's), sliding or zoom-out; omitted: zoom.")
    ] = None,
    overlap: Annotated[
        float | None, typer.Option("--overlap", min=0.0, max=0.95, metavar="F", help="SegVol: sliding-window overlap in [0, 1); omitted: 0.5.")
    ] = None,
    device: DeviceOption = "auto",
    preview: Annotated[
        Path | None, typer.Option("--preview", metavar="PNG", help="Also write a PNG of axial/coronal/sagittal overlays with a legend; omitted: none.")
    ] = None,
    download: DownloadOption = False,
    offline: OfflineOption = False,
    quiet: QuietOption = False,
) -> None:
    """Segment a CT with VISTA3D or SegVol; the label map has the input's exact grid and holds only 0 and the prompted ids."""
    run_segment(
        input=input, output=output, output_format=output_format, checkpoint=checkpoint, family=None if model is None else model.value,
        names=split_names(classes), everything=everything, text=text, box=box, point=point,
        negative_point=negative_point, point_space=point_space, new_structure=new_structure, label_value=label_value,
        allow_unlearnt=allow_unlearnt, download=download, offline=offline, series_uid=series_uid, device=device, preview=preview, quiet=quiet,
        options={"profile": profile, "engine": engine, "amp": amp or None, "roi_size": roi, "mode": segvol_mode, "overlap": overlap},
    )  # fmt: skip


#: Family option (:mod:`voxelprompt.families`) -> the flag that sets it, for messages.
OPTION_FLAGS = {
    "profile": "--profile", "engine": "--engine", "amp": "--amp", "roi_size": "--roi", "mode": "--segvol-mode",
    "overlap": "--overlap",
}  # fmt: skip


def family_options(family, given: dict):
    """``family``'s options record from the flags given (None: not given).

    Raises:
        PromptError: a flag of another family, named with the flags this family takes.
    """
    values = {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in given.items() if v is not None}
    own = {f.name for f in dataclasses.fields(family.options)}
    foreign = [k for k in values if k not in own]
    if foreign:
        flags = ", ".join(OPTION_FLAGS.get(k, k) for k in sorted(own))
        raise PromptError(f"{OPTION_FLAGS.get(foreign[0], foreign[0])} is not an option of {family.name} (its options: {flags})")
    return family.make_options(values)


def run_segment(
    *,
    input: Path,
    output: Path,
    checkpoint: Path | None,
    family: str | None,
    names: list[str],
    everything: bool,
    text: str | None,
    box: str | None,
    point: list[str] | None,
    negative_point: list[str] | None,
    point_space: Space,
    new_structure: bool,
    label_value: int | None,
    series_uid: str | None,
    device: str,
    allow_unlearnt: bool = False,
    download: bool = False,
    offline: bool = False,
    preview: Path | None,
    quiet: bool,
    options: dict,
    output_format: str | None = None,
) -> None:
    """The body of ``segment`` (and of its deprecated ``segment-segvol`` alias)."""
    from voxelprompt import api
    from voxelprompt.cli.default_model import checkpoint_or_default
    from voxelprompt.cli.report import report_segmentation, volume_clicks
    from voxelprompt.imageio import read_volume
    from voxelprompt.outputs import check_output
    from voxelprompt.prompts import value_names

    points = [parse_point(p, "--point") for p in point or ()]
    negatives = [parse_point(p, "--negative-point") for p in negative_point or ()]
    boxed = parse_box(box) if box else None
    # Cheap checks before reading the image, and reading before any model work.
    prompts = api.build_prompts(names, points, negatives, point_space.value, new_structure, text=text, box=boxed,
                                everything=everything, label_value=label_value, allow_unlearnt=allow_unlearnt)  # fmt: skip
    # The output's format (by --output-format or the ending of -o), its pip extra, its path and
    # what it needs of the input (an RT-STRUCT: a DICOM series) are checked before reading the image.
    fmt = check_output(output, output_format, source=input, inputs=(input,))
    output_path(preview, (".png",), inputs=(input, output))
    chosen = api.resolve_family(checkpoint, family)  # without a checkpoint: vista3d, whichever weights run
    opts = family_options(chosen, options)
    volume = read_volume(input, series_uid=series_uid)
    fmt.check_image(volume, input, series_uid)  # e.g. a tilted series or another grid for an RT-STRUCT, before any model work
    chosen.check_prompts(prompts, volume)  # clicks and boxes against the image, before any model work
    checkpoint = checkpoint_or_default(checkpoint, chosen.name, download=download, offline=offline, quiet=quiet)
    tune_process(device)
    result = api.segment(
        volume, output, output_format=fmt.name, checkpoint=checkpoint, family=chosen.name, classes=names, everything=everything,
        text=text, box=boxed, points=points, negative_points=negatives, point_space=point_space.value, new_structure=new_structure,
        label_value=label_value, allow_unlearnt=allow_unlearnt, series_uid=series_uid, device=device, options=opts, progress=not quiet,
    )  # fmt: skip
    label_names = value_names(result.classes, prompts)  # as written with the output
    if names or everything:
        label_names = chosen.learnt(checkpoint).marked(label_names)
    report_segmentation(result, output, label_names)
    if preview is not None:
        _write_preview(result, volume, input, preview, label_names, series_uid, chosen.name, checkpoint,
                       volume_clicks(points + negatives, point_space.value, volume) if points or negatives else [], bool(points))  # fmt: skip


def _write_preview(result, volume, input: Path, preview: Path, label_names: dict, series_uid, family: str, checkpoint, marks: list, positive: bool) -> None:
    """``--preview``: the registry's preview (slices crossing at the first positive click; marked
    when the demo model made the labels)."""
    from voxelprompt.families.vista3d.inference.default_model import DEMO_MARK, is_demo_checkpoint
    from voxelprompt.outputs import OutputContext, write_output

    context = OutputContext(
        labels=result.labels, label_names=label_names, image=volume, source=str(input), series_uid=series_uid, model=family,
        demo_mark=DEMO_MARK if is_demo_checkpoint(checkpoint) else None, title=f"{input.name}: {family}",
        clicks=marks, focus=marks[0] if positive else None,
    )  # fmt: skip
    write_output(context, preview, "preview")
    typer.echo(f"wrote {preview}")
