"""Evaluation reports: the per-case CSV, markdown tables shaped like the papers', and PNG plots.

Means skip classes absent from a case's ground truth (the runner never scores those). Tables
give the mean Dice per dataset and class (rows) and model/protocol (columns), like VISTA3D
Table 1; ``iterative`` and ``correction5`` columns give the Dice after the last click and the best
Dice over all steps. Plots: mean Dice vs clicks (VISTA3D Fig. 5, with SegVol's correction steps),
per-class box plots, worst-case overlays.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from voxelprompt.evaluation.results import COLUMNS, ResultRow, iter_final, overlay_name
from voxelprompt.evaluation.runner import MODES, OVERLAY_DIR, STEPPED_MODES
from voxelprompt.imageio import write_text

__all__ = ["write_report", "write_csv", "markdown_tables"]

logger = logging.getLogger(__name__)

CSV_NAME = "results.csv"
TABLE_NAME = "summary.md"


def write_report(rows: Sequence[ResultRow], output: str | Path, datasets: Sequence[str] = (), worst: int = 3) -> list[Path]:
    """Write ``results.csv``, ``summary.md`` and the PNG plots under ``output``; returns the paths."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: (r.dataset, r.case, r.model, r.mode, r.class_id, r.step))
    written = [write_csv(rows, out / CSV_NAME)]
    table = out / TABLE_NAME
    write_text(table, markdown_tables(rows))
    written.append(table)
    if rows:
        written += _plots(rows, out, worst)
    logger.info("report written to %s (%d rows)", out, len(rows))
    return written


