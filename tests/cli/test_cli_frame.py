"""The CLI frame: user errors are one line with exit code 2; --debug shows the traceback."""

from __future__ import annotations

import argparse

import pytest

from clipbench import cli
from clipbench.foundations.errors import ClipbenchError


def _fake_command(exc: BaseException):
    def add_parser(subparsers):
        p = subparsers.add_parser("boom")

        def handler(args: argparse.Namespace) -> int:
            raise exc

        p.set_defaults(func=handler)

    return add_parser


@pytest.fixture
def boom(monkeypatch):
    def install(exc):
        real = cli.build_parser

        def build():
            parser = real()
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            _fake_command(exc)(sub)
            return parser

        monkeypatch.setattr(cli, "build_parser", build)

    return install


def test_user_error_is_one_line_exit_2(boom, capsys):
    boom(ClipbenchError("data root /nope does not exist"))
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "clipbench: error: data root /nope does not exist"


def test_debug_shows_traceback(boom, capsys):
    boom(ClipbenchError("bad"))
    assert cli.main(["--debug", "boom"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_bug_is_reported_without_traceback_unless_debug(boom, capsys):
    boom(ZeroDivisionError("oops"))
    assert cli.main(["boom"]) == 3  # its own code: 1 is compare's "regression"
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" in err and "--debug" in err


def test_unknown_subcommand_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["no-such-command"])
    assert info.value.code == 2
