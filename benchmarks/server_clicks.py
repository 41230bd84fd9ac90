"""Click latency through ``voxelprompt serve`` (HTTP, the official MONAI Label client) against the
library session on the same clicks, in one run.

    python benchmarks/server_clicks.py [--width 48 | --checkpoint model.pt] [--clicks 6]

Both sides open a session on the shared real CT with the same options (the family's
``viewer_session``, as the server uses) and answer the same sequence of deepgrow clicks (each
request carries all clicks so far, as 3D Slicer sends them; a point-only object, so no automatic
pass runs). The first click encodes its window; the later clicks are what an annotator waits for.
Prints seconds per click, the medians of the later clicks and the HTTP overhead as a ratio.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CT = REPO.parent / "shared" / "data" / "totalseg" / "example_ct_sm.nii.gz"
#: Input voxels of the CT (3 mm): a first click, then corrections within a few voxels of it.
CLICKS = [(60, 50, 15), (64, 47, 14), (57, 53, 16), (62, 52, 15), (59, 46, 14), (63, 51, 16), (58, 49, 15), (61, 48, 13)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=48, help="random VISTA3D of this width (48: full size, 218 M)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a real checkpoint instead")
    parser.add_argument("--clicks", type=int, default=6)
    args = parser.parse_args()
    import numpy as np
    import torch

    from monailabel.client import MONAILabelClient
    from voxelprompt.catalog import vista3d_catalog
from voxelprompt.api import load_named_models
    from voxelprompt.imageio import read_volume
    from voxelprompt.prompts import build_prompts
    from voxelprompt.server.launch import ServeSettings, ServerThread, build_service, make_app

    tmp = Path(tempfile.mkdtemp(prefix="server-clicks-"))
    checkpoint = args.checkpoint
    if checkpoint is None:
        from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d, save_vista3d

        checkpoint = save_vista3d(random_vista3d(Vista3DSpec(width=args.width), seed=0), tmp / f"vista3d_w{args.width}.pt")
    clicks = CLICKS[: args.clicks]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; checkpoint {checkpoint.name}; {len(clicks)} clicks")

    import SimpleITK as sitk

    # Both sides alternate click by click, so a change in machine load hits both alike.
    settings = ServeSettings(checkpoints=(checkpoint,), device="cpu")
    service = build_service(settings, tmp / "store")
    name = next(n for n, t in service.tasks.items() if t.kind == "deepgrow")
    model = load_named_models([checkpoint], device="cpu")[0]  # the library's own copy
    volume = read_volume(CT)
    library, http, same = [], [], []
    with ServerThread(make_app(service, settings)) as server:
        client = MONAILabelClient(server.url, tmpdir=str(tmp))
        client.upload_image(str(CT), "ct")
        session = model.segmenter.open_session(volume, memory_budget_mb=settings.session_memory_mb, **model.family.viewer_session)
        for n in range(1, len(clicks) + 1):
            started = time.perf_counter()
            labels = session.segment(build_prompts((), clicks[:n], catalog=vista3d_catalog())).labels.array
            library.append(time.perf_counter() - started)
            params = {"label": "Segment_1", "foreground": [list(c) for c in clicks[:n]], "background": [],
                      "result_extension": ".nrrd", "result_dtype": "uint8"}  # fmt: skip
            started = time.perf_counter()
            result, reply = client.infer(name, "ct", params)
            http.append(time.perf_counter() - started)
            served = sitk.GetArrayFromImage(sitk.ReadImage(result)).transpose(2, 1, 0)
            same.append(bool(np.array_equal(served != 0, labels != 0)))
    print(f"{'click':>5} {'library s':>10} {'HTTP s':>8}")
    for n, (a, b) in enumerate(zip(library, http, strict=True), start=1):
        print(f"{n:>5} {a:>10.3f} {b:>8.3f}")
    lib, web = statistics.median(library[1:]), statistics.median(http[1:])
    print(f"later clicks, median: library {lib:.3f} s, HTTP {web:.3f} s: HTTP/library {web / lib:.3f} (+{web - lib:.3f} s)")
    print(f"masks identical through HTTP: {sum(same)} of {len(same)} clicks")


if __name__ == "__main__":
    sys.exit(main())
