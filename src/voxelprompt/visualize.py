"""PNG overlays of label maps on a CT: axial, coronal and sagittal slices through one point.

Slices are cut in the RAS-reoriented volume (nibabel's closest canonical orientation) and shown as
a radiologist reads them: axial and coronal with the patient's right on the image's left, sagittal
with anterior on the left; anterior up in axial, superior up in coronal and sagittal. Pixels keep
the voxel aspect ratio, except that a panel thinner than :data:`MIN_PANEL_RATIO` (a thin series'
coronal view) is stretched vertically, which its caption says; each caption names its slice (input
index and RAS+ mm). Labels take the anatomical colours of :func:`voxelprompt.catalog.class_color`;
the PNG's Description holds the captions and legends as text.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation

from voxelprompt.catalog import class_color, vista3d_catalog
from voxelprompt.errors import InputError, PromptError
from voxelprompt.imageio.grid import align_to_grid
from voxelprompt.types import Volume

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "VIEWS",
    "Panel",
    "overlay_panels",
    "overlay_figure",
    "overlay_png",
    "overlay_file",
    "default_point",
    "relabel_to_catalog",
]

VIEWS = ("axial", "coronal", "sagittal")
_WINDOW = (-160.0, 240.0)  # abdominal soft-tissue window in HU
_FIXED = {"axial": 2, "coronal": 1, "sagittal": 0}  # RAS axis held constant by each view
_PLANE = {"axial": (0, 1), "coronal": (0, 2), "sagittal": (1, 2)}  # RAS axes shown (across, up)
# Patient directions at the (left, right, top, bottom) edges of each view.
_EDGES = {"axial": "RLAP", "coronal": "RLSI", "sagittal": "APSI"}
_LEGEND_ROWS = 18  # legend entries per column before another column starts
#: Smallest height / width of a shown panel: a thinner one (the coronal and sagittal views of a
#: 20-slice series) is stretched vertically up to it, and its caption says by how much.
MIN_PANEL_RATIO = 0.45
_WORLD_AXES = "xyz"  # RAS+ mm: x to the patient's left, y posterior -> anterior, z inferior -> superior

#: A figure row: ``(caption, label map)``, ``(caption, label map, names)`` or
#: ``(caption, label map, names, point)``: ``names`` maps label values to legend names, ``point``
#: (input voxel i, j, k) is where this row's slices cross (default: the figure's point).
RowSpec = (
    tuple[str, Volume]
    | tuple[str, Volume, Mapping[int, str] | None]
    | tuple[str, Volume, Mapping[int, str] | None, Sequence[float] | None]
)

#: A label map with more distinct values than this is taken for an image, not labels.
_MAX_LABEL_VALUES = 1024


@dataclass(frozen=True)
class Panel:
    """One view of an overlay, ready to show.

    Args:
        view: ``"axial"``, ``"coronal"`` or ``"sagittal"``.
        rgb: (H, W, 3) float32 colours in [0, 1], row 0 at the top, column 0 on the left, oriented
            as the module docstring states.
        ids: label values > 0 visible in the slice, ascending.
        pixel_aspect: height / width of one pixel in millimetres.
        marks: (row, column) of the clicks lying in this slice.
        slice_text: which slice is shown: the input voxel index along the held axis and the
            slice's RAS+ position in mm, e.g. ``"k=10, z=-784.5 mm"``.
    """

    view: str
    rgb: np.ndarray
    ids: tuple[int, ...]
    pixel_aspect: float
    marks: tuple[tuple[int, int], ...] = ()
    slice_text: str = ""


def _to_ras(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A view of ``array`` in the closest RAS orientation (no copy) and its voxel -> RAS+ affine."""
    ornt = io_orientation(affine)
    return apply_orientation(array, ornt), affine @ inv_ornt_aff(ornt, array.shape)


def _ras_index(point: Sequence[float], affine: np.ndarray, ras_affine: np.ndarray) -> np.ndarray:
    """Input voxel (i, j, k) -> nearest voxel of the RAS-reoriented array (same world frame)."""
    world = affine @ np.append(np.asarray(point, dtype=float), 1.0)
    return np.rint(np.linalg.solve(ras_affine, world)[:3]).astype(int)


def _plane(ras: np.ndarray, view: str, p: np.ndarray) -> np.ndarray:
    """The ``view`` slice through RAS voxel ``p`` as displayed (row 0 top, column 0 left)."""
    index: list[slice | int] = [slice(None)] * 3
    index[_FIXED[view]] = int(p[_FIXED[view]])
    # Slice axes are (across, up) in increasing R/A/S; the display runs both the other way.
    return np.asarray(ras[tuple(index)])[::-1, ::-1].T


