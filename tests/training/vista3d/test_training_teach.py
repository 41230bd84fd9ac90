"""Few-shot finetuning from a labelling datastore (``training/vista3d/teach.py``): labels saved with
structure names become classes, the new class's Dice rises, existing classes stay, errors are one line."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from voxelprompt.data.phantom import PhantomConfig, make_phantom
from voxelprompt.errors import InputError
from voxelprompt.evaluation.metrics import dice
from voxelprompt.imageio import write_volume
from voxelprompt.server.datastore import ImageStore
from voxelprompt.families.vista3d.training.teach import assign_classes, labelled_images, structure_names, teach
from voxelprompt.types import Prompts

CONFIG = PhantomConfig(shape=(64, 56, 48), spacing=(4.0, 4.0, 4.0), lesions=False)
LIVER = 1
NEW = "my organ"  # the phantom's liver under a name the catalog does not know: a new class id


def _phantom(seed: int):
    from dataclasses import replace

    return make_phantom(replace(CONFIG, seed=seed))


def _store(folder, seeds, names=({"name": NEW, "idx": 1},)):
    store = ImageStore(folder)
    for seed in seeds:
        ct, truth = _phantom(seed)
        image = write_volume(ct, folder / f"ct{seed}.nii.gz")
        label = write_volume(truth.with_array((np.asarray(truth.array) == LIVER).astype(np.uint8)), folder / f"lab{seed}.nii.gz")
        store.add_image(f"case{seed}", io.BytesIO(image.read_bytes()), "ct.nii.gz")
        if names is not None:
            store.add_label(f"case{seed}", "final", io.BytesIO(label.read_bytes()), "l.nii.gz", {"label_info": list(names)})
    return folder


@pytest.fixture(scope="module")
def demo():
    from voxelprompt.families.vista3d.inference.default_model import default_checkpoint, default_profile

    profile = default_profile()
    from voxelprompt.catalog import vista3d_catalog

    return default_checkpoint(), profile, {c: vista3d_catalog().name(c) for c in profile.everything}


def test_structure_names_and_class_ids():
    assert structure_names({"label_info": [{"name": "lesion", "idx": 2}], "label_names": {"liver": 1}}) == {1: "liver", 2: "lesion"}
    plan = assign_classes(["liver", "hepatic tumor", "blob"], known={1: "liver"}, table_size=512, related={"blob": "liver"})
    assert plan.ids == {"liver": 1, "hepatic tumor": 26, "blob": 133}  # known, catalog, first free row
    assert plan.new == ("hepatic tumor", "blob") and plan.init_from == {133: 1}
    assert assign_classes(["blob"], known={1: "liver"}, learnt={133: "blob"}).ids == {"blob": 133}
    with pytest.raises(InputError, match="conflicting class ids: 'a' and 'b' both map to id 140"):
        assign_classes(["a", "b"], known={}, fixed={"a": 140, "b": 140})
    with pytest.raises(InputError, match="already learnt as 'blob'"):
        assign_classes(["c"], known={}, learnt={133: "blob"}, fixed={"c": 133})
    with pytest.raises(InputError, match="unknown label name 'nope'"):
        assign_classes(["blob"], known={1: "liver"}, related={"nope": "liver"})
    with pytest.raises(InputError, match="must pair a name with a value"):
        structure_names({"label_info": [{"name": "x", "idx": 0}]})


def test_empty_and_unnamed_datastores_are_refused(tmp_path, demo):
    checkpoint, profile, known = demo
    with pytest.raises(InputError, match="no labels tagged 'final'"):
        labelled_images(_store(tmp_path / "a", [0], names=None))
    with pytest.raises(InputError, match="has no structure names"):
        labelled_images(_store(tmp_path / "b", [0], names=()))
    with pytest.raises(InputError, match="unknown label name 'kidney stone'"):
        teach(checkpoint, _store(tmp_path / "c", [0]), tmp_path / "run", known=known, only=["kidney stone"], steps=1)


@pytest.mark.slow
def test_teaching_a_new_class_raises_its_dice_and_keeps_the_others(tmp_path, demo):
    from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter

    checkpoint, profile, known = demo
    held_ct, held_truth = _phantom(100)
    truth = np.asarray(held_truth.array)
    run = teach(checkpoint, _store(tmp_path / "store", [0, 1]), tmp_path / "run", known=known, steps=24, profile=profile)
    assert all("pseudo_label" in e for e in json.loads((tmp_path / "run" / "data" / "datalist.json").read_text())["training"])
    new_id = run.plan.ids[NEW]
    assert new_id == 133 and run.plan.new == (NEW,) and run.result.steps == 24

    def scores(path):
        seg = Vista3DSegmenter.from_checkpoint(path, profile=profile, taught_classes={new_id: NEW})
        new = np.asarray(seg.segment(held_ct, Prompts(classes=(new_id,))).labels.array)
        spleen = np.asarray(seg.segment(held_ct, Prompts(classes=(3,))).labels.array)
        return dice(new == new_id, truth == LIVER), dice(spleen == 3, truth == 3)

    (new_before, spleen_before), (new_after, spleen_after) = scores(checkpoint), scores(run.result.model)
    assert new_after > new_before + 0.5, (new_before, new_after)  # learnt, on a phantom it never saw
    assert spleen_after > spleen_before - 0.15, (spleen_before, spleen_after)  # rehearsal bounds the forgetting (0.50 without)


def test_embedding_scope_changes_only_the_new_row(tmp_path, demo):
    checkpoint, profile, known = demo
    patch = {"roi": list(profile.roi_size), "spacing": list(profile.spacing)}
    run = teach(checkpoint, _store(tmp_path / "store", [0]), tmp_path / "run", known=known, steps=2, lr=0.1, scope="embedding", patch=patch)
    old = torch.load(checkpoint, weights_only=True)
    new = torch.load(run.result.model, weights_only=True)
    changed = [k for k in old if not torch.equal(old[k].float(), new[k].float())]
    assert changed == ["class_head.class_embeddings.weight"]
    rows = (old[changed[0]].float() != new[changed[0]].float()).any(dim=1).nonzero().flatten().tolist()
    assert rows == [run.plan.ids[NEW]]


def test_a_killed_run_resumes_from_its_checkpoint(tmp_path, demo):
    import threading

    checkpoint, profile, known = demo
    store = _store(tmp_path / "store", [0])
    patch = {"roi": list(profile.roi_size), "spacing": list(profile.spacing)}
    stop = threading.Event()
    seen = []

    def on_step(step, total, loss):
        seen.append(step)
        if step == 2:
            stop.set()  # as a SIGTERM or DELETE /train/ would, after the current step

    first = teach(checkpoint, store, tmp_path / "run", known=known, steps=4, patch=patch, stop=stop, on_step=on_step)
    assert first.result.stopped and first.result.steps == 2 and first.result.model is None
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    second = teach(checkpoint, store, tmp_path / "run", known=known, steps=4, patch=patch, resume=True, on_step=lambda s, t, l: seen.append(s))
    assert not second.result.stopped and second.result.steps == 4 and second.result.model.is_file()
    assert seen == [1, 2, 3, 4]  # steps 3 and 4 only on resume
    with pytest.raises(InputError, match="trained other classes"):
        teach(checkpoint, store, tmp_path / "run", known=known, steps=4, patch=patch, resume=True, fixed={NEW: 200})


@pytest.mark.slow
def test_finetune_command_reads_a_datastore_folder(tmp_path, capsys):
    from voxelprompt.cli import main

    store = _store(tmp_path / "store", [0])
    common = ["-o", str(tmp_path / "run"), "--steps", "2", "--roi", "64", "64", "64", "--spacing", "3", "3", "3", "-q"]
    main(["finetune", "demo", str(store), "--init-from", f"{NEW}=liver", *common])
    out = capsys.readouterr().out
    assert f"classes: {NEW}=133 (new: {NEW})" in out and "labelled images: 1" in out and "steps: 2" in out
    assert (tmp_path / "run" / "model.pt").is_file()
    for args, words in (
        (["finetune", "demo", str(_store(tmp_path / "empty", [0], names=None)), *common], "no labels tagged 'final'"),
        (["finetune", "demo", str(store), "--class", "nope", *common], "NAME=ID"),
        (["finetune", "demo", str(store), "--init-from", f"{NEW}=pancreatic duct", *common], "unknown label name"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and words in err and "\n" not in err, err
