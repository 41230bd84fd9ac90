"""The evaluation runner: models x datasets x protocols -> per-case, per-class Dice/NSD rows.

Protocols (``mode``), all clicks computed from the ground truth in input voxel indices, seeded:

* ``auto``: class prompts only (all classes of the case in one pass, argmax across them).
* ``point``: VISTA3D Table 1: one positive click per sliding window that holds the object, at the
  voxel nearest the centroid of the largest component of the eroded object inside that window.
* ``auto+point``: the automatic result corrected by one click per window, in the larger of the
  window's false-negative / false-positive components, merged by the network (Algorithm 1).
  ``oracle_best_of=3`` keeps the best of 3 seeded trials by Dice against the ground truth, as the
  official evaluation does; it uses the ground truth, so it is off by default.
* ``iterative``: N whole-volume clicks: the first at the centre of the eroded object, each next in
  a seeded random voxel of the larger eroded error component (VISTA3D's zero-shot protocol,
  ``val_multigpu_point_iterative.py``): each step evaluates the window of the new click and
  merges it into the previous result (point-only prompts with the class as ``prompt_class``). Rows for
  steps 1..N hold the Dice after each click and the best Dice over clicks 1..j.

SegVol protocols (models with a ``prompted`` method, :class:`~voxelprompt.evaluation.adapters.SegVolEvalModel`);
the text is always the catalog name of the class (the mapped VISTA3D id):

* ``box+text``: the exact bounding box of the ground truth plus the class name (SegVol's main setting).
* ``points7``: 1 positive + 3 positive/negative pairs (:func:`~voxelprompt.evaluation.clicks.segvol_points`,
  negatives anywhere in the background as SegVol's test script) plus the class name.
* ``correction5``: the five-step correction of SegVol's comparison (Table 2): start from the
  ``correction_start`` result (``box+text`` or ``points7``, the same prompts as that mode), then five
  rounds each adding one :func:`~voxelprompt.evaluation.clicks.correction_click` from the previous
  output and the ground truth; every round re-segments with the initial prompts plus all corrections.
  Rows: step 0 (the start) and steps 1..5, with the best Dice over steps 0..j.

Zero-shot (novel) objects, label values with no VISTA3D class (:mod:`voxelprompt.evaluation.novel`,
VISTA3D Sec. 5): with ``zero_shot`` on they run the click protocols (``point``, ``iterative``,
``points7``; ``correction5`` when it starts from ``points7``) and nothing else; VISTA3D gets their
object id (512 + value) as the prompt class, above ``last_supported``, so its zero-shot embedding,
and SegVol the same clicks without text. Their rows have ``zero_shot`` set and the report gives
them their own section. Which click protocols: ``zero_shot_modes``, by default those in ``modes``
(so a class-prompt-only run, ``auto`` or ``box+text``, still ignores them, and says so).

Modes a model does not support are skipped for it (VISTA3D: the SegVol modes; SegVol: ``auto``,
``point``, ``auto+point``; region growing: ``auto``, ``auto+point`` and the SegVol modes).

Results are appended to ``results.jsonl`` as each (case, class, mode) finishes, so a killed run
continues where it stopped; the CSV, markdown tables and plots are rewritten from that log.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxelprompt.errors import VoxelPromptError
from voxelprompt.evaluation.adapters import EvalModel
from voxelprompt.evaluation.clicks import (
    Click,
    bounding_box,
    center_click,
    clicks_to_points,
    correction_click,
    patch_center_clicks,
    patch_correction_clicks,
    segvol_points,
)
from voxelprompt.evaluation.datasets import EvalDataset, read_case
from voxelprompt.evaluation.metrics import DEFAULT_TOLERANCE_MM, ClassScore, score_class
from voxelprompt.evaluation.novel import ZERO_SHOT_MODES, is_novel, novel_message, novel_value, zero_shot_modes
from voxelprompt.evaluation.results import (
    RESULTS_LOG,
    ResultRow,
    ResultStore,
    overlay_name,
)
from voxelprompt.types import Volume

__all__ = ["MODES", "SEGVOL_MODES", "EvalConfig", "evaluate"]

logger = logging.getLogger(__name__)

#: Protocols of the VISTA3D paper (Table 1, Fig. 5) and of the SegVol paper (Table 2); a model runs
#: those its ``protocols`` name (for a family: its registry capabilities).
VISTA_MODES = ("auto", "point", "auto+point", "iterative")
SEGVOL_MODES = ("box+text", "points7", "correction5")
MODES = VISTA_MODES + SEGVOL_MODES
#: Modes whose rows are steps of one interactive session (``best_dice`` is the best so far).
STEPPED_MODES = ("iterative", "correction5")
CORRECTION_STEPS = 5
CORRECTION_STARTS = ("box+text", "points7")
OVERLAY_DIR = "overlays"


@dataclass(frozen=True)
class EvalConfig:
    """Protocol settings of one evaluation run.

    Args:
        modes: protocols to run, from :data:`MODES`.
        clicks: number of clicks of the ``iterative`` protocol.
        seed: base seed; each (dataset, case, class, mode) derives its own stream from it.
        tolerance_mm: NSD tolerance.
        oracle_best_of: ``auto+point`` trials kept by best Dice (1: no oracle; 3: official).
        classes: restrict to these model class ids (default: every mapped class in the case).
        max_cases: evaluate at most this many cases per dataset.
        progress: show a progress bar over cases.
        correction_start: prompts the ``correction5`` protocol starts from (``box+text`` or ``points7``).
        zero_shot: evaluate novel objects (label values with no VISTA3D class) with clicks;
            off: ignore them as before.
        zero_shot_modes: click protocols for novel objects, from :data:`ZERO_SHOT_MODES`; None:
            those of ``modes``.
    """

    modes: tuple[str, ...] = ("auto",)
    clicks: int = 10
    seed: int = 0
    tolerance_mm: float = DEFAULT_TOLERANCE_MM
    oracle_best_of: int = 1
    classes: tuple[int, ...] | None = None
    max_cases: int | None = None
    progress: bool = True
    correction_start: str = "box+text"
    zero_shot: bool = True
    zero_shot_modes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise VoxelPromptError(f"unknown mode {unknown[0] if unknown else '(none)'!r}; choose from {', '.join(MODES)}")
        if self.clicks < 1:
            raise VoxelPromptError(f"clicks must be >= 1, got {self.clicks}")
        if self.oracle_best_of < 1:
            raise VoxelPromptError(f"oracle_best_of must be >= 1, got {self.oracle_best_of}")
        if self.max_cases is not None and self.max_cases < 1:
            raise VoxelPromptError(f"max_cases must be >= 1, got {self.max_cases}")
        if self.correction_start not in CORRECTION_STARTS:
            raise VoxelPromptError(
                f"correction_start must be one of {', '.join(CORRECTION_STARTS)}, got {self.correction_start!r}"
            )
        bad = [m for m in self.zero_shot_modes or () if m not in ZERO_SHOT_MODES]
        if bad:
            raise VoxelPromptError(f"zero-shot mode {bad[0]!r} is not a click protocol; choose from {', '.join(ZERO_SHOT_MODES)}")

    @property
    def novel_modes(self) -> tuple[str, ...]:
        """Protocols novel objects run (empty: they are not evaluated)."""
        if not self.zero_shot:
            return ()
        return zero_shot_modes(self.modes if self.zero_shot_modes is None else self.zero_shot_modes, self.correction_start)


def _rng(seed: int, *parts: object) -> np.random.Generator:
    """A stream that depends only on the seed and the names, not on the order of evaluation."""
    return np.random.default_rng([seed, zlib.crc32("/".join(str(p) for p in parts).encode())])


def _score(pred: np.ndarray, gt: np.ndarray, image: Volume, tolerance_mm: float) -> ClassScore:
    return score_class(pred.astype(np.uint8), gt.astype(np.uint8), 1, image.spacing, tolerance_mm)


def evaluate(
    models: Sequence[EvalModel],
    datasets: Sequence[EvalDataset],
    output: str | Path,
    config: EvalConfig = EvalConfig(),
) -> list[ResultRow]:
    """Run every model on every case and protocol; write results and reports under ``output``.

    Finished (case, class, model, mode) groups in ``output/results.jsonl`` are skipped, so a
    re-run after an interruption only does what is missing.

    Returns:
        All rows of the log (earlier runs included).
    """
    from voxelprompt.evaluation.report import write_report

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / RESULTS_LOG)
    done = store.finished()
    known = store.case_classes()
    if done:
        logger.info("resuming: %d finished (case, class, model, mode) groups in %s", len(done), store.path)
    for mode in dict.fromkeys((*config.modes, *config.novel_modes)):
        if not any(_wanted(m, mode) for m in models):
            logger.warning("no model runs the %s protocol; it is skipped", mode)
    cases = [(d, c) for d in datasets for c in d.cases[: config.max_cases]]
    announced: set[tuple[str, int]] = set()
    with _progress(config.progress) as bar:
        task = bar.add_task("cases", total=len(cases)) if bar else None
        for dataset, case in cases:
            _evaluate_case(models, dataset, case, config, store, (done, known, announced), out)
            if bar:
                bar.advance(task)
    rows = store.rows()
    write_report(rows, out, datasets=[d.name for d in datasets])
    return rows


def _progress(enabled: bool):
    if not enabled:
        from contextlib import nullcontext

        return nullcontext(None)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def _wanted(model: EvalModel, mode: str) -> bool:
    return mode in model.protocols


def _todo(model, dataset, case, config: EvalConfig, classes, done) -> list[tuple[str, int]]:
    """(mode, object) pairs still to run: classes under ``modes``, novel objects under ``novel_modes``."""
    return [
        (mode, c)
        for mode in dict.fromkeys((*config.modes, *config.novel_modes))
        if _wanted(model, mode)
        for c in classes
        if mode in (config.novel_modes if is_novel(c) else config.modes)
        and (dataset.name, case.name, model.name, mode, c) not in done
    ]


def _selected(present, config: EvalConfig) -> list[int]:
    """Objects of a case to evaluate: ``classes`` if given (novel objects only when listed)."""
    return sorted(set(present) if config.classes is None else set(present) & set(config.classes))


def _announce_novel(dataset: EvalDataset, objects, config: EvalConfig, models, announced: set) -> None:
    """Say once per dataset and object what happens to novel objects (evaluated or ignored, and why)."""
    new = [o for o in objects if is_novel(o) and (dataset.name, o) not in announced]
    if new:
        announced.update((dataset.name, o) for o in new)
        names = [f"{dataset.mapping.name(o)} (value {novel_value(o)})" for o in new]
        runs = [m for m in config.novel_modes if any(_wanted(model, m) for model in models)]
        level, text = novel_message(dataset.name, names, runs, config.zero_shot, config.modes, config.novel_modes)
        logger.log(level, text)


def _evaluate_case(models, dataset: EvalDataset, case, config: EvalConfig, store: ResultStore, state, out: Path) -> None:
    done, known, announced = state
    present = known.get((dataset.name, case.name))
    if present is not None:
        classes = _selected(present, config)
        if not any(_todo(m, dataset, case, config, classes, done) for m in models):
            return  # finished in an earlier run: not even read again
    image, labels = read_case(case, dataset.mapping)
    present = sorted(set(np.unique(labels.array).tolist()) - {0})
    if (dataset.name, case.name) not in known:
        store.append_case(dataset.name, case.name, present)
        known[(dataset.name, case.name)] = tuple(present)
    classes = _selected(present, config)
    _announce_novel(dataset, classes, config, models, announced)
    if not classes:
        logger.warning("%s/%s: none of the evaluated classes is present; skipped", dataset.name, case.name)
        return
    for model in models:
        todo = _todo(model, dataset, case, config, classes, done)
        if not todo:
            continue
        start = time.perf_counter()
        model.prepare(image)
        auto, auto_seconds = None, 0.0
        if any(mode in ("auto", "auto+point") for mode, _ in todo):
            auto_classes = model.auto_classes([c for c in classes if not is_novel(c)])
            auto = model.auto(auto_classes) if auto_classes else np.zeros(image.shape, np.uint8)
            auto_seconds = time.perf_counter() - start
        for mode, class_id in todo:
            tic = time.perf_counter()
            gt = labels.array == class_id
            if mode == "auto":
                pred, steps = auto == class_id, [(0, 0)]
                preds = [pred]
            elif mode == "point":
                clicks = patch_center_clicks(gt, model.patch_boxes())
                preds = [model.patch_clicks(class_id, clicks, with_auto=False)]
                steps = [(1, sum(c is not None for c in clicks))]
            elif mode == "auto+point":
                preds, steps = _auto_point(model, auto == class_id, gt, image, class_id, config, dataset, case)
            elif mode in SEGVOL_MODES:
                preds, steps = _segvol(model, mode, gt, class_id, config, dataset, case)
            else:
                preds, steps = _iterative(model, gt, image, class_id, config, dataset, case)
            seconds = time.perf_counter() - tic + (auto_seconds if mode == "auto" else 0.0)
            rows = _rows(dataset, case, model, mode, class_id, preds, steps, gt, image, config, seconds)
            _save_overlay(out, rows[-1], image, gt, preds[-1])
            store.append(rows)
            done.add(rows[-1].key)
        logger.info("%s/%s %s: %d (mode, class) results in %.1f s", dataset.name, case.name, model.name, len(todo), time.perf_counter() - start)


def _auto_point(model, auto_mask, gt, image, class_id, config: EvalConfig, dataset, case):
    best = None
    for trial in range(config.oracle_best_of):
        rng = _rng(config.seed, dataset.name, case.name, class_id, "auto+point", trial)
        clicks = patch_correction_clicks(auto_mask, gt, model.patch_boxes(), rng)
        pred = model.patch_clicks(class_id, clicks, with_auto=True)
        value = _score(pred, gt, image, config.tolerance_mm).dice
        if best is None or value > best[0]:
            best = (value, pred, sum(c is not None for c in clicks))
    return [best[1]], [(1, best[2])]


def _iterative(model, gt, image, class_id, config: EvalConfig, dataset, case):
    rng = _rng(config.seed, dataset.name, case.name, class_id, "iterative")
    clicks = [_first_click(gt)]
    preds, steps = [], []
    pred, state = None, None
    for step in range(1, config.clicks + 1):
        added = step == 1
        if step > 1:
            nxt = correction_click(pred, gt, rng)
            if nxt is not None:  # None: the prediction is already perfect, nothing to click
                clicks.append(nxt)
                added = True
        if added:
            pred, state = model.clicks(class_id, clicks_to_points(clicks), state)
        preds.append(pred)
        steps.append((step, len(clicks)))
    return preds, steps


def _segvol_start(model, start: str, gt, class_id, config: EvalConfig, dataset, case):
    """The ``box+text`` or ``points7`` prompts and result; returns (mask, box, clicks)."""
    text = _text(class_id)
    if start == "box+text":
        box = bounding_box(gt)
        return model.prompted(class_id, text, box=box), box, []
    clicks = segvol_points(gt, _rng(config.seed, dataset.name, case.name, class_id, "points7"))
    return model.prompted(class_id, text, points=clicks_to_points(clicks)), None, clicks


def _segvol(model, mode: str, gt, class_id, config: EvalConfig, dataset, case):
    start = mode if mode != "correction5" else config.correction_start
    pred, box, clicks = _segvol_start(model, start, gt, class_id, config, dataset, case)
    preds, steps = [pred], [(0 if mode == "correction5" else 1, len(clicks))]
    if mode != "correction5":
        return preds, steps
    rng = _rng(config.seed, dataset.name, case.name, class_id, "correction5")
    text = _text(class_id)
    for step in range(1, CORRECTION_STEPS + 1):
        nxt = correction_click(pred, gt, rng)
        if nxt is not None:  # None: already perfect, nothing to correct
            clicks = [*clicks, nxt]
            pred = model.prompted(class_id, text, box=box, points=clicks_to_points(clicks))
        preds.append(pred)
        steps.append((step, len(clicks)))
    return preds, steps


def _text(class_id: int) -> str | None:
    """SegVol's text prompt: the catalog name of the (mapped) VISTA3D class id; none for a novel object."""
    from voxelprompt.catalog import vista3d_catalog

    return None if is_novel(class_id) else vista3d_catalog().name(int(class_id))