def _display_position(m: np.ndarray, view: str, shape: tuple[int, int, int]) -> tuple[int, int]:
    """(row, column) at which RAS voxel ``m`` appears in the ``view`` panel."""
    across, up = _PLANE[view]
    return int(shape[up] - 1 - m[up]), int(shape[across] - 1 - m[across])


def _blend(ct: np.ndarray, labels: np.ndarray | None, alpha: float) -> tuple[np.ndarray, tuple[int, ...]]:
    """Windowed grey CT with label colours mixed in at ``alpha``; also the label values seen."""
    grey = np.clip((ct.astype(np.float32) - _WINDOW[0]) / (_WINDOW[1] - _WINDOW[0]), 0.0, 1.0)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    if labels is None:
        return rgb, ()
    if labels.dtype.kind == "f":
        labels = np.rint(labels)
    labels = labels.astype(np.int64, copy=False)
    values, inverse = np.unique(labels, return_inverse=True)
    table = np.array([class_color(v) if v > 0 else (0, 0, 0) for v in values], dtype=np.float32) / 255.0
    colour = table[inverse.reshape(labels.shape)]
    on = labels > 0
    rgb[on] = (1.0 - alpha) * rgb[on] + alpha * colour[on]
    return rgb, tuple(int(v) for v in values if v > 0)


def _check_point(point: Sequence[float], image: Volume) -> tuple[int, int, int]:
    p = tuple(int(round(float(c))) for c in point)
    if len(p) != 3 or any(not 0 <= c < s for c, s in zip(p, image.shape)):
        raise PromptError(f"point {tuple(point)} is outside the volume of shape {image.shape} (voxel indices i, j, k)")
    return p  # type: ignore[return-value]


def overlay_panels(
    image: Volume,
    labels: Volume | None = None,
    point: Sequence[float] | None = None,
    clicks: Sequence[Sequence[float]] = (),
    alpha: float = 0.5,
) -> tuple[Panel, Panel, Panel]:
    """The three display-ready views through one point: axial, coronal, sagittal.

    Args:
        image: CT in HU, (I, J, K) in on-disk order with its voxel -> RAS+ affine.
        labels: label map on the image's grid (0 = background), or None for the CT alone.
        point: input voxel (i, j, k) the slices pass through (default: the volume centre).
        clicks: input voxels (i, j, k) reported in :attr:`Panel.marks` where they lie in a slice.
        alpha: opacity of the label colours.

    Returns:
        One :class:`Panel` per view, in :data:`VIEWS` order, oriented as the module docstring states.

    Raises:
        InputError: ``labels`` is not on the image's grid.
        PromptError: ``point`` is outside the volume.
    """
    return _panel_rows(image, [labels], point, clicks, alpha)[0]


