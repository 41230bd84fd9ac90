"""Cheap checks of what an image header claims, run before a single voxel is allocated.

nibabel and ITK allocate the size a header states before reading the data, so a corrupt header
(or a truncated file) becomes a MemoryError or a crash instead of a message; these checks compare
the claim with the file and with the machine's free memory first.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from voxelprompt.errors import InputError, TooLargeError

__all__ = [
    "check_header_shape",
    "check_nifti_size",
    "check_nrrd_sizes",
    "check_raw_nrrd_size",
    "check_memory",
    "check_decoded_budget",
    "check_self_contained_nrrd",
    "available_memory",
    "format_bytes",
]

_AXIS_NAMES = ("i", "j", "k")

# Bytes per voxel of the decoded volume: read_volume returns float32 by default.
_DECODED_ITEMSIZE = 4

# Read size for streaming through compressed data (bounded output per step as well).
_CHUNK = 1 << 20


def check_header_shape(shape: Sequence[int], source: str) -> None:
    """Reject a header shape with an empty (or negative) axis, naming the axis.

    Args:
        shape: the data shape the header states, (I, J, K) or longer, in on-disk order.
        source: name used in messages.

    Raises:
        InputError: an axis with fewer than one voxel.
    """
    shape = tuple(int(n) for n in shape)
    empty = [f"{_axis_name(axis)} has {n} voxels" for axis, n in enumerate(shape) if n < 1]
    if empty:
        raise InputError(f"{source}: header shape {shape} has an empty axis ({', '.join(empty)})")


def check_nifti_size(path: Path, shape: Sequence[int], dtype: np.dtype, offset: int, source: str) -> None:
    """Reject a NIfTI file that holds fewer bytes than its header describes.

    Uncompressed files are compared by size. For ``.nii.gz`` the gzip trailer (ISIZE, the
    decompressed size modulo 2**32) is compared first; when it disagrees (a multi-member gzip
    file, or a damaged one) the decompressed bytes are counted in one streaming pass that stops
    as soon as enough are found and stores nothing.

    Args:
        path: the ``.nii`` or ``.nii.gz`` file.
        shape: the data shape in the header.
        dtype: the stored voxel type.
        offset: where the voxel data starts in the (decompressed) file, in bytes.
        source: name used in messages.

    Raises:
        InputError: the file, or its decompressed stream, is too short or corrupt.
    """
    needed = offset + _n_voxels(shape) * np.dtype(dtype).itemsize
    if not path.name.lower().endswith(".gz"):
        held = path.stat().st_size
        if held < needed:
            raise InputError(_too_small(source, "the file holds", held, shape, np.dtype(dtype)))
        return
    if _gzip_trailer_size(path) == needed % 2**32:
        return
    held, complete = _count_gzip_bytes(path, source, limit=needed)
    if held >= needed:
        return
    if not complete:
        raise InputError(
            f"{source}: cannot read NIfTI file (the compressed data ends after {format_bytes(held)}: truncated file)"
        )
    raise InputError(_too_small(source, "the file holds", held, shape, np.dtype(dtype), " decompressed"))


def check_nrrd_sizes(path: Path, source: str) -> None:
    """Reject a NRRD header whose ``sizes`` field has an empty axis, before ITK parses it.

    ITK refuses such a header too, but with teem's own wording; this names the shape and axis.

    Args:
        path: the ``.nrrd`` or ``.nhdr`` file.
        source: name used in messages.

    Raises:
        InputError: a size below one.
    """
    fields, _ = _nrrd_fields(path)
    try:
        sizes = [int(value) for value in fields.get("sizes", "").split()]
    except ValueError:
        return  # ITK reports a malformed field
    check_header_shape(sizes, source)


def check_raw_nrrd_size(path: Path, shape: Sequence[int], dtype: np.dtype, itemsize: int, source: str) -> None:
    """Reject a raw-encoded NRRD (``.nrrd`` or ``.nhdr`` + data file) smaller than its header says.

    Compressed encodings are left to the memory check and the reader; so are detached headers
    that list several data files.

    Args:
        path: the ``.nrrd`` or ``.nhdr`` file.
        shape: the image size the header states (ITK order: i, j, k).
        dtype: the voxel type, for messages.
        itemsize: bytes per voxel (all components).
        source: name used in messages.

    Raises:
        InputError: the data is smaller than ``prod(shape) * itemsize`` bytes.
    """
    fields, header_bytes = _nrrd_fields(path)
    if fields.get("encoding", "").lower() != "raw":
        return
    data_file = fields.get("data file", fields.get("datafile"))
    if data_file is None:
        data_path, start = path, header_bytes
    elif data_file.upper().startswith("LIST") or len(data_file.split()) > 1:
        return
    else:
        data_path, start = path.parent / data_file, 0
    needed = _n_voxels(shape) * itemsize
    skip = int(fields.get("byte skip", fields.get("byteskip", "0")) or 0)
    if not data_path.is_file():
        raise InputError(f"{source}: NRRD data file {data_path} not found")
    # byte skip -1 means "the data is the last bytes of the file".
    held = data_path.stat().st_size - (0 if skip == -1 else start + skip)
    if held < needed:
        what = "the file holds" if data_path == path else f"its data file {data_path.name} holds"
        raise InputError(_too_small(source, what, max(held, 0), shape, np.dtype(dtype)))


def check_memory(shape: Sequence[int], itemsize: int, source: str) -> None:
    """Reject a volume whose decoded array would not fit into the memory available now.

    Args:
        shape: the data shape the header states.
        itemsize: bytes per stored voxel; the decoded size uses at least float32's 4 bytes.
        source: name used in messages.

    Raises:
        InputError: the decoded (float32 or wider) array exceeds :func:`available_memory`.
    """
    available = available_memory()
    needed = _n_voxels(shape) * max(int(itemsize), _DECODED_ITEMSIZE)
    if available is not None and needed > available:
        kind = "float32" if itemsize <= _DECODED_ITEMSIZE else f"{itemsize}-byte values"
        raise InputError(
            f"{source}: header shape {_dims(shape)} needs {format_bytes(needed)} of memory as {kind}, "
            f"more than the {format_bytes(available)} available"
        )


def check_decoded_budget(shape: Sequence[int], itemsize: int, max_bytes: int | None, source: str) -> None:
    """Reject a header whose decoded array would exceed ``max_bytes`` (a reader policy's budget).

    Args:
        shape: the data shape the header states.
        itemsize: bytes per stored voxel; the decoded size uses at least float32's 4 bytes.
        max_bytes: the budget in bytes; None: no budget.
        source: name used in messages.

    Raises:
        TooLargeError: the decoded array is larger than ``max_bytes``.
    """
    needed = _n_voxels(shape) * max(int(itemsize), _DECODED_ITEMSIZE)
    if max_bytes is not None and needed > max_bytes:
        raise TooLargeError(
            f"{source}: header shape {_dims(shape)} decodes to {format_bytes(needed)}, "
            f"over the limit of {format_bytes(max_bytes)} per image"
        )


def check_self_contained_nrrd(path: Path, source: str) -> list[int]:
    """Refuse a NRRD file that is not one self-contained ``.nrrd``; return the ``sizes`` it states.

    The header is read here, before ITK sees the file: ITK follows a ``data file`` field to any
    path (``/dev/zero``, another user's file, ``LIST`` of files), so a header naming one, a
    header that never ends within its first MiB, or a file without the NRRD magic is refused.

    Args:
        path: the ``.nrrd`` file.
        source: name used in messages.

    Returns:
        The sizes of the ``sizes`` field (empty when it is missing or malformed: ITK reports that).

    Raises:
        InputError: no NRRD magic, an unterminated header, or a reference to a data file.
    """
    with open(path, "rb") as file:
        head = file.read(_CHUNK + 1)
    if not head.startswith(b"NRRD"):
        raise InputError(f"{source}: not a NRRD file (it does not start with the NRRD magic)")
    ends = [i for i in (head.find(b"\n\n"), head.find(b"\r\n\r\n")) if i >= 0]
    if not ends:
        raise InputError(f"{source}: the NRRD header does not end (no blank line) within {format_bytes(_CHUNK)}")
    header = head[: min(ends)].decode("latin-1")
    # Any spelling teem might accept ("data file", "datafile", any case, spacing or line break),
    # anywhere in the header (a comment naming one is refused too: rare, and never ambiguous).
    if re.search(r"data[ \t]*file[ \t]*:", header, flags=re.IGNORECASE):
        raise InputError(
            f"{source}: the NRRD header refers to a separate data file; send one .nrrd file with its data attached"
        )
    fields, _ = _nrrd_fields(path)
    try:
        return [int(value) for value in fields.get("sizes", "").split()]
    except ValueError:
        return []


def available_memory() -> int | None:
    """Bytes of memory this process can still allocate, or ``None`` when unknown.

    The kernel's MemAvailable (free memory plus reclaimable caches; ``os.sysconf`` free pages
    where /proc is missing), lowered to what a container's cgroup limit leaves.
    """
    available = _meminfo_available()
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            available = None
    cgroup = _cgroup_headroom()
    if cgroup is not None:
        available = cgroup if available is None else min(available, cgroup)
    return available


def format_bytes(n: int | float) -> str:
    """``4096`` -> ``"4.1 KB"``: decimal units, one decimal."""
    units = ("B", "KB", "MB", "GB", "TB", "PB")
    value, unit = float(n), 0
    while abs(value) >= 1000 and unit < len(units) - 1:
        value, unit = value / 1000, unit + 1
    return f"{value:.0f} B" if unit == 0 else f"{value:.1f} {units[unit]}"


def _too_small(source: str, what: str, held: int, shape: Sequence[int], dtype: np.dtype, note: str = "") -> str:
    described = _n_voxels(shape) * dtype.itemsize
    return (
        f"{source}: {what} {format_bytes(held)}{note} but its header describes {_dims(shape)} {dtype.name} "
        f"voxels ({format_bytes(described)}): truncated or corrupt header"
    )


def _n_voxels(shape: Sequence[int]) -> int:
    return math.prod(int(n) for n in shape)  # Python ints: no overflow for absurd headers


def _dims(shape: Sequence[int]) -> str:
    return "x".join(str(int(n)) for n in shape)


def _axis_name(axis: int) -> str:
    return _AXIS_NAMES[axis] if axis < len(_AXIS_NAMES) else f"dimension {axis + 1}"


def _gzip_trailer_size(path: Path) -> int | None:
    with open(path, "rb") as file:
        file.seek(0, os.SEEK_END)
        if file.tell() < 18:  # smaller than an empty gzip member: let the reader report it
            return None
        file.seek(-4, os.SEEK_END)
        return int.from_bytes(file.read(4), "little")


def _count_gzip_bytes(path: Path, source: str, limit: int) -> tuple[int, bool]:
    """Decompressed size of a (multi-member) gzip file, counted up to ``limit``.

    Returns:
        The bytes counted, and whether the stream ended at the end of a gzip member (False for
        a file cut short).
    """
    total, started = 0, False
    decompressor = zlib.decompressobj(wbits=31)  # 31: expect a gzip header
    with open(path, "rb") as file:
        pending = b""
        while total < limit:
            if not pending:
                pending = file.read(_CHUNK)
                if not pending:
                    break
            try:
                total += len(decompressor.decompress(pending, _CHUNK))
            except zlib.error as err:
                raise InputError(f"{source}: cannot read NIfTI file (corrupt compressed data: {err})") from err
            started = True
            pending = decompressor.unconsumed_tail
            if decompressor.eof:  # end of one member; another may follow
                pending = decompressor.unused_data + pending
                decompressor, started = zlib.decompressobj(wbits=31), False
    return total, not started


def _nrrd_fields(path: Path) -> tuple[dict[str, str], int]:
    """Header fields (lower-case names) of a NRRD file, and the header's length in bytes.

    Empty for a file that does not start with the NRRD magic (ITK reports it); reads at most
    :data:`_CHUNK` bytes, so a huge file without line breaks is not read whole.
    """
    fields: dict[str, str] = {}
    length = 0
    with open(path, "rb") as file:
        if not file.readline(_CHUNK).startswith(b"NRRD"):
            return {}, 0
        file.seek(0)
        while length < _CHUNK:
            raw = file.readline(_CHUNK - length)
            length += len(raw)
            line = raw.decode("latin-1").strip()
            if not line:  # the blank line that ends the header, or the end of the file
                break
            if line.startswith("#") or ":=" in line or ": " not in line:
                continue  # comments, key/value pairs and the magic line
            name, value = line.split(": ", 1)
            fields[name.strip().lower()] = value.strip()
    return fields, length


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_headroom() -> int | None:
    """Limit minus usage of this container's memory cgroup (v2, then v1), or None if unlimited."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit_text = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or int(limit_text) >= 2**60:  # no limit set
            return None
        return max(int(limit_text) - usage, 0)
    return None
