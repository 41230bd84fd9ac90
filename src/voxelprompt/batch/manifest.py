"""The run manifest (``OUT_DIR/manifest.json``) and ``failures.csv``: what a cohort run has finished,
with which settings, so that a rerun skips finished cases and refuses changed settings.

Both files are rewritten whole, atomically (temporary file, then ``os.replace``), after every
case, so a run killed at any moment leaves either the old or the new version. Only the
coordinator writes them; workers return small records.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from voxelprompt.errors import InputError

__all__ = [
    "CaseRecord",
    "Failure",
    "RunManifest",
    "MANIFEST_NAME",
    "FAILURES_NAME",
    "write_failures",
    "file_sha256",
    "settings_differ",
]

MANIFEST_NAME = "manifest.json"
FAILURES_NAME = "failures.csv"
_VERSION = 1


@dataclass(frozen=True)
class CaseRecord:
    """A finished case.

    Args:
        case_id: the case's id (its output folder under OUT_DIR).
        input: the input path as given.
        input_sha256: sha256 of the input's bytes (see :func:`voxelprompt.batch.cases.hash_files`).
        outputs: file name in the case folder -> sha256 of its bytes.
        seconds: wall time of the case on its worker.
        series_uid: the DICOM series read, when the folder held several.
    """

    case_id: str
    input: str
    input_sha256: str
    outputs: Mapping[str, str]
    seconds: float = 0.0
    series_uid: str | None = None


@dataclass(frozen=True)
class Failure:
    """A case that failed: its id, input and one-line error."""

    case_id: str
    input: str
    error: str


@dataclass
class RunManifest:
    """The settings of a run and its finished cases.

    Args:
        settings: plain JSON data that must match for a rerun to resume (tasks with model
            hashes and options, output kinds, series rule).
        created: UTC time the run (these settings) started, ISO 8601; outputs that carry a date
            (DICOM-SEG) take this one, so reruns give identical bytes.
        cases: finished cases by id.
    """

    settings: dict[str, Any]
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    cases: dict[str, CaseRecord] = field(default_factory=dict)

    @property
    def settings_sha256(self) -> str:
        """sha256 of the settings' canonical JSON (seeds deterministic UIDs of derived objects)."""
        return hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()

    def is_finished(self, case_id: str, input_sha256: str, folder: Path) -> bool:
        """Whether ``case_id`` is recorded for this input and its output files are all still there
        with the recorded bytes."""
        record = self.cases.get(case_id)
        if record is None or record.input_sha256 != input_sha256:
            return False
        return all(
            (folder / name).is_file() and file_sha256(folder / name) == digest for name, digest in record.outputs.items()
        )

    @classmethod
    def load(cls, path: Path) -> RunManifest | None:
        """The manifest at ``path``; None when there is none.

        Raises:
            InputError: a manifest that cannot be read (not written by this version).
        """
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            cases = {c["case_id"]: CaseRecord(**c) for c in data["cases"]}
            if data.get("version") != _VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {_VERSION}")
            return cls(settings=data["settings"], created=data["created"], cases=cases)
        except (OSError, ValueError, KeyError, TypeError) as err:
            reason = " ".join(str(err).split())
            raise InputError(f"{path}: cannot read run manifest ({reason}); use another -o or --overwrite") from None

    def save(self, path: Path) -> None:
        """Write atomically (the cases sorted by id)."""
        from voxelprompt.imageio import write_text

        data = {
            "version": _VERSION,
            "created": self.created,
            "settings": self.settings,
            "cases": [dataclasses.asdict(self.cases[k]) for k in sorted(self.cases)],
        }
        write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def settings_differ(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The top-level settings (and, for tasks, which task fields) that differ."""
    keys = sorted(set(old) | set(new))
    out = []
    for key in keys:
        if old.get(key) == new.get(key):
            continue
        before, after = old.get(key), new.get(key)
        if key == "tasks" and isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
            for i, (a, b) in enumerate(zip(before, after, strict=True)):
                out += [f"task {i + 1} {f}" for f in sorted(set(a) | set(b)) if a.get(f) != b.get(f)]
        else:
            out.append(key)
    return out


def write_failures(path: Path, failures: Iterable[Failure]) -> None:
    """``failures.csv``: ``case_id,input,error``, sorted by case id (a header alone when none)."""
    from voxelprompt.imageio import write_text

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["case_id", "input", "error"])
    for f in sorted(failures, key=lambda f: f.case_id):
        writer.writerow([f.case_id, f.input, f.error])
    write_text(path, buffer.getvalue())


def file_sha256(path: Path) -> str:
    """sha256 of one file's bytes, hex."""
    from voxelprompt.batch.cases import hash_files

    return hash_files([Path(os.fspath(path))])
