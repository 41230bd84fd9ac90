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

SegVol protocols (models with a ``prompted`` method, :class:`~voxelprompt.families.segvol.evaluation.SegVolEvalModel`);
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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from voxelprompt.evaluation.adapters import EvalModel
from voxelprompt.evaluation.config import (
    CORRECTION_STARTS,
    CORRECTION_STEPS,
    MODES,
    SEGVOL_MODES,
    STEPPED_MODES,
    VISTA_MODES,
    EvalConfig,
)
from voxelprompt.evaluation.datasets import EvalDataset, read_case
from voxelprompt.evaluation.novel import is_novel, novel_message, novel_value
from voxelprompt.evaluation.overlays import save_overlay
from voxelprompt.evaluation.protocols import result_rows, run_protocol
from voxelprompt.evaluation.report import write_report
from voxelprompt.evaluation.results import RESULTS_LOG, ResultRow, ResultStore

# The protocol names and settings live in :mod:`voxelprompt.evaluation.config`; they stay
# importable from here, where callers of :func:`evaluate` look for them.
__all__ = [
    "MODES",
    "VISTA_MODES",
    "SEGVOL_MODES",
    "STEPPED_MODES",
    "CORRECTION_STEPS",
    "CORRECTION_STARTS",
    "EvalConfig",
    "evaluate",
]

logger = logging.getLogger(__name__)


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
            preds, steps = run_protocol(model, mode, class_id, gt, image, auto, config, dataset, case)
            seconds = time.perf_counter() - tic + (auto_seconds if mode == "auto" else 0.0)
            rows = result_rows(dataset, case, model, mode, class_id, preds, steps, gt, image, config, seconds)
            save_overlay(out, rows[-1], image, gt, preds[-1])
            store.append(rows)
            done.add(rows[-1].key)
        logger.info("%s/%s %s: %d (mode, class) results in %.1f s", dataset.name, case.name, model.name, len(todo), time.perf_counter() - start)
