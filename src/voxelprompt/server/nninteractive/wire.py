"""The packed-array body of the nnInteractive protocol, written from its published description
(``nnInteractive/inference/remote/serialization.py`` of ``nninteractive-client`` 2.6).

Layout, all integers little-endian::

    b"NNIA" | version u8 (1) | codec u8 (1 ZSTD, 2 LZ4) | ndim u8 | len(dtype name) u8 | dtype name
    | shape: ndim x i64 | number of chunks u32 | per chunk: raw length u64, packed length u64,
    blosc2 ``compress2`` frame

Each chunk holds at most 1 GiB of the C-ordered array bytes. Malformed bodies raise
:class:`~voxelprompt.errors.PromptError` (the server answers 400 and keeps serving).
"""

from __future__ import annotations

import math
import struct

import blosc2
import numpy as np

from voxelprompt.errors import PromptError, TooLargeError

__all__ = ["pack", "unpack", "MAX_ELEMENTS"]

MAGIC, VERSION = b"NNIA", 1
CHUNK_BYTES = 1 << 30
CODECS = {1: blosc2.Codec.ZSTD, 2: blosc2.Codec.LZ4}
#: dtypes a body may declare (images, masks, target buffers).
DTYPES = frozenset(
    ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16", "float32", "float64"]
)
#: Largest array a body may declare (2^31 elements: a 1290^3 volume).
MAX_ELEMENTS = 1 << 31


def pack(array: np.ndarray, codec_id: int = 1, clevel: int = 3) -> bytes:
    """``array`` as a packed body (ZSTD, no shuffle filter: what masks compress best with)."""
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    name = array.dtype.name.encode("ascii")
    parts = [struct.pack("<4sBBBB", MAGIC, VERSION, codec_id, array.ndim, len(name)), name]
    parts.append(struct.pack(f"<{array.ndim}q", *array.shape))
    raw = memoryview(array).cast("B")
    starts = range(0, raw.nbytes, CHUNK_BYTES)
    parts.append(struct.pack("<I", len(starts)))
    for start in starts:
        piece = raw[start : start + CHUNK_BYTES]
        frame = blosc2.compress2(
            piece, typesize=array.dtype.itemsize, codec=CODECS[codec_id], clevel=clevel, filters=[blosc2.Filter.NOFILTER]
        )
        parts += [struct.pack("<QQ", len(piece), len(frame)), frame]
    return b"".join(parts)


def unpack(body: bytes, shape: tuple[int, ...] | None = None, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """The array in a packed body, checked against what the caller expects before it is allocated.

    Args:
        body: the packed bytes.
        shape: the shape the array must have (None: any).
        max_elements: the most elements the array may have (at most :data:`MAX_ELEMENTS`).

    Raises:
        PromptError: a body that is not a packed array (bad magic, version, codec, dtype or
            shape, truncated or inconsistent chunks), or of another ``shape``.
        TooLargeError: more than ``max_elements`` elements.
    """
    try:
        return _unpack(body, shape, min(max_elements, MAX_ELEMENTS))
    except (PromptError, TooLargeError):
        raise
    except (struct.error, ValueError, TypeError, RuntimeError) as err:
        raise PromptError(f"malformed packed array: {err}") from None


def _unpack(body: bytes, expected: tuple[int, ...] | None, max_elements: int) -> np.ndarray:
    if len(body) < 8:
        raise PromptError(f"malformed packed array: {len(body)} bytes")
    magic, version, codec_id, ndim, name_len = struct.unpack_from("<4sBBBB", body, 0)
    if magic != MAGIC or version != VERSION or codec_id not in CODECS:
        raise PromptError(f"malformed packed array: header {magic!r} version {version} codec {codec_id}")
    offset = 8
    name = bytes(body[offset : offset + name_len]).decode("ascii", "replace")
    if name not in DTYPES:
        raise PromptError(f"malformed packed array: dtype {name!r}")
    offset += name_len
    shape = struct.unpack_from(f"<{ndim}q", body, offset)
    offset += 8 * ndim
    if any(s < 0 for s in shape):
        raise PromptError(f"malformed packed array: shape {shape}")
    if expected is not None and tuple(shape) != tuple(expected):
        raise PromptError(f"the array has shape {list(shape)}, expected {list(expected)} (the image's)")
    elements = math.prod(shape)  # Python ints: no overflow
    if elements > max_elements:
        raise TooLargeError(f"the array's shape {list(shape)} has {elements} elements, over the limit of {max_elements}")
    dtype = np.dtype(name)
    out = np.empty(elements, dtype=dtype)  # only now, with the declared size checked
    target = memoryview(out).cast("B")
    (chunks,) = struct.unpack_from("<I", body, offset)
    offset += 4
    written = 0
    view = memoryview(body)
    for _ in range(chunks):
        raw_len, packed_len = struct.unpack_from("<QQ", body, offset)
        offset += 16
        frame = view[offset : offset + packed_len]
        if len(frame) != packed_len or written + raw_len > target.nbytes:
            raise PromptError("malformed packed array: a chunk runs past the body or the declared shape")
        if blosc2.get_cbuffer_sizes(frame)[0] != raw_len:
            raise PromptError("malformed packed array: a chunk's frame disagrees with its length")
        target[written : written + raw_len] = blosc2.decompress2(frame)
        written += raw_len
        offset += packed_len
    if written != target.nbytes:
        raise PromptError(f"malformed packed array: {written} of {target.nbytes} bytes")
    return out.reshape(shape)
