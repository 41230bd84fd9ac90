"""Evaluation reports: the per-case CSV, markdown tables shaped like the papers', and PNG plots.

Means skip classes absent from a case's ground truth (the runner never scores those). Tables
give the mean Dice per dataset and class (rows) and model/protocol (columns), like VISTA3D
Table 1; ``iterative`` and ``correction5`` columns give the Dice after the last click and the best
Dice over all steps. Plots: mean Dice vs clicks (VISTA3D Fig. 5, with SegVol's correction steps),
per-class box plots, worst-case overlays.

Zero-shot (novel) objects, label values with no VISTA3D class prompted by clicks only, get their own
section "Zero-shot (novel objects)": Dice per object after 1, 3 and 5 clicks (and the last) of each
click protocol, as VISTA3D's Fig. 5, and their own Dice-vs-clicks plot and box plots; in the CSV
and JSON rows their ``zero_shot`` field is true.
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

from voxelprompt.evaluation.novel import novel_value
from voxelprompt.evaluation.results import COLUMNS, ResultRow, iter_final
from voxelprompt.evaluation.config import MODES, STEPPED_MODES
from voxelprompt.evaluation.overlays import OVERLAY_DIR, overlay_data_path
from voxelprompt.imageio import write_text

__all__ = ["write_report", "write_csv", "markdown_tables"]

logger = logging.getLogger(__name__)

CSV_NAME = "results.csv"
TABLE_NAME = "summary.md"
#: Click counts the zero-shot tables show (plus each protocol's last step), as VISTA3D's Fig. 5 axis.
ZERO_SHOT_STEPS = (1, 3, 5)
ZERO_SHOT_TITLE = "Zero-shot (novel objects)"


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
    """Mean Dice (and NSD) per dataset and class, one column per model and protocol; then the
    zero-shot section (Dice per novel object after 1, 3, 5 clicks)."""
    final = iter_final(rows)
    if not final:
        return "# Evaluation\n\nNo results yet.\n"
    lines = ["# Evaluation", ""]
    supported = [r for r in final if not r.zero_shot]
    if supported:
        lines += _class_tables(supported)
    novel = [r for r in rows if r.zero_shot]
    if novel:
        lines += _zero_shot_tables(novel)
    return "\n".join(lines) + "\n"


def _class_tables(final: Sequence[ResultRow]) -> list[str]:
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
    lines = ["Mean Dice over cases (classes absent from a case's ground truth are not scored).", ""]
    lines += _summary(final, cells, columns)
    for dataset in sorted({r.dataset for r in final}):
        classes = sorted({(r.class_id, r.class_name) for r in final if r.dataset == dataset})
        cases = len({r.case for r in final if r.dataset == dataset})
        lines += [f"## {dataset} ({cases} case{'s' if cases != 1 else ''}): Dice", ""]
        lines += _table(dataset, classes, columns, cells, 0)
        lines += ["", f"## {dataset}: NSD", ""]
        lines += _table(dataset, classes, columns, cells, 1)
        lines.append("")
    return lines


def _zero_shot_columns(rows: Sequence[ResultRow]) -> list[tuple[str, str, str, int, bool]]:
    """(title, model, mode, step, best) per column: stepped protocols at 1, 3, 5 and their last step."""
    columns = []
    for model, mode in sorted({(r.model, r.mode) for r in rows}, key=lambda k: (k[0], _mode_order(k[1]))):
        steps = sorted({r.step for r in rows if r.model == model and r.mode == mode})
        if mode not in STEPPED_MODES:
            columns.append((f"{model} {mode}", model, mode, steps[-1], False))
            continue
        for step in (s for s in steps if s in ZERO_SHOT_STEPS or s == steps[-1]):
            columns.append((f"{model} {mode}@{step}", model, mode, step, False))
        columns.append((f"{model} {mode} best@{steps[-1]}", model, mode, steps[-1], True))
    return columns


def _zero_shot_tables(rows: Sequence[ResultRow]) -> list[str]:
    """Mean Dice over cases per novel object, and per dataset (mean over objects)."""
    columns = _zero_shot_columns(rows)
    cells: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    for row in rows:
        for title, model, mode, step, best in columns:
            if (row.model, row.mode, row.step) == (model, mode, step):
                cells[(row.dataset, row.class_id, title)].append(row.best_dice if best else row.dice)
    titles = [c[0] for c in columns]
    rule = "|---|" + "---:|" * len(titles)

    def head(first: str) -> str:
        return f"| {first} | " + " | ".join(titles) + " |"

    lines = [
        f"## {ZERO_SHOT_TITLE}",
        "",
        "Label values with no VISTA3D class, one object per value, prompted by clicks only (VISTA3D: its "
        "zero-shot class id; SegVol: no text). `@j`: mean Dice over cases after j clicks (`correction5`: "
        "j corrections after its 7 points); `best@j`: best Dice over clicks 1..j (VISTA3D Fig. 5).",
        "",
        "Mean Dice per dataset (mean over novel objects):",
        "",
        head("dataset"),
        rule,
    ]
    sections = []
    for dataset in sorted({r.dataset for r in rows}):
        objects = sorted({(r.class_id, r.class_name) for r in rows if r.dataset == dataset})
        means: dict[str, list[float]] = defaultdict(list)
        cases = len({r.case for r in rows if r.dataset == dataset})
        table = [f"### {dataset} ({cases} case{'s' if cases != 1 else ''}): Dice of novel objects", ""]
        table += [head("object (label value)"), rule]
        for object_id, name in objects:
            values = []
            for title in titles:
                found = cells.get((dataset, object_id, title))
                if found:
                    means[title].append(float(np.mean(found)))
                values.append(f"{np.mean(found):.3f}" if found else "–")
            table.append(f"| {name} ({novel_value(object_id)}) | " + " | ".join(values) + " |")
        table.append("| **mean** | " + " | ".join(f"**{np.mean(means[t]):.3f}**" if means[t] else "–" for t in titles) + " |")
        lines.append(f"| {dataset} | " + " | ".join(f"{np.mean(means[t]):.3f}" if means[t] else "–" for t in titles) + " |")
        sections += [*table, ""]
    return [*lines, "", *sections]


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
    for zero_shot, suffix in ((False, ""), (True, "_zero_shot")):
        stepped = [r for r in rows if r.mode in STEPPED_MODES and r.zero_shot == zero_shot]
        if stepped:
            written.append(_dice_vs_clicks(stepped, out / f"dice_vs_clicks{suffix}.png", plt, zero_shot))
    final = iter_final(rows)
    for model, mode, zero_shot in sorted({(r.model, r.mode, r.zero_shot) for r in final}):
        group = [r for r in final if (r.model, r.mode, r.zero_shot) == (model, mode, zero_shot)]
        prefix, title = ("box_zero-shot_", f"{model} {mode}, novel objects") if zero_shot else ("box_", f"{model} {mode}")
        written.append(_box_plot(group, out / f"{prefix}{_safe(model)}_{_safe(mode)}.png", title, plt))
        ranked = sorted(group, key=lambda r: (r.dice, r.case, r.class_id))[:worst]
        for rank, row in enumerate(ranked, start=1):
            path = _overlay(row, out, rank, plt)
            if path is not None:
                written.append(path)
    return written


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)


def _dice_vs_clicks(rows: Sequence[ResultRow], path: Path, plt, zero_shot: bool = False) -> Path:
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
    if zero_shot:
        title = "Zero-shot (novel objects): " + title[0].lower() + title[1:]
    ax.set_title(title, fontsize=9 if zero_shot else None)
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
    data_path = overlay_data_path(out, row)
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
    kind = "zero-shot_" if row.zero_shot else ""
    path = out / OVERLAY_DIR / f"worst_{kind}{_safe(row.model)}_{_safe(row.mode)}_{rank}.png"
    fig.savefig(path)
    plt.close(fig)
    return path
