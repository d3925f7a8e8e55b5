"""Start-up wall time of light `clipbench` commands, and whether they import torch.

Each command runs in a fresh interpreter (``python -m clipbench.cli ...``) with the source tree
under test first on ``PYTHONPATH``. *Warm*: the median of ``--repeats`` runs with the usual
byte-code caches (the OS file cache is warm too). *Cold*: one run with ``PYTHONPYCACHEPREFIX`` set
to an empty folder, so every module, torch's included, is compiled from source as on the first run
after an install (the OS file cache is not dropped: that would need root and disturb a shared
machine). ``--before DIR`` times another source tree (e.g. ``git archive`` of an older commit) the
same way, interleaved.

    python benchmarks/startup.py --before /tmp/clipbench-old --out startup.json

It also times two whole ``clipbench run``s served from their cache (one untimed run fills it):
``--suite smoke``, whose linear probe is recomputed on every run, and a zero-shot-only suite on the
same digits, which has nothing left to compute but the scoring. Wall and CPU seconds of the child
(CPU time is steadier than wall time on a shared machine), and what it imported.
    python benchmarks/startup.py --quick --out /tmp/startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

PROBE = """
import json, sys
from clipbench import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "torch": "torch" in sys.modules, "torchvision": "torchvision" in sys.modules,
                  "dynamo": "torch._dynamo" in sys.modules, "sklearn": "sklearn" in sys.modules}), file=sys.stderr)
"""


#: whole ``clipbench run``s served from their cache (features and text features stored by an untimed first run):
#: smoke recomputes its linear probe (torch's work); the zero-shot one has nothing to compute but scores
WARM_RUN = "run --suite smoke (cached)"
ZEROSHOT_RUN = "run zero-shot digits (cached)"
CACHED_RUNS = (WARM_RUN, ZEROSHOT_RUN)
ZEROSHOT_SUITE = ("version: 1\nname: zeroshot-digits\nmodel: clipbench-tiny\ndatasets: [digits]\ntasks: [zeroshot]\n"
                  "options: {offline: true, batch_size: 128, workers: 0}\n")


def commands() -> dict[str, list[str]]:
    baseline = str(ROOT / "results" / "baseline.csv")
    return {"--help": ["--help"], "list suites": ["list", "suites"], "list models": ["list", "models"],
            "list datasets": ["list", "datasets"], "compare": ["compare", baseline, "--baseline", baseline],
            WARM_RUN: ["run", "--suite", "smoke", "--no-progress", "--results-dir", "{work}/results",
                       "--cache-dir", "{work}/cache"],
            ZEROSHOT_RUN: ["run", "--suite", "{work}/zeroshot.yaml", "--device", "cpu", "--no-progress",
                           "--results-dir", "{work}/results", "--cache-dir", "{work}/cache"]}


def time_once(tree: Path, argv: list[str], pycache: str | None, work: str = "") -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of the child, what it imported) of one fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
    env["PYTHONPATH"] = str(tree)
    if pycache:
        env["PYTHONPYCACHEPREFIX"] = pycache
    argv = [a.replace("{work}", work) for a in argv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env,
                          cwd=tempfile.gettempdir(), timeout=600)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, json.loads(proc.stderr.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, default=None, help="another clipbench source tree to time the same way")
    parser.add_argument("--repeats", type=int, default=5, help="warm runs per command (median)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold (empty byte-code cache) runs")
    parser.add_argument("--no-run", action="store_true", help="skip the cached `clipbench run`s")
    parser.add_argument("--quick", action="store_true", help="one warm run of --help, no cold run (for tests)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        print("error: --repeats must be >= 1", file=sys.stderr)
        return 2
    cmds = commands()
    if args.quick:
        args.repeats, args.no_cold, cmds = 1, True, {"--help": cmds["--help"]}
    if args.no_run:
        for name in CACHED_RUNS:
            cmds.pop(name, None)
    trees = {"now": ROOT}
    if args.before is not None:
        trees["before"] = args.before.resolve()
    from _common import machine_info, print_table, write_summary

    results: dict[tuple[str, str], dict] = {}
    scratch = tempfile.TemporaryDirectory(prefix="clipbench-startup-")
    work = {tree_name: f"{scratch.name}/{tree_name}" for tree_name in trees}
    for folder in work.values():
        Path(folder).mkdir()
        (Path(folder) / "zeroshot.yaml").write_text(ZEROSHOT_SUITE)
    for name, cmd in cmds.items():
        for tree_name, tree in trees.items():
            results[(tree_name, name)] = {"warm": [], "cpu": [], "cold": None, "imports": None}
            if name in CACHED_RUNS:  # fill the cache: the timed runs are reruns
                time_once(tree, cmd, None, work[tree_name])
        for _ in range(args.repeats):  # interleaved trees
            for tree_name, tree in trees.items():
                seconds, cpu, info = time_once(tree, cmd, None, work[tree_name])
                entry = results[(tree_name, name)]
                entry["warm"].append(seconds)
                entry["cpu"].append(cpu)
                entry["imports"] = info
        if not args.no_cold:
            for tree_name, tree in trees.items():
                with tempfile.TemporaryDirectory(prefix="clipbench-pycache-") as empty:
                    results[(tree_name, name)]["cold"] = time_once(tree, cmd, empty, work[tree_name])[0]
    scratch.cleanup()
    rows, runs = [], []
    for (tree_name, name), entry in results.items():
        warm, cpu = statistics.median(entry["warm"]), statistics.median(entry["cpu"])
        info = entry["imports"]
        runs.append({"tree": tree_name, "command": name, "warm_median_s": warm, "warm_s": entry["warm"],
                     "warm_cpu_median_s": cpu, "cold_s": entry["cold"], "exit_code": info["code"],
                     "imports_torch": info["torch"], "imports_torchvision": info["torchvision"],
                     "imports_dynamo": info["dynamo"], "imports_sklearn": info["sklearn"]})
        rows.append([f"clipbench {name}", tree_name, warm, cpu, entry["cold"], "yes" if info["torch"] else "no",
                     "yes" if info["torchvision"] else "no", "yes" if info["dynamo"] else "no",
                     "yes" if info["sklearn"] else "no"])
    summary = {"benchmark": "startup", "machine": machine_info(), "args": {k: str(v) for k, v in vars(args).items()},
               "runs": runs}
    print_table(f"Start-up wall time (warm: median of {args.repeats}; cold: empty byte-code cache, one run)",
                ["command", "tree", "warm s", "warm CPU s", "cold s", "torch", "torchvision", "torch._dynamo",
                 "sklearn"], rows)
    write_summary(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
