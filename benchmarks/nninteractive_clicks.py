"""Click latency through the nnInteractive protocol (the official ``nninteractive-client``
against ``voxelprompt serve``'s ``/nninteractive`` routes) against the library session, in one run.

    python benchmarks/nninteractive_clicks.py [--demo | --width 48 | --checkpoint model.pt] [--clicks 6] [--edit liver]

Both sides open a session on the shared real CT with the same options (the family's
``viewer_session``, as the server uses) and answer the same sequence of clicks on a point-only
object (``--edit CLASS``: Algorithm 1 edits of that class, asked for through the voxelprompt
extension, so every reply carries a real mask's changed box): the client adds one click per request (the server keeps the earlier ones, as
nnInteractive does) and mirrors the changed box of the mask; the library segments all clicks so
far. The two sides alternate click by click, so a change in machine load hits both alike. The
first click encodes its window; the later clicks are what an annotator waits for. Prints seconds
per click, the medians of the later clicks and the protocol's overhead as a ratio. Asserts nothing.
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
    parser.add_argument("--demo", action="store_true", help="the shipped demo VISTA3D (a quick run)")
    parser.add_argument("--width", type=int, default=48, help="random VISTA3D of this width (48: full size, 218 M)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a real checkpoint instead")
    parser.add_argument("--clicks", type=int, default=6)
    parser.add_argument("--edit", default=None, metavar="CLASS", help="clicks edit this class (VISTA3D)")
    args = parser.parse_args()
    import numpy as np
    import torch

    from nnInteractive.inference.remote import nnInteractiveRemoteInferenceSession
    from voxelprompt.catalog import vista3d_catalog
from voxelprompt.imageio import read_volume
    from voxelprompt.prompts import build_prompts
    from voxelprompt.server.app import ServerOptions, create_app
    from voxelprompt.server.launch import ServeSettings, ServerThread, build_service

    tmp = Path(tempfile.mkdtemp(prefix="nninteractive-clicks-"))
    checkpoint = args.checkpoint
    if checkpoint is None and not args.demo:
        from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d, save_vista3d

        checkpoint = save_vista3d(random_vista3d(Vista3DSpec(width=args.width), seed=0), tmp / f"vista3d_w{args.width}.pt")
    clicks = CLICKS[: args.clicks]
    settings = ServeSettings(checkpoints=(checkpoint,) if checkpoint else (), device="cpu")
    service = build_service(settings, tmp / "store")
    model = service.models[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model {model.name}; {len(clicks)} clicks")
    volume = read_volume(CT)
    library, remote, same = [], [], []
    app = create_app(service, ServerOptions(viewer=False))
    with ServerThread(app) as server:
        client = nnInteractiveRemoteInferenceSession(f"{server.url}/nninteractive/{model.name}")
        started = time.perf_counter()
        client.set_image(volume.array[None], {"spacing": list(volume.spacing), "affine": volume.affine.tolist()})
        upload = time.perf_counter() - started
        buffer = np.zeros(volume.shape, dtype=np.uint8)
        client.set_target_buffer(buffer)
        # the library's own session (the server's lives in its session pool; the weights are shared)
        session = model.segmenter.open_session(volume, memory_budget_mb=settings.session_memory_mb, **model.family.viewer_session)
        classes = build_prompts([args.edit], catalog=vista3d_catalog()).classes if args.edit else ()
        if classes:
            started = time.perf_counter()
            session.segment(build_prompts(classes, catalog=vista3d_catalog()))
            lib_class = time.perf_counter() - started
            started = time.perf_counter()
            reply = client._http.post("/voxelprompt_prompt", json={"classes": list(classes)})
            client._apply_prediction_response(reply)
            print(f"class prompt {args.edit}: library {lib_class:.3f} s, protocol {time.perf_counter() - started:.3f} s")
        for n in range(1, len(clicks) + 1):
            started = time.perf_counter()
            labels = session.segment(build_prompts(classes, clicks[:n], catalog=vista3d_catalog())).labels.array
            library.append(time.perf_counter() - started)
            started = time.perf_counter()
            client.add_point_interaction(list(clicks[n - 1]), include_interaction=True)
            remote.append(time.perf_counter() - started)
            same.append(bool(np.array_equal(buffer, labels != 0)))
        client.close()
    print(f"set_image (upload, decode, pre-process): {upload:.3f} s")
    print(f"{'click':>5} {'library s':>10} {'protocol s':>11}")
    for n, (a, b) in enumerate(zip(library, remote, strict=True), start=1):
        print(f"{n:>5} {a:>10.3f} {b:>11.3f}")
    lib, web = statistics.median(library[1:]), statistics.median(remote[1:])
    print(f"later clicks, median: library {lib:.3f} s, protocol {web:.3f} s: protocol/library {web / lib:.3f} (+{web - lib:.3f} s)")
    print(f"target buffer identical to the library's mask: {sum(same)} of {len(same)} clicks")


if __name__ == "__main__":
    sys.exit(main())
