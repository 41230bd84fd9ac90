"""Overlay pictures: a matplotlib figure with one row of axial / coronal / sagittal panels per
label map and a legend per row, written as a PNG whose Description holds its text."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxelprompt.catalog import class_color, vista3d_catalog
from voxelprompt.types import Volume
from voxelprompt.visualize.panels import Panel, panel_rows

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["RowSpec", "MIN_PANEL_RATIO", "overlay_figure", "overlay_png"]

# Patient directions at the (left, right, top, bottom) edges of each view.
_EDGES = {"axial": "RLAP", "coronal": "RLSI", "sagittal": "APSI"}
_LEGEND_ROWS = 18  # legend entries per column before another column starts
#: Smallest height / width of a shown panel: a thinner one (the coronal and sagittal views of a
#: 20-slice series) is stretched vertically up to it, and its caption says by how much.
MIN_PANEL_RATIO = 0.45

#: A figure row: ``(caption, label map)``, ``(caption, label map, names)`` or
#: ``(caption, label map, names, point)``: ``names`` maps label values to legend names, ``point``
#: (input voxel i, j, k) is where this row's slices cross (default: the figure's point).
RowSpec = (
    tuple[str, Volume]
    | tuple[str, Volume, Mapping[int, str] | None]
    | tuple[str, Volume, Mapping[int, str] | None, Sequence[float] | None]
)


def _row_parts(row: RowSpec) -> tuple[str, Volume, Mapping[int, str] | None, Sequence[float] | None]:
    caption, volume, names, point = (*row, None, None)[:4]  # type: ignore[misc]
    return caption, volume, names, point


def overlay_figure(
    image: Volume,
    labels: Sequence[RowSpec],
    point: Sequence[float] | None = None,
    clicks: Sequence[Sequence[float]] = (),
    title: str = "",
    names: Mapping[int, str] | None = None,
    dpi: float = 100.0,
) -> Figure:
    """A matplotlib figure: one row per label map, axial / coronal / sagittal columns and a legend.

    Each row's legend lists the label values visible in that row's three slices, named by the
    row's own mapping, else ``names``, else :func:`voxelprompt.catalog.vista3d_catalog`.

    Args:
        image: CT in HU, (I, J, K) in on-disk order with its voxel -> RAS+ affine.
        labels: ``(caption, label map)`` or ``(caption, label map, names)`` per row, label maps on
            the image's grid (0 = background); empty for the CT alone.
        point: input voxel (i, j, k) the slices pass through (default: the volume centre).
        clicks: input voxels (i, j, k) drawn as yellow crosses where they lie in a shown slice.
        title: figure title (kept clear of the panel captions by constrained layout).
        names: label value -> legend name for every row, e.g. ``{1: "object (clicks)"}``.
        dpi: resolution of the figure (pixels per inch).

    Returns:
        A figure on an Agg canvas (no pyplot state is touched).

    Raises:
        InputError: a label map is not on the image's grid.
        PromptError: ``point`` is outside the volume.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    specs = [_row_parts(r) for r in labels] or [("", None, None, None)]
    rows = panel_rows(image, [s[1] for s in specs], point, clicks, alpha=0.5, row_points=[s[3] for s in specs])
    catalog = vista3d_catalog()
    legends = []
    for (_, volume, row_names, _), panels in zip(specs, rows):
        ids = sorted(set().union(*(p.ids for p in panels)))
        lookup = {**(names or {}), **(row_names or {})}
        entries: list[tuple[int | None, str]] = [(i, lookup.get(i, catalog.name(i))) for i in ids]
        if volume is not None and not ids:
            empty = not np.asarray(volume.array).any()
            entries = [(None, "empty: nothing segmented" if empty else "nothing labelled in these slices")]
        legends.append(entries)
    columns = max([1] + [math.ceil(len(entries) / _LEGEND_ROWS) for entries in legends])
    longest = max([len(name) for entries in legends for _, name in entries] + [12])
    legend_width = columns * (0.7 + 0.08 * longest)
    size = (12.0 + legend_width, 4.0 * len(rows) + (0.4 if title else 0.0))
    fig = Figure(figsize=size, dpi=dpi, layout="constrained")  # constrained: the title gets its own room
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(rows), 4, width_ratios=[4.0, 4.0, 4.0, legend_width])
    for r, ((caption, _, _, _), panels, entries) in enumerate(zip(specs, rows, legends)):
        for c, panel in enumerate(panels):
            ax = fig.add_subplot(grid[r, c])
            aspect, stretch = _shown_aspect(panel)
            ax.imshow(panel.rgb, origin="upper", aspect=aspect, interpolation="nearest")
            for row, col in panel.marks:
                ax.plot(col, row, "+", color="yellow", markersize=14, markeredgewidth=2)
            _edge_letters(ax, panel.view)
            name = f"{caption} - {panel.view}" if caption else panel.view
            where = panel.slice_text + (f", stretched {stretch:.1f}x vertically" if stretch > 1.0 else "")
            ax.set_title(f"{name}\n{where}" if where else name, fontsize=9)
            ax.axis("off")
        key = fig.add_subplot(grid[r, 3])
        key.axis("off")
        if entries:
            # Chips with a dark edge, so that pale colours (duodenum) show on the white page.
            handles = [
                Patch(facecolor="none" if i is None else np.array(class_color(i)) / 255.0, label=name,
                      edgecolor="none" if i is None else "0.2", linewidth=0.8)
                for i, name in entries
            ]  # fmt: skip
            key.legend(handles=handles, loc="upper left", frameon=False, fontsize=9, borderaxespad=0.0,
                       ncol=math.ceil(len(entries) / _LEGEND_ROWS), handlelength=2.0, handleheight=1.4)  # fmt: skip
    if title:
        fig.suptitle(title)
    return fig


