"""Tests of the procedural CT phantom: reproducibility, anatomy, intensities, geometry, files."""

from __future__ import annotations

import functools
import json

import nibabel as nib
import numpy as np
import pytest

from voxelprompt.data import LESION_CLASSES, PhantomConfig, make_phantom, write_phantom_dataset
from voxelprompt.errors import VoxelPromptError

# Whole trunk (default 400 x 400 x 640 mm field of view) at 4 mm: fast and every organ inside.
SHAPE = (100, 100, 160)

# VISTA3D class -> plausible volume range in mL for an adult (wide: body size varies per seed).
VOLUME_ML = {
    1: (1200, 2500),  # liver
    3: (80, 450),  # spleen
    4: (40, 160),  # pancreas
    5: (80, 250),  # right kidney
    14: (80, 250),  # left kidney
    6: (60, 350),  # aorta
    7: (40, 250),  # inferior vena cava
    10: (10, 90),  # gallbladder
    11: (15, 120),  # esophagus
    12: (150, 1200),  # stomach
    13: (20, 150),  # duodenum
    15: (80, 500),  # bladder
    17: (10, 80),  # portal and splenic vein
    19: (300, 1500),  # small bowel
    57: (10, 90),  # trachea and main bronchi
    62: (300, 1500),  # colon
    115: (300, 1000),  # heart
    **{lobe: (40, 2500) for lobe in range(28, 33)},
    **{level: (15, 90) for level in range(33, 38)},  # L5..L1
    **{level: (6, 60) for level in range(38, 50)},  # T12..T1
    **{rib: (3, 40) for rib in range(63, 87)},
}


@functools.cache
def _case(seed: int = 0, shape: tuple[int, int, int] = SHAPE, **kw):
    return make_phantom(PhantomConfig(shape=shape, seed=seed, **kw))


def _volumes_ml(labels) -> np.ndarray:
    return np.bincount(labels.array.ravel(), minlength=256) * np.prod(labels.spacing) / 1000.0


def test_same_seed_gives_identical_arrays():
    a_img, a_lab = _case(seed=7)
    b_img, b_lab = make_phantom(PhantomConfig(shape=SHAPE, seed=7))
    np.testing.assert_array_equal(a_img.array, b_img.array)
    np.testing.assert_array_equal(a_lab.array, b_lab.array)
    np.testing.assert_array_equal(a_img.affine, b_img.affine)


def test_different_seeds_differ():
    a_img, a_lab = _case(seed=0)
    b_img, b_lab = _case(seed=1)
    assert (a_lab.array != b_lab.array).mean() > 0.005
    assert not np.array_equal(a_img.array, b_img.array)


def test_types_and_shared_grid():
    image, labels = _case()
    assert image.array.dtype == np.int16 and labels.array.dtype == np.uint8
    assert image.shape == labels.shape == SHAPE
    np.testing.assert_array_equal(image.affine, labels.affine)
    assert image.orientation == "RAS"
    np.testing.assert_allclose(image.spacing, (4.0, 4.0, 4.0))


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("label", sorted(VOLUME_ML))
def test_organ_present_with_plausible_volume(seed, label):
    lo, hi = VOLUME_ML[label]
    volume = _volumes_ml(_case(seed=seed)[1])[label]
    assert lo <= volume <= hi, f"class {label}: {volume:.1f} mL not in [{lo}, {hi}]"


def test_anatomy_sides_and_levels():
    image, labels = _case()
    centroid = {
        c: image.voxel_to_world(np.argwhere(labels.array == c).mean(0))[0] for c in (1, 3, 5, 14, 33, 37, 49, 15)
    }
    assert centroid[1][0] > 0 > centroid[3][0]  # liver on the patient's right (+x), spleen left
    assert centroid[5][0] > 0 > centroid[14][0]
    assert centroid[33][2] < centroid[37][2] < centroid[49][2]  # L5 below L1 below T1
    assert centroid[15][2] < centroid[33][2] < centroid[1][2]  # bladder, lumbar spine, liver


@pytest.mark.parametrize("phase", ["non-contrast", "arterial", "portal-venous"])
def test_hounsfield_statistics(phase):
    image, labels = _case(phase=phase)
    hu, lab = image.array.astype(np.float64), labels.array

    def mean(*classes):
        return hu[np.isin(lab, classes)].mean()

    assert mean(28, 29, 30, 31, 32) < -700
    assert mean(*range(33, 50)) > 200 and mean(*range(63, 87)) > 200
    assert 40 <= mean(1) <= 150
    assert hu[:3, :3, :].mean() < -950  # air around the body
    fat = hu[(lab == 0) & (hu > -130) & (hu < -60)]
    assert fat.size > 0.05 * lab.size
    if phase == "arterial":
        assert mean(6) > 250 and mean(6) > mean(7)
    if phase == "non-contrast":
        assert abs(mean(6) - mean(7)) < 15


def test_contrast_changes_vessels_and_organs():
    (plain, labels), (venous, _) = _case(phase="non-contrast"), _case(phase="portal-venous")
    for c in (1, 3, 5, 6, 7, 17):
        assert venous.array[labels.array == c].mean() > plain.array[labels.array == c].mean() + 40


def test_spacing_changes_grid_not_anatomy():
    kw = dict(seed=5, center=(0.0, 0.0, -20.0))
    coarse = _volumes_ml(make_phantom(PhantomConfig(shape=(96, 96, 100), spacing=(4.0, 4.0, 5.0), **kw))[1])
    fine = _volumes_ml(make_phantom(PhantomConfig(shape=(160, 128, 200), spacing=(2.4, 3.0, 2.5), **kw))[1])
    for c in (1, 3, 4, 5, 6, 7, 12, 14, 15, 19, 28, 30, 32, 62, 115):
        assert coarse[c] == pytest.approx(fine[c], rel=0.15), f"class {c}"


