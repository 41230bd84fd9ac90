"""Tests for voxelprompt.measure (statistics): volumes, HU statistics, bounding boxes and 26-connected
components checked against plain numpy on phantoms of known size; CSV, JSON and the cohort table."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from voxelprompt.errors import InputError
from voxelprompt.measure import (
    STATISTICS_COLUMNS,
    join_statistics_csv,
    structure_statistics,
    structure_volumes,
    write_statistics_csv,
    write_statistics_json,
)
from voxelprompt.types import Volume

SPACING = (0.8, 1.25, 3.0)  # mm, anisotropic


def _rotation(degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1.0]])


def _phantom(oblique: bool = False) -> tuple[Volume, Volume]:
    """Label 1: a 10x8x5 box; label 4: two blobs, one of them two voxels touching only at a corner."""
    affine = np.eye(4)
    affine[:3, :3] = (_rotation(30) if oblique else np.diag([-1.0, -1.0, 1.0])) @ np.diag(SPACING)
    affine[:3, 3] = (12.0, -40.0, 100.0)
    labels = np.zeros((30, 25, 12), dtype=np.uint8)
    labels[3:13, 5:13, 2:7] = 1
    labels[20:23, 18:20, 8:10] = 4
    labels[25, 2, 1] = labels[26, 3, 2] = 4  # diagonal neighbours: one 26-connected component
    ct = np.random.default_rng(0).normal(40.0, 25.0, labels.shape).astype(np.float32)
    return Volume(labels, affine), Volume(ct, affine)


def _expected_ras_box(labels: Volume, value: int) -> tuple[np.ndarray, np.ndarray]:
    xyz = labels.voxel_to_world(np.argwhere(labels.array == value))
    return xyz.min(axis=0), xyz.max(axis=0)


@pytest.mark.parametrize("oblique", [False, True])
def test_statistics_match_numpy_on_a_phantom(oblique):
    labels, ct = _phantom(oblique)
    records = structure_statistics(labels, ct, {1: "liver", 4: "lesion"})
    assert [(r.label, r.name) for r in records] == [(1, "liver"), (4, "lesion")]
    box, lesion = records
    assert box.voxels == 10 * 8 * 5
    assert box.volume_ml == pytest.approx(400 * np.prod(SPACING) / 1000.0, rel=1e-12)
    for record in records:
        mask = labels.array == record.label
        values = ct.array[mask].astype(np.float64)
        assert record.hu_mean == pytest.approx(values.mean(), rel=1e-12)
        assert record.hu_std == pytest.approx(values.std(), rel=1e-12)
        got = [record.hu_p5, record.hu_p25, record.hu_p50, record.hu_p75, record.hu_p95]
        assert got == pytest.approx(np.percentile(values, [5, 25, 50, 75, 95]), rel=1e-12)
        idx = np.argwhere(mask)
        assert record.bbox_voxel_min == tuple(idx.min(axis=0)) and record.bbox_voxel_max == tuple(idx.max(axis=0))
        low, high = _expected_ras_box(labels, record.label)
        assert record.bbox_ras_min == pytest.approx(low, abs=1e-9)
        assert record.bbox_ras_max == pytest.approx(high, abs=1e-9)
    assert (box.components, lesion.components) == (1, 2)
    assert box.bbox_voxel_min == (3, 5, 2) and box.bbox_voxel_max == (12, 12, 6)


def test_without_image_hu_fields_are_nan_and_absent_names_are_optional():
    labels, _ = _phantom()
    records = structure_statistics(labels, None, {1: "liver", 9: "spleen"})
    assert [r.name for r in records] == ["liver", "label 4"]
    assert all(math.isnan(r.hu_mean) and math.isnan(r.hu_p50) for r in records)
    with_absent = structure_statistics(labels, None, {1: "liver", 9: "spleen"}, include_absent=True)
    spleen = with_absent[-1]
    assert (spleen.label, spleen.voxels, spleen.volume_ml, spleen.components) == (9, 0, 0.0, 0)


@pytest.mark.parametrize("oblique", [False, True])
def test_printed_volumes_and_statistics_count_alike(oblique):
    """The lines the commands print and the statistics files measure a label map one way."""
    labels, ct = _phantom(oblique)
    volumes = structure_volumes(labels)
    records = structure_statistics(labels, ct)
    assert [(v.label, v.voxels) for v in volumes] == [(r.label, r.voxels) for r in records] == [(1, 400), (4, 14)]
    assert [v.ml for v in volumes] == pytest.approx([r.volume_ml for r in records], rel=1e-12)
    negative = Volume(np.where(labels.array == 4, -1, 0).astype(np.int16), labels.affine)
    for measure in (structure_volumes, structure_statistics):
        with pytest.raises(InputError, match="label values must be >= 0, got -1"):
            measure(negative)


def test_image_off_the_grid_and_bad_labels_are_refused():
    labels, ct = _phantom()
    with pytest.raises(InputError, match="not on the grid"):
        structure_statistics(labels, Volume(ct.array[:-1], ct.affine))
    with pytest.raises(InputError, match="integer"):
        structure_statistics(Volume(labels.array.astype(np.float32), labels.affine))


def test_csv_json_and_cohort_table(tmp_path):
    labels, ct = _phantom()
    records = structure_statistics(labels, ct, {1: "liver", 4: "lesion"})
    write_statistics_csv(records, tmp_path / "a.csv")
    write_statistics_csv(records[:1], tmp_path / "b.csv")
    with open(tmp_path / "a.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == STATISTICS_COLUMNS
    assert float(rows[0]["volume_ml"]) == records[0].volume_ml  # round-trip floats
    assert (rows[1]["bbox_voxel_max_i"], rows[1]["components"]) == (str(records[1].bbox_voxel_max[0]), "2")

    absent = structure_statistics(labels, None, {9: "spleen"}, include_absent=True)
    write_statistics_json(absent, tmp_path / "a.json", case="a")
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["case"] == "a" and data["structures"][0]["hu_mean"] is None
    assert data["structures"][-1]["bbox_ras_min"] == [None, None, None]

    cohort = join_statistics_csv({"case_b": tmp_path / "b.csv", "case_a": tmp_path / "a.csv"}, tmp_path / "cohort.csv")
    with open(cohort, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["case"], r["label"]) for r in table] == [("case_b", "1"), ("case_a", "1"), ("case_a", "4")]
    assert not list(tmp_path.glob(".*"))

    (tmp_path / "other.csv").write_text("x,y\n1,2\n")
    with pytest.raises(InputError, match="columns differ"):
        join_statistics_csv({"x": tmp_path / "other.csv"}, tmp_path / "cohort2.csv")
    with pytest.raises(InputError, match="cannot read"):
        join_statistics_csv({"x": tmp_path / "missing.csv"}, tmp_path / "cohort2.csv")
    assert not (tmp_path / "cohort2.csv").exists()
