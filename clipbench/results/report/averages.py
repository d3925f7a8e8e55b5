"""The report's "Suite averages" table: each model's one-number averages (``results.suite_averages``), with the
count of datasets behind each and, where open_clip published one (``datacomp_average``), that number beside it."""

from __future__ import annotations

from clipbench.results.records import record_variant
from clipbench.results.report.blocks import Block
from clipbench.results.report.model_facts import norm_name
from clipbench.results.report.published import _openai_weights_name, load_published
from clipbench.results.suite_averages import suite_average_rows


def _published(model: str) -> dict[str, tuple[str, float]]:
    """average name -> (source, value) for a model that runs OpenAI's weights."""
    names = {norm_name(model)} | ({norm_name(a)} if (a := _openai_weights_name(model)) else set())
    table = load_published()
    hits = table[table["model"].map(norm_name).isin(names) & (table["task"] == "zeroshot")]
    return {row.dataset: (row.source, float(row.value)) for row in hits.itertuples()}


def averages_block(records: list[dict], names: dict[str, str]) -> Block | None:
    """The table for a results file's records (None when no record counts towards any average)."""
    rows = suite_average_rows(records, record_variant)
    if not rows:
        return None
    table = []
    for row in rows:
        label = row["model"] + (f" [{row['variant']}]" if row["variant"] else "")
        published = _published(row["model"]).get(row["average"])
        table.append([names.get(label, label), row["title"], f"{row['value']:.2f}", f"{row['n']}/{row['of']}",
                      ", ".join(row["missing"]) or "–",
                      f"{published[1]:.2f} ({published[0]})" if published and not row["missing"] else "–"])
    return Block("Suite averages", ["model", "average", "value", "datasets", "missing", "published"], table,
                 "Each dataset's main metric as DataComp scores it (the dataset's own metric; mean recall@1 for retrieval), zero-shot "
                 "records only; an average over fewer datasets than it names is not the published one "
                 "(docs/suites.md). Published: open_clip's docs/openclip_results.csv.")
