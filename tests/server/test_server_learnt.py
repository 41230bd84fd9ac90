"""The server states what each model learnt and whether it is the demo model (``/info/``), and
refuses a class prompt its model never learnt with a one-line 4xx."""

from __future__ import annotations

import json

import requests

from voxelprompt.catalog import vista3d_catalog
from voxelprompt.families.vista3d.inference.default_model import DEMO_DIR


def test_the_server_lists_what_its_model_learnt_and_refuses_the_rest(demo_server, ct_crop_path):
    demo_classes = {int(c) for c in json.loads((DEMO_DIR / "model.json").read_text())["classes"]}
    info = requests.get(f"{demo_server.url}/info/", timeout=10).json()
    entry = info["models"]["vista3d-demo"]
    assert set(entry["learnt_classes"].values()) == demo_classes
    assert entry["demo"] is True
    requests.put(f"{demo_server.url}/datastore/?image=learnt", files={"file": ("ct.nii.gz", open(ct_crop_path, "rb"))}, timeout=60)
    reply = requests.post(
        f"{demo_server.url}/infer/vista3d-demo?image=learnt",
        files={"params": (None, json.dumps({"label_prompt": [vista3d_catalog().index("prostate")]}))},
        timeout=60,
    )
    assert 400 <= reply.status_code < 500 and "never learnt" in reply.json()["detail"], reply.text
