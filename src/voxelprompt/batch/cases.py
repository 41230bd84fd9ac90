"""The cases of a cohort: what an INPUT (a folder of images, a folder of DICOM studies, a datalist
JSON or a CSV of paths) holds, each with a stable, unique case id and its content hash.

Case ids come from the path only (never from the order of discovery), so the same file keeps its
id, and its outputs their folder, across runs.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from voxelprompt.datasets import IMAGE_SUFFIXES, Case, entry_case, image_stem, read_datalist
from voxelprompt.errors import InputError

__all__ = ["Case", "discover_cases", "cases_from_folders", "hash_files", "SERIES_ONLY", "SERIES_MOST_SLICES", "IMAGE_SUFFIXES"]

logger = logging.getLogger(__name__)

#: ``--series`` rules for a DICOM case folder holding several series: ``only`` (the case fails,
#: naming its series), ``most-slices`` (the series with most slices; ties: the first UID in sorted
#: order). Any other value is a SeriesInstanceUID to read in every case folder.
SERIES_ONLY = "only"
SERIES_MOST_SLICES = "most-slices"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HASH_CHUNK = 1 << 20


def discover_cases(input: str | os.PathLike, series: str = SERIES_ONLY) -> list[Case]:  # noqa: A002
    """The cases an INPUT holds (:class:`~voxelprompt.datasets.Case`, ``name`` the case id), sorted by case id.

    * a folder holding ``.nii``/``.nii.gz``/``.nrrd``/``.nhdr`` files: one case per file (not
      searched recursively); case id: the file name without its ending.
    * any other folder: every folder below it (itself included) that directly holds DICOM files
      is one case (one series); case id: its path relative to INPUT, ``/`` written ``__``
      (the input folder itself: its own name).
    * a ``.json`` datalist (MSD / VISTA style, see :mod:`voxelprompt.datasets.datalist`): the
      ``image`` of every entry of ``training``, ``validation`` and ``testing`` (entries may be
      plain path strings), relative to the JSON's folder; labels are ignored.
    * a ``.csv``: a column named ``image`` (or ``path``), else the first column of a file without
      a header; an optional ``case_id`` (or ``id``) column names the cases; relative paths are
      relative to the CSV's folder.

    Case ids of listed files are their paths relative to the files' common folder, without the
    image ending, ``/`` written ``__``, other unsafe characters ``_``.

    Args:
        input: the INPUT argument.
        series: the rule for a DICOM case folder holding several series (see :data:`SERIES_ONLY`).

    Raises:
        InputError: missing INPUT, no cases found, an unreadable list, or two inputs with the same
            case id (both named).
    """
    root = Path(input)
    if not root.exists():
        raise InputError(f"{root}: input not found")
    if root.is_dir():
        root = root.resolve()  # case ids are paths relative to it, and inputs are resolved
        images = sorted(p for p in root.iterdir() if p.is_file() and _is_image(p))
        cases = _from_paths(images, root) if images else _dicom_cases(root, series)
        ignored = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if images else []
        if ignored:
            logger.warning(
                "WARNING: %s holds image files, so its sub-folders are not read (%s); give a folder of DICOM studies on its own",
                root, ", ".join(ignored[:5]) + (" ..." if len(ignored) > 5 else ""),
            )  # fmt: skip
    elif root.name.lower().endswith(".json"):
        cases = _from_paths(_datalist_images(root), None)
    elif root.name.lower().endswith(".csv"):
        cases = _from_csv(root)
    else:
        raise InputError(f"{root}: INPUT must be a folder, a datalist .json or a .csv of paths")
    if not cases:
        raise InputError(f"{root}: no cases found (no .nii/.nii.gz/.nrrd files and no DICOM series)")
    _check_unique(cases)
    return sorted(cases, key=lambda c: c.case_id)


def cases_from_folders(folders: Mapping[str, Path]) -> list[Case]:
    """DICOM cases of the given series folders, one each, under the given case ids (made safe),
    sorted by case id (a PACS cohort: SeriesInstanceUID -> its retrieved folder).

    Raises:
        InputError: a folder without a DICOM series, or two ids that are one when made safe.
    """
    cases = []
    for case_id, folder in folders.items():
        case = _dicom_case(_safe_id(case_id), Path(folder).resolve(), SERIES_ONLY)
        if case is None:
            raise InputError(f"{folder}: holds no DICOM series")
        cases.append(case)
    _check_unique(cases)
    return sorted(cases, key=lambda c: c.case_id)


def hash_files(files: Iterable[Path], names: Sequence[str] | None = None) -> str:
    """sha256 over the files' bytes (and, for several files, their names), hex.

    Raises:
        InputError: a file that cannot be read.
    """
    files = list(files)
    digest = hashlib.sha256()
    for i, path in enumerate(files):
        if len(files) > 1:
            digest.update(((names[i] if names else path.name) + "\0").encode())
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(_HASH_CHUNK):
                    digest.update(chunk)
        except OSError as err:
            raise InputError(f"{path}: cannot read ({err.strerror or err})") from err
    return digest.hexdigest()


def _is_image(path: Path) -> bool:
    return path.name.lower().endswith(IMAGE_SUFFIXES) and not path.name.startswith(".")


def _safe_id(text: str) -> str:
    return _UNSAFE.sub("_", text.replace(os.sep, "__").replace("/", "__")).strip("._") or "case"


def _from_paths(paths: Sequence[Path], base: Path | None, ids: Sequence[str | None] | None = None) -> list[Case]:
    paths = [p.resolve() for p in paths]
    if base is None and paths:
        base = Path(os.path.commonpath([str(p.parent) for p in paths]))
    cases = []
    for i, path in enumerate(paths):
        given = ids[i] if ids else None
        case_id = _safe_id(given) if given else _safe_id(image_stem(str(path.relative_to(base))))
        if path.is_dir():
            cases.append(_dicom_case(case_id, path, SERIES_ONLY))
        else:
            cases.append(Case(image=path, name=case_id, files=(path,)))
    return cases


def _dicom_cases(root: Path, series: str) -> list[Case]:
    cases = []
    for folder, _, files in os.walk(root):
        if not any(not f.startswith(".") for f in files):
            continue
        path = Path(folder)
        relative = path.relative_to(root)
        case_id = _safe_id(root.resolve().name if str(relative) == "." else str(relative))
        case = _dicom_case(case_id, path.resolve(), series)
        if case is not None:
            cases.append(case)
    return cases


def _dicom_case(case_id: str, folder: Path, series: str) -> Case | None:
    """The case of one DICOM folder; None when the folder holds no DICOM series."""
    from voxelprompt.imageio import list_dicom_series

    found = list_dicom_series(folder)
    if not found:
        return None
    chosen, error = _choose_series(found, series)
    if chosen is None:
        return Case(image=folder, name=case_id, error=error)
    import SimpleITK as sitk

    files = tuple(Path(f) for f in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), chosen.uid))
    uid = chosen.uid if len(found) > 1 else None
    return Case(image=folder, name=case_id, files=files, series_uid=uid)


def _choose_series(found, series: str):
    described = ", ".join(f"{s.uid!r} ({s.description or 'no description'}, {s.n_slices} slices)" for s in found)
    if series == SERIES_MOST_SLICES:
        return max(sorted(found, key=lambda s: s.uid), key=lambda s: s.n_slices), None
    if series == SERIES_ONLY:
        if len(found) == 1:
            return found[0], None
        return None, f"folder holds {len(found)} DICOM series: {described}; choose with --series UID or most-slices"
    match = [s for s in found if s.uid == series]
    if not match:
        return None, f"no DICOM series {series!r} in folder; it holds {described}"
    return match[0], None


def _datalist_images(path: Path) -> list[Path]:
    """The ``image`` of every entry of ``training``, ``validation`` and ``testing`` (plain path
    strings allowed), resolved against the datalist's folder; labels are ignored."""
    datalist = read_datalist(path)
    images = []
    for split in ("training", "validation", "testing"):
        for i, entry in enumerate(datalist.entries(split)):
            name = datalist.entry_name(split, i)
            images.append(entry_case(entry, path.parent, name, require_label=False, allow_string=True).image)
    return images