def _panel_rows(
    image: Volume,
    label_maps: Sequence[Volume | None],
    point: Sequence[float] | None,
    clicks: Sequence[Sequence[float]],
    alpha: float,
    row_points: Sequence[Sequence[float] | None] = (),
) -> list[tuple[Panel, Panel, Panel]]:
    """Panels for several label maps over one CT (the CT is reoriented once); ``row_points``
    overrides ``point`` row by row."""
    point = tuple(s // 2 for s in image.shape) if point is None else _check_point(point, image)
    label_maps = [None if lab is None else align_to_grid(lab, image) for lab in label_maps]
    ct, ras_affine = _to_ras(np.asarray(image.array), image.affine)
    input_axis = {int(ras): a for a, (ras, _) in enumerate(io_orientation(image.affine))}  # RAS axis -> input axis
    zooms = np.linalg.norm(ras_affine[:3, :3], axis=0)
    marks = [_ras_index(c, image.affine, ras_affine) for c in clicks]
    rows = []
    for r, lab in enumerate(label_maps):
        own = row_points[r] if r < len(row_points) else None
        through = point if own is None else _check_point(own, image)
        p = _ras_index(through, image.affine, ras_affine)
        world = (ras_affine @ np.append(p, 1.0))[:3]
        lab_ras = None if lab is None else _to_ras(np.asarray(lab.array), lab.affine)[0]
        panels = []
        for view in VIEWS:
            ct_plane = _plane(ct, view, p)
            rgb, ids = _blend(ct_plane, None if lab_ras is None else _plane(lab_ras, view, p), alpha)
            fixed = _FIXED[view]
            shown = tuple(_display_position(m, view, ct.shape) for m in marks if m[fixed] == p[fixed])
            across, up = _PLANE[view]
            where = f"{'ijk'[input_axis[fixed]]}={int(through[input_axis[fixed]])}, {_WORLD_AXES[fixed]}={world[fixed]:.1f} mm"
            panels.append(Panel(view, rgb, ids, float(zooms[up] / zooms[across]), shown, where))
        rows.append(tuple(panels))
    return rows  # type: ignore[return-value]


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
    rows = _panel_rows(image, [s[1] for s in specs], point, clicks, alpha=0.5, row_points=[s[3] for s in specs])
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


def default_point(labels: Volume) -> tuple[int, int, int]:
    """Voxel (i, j, k) to slice a label map through: the labelled voxel nearest its centre of mass.

    Snapping to a labelled voxel keeps the slices on a structure when the centre of mass falls
    between structures (two kidneys). The volume centre when nothing is labelled.
    """
    mask = np.asarray(labels.array) > 0
    total = int(mask.sum())
    if total == 0:
        return tuple(s // 2 for s in labels.shape)  # type: ignore[return-value]
    centre = np.array([
        (np.arange(n) * mask.sum(axis=tuple(a for a in range(3) if a != axis))).sum() / total
        for axis, n in enumerate(mask.shape)
    ])  # fmt: skip
    # A strided look keeps the candidate list short for whole-body label maps.
    stride = max(1, math.ceil((total / 1e6) ** (1 / 3)))
    candidates = np.argwhere(mask[::stride, ::stride, ::stride]) * stride
    if len(candidates) == 0:
        candidates = np.argwhere(mask)
    nearest = candidates[np.argmin((((candidates - centre) * labels.spacing) ** 2).sum(axis=1))]
    return tuple(int(c) for c in nearest)  # type: ignore[return-value]


def overlay_file(
    image: Volume,
    labels: Volume,
    path: str | os.PathLike,
    point: Sequence[float] | None = None,
    title: str = "",
    names: Mapping[int, str] | None = None,
    clicks: Sequence[Sequence[float]] = (),
) -> Path:
    """Overlay one label map on its CT as a PNG (``voxelprompt overlay CT LABELS -o picture.png``).

    Args:
        image: CT in HU, (I, J, K) in on-disk order with its voxel -> RAS+ affine.
        labels: label map on the image's grid (same shape, voxel positions within 1e-3 mm).
        path: PNG to write (atomically).
        point: input voxel (i, j, k) the slices pass through; default :func:`default_point`.
        title: figure title; without one, the panel captions name the label file.
        names: label value -> legend name, for ids that are not VISTA3D classes.
        clicks: input voxels (i, j, k) marked with a cross where they lie in a shown slice.

    Returns:
        ``path``.

    Raises:
        InputError: ``labels`` is not on the image's grid, or holds negative values or more
            distinct values than a label map does (an image passed as labels).
        PromptError: ``point`` is outside the volume.
    """
    labels = align_to_grid(labels, image)
    _check_labels(labels)
    point = default_point(labels) if point is None else point
    caption = "" if title or labels.source.startswith("<") else Path(labels.source).name  # else said twice
    return overlay_png(image, [(caption, labels)], path, point=point, clicks=clicks, title=title, names=names)


def _check_labels(labels: Volume) -> None:
    array = np.asarray(labels.array)
    if array.dtype.kind not in "iub":
        raise InputError(f"{labels.source}: a label map holds whole numbers, got {array.dtype} values")
    if array.size and int(array.min()) < 0:
        raise InputError(f"{labels.source}: holds negative values ({int(array.min())}): an image, not a label map?")
    count = len(np.unique(array))
    if count > _MAX_LABEL_VALUES:
        raise InputError(f"{labels.source}: holds {count} distinct values: an image, not a label map?")


def relabel_to_catalog(labels: Volume, names: Mapping[int, str]) -> tuple[Volume, dict[int, str]]:
    """A label map of another id scheme (e.g. TotalSegmentator's ``classes.json``) for display.

    Values whose name the VISTA3D catalog knows (tolerant lookup: ``kidney_right`` is ``right
    kidney``) become that class's id, so they get its colour; other named values move above the
    class table, keeping their own name, so that they never borrow a class's colour.

    Args:
        labels: integer label map.
        names: label value -> structure name, for the values to show.

    Returns:
        The relabelled map (same grid) and its value -> name mapping.
    """
    from voxelprompt.catalog import CLASS_TABLE_SIZE
    from voxelprompt.errors import PromptError

    catalog = vista3d_catalog()
    array = np.asarray(labels.array)
    out = np.zeros(array.shape, dtype=np.int32)
    shown: dict[int, str] = {}
    for value, name in sorted(names.items()):
        try:
            target = catalog.index(name)
        except PromptError:
            target = CLASS_TABLE_SIZE + int(value)
        out[array == int(value)] = target
        shown[target] = name
    return labels.with_array(out), shown
