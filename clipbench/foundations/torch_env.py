"""What a run records and decides about torch, without importing it when nothing needs torch.

Importing torch costs 1.2-1.6 s on a CPU machine, most of a warm rerun whose features, text
features and model description all come from the caches. Such a run scores in numpy and never
imports torch; these answers are the same whether or not torch is loaded:

* ``version()``: ``torch.__version__``, read from torch's ``version.py`` when torch is not loaded;
* ``intra_op_threads()``: torch's thread count when torch is loaded, else ``None`` (no torch
  operation ran in this process, so no thread count shaped a number);
* ``parse_device()``: the one parser of a ``--device`` string (``cpu`` without torch);
* ``default_device()``: ``--device auto``. It is ``cpu`` without asking torch only where no GPU can
  be present: on Linux with no NVIDIA, AMD (KFD) or WSL GPU device node. Anywhere else torch is
  imported and asked, as before.
"""

from __future__ import annotations

import os
import sys

from clipbench.foundations.errors import ClipbenchError

#: Device nodes of a GPU driver on Linux; with none of them, torch.cuda.is_available() is False.
GPU_DEVICE_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def loaded() -> bool:
    return "torch" in sys.modules


def version() -> str:
    """``torch.__version__`` (e.g. ``2.14.1+cu130``), read from torch's ``version.py`` when torch is not loaded.

    The distribution's metadata would drop the local part (``+cu130``) that ``torch.__version__`` carries,
    and records of cold and warm runs must say the same.
    """
    if loaded():
        return sys.modules["torch"].__version__
    import importlib.util
    import re

    spec = importlib.util.find_spec("torch")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        try:
            text = open(os.path.join(folder, "version.py"), encoding="utf-8").read()
        except OSError:
            continue
        match = re.search(r"""^__version__\s*(?::\s*\w+\s*)?=\s*['"]([^'"]+)['"]""", text, re.MULTILINE)
        if match:
            return match.group(1)
    import torch  # an unusual install: ask torch itself

    return torch.__version__


def intra_op_threads() -> int | None:
    """torch's intra-op threads, or None when torch was never imported (so nothing ran on it)."""
    return sys.modules["torch"].get_num_threads() if loaded() else None


def gpu_possible() -> bool:
    """False only when this is Linux and no GPU driver's device node exists (then no GPU can be used)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(node) for node in GPU_DEVICE_NODES)


def default_device() -> str:
    """``cuda`` if torch can use a CUDA device, else ``cpu`` (torch is imported only where a GPU could be)."""
    if not loaded() and not gpu_possible():
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def parse_device(device: object, *, available: bool = False) -> str:
    """``device`` in torch's spelling (``cuda:0``), or one ``ClipbenchError`` line saying why clipbench cannot use
    it: torch does not know it, or it is ``meta`` (holds no data); ``available``: also a CUDA device this machine
    does not have. ``cpu`` is taken as is, so a run on the CPU does not import torch to parse its device."""
    if str(device) == "cpu":
        return "cpu"
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ClipbenchError(f"unknown device {device!r}: {exc}") from exc
    if dev.type == "meta":
        raise ClipbenchError(f"--device {device}: the meta device holds no data, so nothing can be evaluated on it; "
                             "use cpu or cuda")
    if available and dev.type == "cuda" and not torch.cuda.is_available():
        raise ClipbenchError(f"--device {device} requested but CUDA is not available here")
    return str(dev)


def device_type(device: str) -> str:
    """``cuda`` of ``cuda:1``: the type of a device string that ``torch.device`` accepted."""
    return str(device).partition(":")[0]
