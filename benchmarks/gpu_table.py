"""The README's performance-table rows from a ``gpu_suite.py`` JSON.

    python benchmarks/gpu_table.py gpu_suite.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["rows", "table"]

HEADER = "| measurement | result | setting |\n|---|---|---|"


def _grid(values) -> str:
    return "x".join(str(v) for v in values)


def _failed(part: dict) -> str | None:
    return None if part.get("status") == "ok" else f"{part.get('status', 'missing')}: {part.get('error', '')}".strip()


def _agreement_rows(title: str, part: dict) -> list[str]:
    out = []
    for model in ("demo", "full-size"):
        for prompt, runs in part.get(model, {}).items():
            for run, r in runs.items():
                if "identical" in r:
                    out.append(f"| {title}, {model} model, {prompt} | {100 * r['identical']:.4f} % identical "
                               f"({r['differing']} of {r['voxels']} differ) | {run} vs {r['base']}, {r['seconds']:.2f} s |")  # fmt: skip
    return out


def rows(results: dict) -> list[str]:
    """Markdown table rows (no header) for every part of ``results``; failed parts say why."""
    s, parts = results["settings"], results["parts"]
    size = "quick sizes" if s["quick"] else f"width {s['width']}"
    out: list[str] = []
    env = parts.get("environment", {})
    if env.get("status") == "ok":
        out.append(f"| machine | {env['gpu'] or 'no GPU'} ({env['gpu_memory_gb']:.0f} GB), {env['cpus']} CPUs | torch "
                   f"{env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}, install {env['install_seconds']:.0f} s |")  # fmt: skip
    for name, part in parts.items():
        why = _failed(part)
        if why:
            out.append(f"| {name} | {why} | - |")
    e = parts.get("everything", {})
    if "seconds" in e:
        paper = "" if s["quick"] else f" (paper: {s['paper']['seconds']:.0f} s on a {s['paper']['gpu']})"
        out.append(f"| everything mode, {_grid(e['input_grid'])} input, {_grid(e['model_grid'])} model grid | "
                   f"{e['seconds']:.1f} s{paper} | {s['device']}, exact engine, {size}, {e['windows']} windows of "
                   f"{s['roi']}^3, {e['classes']} classes, TF32 {'on' if e.get('tf32') else 'off'} |")  # fmt: skip
    c = parts.get("clicks", {})
    for key, label in (("session", "voxelprompt session (end to end)"), ("monai_keep_cache", "MONAI keep_cache (window only)")):
        if key in c:
            r = c[key]
            out.append(f"| click latency, {label} | first {r['first']:.2f} s, later median {r['later_median']:.2f} s, "
                       f"p95 {r['later_p95']:.2f} s | {s['device']}, {size}, {s['later_clicks']} later clicks |")  # fmt: skip
    g = parts.get("segvol", {})
    if "zoom" in g:
        ratio = f", sliding window {g['sliding']['seconds']:.2f} s ({g['sliding']['windows']} windows)" if "sliding" in g else ""
        out.append(f"| SegVol zoom-out-zoom-in, {g['case']} ({_grid(g['input_grid'])}) | {g['zoom']['seconds']:.2f} s, "
                   f"{g['zoom']['windows']} windows{ratio} | {s['device']}, SegVol {s['segvol']}, random weights |")  # fmt: skip
    out += _agreement_rows("AMP agreement", parts.get("amp", {}))
    out += _agreement_rows("CPU vs device agreement", parts.get("agreement", {}))
    return out


def table(results: dict) -> str:
    """The header and :func:`rows` as one markdown table."""
    return "\n".join([HEADER, *rows(results)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", type=Path, help="a gpu_suite.py JSON")
    args = parser.parse_args()
    print(table(json.loads(args.json.read_text())))


if __name__ == "__main__":
    main()
