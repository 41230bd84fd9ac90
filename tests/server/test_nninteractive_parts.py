"""Parts of the nnInteractive adapter without a server: wire format against the official client's
serializer, the client-array geometry, and the interaction mappings."""

from __future__ import annotations

import numpy as np
import pytest
from nnInteractive.inference.remote import serialization  # the official client's (test extra)

from voxelprompt.errors import PromptError
from voxelprompt.server.nninteractive import interactions as ia
from voxelprompt.server.nninteractive.geometry import client_volume
from voxelprompt.server.nninteractive.routes import changed_bbox
from voxelprompt.server.nninteractive.wire import pack, unpack



@pytest.mark.parametrize("dtype", ["float32", "int16", "uint8", "bool"])
def test_wire_format_round_trips_with_the_official_client(dtype):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(1, 13, 7, 5)) * 100).astype(dtype)
    assert np.array_equal(unpack(serialization.pack_array(array)), array)
    assert np.array_equal(serialization.unpack_array(pack(array)), array)
    zeros = np.zeros((9, 3, 5), dtype=np.uint8)  # the all-zero diff blosc2 handles specially
    assert np.array_equal(serialization.unpack_array(pack(zeros)), zeros)


@pytest.mark.parametrize("body", [b"", b"NNIA", b"XXXX\x01\x01\x01\x05int16", b"NNIA\x01\x09\x01\x05int16"])
def test_malformed_bodies_are_prompt_errors(body):
    with pytest.raises(PromptError, match="malformed packed array"):
        unpack(body)


def test_truncated_body_is_a_prompt_error():
    body = serialization.pack_array(np.arange(1000, dtype=np.float32).reshape(1, 10, 10, 10))
    with pytest.raises(PromptError):
        unpack(body[:-7])


def test_default_orientation_is_slicers_array_of_an_lps_volume():
    """3D Slicer's ``arrayFromVolume`` is (k, j, i); an axial CT series loads with IJK axes
    Left, Posterior, Superior, so the array axes point S, P, L, with the spacing reversed."""
    image = np.zeros((1, 30, 101, 122), dtype=np.int16)
    volume = client_volume(image, {"spacing": [2.5, 0.8, 0.7]})
    assert volume.orientation == "SPL"
    assert np.allclose(volume.spacing, (2.5, 0.8, 0.7))
    # one step along the last array axis (i) moves 0.7 mm to the patient's left (RAS x decreases)
    step = volume.voxel_to_world(np.array([[0, 0, 1]])) - volume.voxel_to_world(np.array([[0, 0, 0]]))
    assert np.allclose(step, [[-0.7, 0, 0]])


def test_orientation_and_affine_extensions():
    image = np.zeros((1, 4, 5, 6), dtype=np.float32)
    assert client_volume(image, {"spacing": [1, 2, 3], "orientation": "ras"}).orientation == "RAS"
    affine = np.diag([-2.0, 2.0, 3.0, 1.0])
    assert np.array_equal(client_volume(image, {"affine": affine.tolist()}).affine, affine)
    for bad in ({"orientation": "RRS"}, {"spacing": [1, 0, 1]}, {"affine": [[1, 0], [0, 1]]}):
        with pytest.raises(PromptError):
            client_volume(image, bad)
    with pytest.raises(PromptError, match=r"\[1, X, Y, Z\]"):
        client_volume(np.zeros((2, 4, 5, 6)), {})


def test_boxes_scribbles_and_lassos():
    assert ia.box_from_client([[3, 9], [0, 4], [7, 8]], (20, 20, 20)) == ((3.0, 0.0, 7.0), (8.0, 3.0, 7.0))
    assert ia.box_from_client([[15, 30], [0, 4], [7, 8]], (20, 20, 20)) == ((15.0, 0.0, 7.0), (19.0, 3.0, 7.0))
    for bad in ([[3, 3], [0, 4], [7, 8]], [[30, 40], [0, 4], [7, 8]], [[1, 2]], "box"):
        with pytest.raises(PromptError):
            ia.box_from_client(bad, (20, 20, 20))
    mask = np.zeros((20, 20, 20), dtype=bool)
    mask[2:5, 6, 7:9] = True
    assert ia.mask_box(mask) == ((2.0, 6.0, 7.0), (4.0, 6.0, 8.0))
    line = np.zeros((20, 20, 20), dtype=bool)
    line[0:3, 4, 4] = True
    assert ia.scribble_points(line) == [(0.0, 4.0, 4.0), (1.0, 4.0, 4.0), (2.0, 4.0, 4.0)]
    with pytest.raises(PromptError):
        ia.scribble_points(np.zeros((3, 3, 3)))


def test_changed_bbox_is_half_open_around_the_changes():
    before = np.zeros((6, 7, 8), dtype=np.uint8)
    after = before.copy()
    assert changed_bbox(before, after) is None
    after[1, 2, 3] = after[4, 2, 5] = 1
    assert changed_bbox(before, after) == [[1, 5], [2, 3], [3, 6]]
