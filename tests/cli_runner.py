"""Run the ``voxelprompt`` command line in-process, as the console script would, or the installed
console script itself in a subprocess (what users run)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from voxelprompt.cli import main


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``voxelprompt ARGV`` (``capsys`` is pytest's fixture)."""
    # main() points the package logger at this test's captured stderr: restore it afterwards.
    log = logging.getLogger("voxelprompt")
    saved = (log.handlers[:], log.level, log.propagate)
    try:
        main(argv)
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    finally:
        log.handlers[:], log.level, log.propagate = saved
    out = capsys.readouterr()
    return code, out.out, out.err


#: The console script pip installed next to this interpreter (``pip install -e .`` in the README).
SCRIPT = Path(sys.executable).with_name("voxelprompt")


def script(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``voxelprompt ARGS`` in a subprocess (stdout and stderr captured as text;
    stdin is not a terminal, as in a script; ``env``: the whole environment, None: this one's)."""
    assert SCRIPT.is_file(), f"console script not installed next to {sys.executable}: run `pip install -e .`"
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env
    )


def die_with_parent() -> None:
    """``preexec_fn`` for servers a test starts: Linux sends them SIGTERM when the test process
    dies, even killed with SIGKILL, so no server outlives its test run."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
