"""Image -> image retrieval on a labelled set: "same class = relevant", as product-retrieval benchmarks score it.

Every image of the evaluation split queries all the others (leave-one-out, the protocol of Stanford
Online Products, CUB and Musgrave et al. 2020, "A Metric Learning Reality Check"). Features are
L2-normalised, so the ranking is by cosine similarity. Reported, in percent:

* ``recall_at_k`` (k = 1, 5, 10 by default): the share of queries with at least one image of their
  class among the k nearest (recall@1 is precision@1);
* ``map_at_r`` (the primary metric): with R = the number of other images of the query's class,
  MAP@R = (1/R) * sum_{i<=R} P(i) * rel(i), where P(i) is the precision among the first i results
  and rel(i) says whether the i-th result is relevant (Musgrave et al., section 3.2).

Queries whose class has no other image have nothing to find and are left out (counted in the
record). Ties: among equal similarities the lower index ranks first (a stable sort), so a run is
a pure function of its features (``clipbench.scoring.similarity``, the one top-k). Queries are
scored in blocks of rows against the whole split, so memory is block x N, never N x N for large
N. The 95% CI resamples queries (``clipbench.scoring.resample``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clipbench.foundations.errors import DataError
from clipbench.foundations.option import Option, one_of, positive_int
from clipbench.tasks.base import SampleTable, Task, TaskContext, TaskResult

if TYPE_CHECKING:  # numpy and torch load when the task runs, not when the CLI builds its parser
    import numpy as np

DEFAULT_KS = (1, 5, 10)


def retrieval_scores(features, labels, ks=DEFAULT_KS, device: str = "cpu",
                     block_elements: int | None = None) -> dict[str, Any]:
    """Per-query hits at each k and AP@R for leave-one-out retrieval; queries without a relevant item dropped.

    Returns ``{"hits": {k: bool[Q]}, "ap_at_r": float64[Q], "queries": int64[Q]}`` (Q = scored queries).
    ``block_elements``: similarities per block (default ``clipbench.scoring.similarity.BLOCK_ELEMENTS``).
    """
    import numpy as np
    import torch

    from clipbench.scoring.similarity import BLOCK_ELEMENTS, blockwise_top_k, l2_normalise

    block_elements = block_elements or BLOCK_ELEMENTS
    labels = np.asarray(labels, dtype=np.int64)
    x = l2_normalise(torch.as_tensor(np.asarray(features), dtype=torch.float32, device=device))
    n = x.shape[0]
    counts = np.bincount(labels)
    relevant = counts[labels] - 1  # R per query
    queries = np.flatnonzero(relevant > 0)
    depth = int(min(n - 1, max(max(ks), int(relevant.max(initial=0)))))
    label_t = torch.as_tensor(labels, device=device)
    hits = {k: np.zeros(len(queries), dtype=bool) for k in ks}
    ap = np.zeros(len(queries), dtype=np.float64)
    rows = max(1, block_elements // max(n, 1))
    for start in range(0, len(queries), rows):
        q = torch.as_tensor(queries[start:start + rows], device=device)
        # a query never retrieves itself; the one top-k and tie rule (lower index first)
        _, order = blockwise_top_k(x[q], x, depth, block_elements=block_elements, exclude=q)
        rel = (label_t[order] == label_t[q][:, None]).cpu().numpy()
        for k in ks:
            hits[k][start:start + len(q)] = rel[:, :k].any(axis=1)
        r = relevant[queries[start:start + len(q)]]
        ranks = np.arange(1, depth + 1)
        precision = np.cumsum(rel, axis=1) / ranks
        within_r = ranks[None, :] <= r[:, None]
        ap[start:start + len(q)] = (precision * rel * within_r).sum(axis=1) / r
    return {"hits": hits, "ap_at_r": ap, "queries": queries}


def query_ci(ap_at_r: np.ndarray, n_resamples: int, seed: int) -> dict[str, float] | None:
    """95% interval of MAP@R over resampled queries (the one resampling engine)."""
    from clipbench.scoring.resample import interval, mean_statistic

    return interval(mean_statistic(ap_at_r, 100.0), len(ap_at_r), n_resamples, seed)


class ImageRetrievalTask(Task):
    name = "image_retrieval"
    title = "Image-to-image retrieval"
    metrics = ("map_at_r", "recall_at_1", "recall_at_5", "recall_at_10")
    inputs = "evaluation split (leave-one-out queries, class = relevance); image features"
    options = (
        Option("image_retrieval_features", "projected", one_of("projected", "pre_projection"),
               "projected or pre_projection", "image retrieval features (default: projected)", str,
               ("projected", "pre_projection"), owner="image_retrieval"),
        Option("image_retrieval_k", list(DEFAULT_KS), lambda v: isinstance(v, list) and v and all(positive_int(k) for k in v),
               "a non-empty list of positive integers", "image retrieval: recall@k cut-offs, comma-separated "
               "(default: 1,5,10)", int, owner="image_retrieval", is_list=True),
    )

    summary_columns = ("recall_at_1",)

    def primary_metric(self, adapter) -> str:
        return "map_at_r"

    def variant_parts(self, record: dict) -> list[str]:
        block = self.block(record)
        parts = []
        if block.get("features", "projected") != "projected":
            parts.append(str(block["features"]))
        if list(block.get("k", DEFAULT_KS)) != list(DEFAULT_KS):
            parts.append("k=" + "/".join(map(str, block["k"])))
        return parts

    def run(self, ctx: TaskContext, model, adapter) -> TaskResult:
        o = ctx.options
        split = ctx.evaluation_split(adapter)
        feats = ctx.features(model, split, o.image_retrieval_features == "projected")
        ks = tuple(sorted(set(int(k) for k in o.image_retrieval_k)))
        scores = retrieval_scores(feats.features, feats.labels, ks, o.device)
        if len(scores["queries"]) == 0:
            raise DataError(f"{adapter.name}: no class has two images, so no query has anything to retrieve")
        metrics = {"map_at_r": 100.0 * float(scores["ap_at_r"].mean())}
        metrics.update({f"recall_at_{k}": 100.0 * float(scores["hits"][k].mean()) for k in ks})
        block = {"features": o.image_retrieval_features, "k": list(ks), "n_queries": int(len(scores["queries"])),
                 "n_excluded": int(len(split) - len(scores["queries"]))}

        outcomes = {"index": scores["queries"], "outcomes": {"ap_at_r": scores["ap_at_r"],  # the paired gate's
                                                              **{f"hit@{k}": scores["hits"][k] for k in ks},
                                                              "label": feats.labels[scores["queries"]]}}
        return TaskResult(split, metrics, {"map_at_r": query_ci(scores["ap_at_r"], o.bootstrap, o.seed)}, block,
                          SampleTable("outcomes", len(split), outcomes,
                                      {"metrics": {"map_at_r": "ap_at_r", **{f"recall_at_{k}": f"hit@{k}" for k in ks}},
                                       "sort_column": "ap_at_r", "unit": "queries"}))
