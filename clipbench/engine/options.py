"""Run options, declared once: default, check, help text and command-line flag of each.

One ``Option`` drives the defaults of ``clipbench.run``, the validation of a suite's ``options:``
block, and the ``clipbench run`` flags, so an option cannot be spelt, checked or defaulted
differently in two places. Engine-wide options live in ``RUN_OPTIONS`` below; options that only
one task reads are declared on that task class (``Task.options``) and joined in by
``all_options()``, which is what suites, argparse and ``resolve_options`` see.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from clipbench.datasets.languages import language_list, valid_language_option
from clipbench.engine.prompt_files import WHAT as PROMPTS_WHAT
from clipbench.engine.prompt_files import prompts_list, valid_prompts_option
from clipbench.foundations.option import (  # noqa: F401  (re-exported: the engine's option vocabulary)
    Option,
    a_bool,
    a_seed,
    an_int,
    int_list,
    non_negative_int,
    one_of,
    positive_int,
)
from clipbench.foundations.workers import AUTO, max_workers, workers_flag, workers_ok
from clipbench.results.trackers import TRACKERS, parse_log_to, valid_log_to

#: Most bootstrap resamples accepted: a typo such as 1000000000 would otherwise run for hours.
MAX_BOOTSTRAP = 100_000

#: Options every task shares (extraction, subsetting, statistics, the run's environment).
RUN_OPTIONS: tuple[Option, ...] = (
    Option("batch_size", 256, positive_int, "a positive integer", "images per forward pass", int),
    Option("workers", AUTO, workers_ok, f"'auto' or an integer from 0 to {max_workers()}",
           "DataLoader worker processes ('auto', the default: as many as the device needs and the CPUs allow)",
           workers_flag),
    Option("decode", "pil", one_of("pil", "gpu"), "one of pil, gpu",
           "pil: CLIP's preprocessing in the workers (the reference); gpu: nvjpeg decode and CLIP's resize "
           "on the CUDA device (opt-in; its own cache entries, see benchmarks/decode.py)", str, ("pil", "gpu")),
    Option("precision", "fp32", one_of("fp32", "fp16", "bf16"), "one of fp32, fp16, bf16",
           "fp16/bf16 use autocast (fp16: CUDA only)", str, ("fp32", "fp16", "bf16")),
    Option("limit", None, lambda v: v is None or positive_int(v), "a positive integer or null",
           "evaluate a seeded random subset of N samples per split (quick check)", int),
    Option("seed", 0, a_seed, "an integer from 0 to 2**32-1", "seed for subsets, the validation carve and the bootstrap", int),
    Option("bootstrap", 1000, lambda v: non_negative_int(v) and v <= MAX_BOOTSTRAP,
           f"an integer from 0 (no CI) to {MAX_BOOTSTRAP:,} (the time grows with the count, and past 10,000 "
           "resamples the 95% CI's endpoints move only in digits the tables do not print)",
           "bootstrap resamples for the 95%% CI (0: no CI; default 1000)", int),
    Option("offline", False, a_bool, "true or false", "never download anything", bool, false_unsets=True),
    Option("per_class", False, a_bool, "true or false", "store a per-class recall table", bool),
    Option("verify_data", False, a_bool, "true or false",
           "fingerprint data by hashing every image's bytes, not by path/size/mtime (for data copied "
           "between machines; costs one read of the data)", bool),
    Option("skip_missing", False, a_bool, "true or false",
           "run the suite's datasets that are present and list the missing ones (default: stop, listing them)",
           bool),
    Option("allow_count_mismatch", False, a_bool, "true or false",
           "score a dataset copy whose evaluation split differs from its published size (a subset, a fake copy); "
           "default: stop before any model loads, naming both counts", bool),
    Option("threads", None, lambda v: v is None or positive_int(v), "a positive integer or null",
           "torch CPU threads (recorded in each result; default: torch's)", int),
    Option("log_samples", "auto", lambda v: isinstance(v, bool) or v in ("auto", "always", "never"),
           "auto, always, never, true or false",
           "per-sample predictions beside the results (auto: splits of at most 50,000 samples; "
           "clipbench compare tests them for significance)", str, ("auto", "always", "never")),
    Option("tag", None, lambda v: v is None or (isinstance(v, str) and v.strip() != "" and "\n" not in v),
           "a non-empty one-line string or null", "a label stored in each record (see clipbench history)", str),
    Option("log_to", None, lambda v: v is None or valid_log_to(v), f"a comma-separated list of {', '.join(TRACKERS)}",
           "also log each record to these experiment trackers, comma-separated: wandb, mlflow, tensorboard "
           "(optional extras; see docs/export.md)", str, convert=parse_log_to),
    Option("language", "en", valid_language_option, "language codes such as en or en,zh,de, or all",
           "languages of the class prompts and captions, comma-separated (all: every language each dataset has; "
           "one record per language; docs/multilingual.md)", str, convert=language_list),
    Option("prompts", None, valid_prompts_option, PROMPTS_WHAT,
           "your own classnames and/or templates file (YAML/JSON) for a dataset of the run, comma-separated "
           "DATASET=FILE entries (FILE alone for a run of one dataset); its records get their own variant "
           "(docs/multilingual.md)", str, convert=prompts_list),
)


def engine_option(name: str) -> Option:
    """One engine-wide option, for commands outside ``run`` that take the same flag (``index --workers``)."""
    return next(o for o in RUN_OPTIONS if o.name == name)


def all_options() -> dict[str, Option]:
    """Engine options plus every registered task's own options, by name (duplicates are a bug)."""
    from clipbench.tasks.registry import TASKS

    table = {o.name: o for o in RUN_OPTIONS}
    for _, task in TASKS.items():
        for option in task.options:
            if option.name in table and table[option.name] is not option:
                raise RuntimeError(f"option {option.name!r} declared twice ({table[option.name].owner or 'engine'}, "
                                   f"{task.name})")
            table[option.name] = option
    return table


def defaults() -> dict[str, Any]:
    return {name: o.default for name, o in all_options().items()}


def add_arguments(parser: argparse.ArgumentParser, options: Iterable[Option]) -> None:
    """One flag per option with a ``flag_type``; every default is ``None`` so that suites can supply it."""
    for o in options:
        if o.flag_type is None:
            continue
        if o.flag_type is bool:
            parser.add_argument(o.flag, action="store_true", default=None, help=o.help)
        elif o.is_list:
            parser.add_argument(o.flag, type=int_list, help=o.help)
        else:
            parser.add_argument(o.flag, type=o.flag_type, choices=o.choices, help=o.help)


def overrides_from_args(args: argparse.Namespace, options: Iterable[Option]) -> dict[str, Any]:
    """The option values given on the command line (``None`` where the flag was absent)."""
    return {o.name: getattr(args, o.name, None) for o in options if o.flag_type is not None}
