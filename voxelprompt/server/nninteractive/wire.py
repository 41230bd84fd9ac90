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

import struct

import blosc2
import numpy as np

from voxelprompt.errors import PromptError

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


def unpack(body: bytes) -> np.ndarray:
    """The array in a packed body.

    Raises:
        PromptError: a body that is not a packed array (bad magic, version, codec, dtype or
            shape, truncated or inconsistent chunks).
    """
    try:
        return _unpack(body)
    except PromptError:
        raise
    except (struct.error, ValueError, TypeError, RuntimeError) as err:
        raise PromptError(f"malformed packed array: {err}") from None


def _unpack(body: bytes) -> np.ndarray:
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
    if any(s < 0 for s in shape) or int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
        raise PromptError(f"malformed packed array: shape {shape}")
    dtype = np.dtype(name)
    out = np.empty(int(np.prod(shape, dtype=np.int64)), dtype=dtype)
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