def _first_click(gt: np.ndarray) -> Click:
    return Click(coord=center_click(gt), label=1)


def _rows(dataset, case, model, mode, class_id, preds, steps, gt, image, config, seconds) -> list[ResultRow]:
    rows, best = [], 0.0
    for pred, (step, n_clicks) in zip(preds, steps):
        score = _score(pred, gt, image, config.tolerance_mm)
        best = max(best, score.dice)
        rows.append(
            ResultRow(
                dataset=dataset.name,
                case=case.name,
                model=model.name,
                mode=mode,
                class_id=int(class_id),
                class_name=dataset.mapping.name(class_id),
                step=int(step),
                clicks=int(n_clicks),
                dice=round(score.dice, 6),
                nsd=round(score.nsd, 6),
                best_dice=round(best if mode in STEPPED_MODES else score.dice, 6),
                reference_voxels=score.reference_voxels,
                predicted_voxels=score.predicted_voxels,
                seconds=round(seconds, 3),
                zero_shot=is_novel(class_id),
            )
        )
    return rows


def _save_overlay(out: Path, row: ResultRow, image: Volume, gt: np.ndarray, pred: np.ndarray) -> None:
    """Keep the axial slice through most of the object, to draw the worst cases later."""
    k = int(np.argmax(gt.sum(axis=(0, 1))))
    folder = out / OVERLAY_DIR / "data"
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        folder / f"{overlay_name(row)}.npz",
        image=image.array[:, :, k].astype(np.float32),
        gt=gt[:, :, k],
        pred=pred[:, :, k],
        spacing=np.asarray(image.spacing[:2]),
        orientation=image.orientation,
        slice=k,
    )
