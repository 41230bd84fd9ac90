"""Writers for people: per-structure statistics (:mod:`voxelprompt.measure`) and a PNG preview
(:func:`voxelprompt.visualize.overlay_file`)."""

from __future__ import annotations

from pathlib import Path

from voxelprompt.outputs.context import OutputContext

__all__ = ["write_statistics", "write_preview"]


def _stem(path: Path, suffix: str) -> str:
    return path.name[: -len(suffix)] if path.name.lower().endswith(suffix) else path.name


def write_statistics(context: OutputContext, path: Path) -> list[Path]:
    """Per-structure statistics (ml, voxels, HU, bounding boxes, components) as CSV at ``path``
    and as JSON beside it (``statistics.csv`` -> ``statistics.json``, with the title as its case
    and the demo mark as its warning).

    Raises:
        InputError: a file that cannot be written.
    """
    from voxelprompt.measure import structure_statistics, write_statistics_csv, write_statistics_json

    records = structure_statistics(context.labels, context.image, context.label_names)
    table = write_statistics_csv(records, path)
    document = path.with_name(_stem(path, ".csv") + ".json")
    write_statistics_json(records, document, case=context.title or None, warning=context.demo_mark)
    return [table, document]


def write_preview(context: OutputContext, path: Path) -> list[Path]:
    """Axial, coronal and sagittal overlays of the labels on the CT with a legend, as PNG; the
    title is the context's, followed by the demo mark; clicks are marked where they lie.

    Raises:
        InputError: labels not on the image's grid; PromptError: a focus outside the volume.
    """
    from voxelprompt.visualize import overlay_file

    title = context.title + (f" - {context.demo_mark}" if context.demo_mark else "")
    written = overlay_file(
        context.image, context.labels, path, point=context.focus, clicks=context.clicks, names=dict(context.label_names), title=title
    )  # fmt: skip
    return [Path(written)]
