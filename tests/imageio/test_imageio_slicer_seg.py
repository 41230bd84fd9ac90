"""Tests for voxelprompt.imageio.slicer_seg: slicerio reads back the names, colours, terminology,
label values, voxels and geometry of RAS- and LPS-stored label maps."""

from __future__ import annotations

import numpy as np
import pytest
import slicerio

from voxelprompt.catalog import class_color, vista3d_catalog, vista3d_colors
from voxelprompt.errors import InputError
from voxelprompt.imageio import read_labels, write_slicer_seg
from voxelprompt.imageio.itk import LPS_TO_RAS
from voxelprompt.types import Volume


def _label_map(orientation: str) -> Volume:
    """An anisotropic, oblique-free grid stored RAS (as NIfTI) or LPS (as DICOM/NRRD), with 3 values."""
    signs = {"RAS": (1.0, 1.0, 1.0), "LPS": (-1.0, -1.0, 1.0)}[orientation]
    affine = np.diag([s * d for s, d in zip(signs, (0.7, 0.9, 2.5))] + [1.0])
    affine[:3, 3] = (-40.0, 25.0, -300.0)
    array = np.zeros((20, 16, 9), dtype=np.uint16)
    array[2:6, 3:12, 1:4] = 1
    array[10:18, 0:5, 6:9] = vista3d_catalog().index("left kidney")
    array[15:17, 14:16, 0] = 300  # above 255: stored as uint16
    return Volume(array, affine)


@pytest.mark.parametrize("orientation", ["RAS", "LPS"])
def test_slicerio_reads_back_names_colours_voxels_and_geometry(orientation, tmp_path):
    labels = _label_map(orientation)
    assert labels.orientation == orientation
    kidney = vista3d_catalog().index("left kidney")
    names = {1: "liver", kidney: "left kidney", 300: "lesion", 7: "absent structure"}
    path = write_slicer_seg(labels, tmp_path / "case.seg.nrrd", names)
    seg = slicerio.read_segmentation(str(path))
    np.testing.assert_array_equal(seg["voxels"], labels.array)
    np.testing.assert_allclose(LPS_TO_RAS @ np.asarray(seg["ijkToLPS"]), labels.affine, atol=1e-9)
    segments = {s["labelValue"]: s for s in seg["segments"]}
    assert sorted(segments) == [1, kidney, 300]  # values present only
    for value, segment in segments.items():
        assert segment["name"] == names[value]
        assert segment["color"] == pytest.approx([c / 255 for c in class_color(value)], abs=1e-5)
        mask = np.argwhere(labels.array == value)
        expected_extent = [int(v) for a in range(3) for v in (mask[:, a].min(), mask[:, a].max())]
        assert segment["extent"] == expected_extent
    record = vista3d_colors()[kidney]
    assert segments[kidney]["terminology"]["type"] == [record.type.scheme, record.type.value, record.type.meaning]
    assert segments[kidney]["terminology"]["typeModifier"] == ["SCT", "7771000", "Left"]
    assert "typeModifier" not in segments[1]["terminology"]
    assert segments[300]["terminology"]["type"][1] == "85756007"  # not a VISTA3D class: Tissue
    # voxelprompt's own NRRD reader sees the same grid and values.
    again = read_labels(path)
    np.testing.assert_array_equal(again.array, labels.array)
    np.testing.assert_allclose(again.affine, labels.affine, atol=1e-6)


def test_same_label_map_gives_identical_bytes(tmp_path):
    labels = _label_map("LPS")
    names = {v: f"s{v}" for v in np.unique(labels.array) if v}
    write_slicer_seg(labels, tmp_path / "a.seg.nrrd", names)
    write_slicer_seg(labels, tmp_path / "b.seg.nrrd", names)
    assert (tmp_path / "a.seg.nrrd").read_bytes() == (tmp_path / "b.seg.nrrd").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.seg.nrrd", "b.seg.nrrd"]


def test_bad_suffix_and_unnamed_values_are_refused(tmp_path):
    labels = _label_map("RAS")
    with pytest.raises(InputError, match=r"must end in \.seg\.nrrd"):
        write_slicer_seg(labels, tmp_path / "case.nrrd", {1: "liver"})
    with pytest.raises(InputError, match="have no name"):
        write_slicer_seg(labels, tmp_path / "case.seg.nrrd", {1: "liver"})
    assert not list(tmp_path.iterdir())


def test_same_segmentation_gives_same_bytes(tmp_path):
    """pynrrd stamps the wall-clock time into a header comment; the writer drops it."""
    import time

    labels = Volume(np.arange(60, dtype=np.uint8).reshape(3, 4, 5) % 3, np.diag([0.5, 0.7, 2.0, 1.0]))
    first = write_slicer_seg(labels, tmp_path / "a.seg.nrrd", {1: "liver", 2: "spleen"}).read_bytes()
    time.sleep(1.1)
    second = write_slicer_seg(labels, tmp_path / "b.seg.nrrd", {1: "liver", 2: "spleen"}).read_bytes()
    assert first == second and b"# on " not in first
