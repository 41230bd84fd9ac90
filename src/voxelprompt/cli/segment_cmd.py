"""``voxelprompt segment``: a thin adapter over :func:`voxelprompt.api.segment`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.cli.family_options import options_for, with_family_options
from voxelprompt.cli.options import (
    AllowUnlearntOption,
    BoxOption,
    DeviceOption,
    DownloadOption,
    Family,
    InputArgument,
    LabelOutputOption,
    NegativePointOption,
    OfflineOption,
    PointOption,
    PointSpaceOption,
    QuietOption,
    SeriesUidOption,
    Space,
    checkpoint_option,
    output_path,
    parse_box,
    parse_point,
    split_names,
    tune_process,
)
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


@with_family_options
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
    device: DeviceOption = "auto",
    preview: Annotated[
        Path | None, typer.Option("--preview", metavar="PNG", help="Also write a PNG of axial/coronal/sagittal overlays with a legend; omitted: none.")
    ] = None,
    download: DownloadOption = False,
    offline: OfflineOption = False,
    quiet: QuietOption = False,
    family_options: dict | None = None,
) -> None:
    """Segment a CT with a model of any registered family (VISTA3D, SegVol, plugins); the label map has the
    input's exact grid and holds only 0 and the prompted ids."""
    run_segment(
        input=input, output=output, output_format=output_format, checkpoint=checkpoint, family=None if model is None else model.value,
        names=split_names(classes), everything=everything, text=text, box=box, point=point,
        negative_point=negative_point, point_space=point_space, new_structure=new_structure, label_value=label_value,
        allow_unlearnt=allow_unlearnt, download=download, offline=offline, series_uid=series_uid, device=device, preview=preview, quiet=quiet,
        options=family_options or {},
    )  # fmt: skip


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
    """The body of ``segment`` (and of its deprecated ``segment-segvol`` alias): parse the flags,
    then :func:`voxelprompt.api.prepare_segment` (every check, once) and
    :func:`voxelprompt.api.run_segment`.

    Args:
        options: family option flag -> value (:func:`voxelprompt.cli.family_options.options_for`).
    """
    from voxelprompt import api
    from voxelprompt.cli.default_model import checkpoint_or_default
    from voxelprompt.cli.report import report_segmentation, volume_clicks
    from voxelprompt.outputs import check_output
    from voxelprompt.prompts import build_prompts

    points = [parse_point(p, "--point") for p in point or ()]
    negatives = [parse_point(p, "--negative-point") for p in negative_point or ()]
    boxed = parse_box(box) if box else None
    # Cheap checks first: the output (its format by --output-format or the ending of -o, its pip
    # extra, path, what it needs of the input) and the preview's path, before any checkpoint is
    # looked at; then family, options and prompts (flags named as flags); the API then reads the
    # image and checks the request once.
    fmt = check_output(output, output_format, source=input, inputs=(input,))
    output_path(preview, (".png",), inputs=(input, output))
    chosen = api.resolve_family(checkpoint, family)  # without a checkpoint: vista3d, whichever weights run
    opts = options_for(chosen, options)
    prompts = build_prompts(
        names, points, negatives, point_space.value, new_structure, text=text, box=boxed, everything=everything,
        label_value=label_value, allow_unlearnt=allow_unlearnt, catalog=chosen.class_catalog(),
    )  # fmt: skip

    def choose(family):  # after the image is read: may ask, and download the official weights
        return checkpoint_or_default(None, family.name, download=download, offline=offline, quiet=quiet)

    outcome = api.segment_outcome(
        input, output, output_format=fmt, device=device, progress=not quiet, before_load=lambda: tune_process(device),
        prompts=prompts, checkpoint=checkpoint, family=chosen, series_uid=series_uid, options=opts, choose_checkpoint=choose,
    )  # fmt: skip
    report_segmentation(outcome.result, output, outcome.names)
    if preview is not None:
        volume = outcome.request.volume
        marks = volume_clicks(points + negatives, point_space.value, volume) if points or negatives else []
        _write_preview(outcome, input, preview, series_uid, marks, bool(points))


def _write_preview(outcome, input: Path, preview: Path, series_uid, marks: list, positive: bool) -> None:
    """``--preview``: the registry's preview (slices crossing at the first positive click; marked
    when the demo model made the labels)."""
    from voxelprompt.inference.protocol import demo_mark
    from voxelprompt.outputs import OutputContext, write_output

    family = outcome.request.family.name
    context = OutputContext(
        labels=outcome.result.labels, label_names=outcome.names, image=outcome.request.volume, source=str(input),
        series_uid=series_uid, model=family, demo_mark=demo_mark(outcome.model), title=f"{input.name}: {family}",
        clicks=marks, focus=marks[0] if positive else None,
    )  # fmt: skip
    write_output(context, preview, "preview")
    typer.echo(f"wrote {preview}")
