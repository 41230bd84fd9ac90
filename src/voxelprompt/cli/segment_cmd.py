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
from voxelprompt.imageio.rtstruct import RTSTRUCT_SUFFIX, check_rtstruct_source, require_series_folder
from voxelprompt.imageio.writers import IMAGE_SUFFIXES

#: What ``segment -o`` writes: a label map, or an RT-STRUCT of a DICOM series input.
LABEL_OUTPUT_SUFFIXES = (*IMAGE_SUFFIXES, RTSTRUCT_SUFFIX)

__all__ = ["segment"]


def segment(
    input: InputArgument,
    output: LabelOutputOption,
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
        input=input, output=output, checkpoint=checkpoint, family=None if model is None else model.value,
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
) -> None:
    """The body of ``segment`` (and of its deprecated ``segment-segvol`` alias)."""
    from voxelprompt import api
    from voxelprompt.cli.default_model import checkpoint_or_default
    from voxelprompt.cli.report import report_segmentation, volume_clicks
    from voxelprompt.imageio import read_volume
    from voxelprompt.prompts import value_names

    points = [parse_point(p, "--point") for p in point or ()]
    negatives = [parse_point(p, "--negative-point") for p in negative_point or ()]
    boxed = parse_box(box) if box else None
    # Cheap checks before reading the image, and reading before any model work.
    prompts = api.build_prompts(names, points, negatives, point_space.value, new_structure, text=text, box=boxed,
                                everything=everything, label_value=label_value, allow_unlearnt=allow_unlearnt)  # fmt: skip
    rtstruct = str(output).lower().endswith(RTSTRUCT_SUFFIX)
    output_path(output, LABEL_OUTPUT_SUFFIXES, inputs=(input,))
    if rtstruct:
        require_series_folder(input)
    output_path(preview, (".png",), inputs=(input, output))
    chosen = api.resolve_family(checkpoint, family)  # without a checkpoint: vista3d, whichever weights run
    opts = family_options(chosen, options)
    volume = read_volume(input, series_uid=series_uid)
    if rtstruct:  # a tilted series or another grid is refused before any model work
        check_rtstruct_source(volume, input, source_series_uid=series_uid)
    chosen.check_prompts(prompts, volume)  # clicks and boxes against the image, before any model work
    checkpoint = checkpoint_or_default(checkpoint, chosen.name, download=download, offline=offline, quiet=quiet)
    tune_process(device)
    result = api.segment(
        volume, None if rtstruct else output, checkpoint=checkpoint, family=chosen.name, classes=names, everything=everything, text=text,
        box=boxed, points=points, negative_points=negatives, point_space=point_space.value, new_structure=new_structure,
        label_value=label_value, allow_unlearnt=allow_unlearnt, device=device, options=opts, progress=not quiet,
    )  # fmt: skip
    label_names = value_names(result.classes, prompts)  # as written beside the output
    if names or everything:
        label_names = chosen.learnt(checkpoint).marked(label_names)
    if rtstruct:
        _write_rtstruct(result.labels, input, output, label_names, series_uid, chosen.name, checkpoint)
    report_segmentation(result, output, label_names)
    if preview is not None:
        from voxelprompt.visualize import overlay_file

        marks = [] if not points and not negatives else volume_clicks(points + negatives, point_space.value, volume)
        first = marks[0] if points else None  # the slices cross at the first positive click
        from voxelprompt.families.vista3d.inference.default_model import DEMO_MARK, is_demo_checkpoint

        title = f"{input.name}: {chosen.name}" + (f" - {DEMO_MARK}" if is_demo_checkpoint(checkpoint) else "")
        overlay_file(volume, result.labels, preview, point=first, clicks=marks, names=label_names, title=title)
        typer.echo(f"wrote {preview}")


def _write_rtstruct(labels, input: Path, output: Path, label_names: dict, series_uid: str | None, family: str, checkpoint) -> None:
    """The result as an RT-STRUCT of the input series (reproducible; marked when the demo model made it)."""
    from voxelprompt.imageio.rtstruct import write_rtstruct
    from voxelprompt.families.vista3d.inference.default_model import DEMO_MARK, is_demo_checkpoint

    written = write_rtstruct(
        labels, input, output, label_names, source_series_uid=series_uid, missing_uids="derive", algorithm_name=family,
        demo_mark=DEMO_MARK if is_demo_checkpoint(checkpoint) else None,
    )  # fmt: skip
    if written.derived_source_uids:
        typer.echo(
            f"note: {input} lacks UIDs an RT-STRUCT references ({len(written.derived_source_uids)} derived from the "
            "files' content); a planning system matches it only to a copy of the series carrying them", err=True,
        )  # fmt: skip
