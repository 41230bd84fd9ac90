"""The command line: a real run keeps the input grid; every bad input exits 2 and writes nothing."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from cli_runner import run


def test_classes_lists_the_table(capsys):
    code, out, _ = run(["classes", "--plain"], capsys)
    lines = out.strip().splitlines()
    assert code == 0 and "1\tliver" in lines and "132\tairway" in lines and len(lines) == 127


def test_info_reports_the_architecture(tiny_checkpoint, capsys):
    code, out, _ = run(["info", str(tiny_checkpoint)], capsys)
    assert code == 0 and "encoder width: 8" in out and "6,080,442" in out


def test_random_checkpoint_round_trips(tmp_path, capsys):
    code, _, _ = run(["random-checkpoint", str(tmp_path / "w16.pt"), "--width", "16", "--seed", "3"], capsys)
    assert code == 0
    code, out, _ = run(["info", str(tmp_path / "w16.pt")], capsys)
    assert "encoder width: 16" in out


def test_segment_everything_writes_labels_on_the_input_grid(ct_crop_path, tiny_checkpoint, tmp_path, capsys):
    out_path = tmp_path / "seg.nii.gz"
    argv = ["segment", str(ct_crop_path), "-o", str(out_path), "-c", str(tiny_checkpoint), "--everything", "-q"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    src, seg = nib.load(ct_crop_path), nib.load(out_path)
    assert seg.shape == src.shape
    np.testing.assert_allclose(seg.affine, src.affine, atol=1e-5)
    values = set(np.unique(np.asarray(seg.dataobj)).tolist())
    assert values - {0} and values <= set(range(1, 133)) | {0}
    assert "1 window," in out


def test_segment_with_names_and_clicks(ct_crop_path, tiny_checkpoint, tmp_path, capsys, one_thread):
    """The written map is the API's answer to the same class and clicks, on the input's grid."""
    from voxelprompt import api
    from voxelprompt.imageio import read_labels, read_volume

    out_path = tmp_path / "seg.nrrd"
    argv = ["segment", str(ct_crop_path), "-o", str(out_path), "-c", str(tiny_checkpoint), "--classes", "Liver",
            "--point", "20,20,10", "--negative-point", "5,5,5", "-q"]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    volume, written = read_volume(ct_crop_path), read_labels(out_path)
    assert written.shape == volume.shape
    np.testing.assert_allclose(written.affine, volume.affine, atol=1e-5)
    assert set(np.unique(written.array).tolist()) == {0, 1}  # liver is class 1: found, and nothing else
    model = api.load_model(tiny_checkpoint, device="cpu")
    clicked = api.segment(volume, segmenter=model, classes=["liver"], points=[(20, 20, 10)], negative_points=[(5, 5, 5)])
    np.testing.assert_array_equal(written.array, clicked.labels.array)
    # the clicks were applied, at these voxels: the class alone, or the clicks elsewhere, differ
    alone = api.segment(volume, segmenter=model, classes=["liver"]).labels.array
    moved = api.segment(volume, segmenter=model, classes=["liver"], points=[(30, 10, 5)], negative_points=[(5, 5, 5)])
    assert (written.array != alone).any() and (written.array != moved.labels.array).any()


def _nifti(path, array, affine=None):
    nib.save(nib.Nifti1Image(array, np.eye(4) * 2 if affine is None else affine), str(path))
    return path


def _bad_cases(tmp_path, ct, ckpt):
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"\x1f\x8b not really gzip")
    four_d = _nifti(tmp_path / "4d.nii.gz", np.zeros((8, 8, 8, 3), np.float32))
    two_d = _nifti(tmp_path / "2d.nii.gz", np.zeros((8, 8), np.float32))
    nan = np.zeros((8, 8, 8), np.float32)
    nan[1, 1, 1] = np.nan
    nan_path = _nifti(tmp_path / "nan.nii.gz", nan)
    flat = nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4))
    flat.set_qform(None, code=0)
    flat.set_sform(np.diag([1.0, 0.0, 1.0, 1.0]), code=1)  # the j axis has zero spacing
    zero = tmp_path / "zero.nii.gz"
    nib.save(flat, str(zero))
    wrong = tmp_path / "unet.pt"
    from monai.networks.nets import UNet

    torch.save(UNet(3, 1, 2, (4, 8), (2,)).state_dict(), wrong)
    c = ["-c", str(ckpt)]
    return {
        "missing file": (["segment", str(tmp_path / "nope.nii.gz"), *c, "--classes", "liver"], "nope.nii.gz"),
        "corrupt file": (["segment", str(junk), *c, "--classes", "liver"], "junk.nii.gz"),
        "4D data": (["segment", str(four_d), *c, "--classes", "liver"], "4D"),
        "2D data": (["segment", str(two_d), *c, "--classes", "liver"], "2D"),
        "NaN values": (["segment", str(nan_path), *c, "--classes", "liver"], "NaN"),
        "zero spacing": (["segment", str(zero), *c, "--classes", "liver"], "spacing"),
        "point outside": (["segment", str(ct), *c, "--point", "500,1,1"], "outside the volume"),
        "bad point text": (["segment", str(ct), *c, "--point", "1,2"], "expected 3 numbers"),
        "unknown class": (["segment", str(ct), *c, "--classes", "livr"], "did you mean 'liver'"),
        "wrong checkpoint": (["segment", str(ct), "-c", str(wrong), "--classes", "liver"], "not a checkpoint of a known model family"),
        # Without -c VISTA3D uses the shipped demo model; SegVol weights are not shipped.
        "no segvol checkpoint": (["segment", str(ct), "--model", "segvol", "--text", "liver"], "needs --checkpoint"),
        "bad profile": (["segment", str(ct), *c, "--classes", "liver", "--profile", "fast"], "is not one of 'bundle', 'research'"),
    }


CASES = ["missing file", "corrupt file", "4D data", "2D data", "NaN values", "zero spacing", "point outside",
         "bad point text", "unknown class", "wrong checkpoint", "no segvol checkpoint", "bad profile"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line_and_no_output(case, ct_crop_path, tiny_checkpoint, tmp_path, capsys):
    argv, expected = _bad_cases(tmp_path, ct_crop_path, tiny_checkpoint)[case]
    out_path = tmp_path / "out" / "seg.nii.gz"
    code, _, err = run([*argv, "-o", str(out_path), "-q"], capsys)
    assert code == 2
    message = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(message) == 1 and expected in message[0], err
    assert not out_path.exists() and not (out_path.parent.exists() and any(out_path.parent.iterdir()))


def test_segment_routes_segvol_prompts_to_segvol(ct_crop_path, tmp_path, capsys, monkeypatch, one_thread):
    """A SegVol checkpoint is recognised without --model, and every SegVol option reaches it."""
    from voxelprompt import api
    from voxelprompt.families.segvol.inference import SegVolSegmenter
    from voxelprompt.families.segvol.network.builder import tiny_segvol
    from voxelprompt.imageio import read_volume

    net = tiny_segvol(seed=0)
    ckpt = tmp_path / "segvol.pth"
    torch.save(net.state_dict(), ckpt)
    built: list[SegVolSegmenter] = []  # every SegVol segmenter the command builds (a spy: the real one runs)
    init = SegVolSegmenter.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(SegVolSegmenter, "__init__", recording_init)
    out = tmp_path / "o.nii.gz"
    argv = ["segment", str(ct_crop_path), "-o", str(out), "-c", str(ckpt), "--text", "left kidney", "--box",
            "1,2,3,30,30,15", "--point", "5,6,7", "--segvol-mode", "sliding", "--overlap", "0.25", "--label-value", "7", "-q"]
    code, stdout, err = run(argv, capsys)
    assert code == 0, err
    assert [(s.mode.value, s.overlap) for s in built] == [("sliding", 0.25)]  # the loaded model has the options
    monkeypatch.undo()
    written = np.asarray(nib.load(out).dataobj)
    # the labels are those of SegVol with these options and prompts, and the options change them
    prompts = {"text": "left kidney", "box": (1, 2, 3, 30, 30, 15), "points": [(5, 6, 7)], "label_value": 7}
    volume = read_volume(ct_crop_path)
    asked = api.segment(volume, segmenter=SegVolSegmenter(net, mode="sliding", overlap=0.25), **prompts)
    default = api.segment(volume, segmenter=SegVolSegmenter(net), **prompts)
    assert set(np.unique(written).tolist()) == {0, 7}
    np.testing.assert_array_equal(written, asked.labels.array)
    assert (asked.labels.array != default.labels.array).any() and asked.windows != default.windows
    assert f"{asked.windows} windows," in stdout
    # an option of the other family is refused in one line
    code, _, err = run([*argv, "--engine", "fast"], capsys)
    assert code == 2 and "--engine is not an option of segvol (its options: --segvol-mode, --overlap)" in err


def test_box_needs_segvol(ct_crop_path, tiny_checkpoint, tmp_path, capsys):
    argv = ["segment", str(ct_crop_path), "-o", str(tmp_path / "o.nii.gz"), "-c", str(tiny_checkpoint),
            "--box", "1,2,3,10,20,15", "-q"]
    code, _, err = run(argv, capsys)
    assert code == 2 and "box prompts need a model family that has them (segvol)" in err
    assert not (tmp_path / "o.nii.gz").exists()
