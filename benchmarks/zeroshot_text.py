"""Zero-shot classifier construction: clipbench's batched builder vs one class at a time.

The work is the ImageNet classifier of the CLIP paper: 1,000 classnames x 80 templates, each prompt
encoded, L2-normalised, averaged per class and renormalised. Three ways to build it with the same
random weights of the real ViT-B/32 text tower (width 512, 12 layers, 77-token context):

* ``clipbench batched``: ``clipbench.features.text_classifier.build_text_classifier`` (all classes' prompts
  in fixed-size batches through the native model);
* ``clipbench per class``: the loop of CLIP's ImageNet notebook (encode one class's 80 prompts,
  average, next class) on the same native model, which isolates what batching buys;
* ``open_clip per class``: the same loop on open_clip's model with identical weights, which is what
  CLIP_benchmark does, so the reference.

All three must give the same [C, D] classifier (max relative difference <= 1e-5). On a CPU the
full 80,000 prompts take a long time through the per-class references, so by default an evenly
spaced subset of the classes (all 80 templates each) is timed and the full build is projected
linearly from it (every method's cost is linear in the number of classes); ``--classes 1000``
times the whole thing.

    python benchmarks/zeroshot_text.py --out zeroshot_text.json
    python benchmarks/zeroshot_text.py --quick --out /tmp/zs-quick.json     # tiny text tower, seconds
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved_runs, machine_info, print_table, write_summary  # noqa: E402
from extract import identical_pair, register_quick_archs  # noqa: E402

FULL_ARCH = ("ViT-B/32", "ViT-B-32-quickgelu")
QUICK_ARCH = ("tiny-ViT", "cbbench-tiny-ViT")
FULL_CLASSES = 1000


def imagenet_prompts() -> tuple[list[str], list[str], str]:
    """(classnames, templates, where from): clipbench's packaged ImageNet prompts, else a synthetic stand-in."""
    from clipbench.foundations.errors import ClipbenchError

    try:
        from clipbench.datasets.prompts import packaged_prompts

        prompts = packaged_prompts("imagenet1k")
        if len(prompts.classnames) == FULL_CLASSES and len(prompts.templates) == 80:
            return list(prompts.classnames), list(prompts.templates), "clipbench/prompts/imagenet1k.yaml"
    except (ImportError, ClipbenchError) as exc:
        logging.getLogger(__name__).warning("packaged ImageNet prompts unavailable (%s); using synthetic ones", exc)
    words = ["red", "spotted", "great", "common", "wild", "sea", "house", "tree", "mountain", "river",
             "grey", "northern", "little", "giant", "golden", "black"]
    nouns = ["finch", "shark", "beetle", "terrier", "lizard", "truck", "vase", "lamp", "bridge", "owl",
             "mushroom", "guitar", "kettle", "canoe", "spider", "parrot"]
    classnames = [" ".join([words[i % 16], nouns[(i // 16) % 16]] + ([f"(variant {i // 256})"] if i >= 256 else []))
                  for i in range(FULL_CLASSES)]
    styles = ["", "bad ", "blurry ", "bright ", "cropped ", "dark ", "good ", "large ", "small ", "close-up "]
    forms = ["a {s}photo of a {c}.", "a {s}photo of the {c}.", "a {s}rendering of a {c}.", "a {s}drawing of the {c}.",
             "a {s}sculpture of a {c}.", "a {s}sketch of the {c}.", "itap of a {s}{c}.", "a {s}tattoo of a {c}."]
    templates = [f.replace("{s}", s) for f in forms for s in styles]
    return classnames, templates, "synthetic (1000 classnames x 80 templates)"


def per_class_loop(encode, tokenize, classnames: list[str], templates: list[str]) -> torch.Tensor:
    """CLIP's notebook: for each class encode its prompts, normalise, average, renormalise."""
    weights = []
    with torch.inference_mode():
        for name in classnames:
            emb = encode(tokenize([t.format(c=name) for t in templates])).float()
            emb = emb / emb.norm(dim=-1, keepdim=True)
            mean = emb.mean(dim=0)
            weights.append(mean / mean.norm())
    return torch.stack(weights)


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = torch.as_tensor(a), torch.as_tensor(b)  # clipbench's classifiers are numpy arrays
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def text_benchmark_args(doc: str, argv: list[str] | None, *, classes: int, repeats: int,
                        classes_help: str) -> argparse.Namespace | None:
    """The options this benchmark and ``text_tower.py`` share; None (after one error line) on bad sizes."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=classes, help=classes_help)
    parser.add_argument("--templates", type=int, default=80, help="templates per class (the first N of the 80)")
    parser.add_argument("--batch-size", type=int, default=256, help="clipbench's text batch size")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed rounds (the order of methods alternates)")
    parser.add_argument("--no-open-clip", action="store_true", help="skip open_clip's per-class loop")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="tiny text tower, few classes (for tests)")
    parser.add_argument("--out", default=None, help="write the JSON summary here")
    args = parser.parse_args(argv)
    if args.quick:
        args.classes, args.templates, args.batch_size, args.repeats = 6, 8, 16, 1
    if not 1 <= args.classes <= FULL_CLASSES or not 1 <= args.templates <= 80 or args.batch_size < 1:
        print(f"error: --classes must be in 1..{FULL_CLASSES}, --templates in 1..80, --batch-size >= 1", file=sys.stderr)
        return None
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


@dataclass
class TextBench:
    """The classes, templates and the two identical text towers (clipbench's, open_clip's) both benchmarks time."""

    classnames: list[str]
    templates: list[str]
    all_classes: list[str]
    all_templates: list[str]
    source: str
    name: str
    arch: str
    native: object
    reference: object
    ref_tokenizer: object


def text_bench(args: argparse.Namespace) -> TextBench:
    """Evenly spaced classes, the first templates, and both towers with the same random weights, warmed up."""
    import open_clip

    all_classes, all_templates, source = imagenet_prompts()
    step = FULL_CLASSES / args.classes
    name, arch = QUICK_ARCH if args.quick else FULL_ARCH
    with tempfile.TemporaryDirectory(prefix="clipbench-bench-text-") as tmp:
        if args.quick:
            register_quick_archs(Path(tmp))
        native, reference = identical_pair(arch, Path(tmp))
    ref_tokenizer = open_clip.get_tokenizer(arch)
    with torch.inference_mode():  # untimed warm-up of every code path on one short prompt
        native.encode_text(native.tokenize(["a photo of a dog."]))
        reference.encode_text(ref_tokenizer(["a photo of a dog."]))
    return TextBench([all_classes[int(i * step)] for i in range(args.classes)], all_templates[: args.templates],
                     all_classes, all_templates, source, name, arch, native, reference, ref_tokenizer)


def main(argv: list[str] | None = None) -> int:
    args = text_benchmark_args(__doc__, argv, classes=40, repeats=2, classes_help=(
        f"classes to time (evenly spaced, all templates each); {FULL_CLASSES} = the whole build"))
    if args is None:
        return 2
    from clipbench.features.text_classifier import build_text_classifier

    bench = text_bench(args)
    classnames, templates, source, name, arch = bench.classnames, bench.templates, bench.source, bench.name, bench.arch
    native, reference, ref_tokenizer = bench.native, bench.reference, bench.ref_tokenizer
    methods = {
        "clipbench batched": lambda: build_text_classifier(native, [[t.format(c=c) for t in templates]
                                                                    for c in classnames], batch_size=args.batch_size),
        "clipbench per class": lambda: per_class_loop(native.encode_text, native.tokenize, classnames, templates),
    }
    if not args.no_open_clip:
        methods["open_clip per class"] = lambda: per_class_loop(reference.encode_text, ref_tokenizer, classnames,
                                                                templates)
    times, results = interleaved_runs(methods, args.repeats)

    batched = results["clipbench batched"]
    prompts = args.classes * args.templates
    rows, runs = [], []
    base = statistics.median(times["clipbench batched"])
    for method in methods:
        seconds = statistics.median(times[method])
        diff = rel_diff(results[method], batched)
        run = {"method": method, "seconds": seconds, "times_s": times[method], "prompts_per_s": prompts / seconds,
               "projected_full_seconds": seconds * FULL_CLASSES / args.classes,
               "speedup_of_batched": seconds / base, "max_rel_diff_vs_batched": diff}
        runs.append(run)
        rows.append([method, seconds, run["prompts_per_s"], run["projected_full_seconds"], run["speedup_of_batched"],
                     diff])
    same = all(r["max_rel_diff_vs_batched"] <= 1e-5 for r in runs)
    summary = {"benchmark": "zeroshot_text", "machine": machine_info(("open_clip",)), "args": vars(args), "model": name,
               "open_clip_arch": arch, "prompt_source": source, "classes_timed": args.classes,
               "templates": args.templates, "prompts_timed": prompts, "full_classes": FULL_CLASSES,
               "classifier_shape": list(batched.shape), "same_classifier": same, "methods": runs}
    scope = "the full build" if args.classes == FULL_CLASSES else \
        f"{args.classes} of {FULL_CLASSES} classes, projected linearly to {FULL_CLASSES}"
    print_table(f"Zero-shot classifier, {args.classes} classes x {args.templates} templates = {prompts} prompts "
                f"({name} text tower, random weights; {scope}; prompts: {source})",
                ["method", "seconds", "prompts/s", f"projected {FULL_CLASSES}-class s", "batched speedup",
                 "max rel diff vs batched"], rows)
    if not same:
        print("\nWARNING: the classifiers differ by more than 1e-5 relative")
    write_summary(args.out, summary)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
