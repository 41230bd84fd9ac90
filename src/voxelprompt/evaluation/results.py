"""The evaluation's result rows and their append-only log, which makes a killed run resumable."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

__all__ = ["RESULTS_LOG", "COLUMNS", "ResultRow", "ResultStore", "overlay_name", "iter_final"]

RESULTS_LOG = "results.jsonl"


@dataclass(frozen=True)
class ResultRow:
    """One score: a case, class, model and mode, after ``step`` clicks (0 for ``auto``).

    ``clicks`` counts the clicks given (per-window protocols: windows that received one);
    ``best_dice`` is the best Dice over steps 1..step (``correction5``: 0..step; equal to ``dice``
    outside :data:`STEPPED_MODES`). ``zero_shot`` marks a novel object (a label value with no
    VISTA3D class, :mod:`voxelprompt.evaluation.novel`): ``class_id`` is then its object id
    (512 + the label value) and ``class_name`` the dataset's name for it; it was prompted by
    clicks only (VISTA3D's zero-shot embedding, SegVol without text).
    """

    dataset: str
    case: str
    model: str
    mode: str
    class_id: int
    class_name: str
    step: int
    clicks: int
    dice: float
    nsd: float
    best_dice: float
    reference_voxels: int
    predicted_voxels: int
    seconds: float
    zero_shot: bool = False  # last, with a default: logs written before it still read

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        return (self.dataset, self.case, self.model, self.mode, self.class_id)


COLUMNS = tuple(f.name for f in fields(ResultRow))


class ResultStore:
    """Append-only JSON-lines log of :class:`ResultRow` (one line per row, flushed per group)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def rows(self) -> list[ResultRow]:
        """Rows logged so far; a line cut short by a killed run is ignored, later duplicates dropped."""
        if not self.path.exists():
            return []
        by_key: dict[tuple, ResultRow] = {}
        for line in self.path.read_text().splitlines():
            try:
                row = ResultRow(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue
            by_key.setdefault((*row.key, row.step), row)
        return list(by_key.values())

    def finished(self) -> set[tuple[str, str, str, str, int]]:
        return {row.key for row in self.rows()}

    def case_classes(self) -> dict[tuple[str, str], tuple[int, ...]]:
        """Classes present in each case's ground truth, as logged, so finished cases need no reading."""
        found: dict[tuple[str, str], tuple[int, ...]] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)["case_classes"]
                    found[(entry["dataset"], entry["case"])] = tuple(int(c) for c in entry["classes"])
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
        return found

    def append_case(self, dataset: str, case: str, classes: Sequence[int]) -> None:
        self._write(json.dumps({"case_classes": {"dataset": dataset, "case": case, "classes": list(classes)}}) + "\n")

    def append(self, rows: Sequence[ResultRow]) -> None:
        self._write("".join(json.dumps(asdict(r)) + "\n" for r in rows))

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(text)
            handle.flush()


def overlay_name(row: ResultRow) -> str:
    raw = f"{row.dataset}__{row.case}__{row.model}__{row.mode}__{row.class_id}"
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in raw)


def iter_final(rows: Iterable[ResultRow]) -> list[ResultRow]:
    """The last step of each (case, class, model, mode) group."""
    last: dict[tuple, ResultRow] = {}
    for row in rows:
        if row.key not in last or row.step > last[row.key].step:
            last[row.key] = row
    return list(last.values())
