"""Helpers for the torchrun tests: a ``folder:`` dataset of PNGs, a tiny CLIP, torchrun command lines.

Run as a script (``torchrun ... tests/_distributed_fixtures.py run ...``) it is a thin wrapper
around ``clipbench.cli.main`` that applies per-rank test hooks before running the CLI:

* ``CLIPBENCH_TEST_SHARD_BATCHES=K``: shards of K batches (so a killed rank leaves partial work);
* ``CLIPBENCH_TEST_KILL_RANK=R``: on rank R only, sets the engine's interrupt hook to SIGKILL the
  process after ``CLIPBENCH_TEST_KILL_AFTER`` batches (default 1);
* ``CLIPBENCH_TEST_FORWARD_LOG_PREFIX=P``: each rank logs its encoder forwards to ``P.rank<R>``;
* ``CLIPBENCH_TEST_HANG_RANK=R``: rank R hangs (sleeps for an hour) after its first image batch;
* ``CLIPBENCH_TEST_SLOW_PROBE_S=S``: rank 0's first linear probe takes S seconds longer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

CLASSES = ("cat", "dog", "frog")
#: Images per split: 21 is not divisible by 2 (nor by the batch size the tests use).
SPLIT_SIZES = {"train": 21, "test": 21}
BATCH_SIZE = 4


def write_png_dataset(root: Path, sizes: dict[str, int] = SPLIT_SIZES, px: int = 32, seed: int = 0) -> Path:
    """``root/<split>/<class>/<i>.png``: class-coloured noise images, classes dealt round-robin."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in sizes.items():
        for i in range(n):
            c = i % len(CLASSES)
            base = np.array([(c * 97) % 256, (c * 53 + 80) % 256, (c * 151 + 30) % 256], dtype=np.float64)
            pixels = np.clip(0.6 * base + 0.4 * 255 * rng.random((px, px, 3)), 0, 255).astype(np.uint8)
            folder = root / split / CLASSES[c]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels, "RGB").save(folder / f"{i:03d}.png")
    return root


#: record fields that differ between equal runs (cost: timings; samples: named by record_id)
VOLATILE = frozenset({"record_id", "timestamp", "time_extract_s", "time_task_s", "cost", "samples"})


def stable(records: list[dict]) -> list[dict]:
    """Records without their ``VOLATILE`` fields, for comparing runs."""
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in records]


def feature_bytes(cache: Path) -> dict[str, bytes]:
    """Every feature entry of a cache as bytes, by entry name; each must be complete (checksums verified)."""
    import json

    from clipbench.features import FeatureKey, FeatureStore

    store = FeatureStore(cache / "features")
    out = {}
    for entry in store.entries():
        fs = store.load(FeatureKey(**json.loads((entry.path / "key.json").read_text())))
        assert fs is not None, f"{entry.path} is not complete"
        out[entry.path.name] = fs.features.tobytes()  # labels are the split's, not the store's
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """Environment for launched processes: one thread each (2 shared cores), no stray launcher vars."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


def torchrun(nproc: int, target: list[str], env: dict[str, str], cwd: Path,
             timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc_per_node N ... <target>`` on loopback, output captured."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "--max_restarts", "0", *target]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _forked_rank(argv: list[str], env: dict[str, str]) -> None:
    code = 1
    try:
        os.environ.update(env)
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (a rank's own output is not checked)
        from clipbench.cli import main

        code = main(argv)
    finally:
        os._exit(code)


def fork_ranks(world: int, argv, env_of, timeout: float = 120) -> list[int | None]:
    """``clipbench.cli.main(argv(r))`` in ``world`` processes forked from this one, each with ``env_of(r)``
    added to its environment, all at once; their exit codes. A fork inherits the imported modules, so a
    rank costs little more than its work (torchrun would start a fresh interpreter per rank)."""
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    procs = [fork.Process(target=_forked_rank, args=(argv(r), env_of(r))) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
        if p.exitcode is None:
            p.kill()
    return [p.exitcode for p in procs]


def _worker() -> int:
    rank = os.environ.get("RANK", "0")
    if os.environ.get("CLIPBENCH_TEST_SHARD_BATCHES"):
        import clipbench.features.extraction as extraction

        extraction.SHARD_BATCHES = int(os.environ["CLIPBENCH_TEST_SHARD_BATCHES"])
    if os.environ.get("CLIPBENCH_TEST_KILL_RANK") == rank:
        os.environ["CLIPBENCH_TEST_INTERRUPT_AFTER_BATCHES"] = os.environ.get("CLIPBENCH_TEST_KILL_AFTER", "1")
        os.environ["CLIPBENCH_TEST_INTERRUPT_MODE"] = "kill"
    prefix = os.environ.get("CLIPBENCH_TEST_FORWARD_LOG_PREFIX")
    if prefix:
        os.environ["CLIPBENCH_TEST_FORWARD_LOG"] = f"{prefix}.rank{rank}"
    if os.environ.get("CLIPBENCH_TEST_HANG_RANK") == rank:
        import time

        import clipbench.features.extraction as extraction

        real_note = extraction._note_forward

        def note_then_hang(n: int) -> None:
            real_note(n)
            time.sleep(3600)

        extraction._note_forward = note_then_hang
    if os.environ.get("CLIPBENCH_TEST_SLOW_PROBE_S") and rank == "0":
        import time

        import clipbench.tasks.linear_probe as probe_module

        real_probe, delay = probe_module.linear_probe, float(os.environ["CLIPBENCH_TEST_SLOW_PROBE_S"])

        calls = []

        def slow_probe(*args, **kwargs):  # the first probe only: the one the other rank must not wait on
            if not calls:
                time.sleep(delay)
            calls.append(1)
            return real_probe(*args, **kwargs)

        probe_module.linear_probe = slow_probe
    from clipbench.cli import main

    return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(_worker())
