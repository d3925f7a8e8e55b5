"""The guards tests' one assertion for bad input: the command exits 2 with one line on stderr."""

from __future__ import annotations

from clipbench.cli import main


def one_line_exit_2(capsys, argv) -> str:
    """Run ``clipbench argv``; assert exit 2 with a single ``clipbench: error:`` line (no traceback); return it."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("clipbench: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    return err