def test_center_moves_the_field_of_view():
    image, labels = make_phantom(PhantomConfig(shape=(64, 64, 48), spacing=(2.5, 2.5, 2.5), center=(0.0, -30.0, -40.0)))
    present = set(np.unique(labels.array))
    assert {5, 14, 6, 7, 36}.issubset(present)  # kidneys, aorta, IVC, L2
    assert not present & {15, 57, 115}  # no bladder, trachea or heart in a 12 cm abdominal slab
    np.testing.assert_allclose(image.voxel_to_world(np.array([31.5, 31.5, 23.5]))[0], (0.0, -30.0, -40.0))


def test_orientation_reorders_arrays_not_anatomy():
    ras_img, ras_lab = _case(seed=2)
    lps_img, lps_lab = _case(seed=2, orientation="LPS")
    assert lps_img.orientation == "LPS"
    for c in (1, 14):
        a = ras_img.voxel_to_world(np.argwhere(ras_lab.array == c).mean(0))
        b = lps_img.voxel_to_world(np.argwhere(lps_lab.array == c).mean(0))
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_array_equal(np.sort(ras_img.array, axis=None), np.sort(lps_img.array, axis=None))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_lesions_lie_inside_their_host_and_vanish_when_disabled(seed):
    _, with_lesions = _case(seed=seed)
    _, without = _case(seed=seed, lesions=False)
    found = 0
    for lesion, hosts in LESION_CLASSES.items():
        where = with_lesions.array == lesion
        assert not (without.array == lesion).any()
        found += int(where.any())
        assert np.isin(without.array[where], hosts).all(), f"lesion {lesion} outside its host"
    assert (with_lesions.array == 26).any() and (with_lesions.array == 23).any() and found == 3
    changed = with_lesions.array != without.array
    assert np.isin(with_lesions.array[changed], list(LESION_CLASSES)).all()


def test_zero_shot_classes_are_outside_the_everything_prompt():
    from voxelprompt.catalog import everything_classes

    present = set(np.unique(_case()[1].array).tolist()) - {0}
    assert present - set(everything_classes(132)) == {23, 25, 26}  # lung nodule, hepatic vessels, tumour


def test_lesions_are_darker_than_liver():
    image, labels = _case(phase="portal-venous")
    assert image.array[labels.array == 26].mean() < image.array[labels.array == 1].mean() - 30


def test_noise_level():
    quiet, labels = _case(noise_hu=0.0)
    noisy, _ = _case(noise_hu=20.0)
    liver = labels.array == 1
    assert 14 < (noisy.array[liver].astype(float) - quiet.array[liver]).std() < 26


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"shape": (0, 10, 10)}, "(0, 10, 10)"),
        ({"spacing": (1.0, -1.0, 1.0)}, "(1.0, -1.0, 1.0)"),
        ({"phase": "delayed"}, "'delayed'"),
        ({"noise_hu": -1.0}, "-1.0"),
        ({"orientation": "RRS"}, "'RRS'"),
        ({"seed": -3}, "-3"),
        ({"center": (0.0, float("nan"), 0.0)}, "nan"),
    ],
)
def test_invalid_config_names_the_value(kw, named):
    with pytest.raises(VoxelPromptError) as err:
        PhantomConfig(**kw)
    assert named in str(err.value)


def test_write_dataset_and_datalist(tmp_path):
    config = PhantomConfig(shape=(40, 40, 64), phase="random")
    path = write_phantom_dataset(tmp_path, n=3, config=config, seed0=10, n_validation=1)
    datalist = json.loads(path.read_text())
    assert [len(datalist["training"]), len(datalist["validation"])] == [2, 1]
    for entry in datalist["training"] + datalist["validation"]:
        assert entry["dataset"] == "phantom" and not entry["image"].startswith("/")
        image, label = nib.load(tmp_path / entry["image"]), nib.load(tmp_path / entry["label"])
        assert image.shape == label.shape == (40, 40, 64)
        np.testing.assert_allclose(image.affine, label.affine)
        assert image.get_data_dtype() == np.int16 and label.get_data_dtype() == np.uint8
    first = datalist["training"][0]
    expected_image, expected_labels = make_phantom(
        PhantomConfig(shape=(40, 40, 64), phase="random", seed=first["seed"])
    )
    np.testing.assert_array_equal(np.asarray(nib.load(tmp_path / first["label"]).dataobj), expected_labels.array)
    np.testing.assert_allclose(nib.load(tmp_path / first["image"]).affine, expected_image.affine)
    assert not list(tmp_path.rglob(".*tmp*"))


def test_cli_command_writes_files(tmp_path):
    from voxelprompt.cli.phantom import phantom

    phantom(out_dir=tmp_path / "out", n=2, shape=(32, 32, 48), spacing=(8.0, 8.0, 10.0), seed=3, lesions=False)
    datalist = json.loads((tmp_path / "out" / "datalist.json").read_text())
    assert [e["seed"] for e in datalist["training"]] == [3, 4]
    for entry in datalist["training"]:
        labels = np.asarray(nib.load(tmp_path / "out" / entry["label"]).dataobj)
        assert labels.shape == (32, 32, 48) and not np.isin(labels, list(LESION_CLASSES)).any()
        np.testing.assert_allclose(nib.load(tmp_path / "out" / entry["image"]).header.get_zooms(), (8.0, 8.0, 10.0))