def write_csv(rows: Sequence[ResultRow], path: Path) -> Path:
    """One line per row, columns of :class:`ResultRow` (written to a temporary file, then renamed)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))
    os.replace(tmp, path)
    return path


def _column(row: ResultRow) -> str:
    return f"{row.model} {row.mode}"


def markdown_tables(rows: Sequence[ResultRow]) -> str:
    """Mean Dice (and NSD) per dataset and class, one column per model and protocol."""
    final = iter_final(rows)
    if not final:
        return "# Evaluation\n\nNo results yet.\n"
    columns: list[str] = []
    cells: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for row in sorted(final, key=lambda r: (r.model, _mode_order(r.mode))):
        names = [_column(row)]
        if row.mode in STEPPED_MODES:
            names = [f"{row.model} {row.mode}@{row.step}", f"{row.model} {row.mode} best@{row.step}"]
        for i, name in enumerate(names):
            if name not in columns:
                columns.append(name)
            value = row.best_dice if i == 1 else row.dice
            cells[(row.dataset, row.class_name, name)].append((value, row.nsd))
    lines = ["# Evaluation", "", "Mean Dice over cases (classes absent from a case's ground truth are not scored).", ""]
    lines += _summary(final, cells, columns)
    for dataset in sorted({r.dataset for r in final}):
        classes = sorted({(r.class_id, r.class_name) for r in final if r.dataset == dataset})
        cases = len({r.case for r in final if r.dataset == dataset})
        lines += [f"## {dataset} ({cases} case{'s' if cases != 1 else ''}): Dice", ""]
        lines += _table(dataset, classes, columns, cells, 0)
        lines += ["", f"## {dataset}: NSD", ""]
        lines += _table(dataset, classes, columns, cells, 1)
        lines.append("")
    return "\n".join(lines) + "\n"


def _mode_order(mode: str) -> int:
    return MODES.index(mode) if mode in MODES else len(MODES)


def _table(dataset, classes, columns, cells, which: int) -> list[str]:
    lines = ["| class | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    means: dict[str, list[float]] = defaultdict(list)
    for class_id, name in classes:
        values = []
        for col in columns:
            found = cells.get((dataset, name, col))
            if found:
                mean = float(np.mean([v[which] for v in found]))
                means[col].append(mean)
                values.append(f"{mean:.3f}")
            else:
                values.append("–")
        lines.append(f"| {name} ({class_id}) | " + " | ".join(values) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{np.mean(means[c]):.3f}**" if means[c] else "–" for c in columns) + " |")
    return lines


def _summary(final, cells, columns) -> list[str]:
    datasets = sorted({r.dataset for r in final})
    lines = ["## Mean Dice per dataset (mean over classes)", "", "| dataset | " + " | ".join(columns) + " |"]
    lines.append("|---|" + "---:|" * len(columns))
    for dataset in datasets:
        names = sorted({r.class_name for r in final if r.dataset == dataset})
        values = []
        for col in columns:
            per_class = [float(np.mean([v[0] for v in cells[(dataset, n, col)]])) for n in names if cells.get((dataset, n, col))]
            values.append(f"{np.mean(per_class):.3f}" if per_class else "–")
        lines.append(f"| {dataset} | " + " | ".join(values) + " |")
    return lines + [""]


# ---- plots -------------------------------------------------------------------------------------


def _plots(rows: Sequence[ResultRow], out: Path, worst: int) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    iterative = [r for r in rows if r.mode in STEPPED_MODES]
    if iterative:
        written.append(_dice_vs_clicks(iterative, out / "dice_vs_clicks.png", plt))
    final = iter_final(rows)
    for model, mode in sorted({(r.model, r.mode) for r in final}):
        group = [r for r in final if r.model == model and r.mode == mode]
        written.append(_box_plot(group, out / f"box_{_safe(model)}_{_safe(mode)}.png", f"{model} {mode}", plt))
        ranked = sorted(group, key=lambda r: (r.dice, r.case, r.class_id))[:worst]
        for rank, row in enumerate(ranked, start=1):
            path = _overlay(row, out, rank, plt)
            if path is not None:
                written.append(path)
    return written


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)


def _dice_vs_clicks(rows: Sequence[ResultRow], path: Path, plt) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for (dataset, model, mode) in sorted({(r.dataset, r.model, r.mode) for r in rows}):
        group = [r for r in rows if r.dataset == dataset and r.model == model and r.mode == mode]
        steps = sorted({r.step for r in group})
        dice = [np.mean([r.dice for r in group if r.step == s]) for s in steps]
        best = [np.mean([r.best_dice for r in group if r.step == s]) for s in steps]
        who = f"{model} / {dataset}" if mode == "iterative" else f"{model} {mode} / {dataset}"
        first = "1" if mode == "iterative" else "0"
        line = ax.plot(steps, best, marker="o", label=f"{who} (best over clicks {first}..j)")[0]
        ax.plot(steps, dice, linestyle="--", color=line.get_color(), alpha=0.6, label=f"{who} (after click j)")
    ax.set_xlabel("number of clicks j")
    ax.set_ylabel("mean Dice")
    ax.set_ylim(0, 1)
    ax.set_xticks(sorted({r.step for r in rows}))
    ax.grid(alpha=0.3)
    title = "Iterative clicks (VISTA3D Fig. 5 protocol)"
    if any(r.mode == "correction5" for r in rows):
        title = "Corrective clicks (VISTA3D Fig. 5; SegVol correction5: j corrections)"
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _box_plot(rows: Sequence[ResultRow], path: Path, title: str, plt) -> Path:
    names = sorted({r.class_name for r in rows})
    data = [[r.dice for r in rows if r.class_name == n] for n in names]
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * len(names) + 2), 4), dpi=120)
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("Dice")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Dice per class: {title}")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _overlay(row: ResultRow, out: Path, rank: int, plt) -> Path | None:
    data_path = out / OVERLAY_DIR / "data" / f"{overlay_name(row)}.npz"
    if not data_path.exists():
        return None
    data = np.load(data_path)
    sx, sy = (float(v) for v in data["spacing"])
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    # Arrays are (i, j); show i horizontally and j vertically at their physical aspect.
    ax.imshow(np.clip(data["image"].T, -160, 240), cmap="gray", origin="lower", aspect=sy / sx)
    for mask, color in ((data["gt"], "lime"), (data["pred"], "red")):
        if mask.any() and not mask.all():
            ax.contour(mask.T.astype(float), levels=[0.5], colors=color, linewidths=1.0, origin="lower")
    codes = str(data["orientation"]) if "orientation" in data else ""
    # Radiological view of an axial slice: patient's right on the left, anterior at the top.
    if codes[:1] == "R":
        ax.invert_xaxis()
    if codes[1:2] == "P":
        ax.invert_yaxis()
    ax.set_title(f"{row.case} {row.class_name} {row.model} {row.mode}\nDice {row.dice:.3f} (slice k={int(data['slice'])}; green truth, red prediction)", fontsize=8)
    ax.axis("off")
    fig.tight_layout()
    path = out / OVERLAY_DIR / f"worst_{_safe(row.model)}_{_safe(row.mode)}_{rank}.png"
    fig.savefig(path)
    plt.close(fig)
    return path