def _from_csv(path: Path) -> list[Case]:
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{path}: cannot read CSV ({err})") from err
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(k) for k in ("image", "path") if k in header), None)
    id_column = next((header.index(k) for k in ("case_id", "id") if k in header), None)
    if column is None:
        if any(_looks_like_path(cell) for cell in rows[0][:1]):
            column, body = 0, rows
        else:
            raise InputError(f"{path}: CSV needs a column named 'image' (or 'path') holding the images' paths")
    else:
        body = rows[1:]
    paths, ids = [], []
    for n, row in enumerate(body, start=2 if body is not rows else 1):
        if column >= len(row) or not row[column].strip():
            raise InputError(f"{path}: line {n} has no image path")
        paths.append(path.parent / row[column].strip())
        ids.append(row[id_column].strip() if id_column is not None and id_column < len(row) else None)
    return _from_paths(paths, None, ids if id_column is not None else None)


def _looks_like_path(text: str) -> bool:
    return "/" in text or _is_image(Path(text.strip()))


def _check_unique(cases: Sequence[Case]) -> None:
    seen: dict[str, Case] = {}
    for case in cases:
        if case.case_id in seen:
            first = seen[case.case_id].path
            raise InputError(f"two inputs get case id {case.case_id!r}: {first} and {case.path}; rename one")
        seen[case.case_id] = case
