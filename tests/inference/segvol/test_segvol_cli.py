"""``voxelprompt segment-segvol`` and ``identify``: thin adapters; bad input exits 2 and writes nothing.

The released SegVol is 180 M parameters, so these tests hand the CLI a tiny SegVol in place of
checkpoint loading (the registry's loader, ``voxelprompt.families.segvol.inference.segmenter.load``, is the
one seam patched; the checkpoint file holds the tiny model's tensors so that its family is recognised).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from cli_runner import run

from voxelprompt.imageio import write_volume
from voxelprompt.families.segvol.inference import SegVolSegmenter
from voxelprompt.families.segvol.inference import segmenter as segmenter_module


@pytest.fixture()
def ct_path(ras_volume, tmp_path):
    from segvol_fixtures import as_lps

    return write_volume(as_lps(ras_volume), tmp_path / "ct.nii.gz")


@pytest.fixture()
def fake_checkpoint(tiny_segvol, tmp_path, monkeypatch):
    path = tmp_path / "segvol.pth"
    torch.save(tiny_segvol.state_dict(), path)

    def load(checkpoint, device, options, progress=False):
        assert str(checkpoint) == str(path)
        mode, overlap = options.mode, options.overlap
        return SegVolSegmenter(tiny_segvol, device=device, mode=mode, overlap=overlap, progress=progress)

    monkeypatch.setattr(segmenter_module, "load", load)
    return path


def test_segment_segvol_writes_labels_on_the_input_grid(ct_path, fake_checkpoint, tmp_path, capsys):
    out_path = tmp_path / "seg.nii.gz"
    argv = ["segment-segvol", str(ct_path), "-o", str(out_path), "-c", str(fake_checkpoint), "--text", "left kidney",
            "--box", "8,6,2,30,28,9", "--negative-point", "5,5,5", "-q"]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0, err
    src, seg = nib.load(ct_path), nib.load(out_path)
    assert seg.shape == src.shape and "windows" in out
    np.testing.assert_allclose(seg.affine, src.affine, atol=1e-5)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--text", ""], "non-empty"),
        (["--box", "30,6,2,8,28,9"], "exceeds the upper corner"),
        (["--box", "0,0,0,40,10,5"], "outside the volume"),
        (["--box", "1,2,3"], "expected 6 numbers"),
        (["--point", "1,2"], "expected 3 numbers"),
        (["--text", "liver", "--segvol-mode", "fast"], "is not one of 'zoom', 'sliding', 'zoom-out'"),
        (["--text", "liver", "--point-space", "ijk"], "is not one of 'voxel', 'world'"),
    ],
)
def test_bad_input_exits_2_without_output(ct_path, fake_checkpoint, tmp_path, capsys, extra, message):
    out_path = tmp_path / "seg.nii.gz"
    code, _, err = run(
        ["segment-segvol", str(ct_path), "-o", str(out_path), "-c", str(fake_checkpoint), *extra], capsys
    )
    assert code == 2 and message in err and not out_path.exists()


def test_missing_checkpoint_is_a_clear_error(ct_path, tmp_path, capsys):
    code, _, err = run(["segment-segvol", str(ct_path), "-o", str(tmp_path / "s.nii.gz"), "--text", "liver"], capsys)
    assert code == 2 and "--checkpoint" in err


def test_identify_prints_ranked_names(ct_path, fake_checkpoint, tmp_path, capsys):
    code, out, err = run(["identify", str(ct_path), "-c", str(fake_checkpoint), "--box", "20,10,2,35,25,9",
                          "--categories", "liver,spleen,aorta", "--top", "2"], capsys)  # fmt: skip
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all(line.split("\t")[1] in {"liver", "spleen", "aorta"} for line in lines)
