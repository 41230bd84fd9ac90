"""The lean core and its extras (``voxelprompt/extras.py``, ``pyproject.toml``), checked without
installing anything: the installed console script runs with every package of the extras made
unimportable (a ``sitecustomize`` on PYTHONPATH puts a ``sys.meta_path`` finder first that
raises ImportError for them), as in ``pip install voxelprompt`` without extras."""

from __future__ import annotations

import os
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from cli_runner import SCRIPT

import voxelprompt
from voxelprompt.extras import EXTRAS

REPO = Path(__file__).resolve().parents[1]

#: Modules that belong to an extra (they may import its packages when imported).
OPTIONAL_MODULES = ("voxelprompt.server", "voxelprompt.dicomweb", "voxelprompt.families.segvol.network",
                    "voxelprompt.families.segvol.inference", "voxelprompt.families.segvol.training")  # fmt: skip

_BLOCKER = '''
import sys
BLOCKED = {blocked!r}
class _NotInstalled:
    """Acts as if the extras were never installed."""
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
'''


def _extras_in_pyproject() -> dict[str, set[str]]:
    """pyproject's extras (but ``all`` and ``test``) -> their requirements as module names."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {
        name: {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower().replace("-", "_") for r in reqs}
        for name, reqs in extras.items() if name not in ("all", "test")
    }  # fmt: skip


def _closure(requirements: list[str]) -> set[str]:
    """The installed distributions ``requirements`` pull in, transitively (canonical names)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    stack = [Requirement(r) for r in requirements]
    while stack:
        req = stack.pop()
        name = canonicalize_name(req.name)
        if name == "voxelprompt":  # voxelprompt[a,b]: the extras' own lists
            extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
            stack += [Requirement(r) for e in req.extras for r in extras[e]]
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in (req.extras or {""})):
                stack.append(sub)
    return seen


def _blocked() -> list[str]:
    """Top-level modules of the distributions that only the extras install (not the core)."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    only_extras = _closure(project["optional-dependencies"]["all"]) - _closure(project["dependencies"])
    owners = metadata.packages_distributions()
    modules = {m for m, dists in owners.items() if all(canonicalize_name(d) in only_extras for d in dists)}
    return sorted(modules | {"multipart"})  # python-multipart's old module name


@pytest.fixture(scope="module")
def lean_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a process that cannot import any package of the extras."""
    folder = tmp_path_factory.mktemp("lean")
    (folder / "sitecustomize.py").write_text(_BLOCKER.format(blocked=_blocked()))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
    return env


def lean(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The installed ``voxelprompt ARGS`` without the extras."""
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_pyproject_extras_and_the_module_table_agree():
    declared = _extras_in_pyproject()
    assert set(declared) == set(EXTRAS)
    for extra, entries in EXTRAS.items():
        imported = {entry.split("|")[0] for entry in entries}
        assert imported == declared[extra], extra
    all_extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["all"]
    assert all_extra == [f"voxelprompt[{','.join(EXTRAS)}]"]
    core = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in core  # the pin that resolves to the local CPU build


def test_the_blocker_blocks(lean_env):
    done = subprocess.run([sys.executable, "-c", "import fastapi"], capture_output=True, text=True, env=lean_env)
    assert done.returncode == 1 and "No module named 'fastapi'" in done.stderr


def test_core_modules_import_no_optional_package(lean_env):
    """Every module outside the extras' own folders imports without them, and pulls none in."""
    names = [m.name for m in pkgutil.walk_packages(voxelprompt.__path__, "voxelprompt.", onerror=lambda name: None)]
    core = [n for n in names if not n.startswith(OPTIONAL_MODULES)]
    assert "voxelprompt.cli.serve_cmd" in core and "voxelprompt.batch.dask_executor" in core
    code = (
        "import importlib, sys\n"
        f"for name in {core!r}:\n"
        "    importlib.import_module(name)\n"
        f"loaded = sorted({{m.partition('.')[0] for m in sys.modules}} & set({_blocked()!r}))\n"
        "assert not loaded, loaded\n"
        "print(len(sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=lean_env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def _one_line_hint(done: subprocess.CompletedProcess, extra: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert f'pip install "voxelprompt[{extra}]"' in lines[0], lines[0]


def test_each_extra_is_named_in_one_line_before_any_work(lean_env, tmp_path):
    ct = tmp_path / "ct.nii.gz"
    from voxelprompt.data import PhantomConfig, make_phantom
    from voxelprompt.imageio import write_volume

    write_volume(make_phantom(PhantomConfig(shape=(40, 40, 40), spacing=(4.0, 4.0, 4.0), seed=0))[0], ct)

    done = lean(lean_env, "serve", "--port", "0")
    _one_line_hint(done, "server")
    assert "fastapi" in done.stderr
    done = lean(lean_env, "serve", "--help")
    assert done.returncode == 0 and 'voxelprompt[server]' in done.stdout, done.stderr

    out = tmp_path / "cohort"
    _one_line_hint(lean(lean_env, "batch", str(ct), "-o", str(out), "--classes", "liver", "--workers", "2"), "dask")
    done = lean(lean_env, "batch", str(ct), "-o", str(out), "--classes", "liver", "--output-format", "dicom-seg")
    _one_line_hint(done, "pacs")
    assert "highdicom" in done.stderr  # what its writer imports
    _one_line_hint(lean(lean_env, "batch", "dicomweb+http://127.0.0.1:9/dicom-web", "-o", str(out), "--classes", "liver",
                        "--series-uids", "1.2.3"), "pacs")  # fmt: skip
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]

    import torch

    segvol = tmp_path / "segvol.pt"  # the tensors SegVol checkpoints are recognised by, nothing else
    torch.save({"image_encoder.patch_embedding.patch_embeddings.1.weight": torch.zeros(1),
                "prompt_encoder.point_embeddings.0.weight": torch.zeros(1)}, segvol)  # fmt: skip
    seg = tmp_path / "seg.nii.gz"
    _one_line_hint(lean(lean_env, "segment", str(ct), "-o", str(seg), "-c", str(segvol), "--text", "liver"), "segvol")
    assert not seg.exists()


def test_the_lean_core_segments_draws_and_lists(lean_env, tmp_path):
    """What the core promises, run without any extra: classes, segment (demo model), overlay."""
    done = lean(lean_env, "--help")
    assert done.returncode == 0 and "segment" in done.stdout, done.stderr
    done = lean(lean_env, "segment", "--help")
    assert done.returncode == 0 and "--classes" in done.stdout, done.stderr
    done = lean(lean_env, "classes")
    assert done.returncode == 0 and "liver" in done.stdout, done.stderr
    ct = tmp_path / "ct.nii.gz"
    done = lean(lean_env, "phantom", str(tmp_path / "ph"), "-n", "1", "--shape", "32", "32", "32")
    assert done.returncode == 0, done.stderr
    from voxelprompt.data import PhantomConfig, make_phantom
    from voxelprompt.imageio import write_volume

    write_volume(make_phantom(PhantomConfig(shape=(40, 40, 40), spacing=(4.0, 4.0, 4.0), seed=0))[0], ct)
    seg = tmp_path / "seg.nii.gz"
    done = lean(lean_env, "segment", str(ct), "-o", str(seg), "--classes", "liver", "-q")
    assert done.returncode == 0 and seg.is_file(), done.stderr
    done = lean(lean_env, "overlay", str(ct), str(seg), "-o", str(tmp_path / "seg.png"))
    assert done.returncode == 0 and (tmp_path / "seg.png").is_file(), done.stderr
