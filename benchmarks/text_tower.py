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

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved_runs, machine_info, print_table, write_summary  # noqa: E402
from zeroshot_text import FULL_CLASSES, per_class_loop, rel_diff, text_bench, text_benchmark_args  # noqa: E402


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


def main(argv: list[str] | None = None) -> int:
    args = text_benchmark_args(__doc__, argv, classes=10, repeats=1,
                               classes_help=f"classes to time, evenly spaced (max {FULL_CLASSES})")
    if args is None:
        return 2
    from clipbench.features.text_classifier import build_text_classifier

    bench = text_bench(args)
    classnames, templates, source, name, arch = bench.classnames, bench.templates, bench.source, bench.name, bench.arch
    native, reference, ref_tokenizer = bench.native, bench.reference, bench.ref_tokenizer
    all_classes, all_templates = bench.all_classes, bench.all_templates
    prompts = [[t.format(c=c) for t in templates] for c in classnames]
    methods = {
        "clipbench sorted": lambda: build_text_classifier(native, prompts, batch_size=args.batch_size),
        "clipbench file order": lambda: file_order(native, prompts, args.batch_size),
    }
    if not args.no_open_clip:
        methods["open_clip per class"] = lambda: per_class_loop(reference.encode_text, ref_tokenizer, classnames,
                                                                templates)
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
