"""Run the ``voxelprompt`` command line in-process, as the console script would."""

from __future__ import annotations

from voxelprompt.cli import main


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``voxelprompt ARGV`` (``capsys`` is pytest's fixture)."""
    try:
        main(argv)
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err
