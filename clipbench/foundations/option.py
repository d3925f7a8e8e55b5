"""One run option's declaration (``Option``) and the value checks options use.

Tasks declare their options with these (``Task.options``); ``clipbench.engine.options`` gathers the
engine-wide ones and every task's into the one table that drives defaults, suite validation and
the ``clipbench run`` flags.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clipbench.foundations.errors import ClipbenchError


def positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def an_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def a_seed(v: Any) -> bool:  # numpy, torch and scikit-learn all accept [0, 2**32)
    return an_int(v) and 0 <= v < 2**32


def non_negative_int(v: Any) -> bool:
    return an_int(v) and v >= 0


def a_bool(v: Any) -> bool:
    return isinstance(v, bool)


def one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda v: v in choices


def int_list(text: str) -> list[int]:
    """argparse type for comma-separated integers (``--seeds 0,1,2``)."""
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


@dataclass(frozen=True)
class Option:
    """One run option. ``check(value)`` is applied to suite values and caller overrides alike.

    ``flag_type`` is the argparse ``type`` (``None``: no command-line flag; ``bool``: a switch);
    ``choices`` is shown by argparse; ``owner`` names the task that reads it ("" = the engine).
    ``convert`` turns a checked value into the type the engine reads (e.g. ``float``, ``tuple``);
    ``false_unsets``: a caller's ``False`` means "not given" (a switch that can only force, like ``offline``).
    """

    name: str
    default: Any
    check: Callable[[Any], bool]
    what: str  # "must be <what>" in error messages
    help: str
    flag_type: Any = None
    choices: tuple[str, ...] | None = None
    owner: str = ""
    #: Values given as lists (e.g. ``seeds``) are checked as lists; flags parse them with ``int_list``.
    is_list: bool = False
    convert: Callable[[Any], Any] | None = None
    false_unsets: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def validate(self, value: Any, where: str = "") -> None:
        if value is None:
            return
        if not self.check(list(value) if self.is_list and isinstance(value, tuple) else value):
            prefix = f"{where}: option {self.name!r}" if where else self.flag
            raise ClipbenchError(f"{prefix} must be {self.what}, got {value!r}")

    def resolved(self, value: Any) -> Any:
        """A checked value as the engine reads it: a null switch is its default, then ``convert``."""
        if value is None and self.flag_type is bool:
            value = self.default
        return self.convert(value) if self.convert is not None and value is not None else value
