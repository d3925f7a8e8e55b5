"""Peak memory and time of blockwise retrieval ranks, against the whole similarity matrix in the same run.

Each case runs ``clipbench.scoring.retrieval.retrieval_ranks`` in a fresh interpreter on random
unit features (one thread), with the peak-RSS watermark reset just before the call, so "peak
beyond the features" is what scoring adds. The reference is the same call with a budget that
holds the whole matrix (as a full-matrix implementation would), measured in the same run where
it fits in memory; the ratio says how much the block budget saves. The bound being chased: peak
extra memory ~ a small multiple of the block budget, independent of the number of images and
captions (only the O(images + captions) counters grow).

    python benchmarks/retrieval_memory.py --out retrieval_memory.json            # 5k x 25k, 512-d
    python benchmarks/retrieval_memory.py --large --out retrieval_memory.json    # also 50k images x 200k captions
    python benchmarks/retrieval_memory.py --quick                                # 1k x 10k, 16-d, seconds

``--quick`` is tests/benchmarks/test_benchmarks_retrieval_memory.py's memory bound: each case warmed up by the very
same call, so the code pages the scoring touches are resident before the watermark is reset.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, print_table, write_summary  # noqa: E402

_CASE = textwrap.dedent("""
    import ctypes, json, sys, time
    import numpy as np, torch
    from clipbench.scoring.retrieval import retrieval_ranks
    torch.set_num_threads(1)
    n_img, n_txt, dim, budget = (int(v) for v in sys.argv[1:5])
    warmup = sys.argv[5]
    rng = np.random.default_rng(0)
    images = rng.standard_normal((n_img, dim), dtype=np.float32)
    texts = rng.standard_normal((n_txt, dim), dtype=np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    owner = np.repeat(np.arange(n_img), n_txt // n_img)
    # warm up so that the kernels' code pages are resident and not counted as scoring memory: on a small
    # problem in small blocks, or ("same") with the very same call; then hand the freed heap back to the
    # OS, so that the measured call has to fault in its own memory again
    if warmup == "same":
        retrieval_ranks(images, texts, owner, budget_bytes=budget)
    else:
        small = min(n_img, 256)
        retrieval_ranks(images[:small], texts[:small * (n_txt // n_img)], owner[:small * (n_txt // n_img)],
                        block_rows=64, block_cols=64)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    def rss_kb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1])
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak-RSS watermark to the current RSS
    before = rss_kb("VmRSS")
    start = time.perf_counter()
    ranks = retrieval_ranks(images, texts, owner, budget_bytes=budget)
    seconds = time.perf_counter() - start
    print(json.dumps({"peak_extra_mb": (rss_kb("VmHWM") - before) / 1024, "seconds": seconds,
                      "blocks": list(ranks.blocks), "block_mb": ranks.block_bytes / 2**20,
                      "features_mb": (images.nbytes + texts.nbytes) / 2**20,
                      "t2i_r1": float((ranks.t2i_rank == 1).mean())}))
""")


def run_case(n_img: int, n_txt: int, dim: int, budget_mb: int, warmup: str = "small") -> dict:
    """One measurement in a fresh interpreter (also used by tests/scoring/test_retrieval.py's memory bound)."""
    out = subprocess.run([sys.executable, "-c", _CASE, str(n_img), str(n_txt), str(dim), str(budget_mb << 20),
                          warmup], capture_output=True, text=True, check=True, timeout=7200)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"images": n_img, "captions": n_txt, "dim": dim, "budget_mb": budget_mb, **result}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1k images x 10k captions, 16-d, 8 MB and whole (seconds)")
    p.add_argument("--large", action="store_true", help="also 50k images x 200k captions, 64-d, 64 MB (minutes)")
    p.add_argument("--out", help="write the JSON summary here")
    args = p.parse_args(argv)
    if args.quick:
        cases = [(1000, 10000, 16, 8), (1000, 10000, 16, 1024)]
    else:
        cases = [(5000, 25000, 512, 64), (5000, 25000, 512, 256), (5000, 25000, 512, 4096)]
    runs = [run_case(*c, warmup="same" if args.quick else "small") for c in cases]
    whole = runs[-1]  # the reference: one block holding the whole matrix
    if args.large:
        runs.append(run_case(50_000, 200_000, 64, 64))
    for r in runs:
        same = r["images"] == whole["images"] and r["captions"] == whole["captions"]
        r["ranks_equal_whole"] = (r["t2i_r1"] == whole["t2i_r1"]) if same else None
        r["peak_vs_whole"] = r["peak_extra_mb"] / whole["peak_extra_mb"] if same else None
        r["peak_vs_budget"] = r["peak_extra_mb"] / r["budget_mb"]
    print_table("retrieval ranks: peak RSS beyond the features (one thread)",
                ["images", "captions", "dim", "budget MB", "block", "peak MB", "x budget", "x whole", "s"],
                [[r["images"], r["captions"], r["dim"], r["budget_mb"], "x".join(map(str, r["blocks"])),
                  r["peak_extra_mb"], r["peak_vs_budget"], r["peak_vs_whole"], r["seconds"]] for r in runs])
    write_summary(args.out, {"benchmark": "retrieval_memory", "machine": machine_info(), "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
