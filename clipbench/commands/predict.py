"""`clipbench predict IMAGE`: zero-shot top-k labels for one image, like CLIP's README example."""

from __future__ import annotations

import argparse

from clipbench.foundations.config import check_device


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="zero-shot top-k labels for one image",
        description="Classify one image (JPEG/PNG/WebP) zero-shot against --labels or a dataset's classes.",
    )
    parser.add_argument("image", help="path to the image")
    parser.add_argument("--model", default=None, help="model name, checkpoint path, openclip:... or hf:... "
                        "(default: clipbench-tiny)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--labels", help="comma-separated texts, used as given (as in CLIP's README), "
                       "e.g. 'a diagram,a dog,a cat'")
    which.add_argument("--dataset", help="use this dataset's classes and prompt templates, e.g. cifar100")
    parser.add_argument("--top", type=int, default=5, help="how many labels to show (default: 5)")
    parser.add_argument("--template", default=None, help="wrap each --labels text in this prompt, with {c} for "
                        "the label, e.g. 'a photo of a {c}.' (default: the labels as given)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--cache-dir", default=None, help="model cache directory (default: $CLIPBENCH_CACHE)")
    parser.add_argument("--offline", action="store_true", help="never download; fail if the model is not cached")
    parser.add_argument("--language", default="en", help="with --dataset: its classnames and templates in this "
                        "language (default: en; docs/multilingual.md)")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench.api import predict
    from clipbench.engine.prediction import DEFAULT_MODEL, format_predictions

    check_device(args.device)
    model = args.model or DEFAULT_MODEL
    results = predict(args.image, labels=args.labels, dataset=args.dataset, model=model, top=args.top,
                      template=args.template, device=args.device, cache_dir=args.cache_dir, offline=args.offline,
                      language=args.language)
    print(f"Top predictions for {args.image} ({model}):\n")
    print(format_predictions(results))
    return 0