def _shown_aspect(panel: Panel) -> tuple[float, float]:
    """imshow's aspect for ``panel`` (millimetre-true) and the vertical stretch applied to keep the
    panel at least :data:`MIN_PANEL_RATIO` as high as wide (1.0: none)."""
    height, width = panel.rgb.shape[:2]
    ratio = panel.pixel_aspect * height / width
    stretch = max(1.0, MIN_PANEL_RATIO / ratio)
    return panel.pixel_aspect * stretch, stretch


def _edge_letters(ax, view: str) -> None:
    """Patient directions at the panel edges, as viewers print them (R/L, A/P, S/I)."""
    left, right, top, bottom = _EDGES[view]
    style = {"transform": ax.transAxes, "color": "#7fd4ff", "fontsize": 8, "fontweight": "bold"}
    ax.text(0.01, 0.5, left, ha="left", va="center", **style)
    ax.text(0.99, 0.5, right, ha="right", va="center", **style)
    ax.text(0.5, 0.99, top, ha="center", va="top", **style)
    ax.text(0.5, 0.01, bottom, ha="center", va="bottom", **style)


def overlay_png(
    image: Volume,
    labels: Sequence[RowSpec],
    path: str | os.PathLike,
    point: Sequence[float] | None = None,
    clicks: Sequence[Sequence[float]] = (),
    title: str = "",
    names: Mapping[int, str] | None = None,
) -> Path:
    """Write one PNG (atomically): a row per label map, axial / coronal / sagittal and a legend.

    Args:
        image: CT in HU, (I, J, K) in on-disk order with its voxel -> RAS+ affine.
        labels: ``(caption, label map)`` or ``(caption, label map, names)`` per row (see
            :func:`overlay_figure`).
        path: PNG to write; its folder is created.
        point: input voxel (i, j, k) the slices pass through (default: the volume centre).
        clicks: input voxels (i, j, k) drawn as crosses where they lie in a shown slice.
        title: figure title.
        names: label value -> legend name for every row (e.g. ``{1: "object (clicks)"}``).

    Returns:
        ``path``.

    Raises:
        InputError: a label map is not on the image's grid.
        PromptError: ``point`` is outside the volume.
    """
    fig = overlay_figure(image, labels, point=point, clicks=clicks, title=title, names=names)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=fig.dpi, format="png", metadata={"Description": _describe(fig)})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _describe(fig: Figure) -> str:
    """What the picture shows, as text (the PNG's Description): each panel's caption and each
    legend's entries, one line each."""
    lines = []
    for ax in fig.axes:
        if ax.get_title():
            lines.append(" ".join(ax.get_title().split()))
        legend = ax.get_legend()
        if legend is not None:
            lines.append("legend: " + "; ".join(t.get_text() for t in legend.get_texts()))
    return "\n".join(lines)
