"""Cue-image association (WinoGAViL, as DataComp scores it in ``eval_utils/wino_eval.py``).

Each item is a text cue and 5 to 12 candidate images, some of which people associated with the cue.
The cue's text (``clipbench.datasets.winogavil.cue_prompt``) and the candidate images are encoded and
L2-normalised; the model picks the k candidates with the highest cosine similarity, k = the number
of associations (ties to the lower candidate index), and the item scores the Jaccard index of its
picks against the associations (``clipbench.scoring.groups.jaccard_of_choices``).

Metrics (percent, means over items): ``jaccard`` (every item; the primary), ``jaccard_5_6`` and
``jaccard_10_12`` (items with 5-6 and with 10-12 candidates; DataComp's main metric is
``jaccard_10_12``, which its suite averages); a 95% bootstrap interval over items on each. The
per-sample file is of the ``outcomes`` kind (one row per item: its Jaccard index, its candidate
count as the group), so the gate pairs the same items with a paired bootstrap.
"""

from __future__ import annotations

from clipbench.tasks.base import SampleTable, Task, TaskContext, TaskResult

#: DataComp's candidate-count buckets: metric name -> (fewest, most) candidates
BUCKETS = {"jaccard_5_6": (5, 6), "jaccard_10_12": (10, 12)}


class AssociationTask(Task):
    name = "association"
    title = "Cue-image association"
    dataset_kinds = ("associations",)
    metrics = ("jaccard", "jaccard_5_6", "jaccard_10_12")
    inputs = "evaluation split (cue texts, candidate images); projected image and text features"
    summary_columns = ("jaccard_5_6", "jaccard_10_12")
    uses_text = True  # the cues (English: WinoGAViL has no other language)

    def primary_metric(self, adapter) -> str:
        return "jaccard"

    def run(self, ctx: TaskContext, model, adapter) -> TaskResult:
        import numpy as np

        from clipbench.scoring.groups import jaccard_of_choices
        from clipbench.scoring.resample import interval, mean_statistic
        from clipbench.scoring.similarity import as_numpy, l2_normalise

        o = ctx.options
        split = ctx.evaluation_split(adapter)
        images = l2_normalise(as_numpy(ctx.features(model, split).features).astype(np.float64), reject_zero=True)
        texts = l2_normalise(as_numpy(ctx.text_features(model, split.texts)).astype(np.float64), reject_zero=True)
        scores = [images[c] @ texts[k] for k, c in enumerate(split.candidates)]
        values = jaccard_of_choices(scores, split.gold)
        sizes = np.asarray([len(c) for c in split.candidates])
        metrics, ci = {"jaccard": float(100.0 * values.mean())}, {}
        ci["jaccard"] = interval(mean_statistic(values), len(values), o.bootstrap, o.seed)
        for name, (low, high) in BUCKETS.items():
            inside = values[(sizes >= low) & (sizes <= high)]
            if inside.size:
                metrics[name] = float(100.0 * inside.mean())
                ci[name] = interval(mean_statistic(inside), len(inside), o.bootstrap, o.seed)
        block = {"n_items": len(values), "n_images": len(split),
                 "items_per_bucket": {n: int(((sizes >= lo) & (sizes <= hi)).sum()) for n, (lo, hi) in BUCKETS.items()},
                 "tie_rule": "equal similarities: the lower candidate index is picked first"}
        samples = SampleTable("outcomes", len(values), {
            "index": np.arange(len(values)), "outcomes": {"jaccard": values, "cue": np.asarray(split.texts, object)},
            "group": [str(s) for s in sizes]},
            {"metrics": {"jaccard": "jaccard"}, "unit": "items", "sort_column": "jaccard", "show_columns": ["cue"],
             "index_is_sample": False})  # rows number the cues, not the split's images: no file names, no thumbnails
        return TaskResult(split, metrics, ci, block, samples)
