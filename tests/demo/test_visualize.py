"""PNG overlays: orientation read off rendered pixels, anatomical colours, legends, title layout."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from voxelprompt.catalog import class_color, vista3d_catalog
from voxelprompt.errors import InputError, PromptError
from voxelprompt.types import Volume
from voxelprompt.visualize import VIEWS, default_point, overlay_figure, overlay_file, overlay_panels, overlay_png

SHAPE = (24, 20, 16)  # RAS storage: i towards the patient's right, j anterior, k superior
# Marker corners: each direction flips for one of them, so a mirrored or transposed view fails.
MARKERS = {"right-anterior-superior": (19, 16, 12), "right-posterior-inferior": (19, 2, 2),
           "left-anterior-inferior": (3, 16, 2)}  # fmt: skip


def _volume(array: np.ndarray, axcodes_flip: bool = False) -> Volume:
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    if axcodes_flip:  # LPS-like: first two axes reversed
        affine[0, 0] = affine[1, 1] = -2.0
    return Volume(array=array, affine=affine)


def _ras_marker_ct(marker: str = "right-anterior-superior") -> Volume:
    """Soft tissue with a bright 2x2x2 marker in one corner."""
    ct = np.full(SHAPE, 40.0, dtype=np.float32)
    i, j, k = MARKERS[marker]
    ct[i : i + 2, j : j + 2, k : k + 2] = 3000.0
    affine = np.array([[1.5, 0, 0, -20.0], [0, 2.0, 0, 5.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]])
    return Volume(array=ct, affine=affine, source="RAS")


def _stored_as(ras: Volume, layout: str) -> Volume:
    """The same physical image stored in another voxel order: LPS (i, j reversed) or SRA (k, i, j)."""
    array, affine = np.asarray(ras.array), ras.affine.copy()
    if layout == "LPS":
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[:2, 3] = [array.shape[0] - 1, array.shape[1] - 1]  # new index -> old index
        return Volume(array=array[::-1, ::-1, :].copy(), affine=affine @ flip, source=layout)
    if layout == "SRA":
        perm = np.zeros((4, 4))
        perm[0, 1] = perm[1, 2] = perm[2, 0] = perm[3, 3] = 1.0  # new (k, i, j) -> old (i, j, k)
        return Volume(array=np.ascontiguousarray(array.transpose(2, 0, 1)), affine=affine @ perm, source=layout)
    return ras


def _marker_world(volume: Volume) -> np.ndarray:
    return volume.voxel_to_world(np.argwhere(np.asarray(volume.array) > 1000)).mean(axis=0)


def _marker_fraction(rgb: np.ndarray) -> tuple[float, float]:
    """Centre of the white marker as (row, column) fractions of the picture: 0 top / left, 1 bottom / right."""
    rows, cols = np.nonzero((rgb[..., :3] > 0.98).all(axis=-1))
    assert rows.size, "marker not visible"
    return (rows.mean() + 0.5) / rgb.shape[0], (cols.mean() + 0.5) / rgb.shape[1]


def _assert_placed(view: str, marker: str, fraction: tuple[float, float]) -> None:
    """The radiological display: (thing on top, thing on the image's left) per view."""
    up, left = {"axial": ("anterior", "right"), "coronal": ("superior", "right"),
                "sagittal": ("superior", "anterior")}[view]  # fmt: skip
    row, col = fraction
    assert (row < 0.5) == (up in marker), f"{view}: {marker} marker at row {row:.2f} of the picture"
    assert (col < 0.5) == (left in marker), f"{view}: {marker} marker at column {col:.2f} of the picture"


@pytest.mark.parametrize("marker", list(MARKERS))
@pytest.mark.parametrize("layout", ["RAS", "LPS", "SRA"])
def test_panels_are_oriented_like_a_radiology_viewer(layout, marker):
    ras = _ras_marker_ct(marker)
    image = _stored_as(ras, layout)
    np.testing.assert_allclose(_marker_world(image), _marker_world(ras))  # one physical image
    point = np.rint(image.world_to_voxel(_marker_world(ras))[0]).astype(int)
    panels = overlay_panels(image, point=point)
    assert [p.view for p in panels] == list(VIEWS)
    for panel in panels:
        _assert_placed(panel.view, marker, _marker_fraction(panel.rgb))
    reference = overlay_panels(ras, point=np.rint(ras.world_to_voxel(_marker_world(ras))[0]).astype(int))
    for panel, ref in zip(panels, reference):
        np.testing.assert_array_equal(panel.rgb, ref.rgb)  # storage order does not change the picture


def test_panels_keep_the_millimetre_aspect():
    panels = {p.view: p for p in overlay_panels(_ras_marker_ct())}
    assert panels["axial"].rgb.shape[:2] == (SHAPE[1], SHAPE[0])  # rows run anterior-posterior
    assert panels["sagittal"].pixel_aspect == pytest.approx(2.5 / 2.0)  # superior mm / anterior mm
    assert panels["coronal"].pixel_aspect == pytest.approx(2.5 / 1.5)


def test_clicks_are_marked_where_the_voxel_is_drawn():
    ras, marker = _ras_marker_ct(), MARKERS["right-anterior-superior"]
    for panel in overlay_panels(ras, point=marker, clicks=[marker, (0, 0, 0)]):
        assert len(panel.marks) == 1  # the corner click lies in none of the three slices
        row, col = panel.marks[0]
        assert (panel.rgb[row, col] > 0.98).all()  # on the marker's pixels


def _panel_pixels(fig) -> dict[str, np.ndarray]:
    """Rendered pixels of each panel of a one-row figure, cut out of the figure's Agg buffer."""
    fig.canvas.draw()
    buffer = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    out = {}
    for ax in fig.axes:
        if ax.get_images():
            box = ax.get_images()[0].get_window_extent(fig.canvas.get_renderer())  # display pixels, y up
            rows = slice(int(round(buffer.shape[0] - box.y1)), int(round(buffer.shape[0] - box.y0)))
            view = ax.get_title().splitlines()[0].split(" - ")[-1]  # line 2 names the slice
            out[view] = buffer[rows, int(round(box.x0)) : int(round(box.x1))]
    return out


@pytest.mark.parametrize("marker", ["right-anterior-superior", "left-anterior-inferior"])
@pytest.mark.parametrize("layout", ["RAS", "LPS"])
def test_rendered_figure_shows_the_marker_where_a_radiologist_expects(layout, marker):
    image = _stored_as(_ras_marker_ct(marker), layout)
    point = np.rint(image.world_to_voxel(_marker_world(image))[0]).astype(int)
    pixels = _panel_pixels(overlay_figure(image, [], point=point))
    assert set(pixels) == set(VIEWS)
    for view, rgb in pixels.items():
        _assert_placed(view, marker, _marker_fraction(rgb))


def test_png_end_to_end(tmp_path):
    image = _stored_as(_ras_marker_ct(), "LPS")
    point = np.rint(image.world_to_voxel(_marker_world(image))[0]).astype(int)
    path = overlay_png(image, [], tmp_path / "sub" / "o.png", point=point, title="orientation")
    png = mpimg.imread(path)[..., :3]
    fig = overlay_figure(image, [], point=point, title="orientation")
    pixels = _panel_pixels(fig)
    assert png.shape[:2] == tuple(np.asarray(fig.canvas.buffer_rgba()).shape[:2])
    np.testing.assert_allclose(png, np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0, atol=1 / 255)
    for view in VIEWS:
        _assert_placed(view, "right-anterior-superior", _marker_fraction(pixels[view]))
    assert not list(path.parent.glob(".*"))  # no temporary file left


def _labelled_case() -> tuple[Volume, Volume]:
    ct = np.full((30, 26, 20), 40.0, dtype=np.float32)
    lab = np.zeros(ct.shape, dtype=np.int16)
    lab[5:15, 5:20, 5:15] = 1  # liver: in all three slices through (10, 10, 10)
    lab[20:25, 5:15, 8:12] = 3  # spleen: in the axial and coronal slices only
    lab[2:4, 22:24, 16:18] = 6  # aorta: in no slice through (10, 10, 10)
    lab[10, 10, 10] = 300  # a zero-shot id, visible in all three
    affine = np.diag([1.0, 1.2, 2.0, 1.0])
    return Volume(ct, affine), Volume(lab, affine)


def _legend_texts(fig) -> list[list[str]]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [[t.get_text() for t in legend.get_texts()] for legend in legends]


def test_legend_lists_the_structures_in_each_row():
    image, labels = _labelled_case()
    only_liver = labels.with_array(np.where(np.asarray(labels.array) == 1, 1, 0).astype(np.int16))
    rows = [("auto", labels), ("click", only_liver, {1: "object (clicks)"}), ("empty", labels.with_array(
        np.zeros(labels.shape, np.int16)))]  # fmt: skip
    fig = overlay_figure(image, rows, point=(10, 10, 10))
    name = vista3d_catalog().name
    # an empty label map says so rather than showing a bare row
    assert _legend_texts(fig) == [[name(1), name(3), name(300)], ["object (clicks)"], ["empty: nothing segmented"]]
    elsewhere = overlay_figure(image, [("liver", only_liver, None, (0, 0, 0))], point=(10, 10, 10))
    liver = np.asarray(only_liver.array) > 0
    seen = bool(liver[0].any() or liver[:, 0].any() or liver[:, :, 0].any())  # the planes through (0, 0, 0)
    assert _legend_texts(elsewhere) == ([[name(1)]] if seen else [["nothing labelled in these slices"]])
    legend = next(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)
    for patch, index in zip(legend.get_patches(), (1, 3, 300)):
        np.testing.assert_allclose(patch.get_facecolor()[:3], np.array(class_color(index)) / 255.0)
    renamed = overlay_figure(image, [("a", labels)], point=(10, 10, 10), names={300: "lesion"})
    assert _legend_texts(renamed) == [[name(1), name(3), "lesion"]]


def test_panel_colours_come_from_the_anatomical_table():
    image, labels = _labelled_case()
    axial = overlay_panels(image, labels, point=(10, 10, 10))[0]
    assert axial.ids == (1, 3, 300)
    grey = 0.5  # 40 HU in the (-160, 240) window
    pixels = axial.rgb.reshape(-1, 3)
    for index in axial.ids:
        expected = 0.5 * grey + 0.5 * np.array(class_color(index)) / 255.0  # half-transparent over the CT
        assert np.abs(pixels - expected).max(axis=1).min() < 1e-4, vista3d_catalog().name(index)


def test_title_clears_the_panel_captions():
    image, labels = _labelled_case()  # four rows, as the demo draws: the old tight layout overlapped
    rows = [(f"row {n}", labels) for n in range(4)]
    title = "a long figure title that should sit above every caption"
    fig = overlay_figure(image, rows, point=(10, 10, 10), title=title)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (text,) = [t for t in fig.texts if t.get_text() == title]
    title_box = text.get_window_extent(renderer)
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 12
    for ax in panels:
        assert not title_box.overlaps(ax.title.get_window_extent(renderer)), ax.get_title()
        assert not title_box.overlaps(ax.get_images()[0].get_window_extent(renderer)), ax.get_title()
        assert title_box.y0 > ax.title.get_window_extent(renderer).y1  # above, not beside


def test_overlay_file_checks_the_grid(tmp_path):
    image, labels = _labelled_case()
    assert overlay_file(image, labels, tmp_path / "ok.png").exists()
    nudged = labels.affine.copy()
    nudged[0, 3] += 1e-4  # below the tolerance (GRID_TOLERANCE_MM)
    assert overlay_file(image, Volume(labels.array, nudged), tmp_path / "nudged.png").exists()
    nudged[0, 3] += 0.1
    with pytest.raises(InputError, match="mm away"):
        overlay_file(image, Volume(labels.array, nudged), tmp_path / "moved.png")
    with pytest.raises(InputError, match="shape"):
        overlay_file(image, Volume(np.asarray(labels.array)[:-1], labels.affine), tmp_path / "cut.png")
    with pytest.raises(PromptError, match="outside"):
        overlay_file(image, labels, tmp_path / "far.png", point=(10, 10, 99))
    assert not (tmp_path / "moved.png").exists() and not list(tmp_path.glob(".*"))


def test_default_point_lies_on_a_label():
    lab = np.zeros((40, 20, 10), dtype=np.uint8)
    lab[2:8, 5:15, 3:7] = 5  # two kidneys: their centre of mass is between them
    lab[32:38, 5:15, 3:7] = 14
    point = default_point(Volume(lab, np.eye(4)))
    assert lab[point] > 0
    assert default_point(Volume(np.zeros_like(lab), np.eye(4))) == (20, 10, 5)


@pytest.mark.parametrize("flip", [False, True])
def test_overlay_png_colours_the_labelled_region(tmp_path, flip) -> None:
    ct = np.full((40, 30, 20), -1000.0, dtype=np.float32)
    ct[5:35, 5:25, :] = 40.0
    lab = np.zeros(ct.shape, dtype=np.uint8)
    lab[10:20, 10:20, 5:15] = 1
    image, labels = _volume(ct, flip), _volume(lab, flip)
    path = overlay_png(image, [("a", labels), ("b", labels.with_array(np.zeros_like(lab)))], tmp_path / "o.png",
                       point=(15, 15, 10))  # fmt: skip
    png = mpimg.imread(path)
    assert png.ndim == 3 and png.shape[0] > png.shape[1] / 3  # two rows of three views
    top, bottom = png[: png.shape[0] // 2], png[png.shape[0] // 2 :]
    liver = np.array(class_color(1)) / 255.0
    near = lambda half: int((np.abs(half[..., :3] - liver).max(axis=-1) < 0.05).sum())  # noqa: E731  legend swatch
    blended = lambda half: int((np.ptp(half[..., :3], axis=-1) > 0.1).sum())  # noqa: E731  non-grey pixels
    assert near(top) > 0 and near(bottom) == 0  # the legend names liver only in the first row
    assert blended(top) > 2 * blended(bottom)
    assert not list(tmp_path.glob(".*"))  # no temporary file left
    with_click = overlay_png(image, [("b", labels.with_array(np.zeros_like(lab)))], tmp_path / "c.png",
                             point=(15, 15, 10), clicks=[(15, 15, 10)])  # fmt: skip
    yellow = lambda png: int(((png[..., 0] > 0.9) & (png[..., 1] > 0.9) & (png[..., 2] < 0.2)).sum())  # noqa: E731
    assert yellow(mpimg.imread(with_click)) > 0  # the click is drawn


def test_thin_views_are_stretched_to_a_minimum_height_and_legend_chips_are_outlined():
    from voxelprompt.visualize import MIN_PANEL_RATIO

    lab = np.zeros((80, 80, 4), dtype=np.uint8)
    lab[30:50, 30:50, :] = 13  # duodenum: a nearly white colour
    image = Volume(np.zeros(lab.shape, np.float32), np.diag([1.0, 1.0, 2.0, 1.0]))
    fig = overlay_figure(image, [("", image.with_array(lab))])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        if ax.get_images():
            box = ax.get_images()[0].get_window_extent(renderer)
            assert box.height / box.width >= MIN_PANEL_RATIO - 0.01, ax.get_title()
            assert ("stretched" in ax.get_title()) == (not ax.get_title().startswith("axial"))
    chips = [h for ax in fig.axes if ax.get_legend() for h in ax.get_legend().legend_handles]
    assert chips and all(chip.get_edgecolor()[3] > 0 and max(chip.get_edgecolor()[:3]) < 0.5 for chip in chips)
