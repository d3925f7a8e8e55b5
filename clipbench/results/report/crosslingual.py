"""The report's cross-lingual view: per model, dataset and task, each language's primary metric against
English on the same images, with the paired 95% interval of the difference.

The records of one (model, dataset, task) in several languages score the same samples (one split
fingerprint: the multilingual sets' covers every language's captions, a classification split's its
labels), so the comparison is paired: the per-sample files of the language and of English are
resampled together (``SampleKind.paired``: McNemar / paired bootstrap over samples, or over images
with all their captions for retrieval). Without both per-sample files, or on different samples, the
row shows the difference without an interval and says why.
"""

from __future__ import annotations

from pathlib import Path

from clipbench.results.report.blocks import Block, number

PAIRED_SEED = 0


def _group_key(record: dict) -> tuple:
    from clipbench.results.records import record_variant

    return record["model"], record["dataset"], record["task"], record_variant(dict(record, language=None))


def _paired(results_dir: Path, en: dict, other: dict, metric: str, cache: dict) -> tuple[str, str, str]:
    """(difference cell, note, an example caption) of ``other`` - ``en`` with the paired interval where the
    samples allow it (``cache``: English's per-sample log by record_id, read once for all its languages)."""
    from clipbench.results.samples import SampleFileError, read_samples
    from clipbench.scoring.paired import PAIRED_RESAMPLES

    delta = number(other["metrics"].get(metric)) - number(en["metrics"].get(metric))
    if not (en.get("samples") and other.get("samples")):
        return f"{delta:+.1f}", "no per-sample files", ""
    if en.get("dataset_fingerprint") != other.get("dataset_fingerprint"):
        return f"{delta:+.1f}", "not the same samples", ""
    try:
        if en.get("record_id") not in cache:
            cache[en.get("record_id")] = read_samples(results_dir, en)
        base, new = cache[en.get("record_id")], read_samples(results_dir, other)
    except SampleFileError as exc:
        return f"{delta:+.1f}", f"per-sample file unusable ({exc})", ""
    captions = getattr(new, "captions", None)
    example = str(captions[0]) if isinstance(captions, list) and captions else ""  # retrieval: the first caption
    if type(base) is not type(new) or len(base) != len(new) or not base.supports(metric):
        return f"{delta:+.1f}", f"no paired test for {metric}", example
    result = base.paired(metric, new, PAIRED_RESAMPLES, PAIRED_SEED)
    return (f"{result.difference:+.1f} [{result.ci_low:+.1f}, {result.ci_high:+.1f}]",
            f"p = {result.p_value:.3g} ({result.test})", example)


def crosslingual_block(records: list[dict], results_dir: Path, names: dict[str, str]) -> Block | None:
    """The cross-lingual table of the latest of ``records`` (per-sample files under ``results_dir``), or None when
    no (model, dataset, task) was run in English and in another language."""
    from clipbench.results.records import latest_records

    groups: dict[tuple, dict[str, dict]] = {}
    for record in latest_records(records):
        language = record.get("language")
        if isinstance(language, str) and language != "mean":
            groups.setdefault(_group_key(record), {})[language] = record
    rows, cache = [], {}
    for (model, dataset, task, variant), by_language in groups.items():
        en = by_language.get("en")
        if en is None or len(by_language) < 2:
            continue
        metric = en["primary_metric"]
        for language in sorted(set(by_language) - {"en"}):
            other = by_language[language]
            if number(other["metrics"].get(metric)) is None or number(en["metrics"].get(metric)) is None:
                continue
            difference, note, example = _paired(results_dir, en, other, metric, cache)
            rows.append([names.get(model, model), dataset, task + (f" [{variant}]" if variant else ""), language,
                         metric, f"{en['metrics'][metric]:.1f}", f"{other['metrics'][metric]:.1f}", difference, note,
                         example])
    if not rows:
        return None
    return Block("Cross-lingual: each language against English on the same images",
                 ["model", "dataset", "task", "language", "metric", "English", "language score",
                  "difference [95% CI]", "paired test", "first caption"], rows,
                 "Difference = the language's score minus English's, in points, on the same images or samples; the "
                 "interval and p-value come from a paired test on the two per-sample files (retrieval: images "
                 "resampled with their captions). See docs/multilingual.md.")
