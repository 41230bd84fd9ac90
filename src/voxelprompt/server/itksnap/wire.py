"""The bodies of ITK-SNAP's deep-learning protocol, written from its client's description
(``GUI/Model/DeepLearningSegmentationModel.cxx`` of pyushkevich/itksnap: ``EncodeImage``,
``UpdateSegmentation``).

* **Uploads** (image, scribble, lasso): a multipart part ``file``, the gzip of the ITK image
  buffer cast to float32 (x fastest, then y, then z), and a part ``metadata``, JSON with
  ``dimensions`` [x, y, z], ``spacing``, ``origin`` (LPS+ mm), ``direction`` (the 3x3 ITK
  direction matrix, row-major, LPS+), ``components_per_pixel`` and ``component_type``.
* **Replies**: ``base64(gzip(int8 0/1 mask))`` of the whole volume, in the same buffer order.

An upload becomes a :class:`~voxelprompt.types.Volume` on our conventions (:mod:`voxelprompt.types`):
the array is (i, j, k) = ITK's (x, y, z) index, so ITK-SNAP's voxel indices need no conversion, and
the affine maps them to RAS+ through the metadata's geometry. Uploads are untrusted: the metadata
is checked and the decoded size held to the reader policy's budget
(:data:`~voxelprompt.imageio.policy.UNTRUSTED`) before a voxel is allocated, and the gzip stream is
inflated to exactly the size the metadata declares, never more (a gzip bomb stops there).
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxelprompt.errors import InputError, PromptError
from voxelprompt.imageio.itk import itk_affine
from voxelprompt.imageio.preflight import check_decoded_budget, check_memory
from voxelprompt.types import Volume

__all__ = ["ImageHeader", "parse_metadata", "decode_array", "decode_volume", "encode_mask"]

#: Bytes of one voxel of an upload (ITK-SNAP always sends float32).
ITEMSIZE = 4


@dataclass(frozen=True)
class ImageHeader:
    """An upload's checked metadata.

    Args:
        dimensions: ITK buffer size (x, y, z), the volume's (I, J, K).
        spacing: mm along x, y, z; ``origin``: LPS+ mm; ``direction``: (3, 3) ITK direction.
    """

    dimensions: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray

    @property
    def nbytes(self) -> int:
        return math.prod(self.dimensions) * ITEMSIZE

    def affine(self) -> np.ndarray:
        """(4, 4) voxel index -> RAS+ mm."""
        return itk_affine(self.direction, self.spacing, self.origin)


def _numbers(meta: Mapping[str, Any], name: str, count: int) -> list[float]:
    value = meta.get(name)
    if not (isinstance(value, list) and len(value) == count
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)):  # fmt: skip
        raise PromptError(f"metadata {name} must be {count} finite numbers, got {value!r}"[:200])
    return [float(v) for v in value]


def parse_metadata(text: str | bytes) -> ImageHeader:
    """The ``metadata`` part of an upload, checked (cheap: before the body is inflated).

    Raises:
        PromptError: not JSON, not one float32 component, not 3D, or bad geometry.
    """
    try:
        meta = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise PromptError("metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise PromptError("metadata must be a JSON object")
    if meta.get("components_per_pixel") != 1:
        raise PromptError(f"one component per voxel (a CT) is needed, got components_per_pixel {meta.get('components_per_pixel')!r}"[:200])
    if meta.get("component_type") != "float32":
        raise PromptError(f"component_type must be float32 (what ITK-SNAP sends), got {meta.get('component_type')!r}"[:200])
    dims = meta.get("dimensions")
    if not (isinstance(dims, list) and len(dims) == 3 and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims)):
        raise PromptError(f"metadata dimensions must be three positive integers (a 3D image), got {dims!r}"[:200])
    spacing = _numbers(meta, "spacing", 3)
    if min(spacing) <= 0:
        raise PromptError(f"metadata spacing must be positive, got {spacing}")
    direction = np.asarray(_numbers(meta, "direction", 9)).reshape(3, 3)
    if abs(np.linalg.det(direction)) < 1e-6:
        raise PromptError("metadata direction is not an invertible 3x3 matrix")
    origin = _numbers(meta, "origin", 3)
    return ImageHeader(tuple(dims), tuple(spacing), tuple(origin), direction)  # type: ignore[arg-type]


def decode_array(data: bytes, header: ImageHeader, max_bytes: int | None, what: str = "image") -> np.ndarray:
    """The (I, J, K) float32 array of an upload's ``file`` part.

    The decoded size is checked against ``max_bytes`` and the memory available before the stream
    is inflated, and the stream is inflated to the declared size only.

    Raises:
        TooLargeError: over ``max_bytes``.
        PromptError: not gzip, or not exactly the declared number of voxels.
    """
    check_decoded_budget(header.dimensions, ITEMSIZE, max_bytes, f"the uploaded {what}")
    check_memory(header.dimensions, ITEMSIZE, f"the uploaded {what}")
    inflater = zlib.decompressobj(wbits=31)  # 31: a gzip member
    try:
        raw = inflater.decompress(data, header.nbytes)
        extra = b"" if inflater.eof else inflater.decompress(inflater.unconsumed_tail, 1)  # the trailer, or more voxels
    except zlib.error as err:
        raise PromptError(f"the uploaded {what} is not gzip data ({err})") from None
    if len(raw) != header.nbytes or extra or not inflater.eof:
        got = "more than" if extra else f"{len(raw)} bytes{'' if inflater.eof else ' (a cut stream)'}, not"
        raise PromptError(f"the uploaded {what} holds {got} the {header.nbytes} bytes its dimensions {list(header.dimensions)} declare")
    x, y, z = header.dimensions
    return np.frombuffer(raw, dtype="<f4").reshape(z, y, x).transpose(2, 1, 0)  # ITK's x-fastest buffer as (i, j, k)


def decode_volume(data: bytes, header: ImageHeader, max_bytes: int | None) -> Volume:
    """An uploaded image as a volume on its patient-frame grid (see the module docstring).

    Raises:
        TooLargeError, PromptError: as :func:`decode_array`.
        InputError: NaN or infinite voxels.
    """
    array = decode_array(data, header, max_bytes)
    try:
        return Volume(array, header.affine(), source="ITK-SNAP image")
    except InputError as err:
        raise PromptError(str(err)) from None


def encode_mask(mask: np.ndarray) -> str:
    """The reply's ``result``: base64 of the gzip'd int8 0/1 ``mask`` ((I, J, K), any dtype) in
    ITK's buffer order."""
    buffer = np.ascontiguousarray((np.asarray(mask) != 0).astype(np.int8).transpose(2, 1, 0))
    return base64.b64encode(gzip.compress(buffer.tobytes(), compresslevel=6)).decode("ascii")
