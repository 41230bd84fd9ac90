"""``voxelprompt batch``: a thin adapter over :func:`voxelprompt.batch.run_cohort` with a Rich
progress bar (cases done, failed, ETA)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.cli.family_options import with_family_options
from voxelprompt.outputs import OUTPUT_FORMATS
from voxelprompt.cli.options import (
    AllowUnlearntOption,
    BoxOption,
    DeviceOption,
    DownloadOption,
    Family,
    NegativePointOption,
    OfflineOption,
    PointOption,
    PointSpaceOption,
    QuietOption,
    Space,
    checkpoint_option,
    parse_box,
    parse_point,
    split_names,
    tune_process,
)
from voxelprompt.errors import VoxelPromptError
from voxelprompt.families import DEFAULT_FAMILY

__all__ = ["batch"]


@with_family_options
def batch(
    input: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="A folder of .nii/.nii.gz/.nrrd files, a folder of DICOM studies (each folder holding a series is a case), "
            "a datalist .json, a .csv of image paths, or a PACS: dicomweb+http://HOST/dicom-web with --query or --series-uids.",
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="OUT_DIR", help="Output folder: <case_id>/ per case, manifest.json, failures.csv (created).")
    ],
    checkpoint: Annotated[
        Path | None, checkpoint_option("Model weights (VISTA3D or SegVol); omitted: the official VISTA3D weights when cached (see --download), else the shipped demo VISTA3D (phantoms only).")
    ] = None,
    model: Annotated[
        Family | None, typer.Option("--model", help="Model family; omitted: recognised from the checkpoint's tensors (vista3d without one).")
    ] = None,
    classes: Annotated[str, typer.Option("--classes", metavar="NAMES", help="Comma-separated class names or ids; omitted: none.")] = "",
    everything: Annotated[bool, typer.Option("--everything", help="Segment the official everything class set (VISTA3D).")] = False,
    text: Annotated[str | None, typer.Option("--text", metavar="NAME", help="Class name as free text; omitted: none.")] = None,
    box: BoxOption = None,
    point: PointOption = None,
    negative_point: NegativePointOption = None,
    point_space: PointSpaceOption = Space.voxel,
    new_structure: Annotated[
        bool, typer.Option("--new-structure", help="Clicks without --classes mark a structure outside VISTA3D's classes.")
    ] = False,
    label_value: Annotated[
        int | None, typer.Option("--label-value", min=1, metavar="N", help="Value of a single object; omitted: the class its text names, else 1.")
    ] = None,
    allow_unlearnt: AllowUnlearntOption = False,
    task: Annotated[
        list[str] | None,
        typer.Option(
            "--task",
            metavar="KEY=VALUE;...",
            help="A prompt set, repeatable, e.g. 'classes=liver,spleen' or 'text=liver;model=segvol;checkpoint=SegVol_v1.pth'; "
            "merged in order, an earlier task wins where both label a voxel. Not with the single-task prompt options.",
        ),
    ] = None,
    tasks_file: Annotated[
        Path | None, typer.Option("--tasks", metavar="JSON", help="A JSON list of prompt sets (the --task keys); omitted: none.")
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--output-format", metavar="NAMES",
            help=f"Comma-separated output formats of the output registry: {', '.join(OUTPUT_FORMATS)} "
            "(dicom-seg and rtstruct need DICOM inputs).",
        ),
    ] = "nifti",
    preview: Annotated[bool, typer.Option("--preview", help="Also write preview.png (axial/coronal/sagittal overlay) per case.")] = False,
    series: Annotated[
        str,
        typer.Option(
            "--series",
            metavar="only|most-slices|UID",
            help="A DICOM case folder holding several series: only (the case fails, naming them), most-slices, or the SeriesInstanceUID to read.",
        ),
    ] = "only",
    workers: Annotated[
        int, typer.Option("--workers", min=0, metavar="N", help="Run on a local Dask cluster of N worker processes; omitted (0): in this process.")
    ] = 0,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", metavar="tcp://HOST:PORT", help="Run on the Dask cluster of this scheduler; omitted: see --workers.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a run in OUT_DIR made with other settings; omitted: such a run is refused.")
    ] = False,
    query: Annotated[
        str | None, typer.Option("--query", metavar="FILTERS", help="PACS input: QIDO filters, e.g. 'Modality=CT&StudyDate=20240101-20241231'.")
    ] = None,
    series_uids: Annotated[
        str, typer.Option("--series-uids", metavar="UID,...", help="PACS input: these SeriesInstanceUIDs instead of a --query.")
    ] = "",
    store_dicom_seg: Annotated[
        bool, typer.Option("--store-dicom-seg", help="PACS input: store each case's DICOM-SEG back on the PACS (STOW-RS); needs --output-format dicom-seg.")
    ] = False,
    store_rtstruct: Annotated[
        bool, typer.Option("--store-rtstruct", help="PACS input: store each case's RT-STRUCT back on the PACS (STOW-RS); needs --output-format rtstruct.")
    ] = False,
    dicomweb_credentials: Annotated[
        Path | None, typer.Option("--dicomweb-credentials", metavar="FILE", help="PACS login file (user:password); omitted: VOXELPROMPT_DICOMWEB_USER/_PASSWORD.")
    ] = None,
    device: DeviceOption = "auto",
    download: DownloadOption = False,
    offline: OfflineOption = False,
    quiet: QuietOption = False,
    family_options: dict | None = None,
) -> None:
    """Segment a cohort with one model per worker; resumable (finished cases are skipped), a bad case is recorded
    in failures.csv and the run goes on. Exit code 0: every case finished; 1: some failed; 2: usage error."""
    from voxelprompt.batch import parse_task, run_cohort
    from voxelprompt.batch.tasks import Task, load_tasks

    single = bool(classes or everything or text or box or point or negative_point or new_structure or label_value)
    if (task or tasks_file) and (single or checkpoint or model or allow_unlearnt or family_options):
        raise VoxelPromptError("give prompts either as --task/--tasks or as --classes/--everything/--text/--point/--box/--checkpoint, not both")
    tasks = [parse_task(t, i + 1) for i, t in enumerate(task or ())]
    if tasks_file is not None:
        tasks += load_tasks(tasks_file)
    if not tasks and single:
        tasks = [
            Task(
                classes=tuple(split_names(classes)), everything=everything, text=text,
                points=tuple(parse_point(p, "--point") for p in point or ()),
                negative_points=tuple(parse_point(p, "--negative-point") for p in negative_point or ()),
                box=parse_box(box) if box else None, point_space=point_space.value, new_structure=new_structure,
                label_value=label_value, allow_unlearnt=allow_unlearnt,
                family=None if model is None else model.value, checkpoint=None if checkpoint is None else str(checkpoint),
                options=dict(family_options or {}),
            )
        ]  # fmt: skip
    from voxelprompt.cli.default_model import can_ask, checkpoint_or_default

    # The default model: with --download or a person to ask, settled here once; otherwise the run
    # resolves it after every check (the cached official weights, else the demo model, one warning line).
    if (download or offline or can_ask()) and any(t.checkpoint is None and t.family in (None, DEFAULT_FAMILY) for t in tasks):
        default = str(checkpoint_or_default(None, None, download=download, offline=offline, quiet=quiet))
        tasks = [replace(t, checkpoint=default) if t.checkpoint is None and t.family in (None, DEFAULT_FAMILY) else t for t in tasks]
    kinds = split_names(output_format) + (["preview"] if preview else [])
    source = _input(input, query, split_names(series_uids), (store_dicom_seg, store_rtstruct), dicomweb_credentials)
    tune_process(device)
    with _Progress(enabled=not quiet) as progress:
        result = run_cohort(
            source, output, tasks=tasks, output_formats=kinds, series=series, device=device, overwrite=overwrite,
            workers=workers, scheduler=scheduler, on_start=progress.start, on_result=progress.advance,
        )  # fmt: skip
    typer.echo(f"{output}: {len(result.done)} done, {len(result.skipped)} skipped (finished before), {len(result.failed)} failed")
    for failure in result.failed:
        typer.echo(f"  failed {failure.case_id}: {failure.error}", err=True)
    if result.failed:
        typer.echo(f"see {output / 'failures.csv'}", err=True)
    raise typer.Exit(result.exit_code)


def _input(input: str, query: str | None, series_uids: list[str], store: tuple[bool, bool], credentials: Path | None):  # noqa: A002
    """INPUT as a path, or a PACS cohort (``dicomweb+http...``); PACS options only with a PACS.
    ``store``: (--store-dicom-seg, --store-rtstruct)."""
    from voxelprompt.batch.pacs import is_pacs_input, pacs_cohort

    if is_pacs_input(input):
        return pacs_cohort(input, query, series_uids, store[0], credentials, store_rtstruct=store[1])
    if query is not None or series_uids or any(store) or credentials is not None:
        raise VoxelPromptError(
            "--query, --series-uids, --store-dicom-seg, --store-rtstruct and --dicomweb-credentials need a PACS INPUT (dicomweb+http://...)"
        )
    return Path(input)


class _Progress:
    """A Rich bar over cases: done of total, failed, elapsed and ETA (stderr; off with --quiet)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.task = None
        self.failed = 0

    def __enter__(self) -> _Progress:
        return self

    def start(self, to_run: int, skipped: int) -> None:
        """Show the bar once every check has passed (a usage error prints its line alone)."""
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("cases"), BarColumn(), MofNCompleteColumn(), TextColumn("failed {task.fields[failed]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True),
        )  # fmt: skip
        self.bar.__enter__()
        self.task = self.bar.add_task("cases", total=to_run + skipped, completed=skipped, failed=0)

    def advance(self, result) -> None:
        self.failed += 0 if result.ok else 1
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, advance=1, failed=self.failed)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
