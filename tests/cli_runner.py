"""Run the ``voxelprompt`` command line in-process, as the console script would."""

from __future__ import annotations

import logging

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
