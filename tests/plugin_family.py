"""Install the test-only model family ``voxelprompt-thresholds`` (``tests/plugins/thresholds``) into
a temporary folder, as a third party's package: pip builds it and writes its entry point, and a
process that has the folder on its ``sys.path`` (``PYTHONPATH`` for a subprocess) finds the family
through the ``voxelprompt.families`` entry-point group. voxelprompt itself is not edited."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PLUGIN = Path(__file__).resolve().parent / "plugins" / "thresholds"


def install_plugin(target: Path) -> Path:
    """``pip install --no-deps --target TARGET`` of the plugin (offline, no build isolation), built
    from a copy so that no build files land in the source tree."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        source = Path(shutil.copytree(PLUGIN, Path(scratch) / PLUGIN.name))
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
             "--target", str(target), str(source)],
            check=True, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    return target


def plugin_env(target: Path) -> dict[str, str]:
    """The environment of a subprocess that sees the installed plugin."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(target), env.get("PYTHONPATH", "")) if p)
    return env
