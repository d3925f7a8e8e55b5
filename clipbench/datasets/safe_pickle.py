"""Read pickled data files (CIFAR's python batches) without running code planted in them.

``pickle.load`` calls whatever global a file names, so a batch file dropped into a data root could
run anything. ``load`` resolves only the builtin containers and numpy's array reconstruction (the
globals numpy 1 and 2 write for an array, under protocols 2 to 5); any other global is refused
before it is called, as a one-line ``DataError``.
"""

from __future__ import annotations

import pickle
from typing import IO, Any

from clipbench.foundations.errors import DataError

_NUMPY = {("numpy", "ndarray"), ("numpy", "dtype")} | {
    (f"numpy.{core}.{module}", name) for core in ("core", "_core")
    for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))}
#: every global a pickle may name: containers, the codec protocol 2 uses for bytes, numpy's arrays
ALLOWED = _NUMPY | {(module, n) for module in ("builtins", "__builtin__")  # Python 2's name (CIFAR's batches)
                    for n in ("set", "frozenset", "bytearray", "complex", "slice")} | {("_codecs", "encode")}


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a data file has no use for")
        return super().find_class(module, name)


def load(fh: IO[bytes], where: str, encoding: str = "latin1") -> Any:
    """The object pickled in ``fh`` (containers, strings, numbers, numpy arrays) or a one-line ``DataError``."""
    try:
        return _Restricted(fh, encoding=encoding).load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{where} was refused: {exc} (only containers and numpy arrays are read from data files)"
                        ) from exc
