"""Write a trained VISTA3D model into the package as the shipped demo model.

    python scripts/export_demo_model.py RUN/model.pt --recipes WORK_DIR/recipes [--metrics metrics.json]

Stores float16 weights (half the size; inference casts them back to float32) and ``model.json``
with what inference needs: window, spacing, and the automatic class set of the training recipe.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

from voxelprompt.imageio import write_text
from voxelprompt.families.vista3d.inference.default_model import DEMO_DIR, card_from_recipe
from voxelprompt.models.checkpoint_io import save_checkpoint_file
from voxelprompt.families.vista3d.network import load_vista3d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--auto", default="auto3", help="the recipe of the last automatic stage (classes, spacing)")
    parser.add_argument("--recipes", type=Path, required=True, help="folder with the run's recipe JSON files")
    parser.add_argument("--metrics", type=Path, help="held-out metrics JSON from evaluate_demo_model.py")
    args = parser.parse_args()
    net, spec = load_vista3d(args.model)
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    weights = save_checkpoint_file(state, DEMO_DIR / "vista3d_demo.pt")
    auto = json.loads((args.recipes / f"{args.auto}.json").read_text())
    card = {
        "name": "voxelprompt-vista3d-demo",
        "architecture": "VISTA3D (MONAI vista3d132), SegResNetDS2 encoder",
        "width": spec.width,
        "parameters": sum(v.numel() for v in state.values()),
        "dtype": "float16",
        **card_from_recipe(auto),
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "recipes": {p.stem: json.loads(p.read_text()) for p in sorted(args.recipes.glob("*.json"))},
    }
    if args.metrics:
        card["metrics"] = json.loads(args.metrics.read_text())
    write_text(DEMO_DIR / "model.json", json.dumps(card, indent=1) + "\n")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB) and model.json; {torch.__version__}")


if __name__ == "__main__":
    main()
