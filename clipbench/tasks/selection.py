"""Image-caption selection (CLIP_benchmark's ``image_caption_selection``: SugarCrepe, Winoground, ARO).

Each item is an image, its correct caption and one or more hard negatives. The score of a caption
is the cosine similarity of the L2-normalised image and caption features (computed in float64 from
the float32 features); an item is correct when its positive scores *strictly* higher than every
negative.

Tie rule: a tie between the positive and its best negative counts as wrong (a model that cannot
tell them apart has not chosen). CLIP_benchmark takes ``argmax`` with the positive at index 0, so
there a tie counts as right; exact ties only occur for identical texts (or images), so the two
agree on real data. Ties are counted and recorded (``n_ties``).

Metrics (percent): ``accuracy`` (the primary, SugarCrepe/ARO's "text score": items whose positive
wins) overall and ``acc/<subset>`` per subset (also in the ``per_subset`` block with each subset's
item count and chance); 95% bootstrap intervals over items (``clipbench.scoring.resample``: the
same draws for the same seed and item count as every other interval). Chance = the mean of 1 / (1 + negatives).

Groups (Winoground): items sharing a ``group`` id are the images of one example, each item's
positive being its own caption. Per group, as Winoground defines them: *text score* = for every
image, its own caption scores higher than the group's other captions; *image score* = for every
caption, its own image scores higher than the group's other images; *group score* = both.
``text_score``, ``image_score`` and ``group_score`` are the percentages of groups (chance for
2 x 2: 25, 25, 16.67), with bootstrap intervals over groups; ``per_subset`` also holds them per subset
(a group's subset is its first item's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clipbench.foundations.errors import ClipbenchError, DataError
from clipbench.tasks.base import DetailTable, SampleTable, Task, TaskContext, TaskResult, cell

if TYPE_CHECKING:  # numpy loads when the task runs, not when the CLI builds its parser
    import numpy as np

TIE_RULE = "a positive tied with its best negative counts as wrong"
GROUP_METRICS = ("text_score", "image_score", "group_score")


@dataclass
class SelectionScores:
    """Per-item outcomes: ``correct[i]``, ``tie[i]``, and per group text/image outcomes."""

    correct: np.ndarray  # bool [N]
    tie: np.ndarray  # bool [N]
    margin: np.ndarray  # float64 [N]: positive score minus best negative score
    group_ids: list[str]
    group_text: np.ndarray  # bool [G]
    group_image: np.ndarray  # bool [G]
    group_first: np.ndarray | None = None  # int [G]: the first item of each group (its subset is the group's)
    best_negative: np.ndarray | None = None  # int [N]: the caption row of each item's highest-scoring negative


def _normalised(x) -> np.ndarray:
    import numpy as np

    from clipbench.scoring.similarity import l2_normalise

    return l2_normalise(np.asarray(x, dtype=np.float64), reject_zero=True)


def selection_scores(image_features, text_features, counts: Sequence[int], groups: Sequence[str | None] | None = None,
                     positive_index: Sequence[int] | None = None) -> SelectionScores:
    """Score items from raw features.

    ``text_features`` holds each item's candidates in item order, the positive first: item i owns
    ``counts[i]`` rows (1 + its negatives). ``groups[i]``: item i's group id (None: no group).
    ``positive_index[i]``: the row of item i's positive in ``text_features`` (default: the first of its rows).
    """
    import numpy as np

    img = _normalised(image_features)
    txt = _normalised(text_features)
    counts = np.asarray(counts, dtype=np.int64)
    n = img.shape[0]
    if counts.shape != (n,) or (counts < 2).any() or counts.sum() != txt.shape[0]:
        raise ClipbenchError(f"need at least 2 candidates per item and {int(counts.sum())} caption rows for "
                             f"{n} items, got {txt.shape[0]}")
    if img.shape[1] != txt.shape[1]:
        raise ClipbenchError(f"image features {img.shape} and caption features {txt.shape} do not share an embedding "
                             "dimension (selection needs projected features)")
    owner = np.repeat(np.arange(n), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sims = np.einsum("td,td->t", img[owner], txt)
    sims = sims.astype(np.float32).astype(np.float64)  # float32 scores, as the features are float32
    pos_row = starts if positive_index is None else np.asarray(positive_index, dtype=np.int64)
    positive = sims[pos_row]
    masked = sims.copy()
    masked[pos_row] = -np.inf
    best_neg = np.maximum.reduceat(masked, starts)
    best_row = np.array([s + int(np.argmax(masked[s:s + c])) for s, c in zip(starts, counts, strict=True)],
                        dtype=np.int64)
    correct, tie = positive > best_neg, positive == best_neg

    group_ids: list[str] = []
    g_text, g_image, g_first = [], [], []
    if groups is not None:
        members: dict[str, list[int]] = {}
        for i, g in enumerate(groups):
            if g is not None:
                members.setdefault(str(g), []).append(i)
        for gid, items in members.items():
            if len(items) < 2:
                raise DataError(f"group {gid!r} has one item; a group needs two or more images (e.g. Winoground's 2)")
            caps = txt[pos_row[items]]  # each member's own caption
            scores = (img[items] @ caps.T).astype(np.float32)  # [image, caption]
            diag = np.diag(scores)
            others = scores.copy()
            np.fill_diagonal(others, -np.inf)
            group_ids.append(gid)
            g_first.append(items[0])
            g_text.append(bool((diag > others.max(axis=1)).all()))  # each image prefers its own caption
            g_image.append(bool((diag > others.max(axis=0)).all()))  # each caption prefers its own image
    return SelectionScores(correct, tie, positive - best_neg, group_ids, np.array(g_text, dtype=bool),
                           np.array(g_image, dtype=bool), np.array(g_first, dtype=np.int64), best_row)


def _mean_ci(outcomes: np.ndarray, n_bootstrap: int, seed: int) -> tuple[float, dict | None]:
    """100 x the mean outcome, and its interval from the one resampling engine (units: items or groups)."""
    from clipbench.scoring.resample import interval, mean_statistic

    values = outcomes.astype(float) * 100.0
    point = float(values.mean())
    return point, interval(mean_statistic(outcomes, 100.0), len(values), n_bootstrap, seed)


def score_selection(scores: SelectionScores, subsets: Sequence[str], n_negatives: Sequence[int],
                    n_bootstrap: int = 1000, seed: int = 0) -> dict:
    """metrics, metric_ci95, chance and per_subset of scored items."""
    import numpy as np

    subsets = np.asarray(list(subsets), dtype=object)
    chance_item = 100.0 / (1.0 + np.asarray(n_negatives, dtype=np.float64))
    metrics, ci95, chance = {}, {}, {}
    metrics["accuracy"], ci95["accuracy"] = _mean_ci(scores.correct, n_bootstrap, seed)
    chance["accuracy"] = float(chance_item.mean())
    per_subset = {}
    for name in dict.fromkeys(subsets.tolist()):
        mask = subsets == name
        value, ci = _mean_ci(scores.correct[mask], n_bootstrap, seed)
        metrics[f"acc/{name}"], ci95[f"acc/{name}"] = value, ci
        chance[f"acc/{name}"] = float(chance_item[mask].mean())
        per_subset[name] = {"accuracy": value, "ci95": ci, "n_items": int(mask.sum()),
                            "chance": chance[f"acc/{name}"], "n_ties": int(scores.tie[mask].sum())}
        if scores.group_ids:
            in_subset = subsets[scores.group_first] == name
            if in_subset.any():
                text, image = scores.group_text[in_subset], scores.group_image[in_subset]
                per_subset[name].update({"n_groups": int(in_subset.sum()), "text_score": 100.0 * float(text.mean()),
                                         "image_score": 100.0 * float(image.mean()),
                                         "group_score": 100.0 * float((text & image).mean())})
    if scores.group_ids:
        outcomes = {"text_score": scores.group_text, "image_score": scores.group_image,
                    "group_score": scores.group_text & scores.group_image}
        for name, values in outcomes.items():
            metrics[name], ci95[name] = _mean_ci(values, n_bootstrap, seed)
        chance.update({"text_score": 25.0, "image_score": 25.0, "group_score": 100.0 / 6})
    return {"metrics": metrics, "metric_ci95": ci95 if n_bootstrap > 0 else None, "chance": chance,
            "per_subset": per_subset}


class ImageCaptionSelectionTask(Task):
    """Does the positive caption of each image beat its hard negatives? (accuracy per subset)"""

    name = "image_caption_selection"
    title = "Image-caption selection"
    dataset_kinds = ("choices",)
    metrics = ("accuracy", *GROUP_METRICS)
    inputs = "evaluation split; projected image features; candidate caption text features"
    uses_text = True

    legacy_fields = ("chance", "per_subset", "n_captions", "n_ties", "n_groups", "tie_rule")

    def primary_metric(self, adapter) -> str:
        return "accuracy"

    def table_note(self, record: dict) -> str:
        block = self.block(record)
        per, chance = block.get("per_subset") or {}, (block.get("chance") or {}).get("accuracy")
        note = f"chance {chance:.1f}" if chance is not None else ""
        if len(per) > 1:
            note += "  " + " ".join(f"{k} {v['accuracy']:.1f}" for k, v in per.items())
        return note.strip()

    def detail_table(self, records, names) -> DetailTable | None:
        rows = [[names.get(r["model"], r["model"]), r["dataset"], subset, cell(info.get("accuracy"), info.get("ci95")),
                 cell(info.get("chance")), str(info.get("n_items", ""))]
                for r in records for subset, info in sorted((self.block(r).get("per_subset") or {}).items())]
        if not records:
            return None
        return DetailTable("Compositionality: accuracy per subset",
                           ["model", "dataset", "subset", "accuracy", "chance", "items"], rows,
                           "Image-caption selection: the share of items whose true caption scores above every hard "
                           "negative (a tie counts as wrong), in %, with 95% bootstrap CIs; chance = 1 / number of "
                           "candidates.")

    def run(self, ctx: TaskContext, model, adapter) -> TaskResult:
        import numpy as np

        from clipbench.datasets.choices import split_choices
        from clipbench.features.text_store import texts_hash

        o = ctx.options
        split = split_choices(ctx.evaluation_split(adapter))
        feats = ctx.features(model, split)
        texts = [c for i in range(len(split)) for c in split.candidates(i)]
        counts = np.array([1 + len(n) for n in split.negatives], dtype=np.int64)
        text_feats = ctx.text_features(model, texts)
        groups = split.groups if any(g is not None for g in split.groups) else None
        scores = selection_scores(feats.features, text_feats, counts, groups)
        result = score_selection(scores, split.subsets, counts - 1, o.bootstrap, o.seed)
        block = {"chance": result["chance"], "per_subset": result["per_subset"], "n_captions": len(texts),
                 "n_ties": int(scores.tie.sum()), "n_groups": len(scores.group_ids), "tie_rule": TIE_RULE}

        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        outcomes = {"index": np.arange(len(split)), "subset": split.subsets, "group": split.groups,
                    "outcomes": {"correct": scores.correct, "tie": scores.tie, "margin": scores.margin,
                                 "negatives": counts - 1,
                                 "positive": np.array([texts[i] for i in starts], dtype=object),
                                 "best_negative": np.array([texts[i] for i in scores.best_negative], dtype=object)}}
        return TaskResult(split, result["metrics"], result["metric_ci95"], block,
                          SampleTable("outcomes", len(split), outcomes,
                                      {"metrics": {"accuracy": "correct"}, "sort_column": "margin", "unit": "items",
                                       "show_columns": ["positive", "best_negative"]}),
                          core={"prompt_hash": texts_hash(texts)[:32]})
