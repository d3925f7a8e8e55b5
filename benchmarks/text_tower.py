"""The text tower at ImageNet size: length-sorted batches vs file-order batches vs open_clip's per-class loop.

The work is the CLIP paper's ImageNet classifier: 1,000 classnames x 80 templates from
``clipbench/prompts/imagenet1k.yaml``, each prompt encoded, L2-normalised, averaged per class and
renormalised. Three ways with the same random weights of the real ViT-B/32 text tower:

* ``clipbench sorted``: ``clipbench.features.text_classifier.build_text_classifier`` as it is now: prompts in
  end-of-text order, batches of ``--batch-size``, each batch stopping at its own longest prompt;
* ``clipbench file order``: the builder before sorting (the same batches in file order, each
  stopping at its longest prompt, which in a mixed batch is a long one);
* ``open_clip per class``: CLIP_benchmark's loop (one class's 80 prompts at a time, all 77 positions)
  on open_clip's model holding identical weights.

All three must give the same [C, D] classifier (max relative difference <= 1e-5; sorted vs file
order <= 1e-6). A CPU cannot run 80,000 prompts three times in minutes, so an evenly spaced subset of
the classes (all 80 templates each) is timed and the full build projected linearly; the token
positions each method runs for the whole 1000-class build (tokenizing only) are counted exactly,
since a small subset's batches mix fewer lengths than the full build's do.

    python benchmarks/text_tower.py --out text_tower.json                  # 10 classes x 80 templates
    python benchmarks/text_tower.py --quick --out /tmp/tt.json             # tiny tower, seconds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved_runs, machine_info, print_table, write_summary  # noqa: E402
from extract import identical_pair, register_quick_archs  # noqa: E402
from zeroshot_text import FULL_ARCH, FULL_CLASSES, QUICK_ARCH, imagenet_prompts, per_class_loop, rel_diff  # noqa: E402


def file_order(model, prompts: list[list[str]], batch_size: int) -> torch.Tensor:
    """The builder before length sorting: the same batches, in file order."""
    flat = [p for ps in prompts for p in ps]
    owner = torch.tensor([c for c, ps in enumerate(prompts) for _ in ps])
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(flat), batch_size):
            emb = model.encode_text(model.tokenize(flat[start:start + batch_size])).float()
            chunks.append(emb / emb.norm(dim=-1, keepdim=True))
    emb = torch.cat(chunks)
    sums = torch.zeros(len(prompts), emb.shape[1]).index_add_(0, owner, emb)
    means = sums / torch.bincount(owner).unsqueeze(1).float()
    return means / means.norm(dim=-1, keepdim=True)


def positions_run(model, prompts: list[list[str]], batch_size: int, sort: bool) -> int:
    """Token positions the tower computes (rows x the batch's longest end-of-text + 1)."""
    from clipbench.features.text_store import length_order

    tokens = model.tokenize([p for ps in prompts for p in ps])
    order = length_order(tokens) if sort else torch.arange(len(tokens))
    eot = tokens.argmax(-1)[order]
    return sum(int(eot[s:s + batch_size].max() + 1) * len(eot[s:s + batch_size]) for s in range(0, len(eot), batch_size))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=10, help=f"classes to time, evenly spaced (max {FULL_CLASSES})")
    parser.add_argument("--templates", type=int, default=80, help="templates per class (the first N of the 80)")
    parser.add_argument("--batch-size", type=int, default=256, help="clipbench's text batch size")
    parser.add_argument("--repeats", type=int, default=1, help="timed rounds (the order of methods alternates)")
    parser.add_argument("--no-open-clip", action="store_true", help="skip open_clip's per-class loop")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="tiny text tower, few classes (for tests)")
    parser.add_argument("--out", default=None, help="write the JSON summary here")
    args = parser.parse_args(argv)
    if args.quick:
        args.classes, args.templates, args.batch_size, args.repeats = 6, 8, 16, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not 1 <= args.classes <= FULL_CLASSES or not 1 <= args.templates <= 80 or args.batch_size < 1:
        print(f"error: --classes must be in 1..{FULL_CLASSES}, --templates in 1..80, --batch-size >= 1", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    from clipbench.features.text_classifier import build_text_classifier

    all_classes, all_templates, source = imagenet_prompts()
    step = FULL_CLASSES / args.classes
    classnames = [all_classes[int(i * step)] for i in range(args.classes)]
    templates = all_templates[: args.templates]
    prompts = [[t.format(c=c) for t in templates] for c in classnames]
    name, arch = QUICK_ARCH if args.quick else FULL_ARCH
    with tempfile.TemporaryDirectory(prefix="clipbench-bench-text-") as tmp:
        if args.quick:
            register_quick_archs(Path(tmp))
        native, reference = identical_pair(arch, Path(tmp))
    import open_clip

    ref_tokenizer = open_clip.get_tokenizer(arch)
    methods = {
        "clipbench sorted": lambda: build_text_classifier(native, prompts, batch_size=args.batch_size),
        "clipbench file order": lambda: file_order(native, prompts, args.batch_size),
    }
    if not args.no_open_clip:
        methods["open_clip per class"] = lambda: per_class_loop(reference.encode_text, ref_tokenizer, classnames,
                                                                templates)
    with torch.inference_mode():  # untimed warm-up of every code path on one short prompt
        native.encode_text(native.tokenize(["a photo of a dog."]))
        reference.encode_text(ref_tokenizer(["a photo of a dog."]))
    times, results = interleaved_runs(methods, args.repeats)

    sorted_weights = results["clipbench sorted"]
    n_prompts = args.classes * args.templates
    positions = {"clipbench sorted": positions_run(native, prompts, args.batch_size, sort=True),
                 "clipbench file order": positions_run(native, prompts, args.batch_size, sort=False),
                 "open_clip per class": n_prompts * native.context_length}
    # the whole 1000 x 80 build's padded positions (tokenizing only): what sorting saves at full size
    full_prompts = [[t.format(c=c) for t in all_templates[: args.templates]] for c in all_classes]
    full_n = sum(len(p) for p in full_prompts)
    full_positions = {"clipbench sorted": positions_run(native, full_prompts, args.batch_size, sort=True),
                      "clipbench file order": positions_run(native, full_prompts, args.batch_size, sort=False),
                      "open_clip per class": full_n * native.context_length}
    base = statistics.median(times["clipbench sorted"])
    rows, runs = [], []
    for method in methods:
        seconds = statistics.median(times[method])
        diff = rel_diff(results[method], sorted_weights)
        run = {"method": method, "seconds": seconds, "times_s": times[method], "prompts_per_s": n_prompts / seconds,
               "projected_full_seconds": seconds * FULL_CLASSES / args.classes, "token_positions": positions[method],
               "full_build_token_positions": full_positions[method],
               "slowdown_vs_sorted": seconds / base, "max_rel_diff_vs_sorted": diff}
        runs.append(run)
        rows.append([method, seconds, run["prompts_per_s"], run["projected_full_seconds"], positions[method],
                     full_positions[method], run["slowdown_vs_sorted"], diff])
    exact = rel_diff(results["clipbench file order"], sorted_weights) <= 1e-6
    same = exact and all(r["max_rel_diff_vs_sorted"] <= 1e-5 for r in runs)
    summary = {"benchmark": "text_tower", "machine": machine_info(("open_clip",)), "args": vars(args), "model": name,
               "open_clip_arch": arch, "prompt_source": source, "classes_timed": args.classes,
               "templates": args.templates, "prompts_timed": n_prompts, "full_classes": FULL_CLASSES,
               "classifier_shape": list(sorted_weights.shape), "sorted_equals_file_order": exact,
               "same_classifier": same, "methods": runs}
    scope = "the full build" if args.classes == FULL_CLASSES else \
        f"{args.classes} of {FULL_CLASSES} classes timed, projected linearly to {FULL_CLASSES}"
    print_table(f"Text tower, {args.classes} classes x {args.templates} templates = {n_prompts} prompts "
                f"({name} text tower, random weights; {scope}; batch {args.batch_size}; prompts: {source})",
                ["method", "seconds", "prompts/s", f"projected {FULL_CLASSES}-class s", "token positions",
                 f"{FULL_CLASSES}-class positions", "time vs sorted", "max rel diff vs sorted"], rows)
    if not same:
        print("\nWARNING: the classifiers differ (sorted vs file order > 1e-6 or any > 1e-5 relative)")
    write_summary(args.out, summary)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
