"""Zero-shot image-text retrieval (the CLIP paper's Table 13; CLIP_benchmark's ``zeroshot_retrieval``).

Protocol (the one CLIP_benchmark and open_clip report):

* similarity = cosine of L2-normalised image and caption features (the store keeps them raw);
* image->text recall@k: an image is a hit if *any* of its captions ranks in its top k among all
  captions; text->image recall@k: a caption is a hit if its image ranks in its top k among all images;
  ``mean_recall`` (the primary metric) is the mean of all of them (both directions, every k), in percent;
* ``*_mean_rank`` / ``*_median_rank``: rank (1 = best) of an image's best-ranked caption, and of a
  caption's image;
* 95% bootstrap intervals over images: each resample draws images with replacement and takes each
  drawn image's captions with it (the gallery is not re-ranked; the per-query outcomes are resampled).

Ties (exactly equal float32 similarities, e.g. duplicate captions or duplicate images) are broken
by index: of two equally similar items the one with the lower index ranks first, so a rank is
1 + (items with a higher score) + (items with the same score and a lower index). For an image with
several captions the correct item is its best caption under that same order. Scores are computed
in float64 from the float32 features and rounded to float32, so they do not depend on the block
shape: float64 summation-order differences (~1e-16) vanish in the rounding except right at a
float32 rounding boundary (odds of order 1e-9 per score). The optional top-k lists (``retrieval_topk``) use the same order through one int64 key per
(query, item), ``order-preserving bits of the float32 score << 32 | (2^32 - 1 - item index)``, with
a running ``torch.topk`` merged block by block.

Memory: the similarity matrix is never built whole unless it fits the block budget
(``retrieval_block_mb``, default 256 MB): image rows x caption columns are scored block by block
and the ranks counted per block. Pass 1 scores only the blocks that hold correct pairs (a band,
since captions are grouped by image) to learn each query's correct score; pass 2 scores every
block once and serves both directions from it. Peak memory is the features plus one block's
temporaries (``bytes_per_element`` per similarity; a block is counted in row slices so torch's
int64 sums of comparison masks stay small) plus O(queries) counters and a float64 copy of one
block's features.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.option import Option, a_bool, positive_int
from clipbench.tasks.base import DetailTable, Figure, SampleTable, Task, TaskContext, TaskResult, cell

if TYPE_CHECKING:  # numpy and torch load when the task runs, not when the CLI builds its parser
    import numpy as np
    import torch

DEFAULT_KS = (1, 5, 10)
TIE_RULE = "equal float32 similarities: the lower-index item ranks first"
_LOW = 0xFFFFFFFF


@dataclass
class RetrievalRanks:
    """Per-query ranks (1 = best) and top-k retrieved indices of both directions."""

    i2t_rank: np.ndarray  # [n_images] rank of each image's best-ranked caption
    t2i_rank: np.ndarray  # [n_captions] rank of each caption's image
    i2t_topk: np.ndarray | None  # [n_images, K] caption indices, best first (when asked for)
    t2i_topk: np.ndarray | None  # [n_captions, K] image indices, best first
    blocks: tuple[int, int] = (0, 0)  # (image rows, caption columns) per block
    block_bytes: int = 0  # temporaries of one block (the part of peak memory the budget bounds)


def _keys(scores: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """int64 keys ordering by (score desc, index asc); ``index`` broadcasts against ``scores``."""
    import torch

    bits = (scores + 0.0).contiguous().view(torch.int32)  # + 0.0 turns -0.0 into +0.0 (equal scores, equal bits)
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    del bits
    keys = ordered.to(torch.int64)
    del ordered
    keys.bitwise_left_shift_(32)
    return keys.bitwise_or_(_LOW - index)


def _key_score(keys: torch.Tensor) -> torch.Tensor:
    """The float32 score a key was made from (inverse of the high half of ``_keys``)."""
    import torch

    ordered = (keys >> 32).to(torch.int32)
    return torch.where(ordered < 0, ordered ^ 0x7FFFFFFF, ordered).view(torch.float32)


def _key_index(keys: torch.Tensor) -> torch.Tensor:
    return _LOW - (keys & _LOW)


def _block_scores(images: torch.Tensor, texts: torch.Tensor, step: int) -> torch.Tensor:
    """float32 [R, C] similarities, computed in float64 (``step`` rows at a time) and rounded to float32, so
    that no score depends on the block shape."""
    import torch

    out = torch.empty((images.shape[0], texts.shape[0]), dtype=torch.float32, device=images.device)
    texts64 = texts.double().T
    buffer = torch.empty((min(step, images.shape[0]), texts.shape[0]), dtype=torch.float64, device=images.device)
    for q in range(0, images.shape[0], step):
        rows = images[q:q + step].double()
        torch.matmul(rows, texts64, out=buffer[:rows.shape[0]])
        out[q:q + rows.shape[0]].copy_(buffer[:rows.shape[0]])
    return out


#: a block is processed in this many row slices, so the int64 temporaries of counting stay small
_SLICES = 8


def bytes_per_element(topk: bool) -> int:
    """Peak temporaries per similarity of one block, as measured (peak RSS): the float32 scores (4) plus, per
    row slice, the float64 product and the comparison masks with torch's int64 sums (about 1 + 1.5 per
    element of the block), plus allocator slack; with top-k lists also the int64 keys and the int32 steps."""
    return 36 if topk else 10


def block_sizes(n_images: int, n_captions: int, budget_bytes: int, topk: bool = False) -> tuple[int, int]:
    """(image rows, caption columns) of a block whose temporaries stay within ``budget_bytes``."""
    elements = max(1, budget_bytes // bytes_per_element(topk))
    rows = min(n_images, max(1, math.isqrt(elements)))
    cols = min(n_captions, max(1, elements // rows))
    if cols == n_captions:  # a whole row of captions fits: use the spare budget for more image rows
        rows = min(n_images, max(1, elements // n_captions))
    return rows, cols


def retrieval_ranks(
    image_features: np.ndarray | torch.Tensor,
    text_features: np.ndarray | torch.Tensor,
    text_image: np.ndarray | Sequence[int],
    topk: int | None = None,
    block_rows: int | None = None,
    block_cols: int | None = None,
    budget_bytes: int = 256 << 20,
    device: str | torch.device = "cpu",
) -> RetrievalRanks:
    """Ranks of the correct items in both directions, from features as given (normalise them first).

    ``text_image[t]`` is the image of caption t. ``topk``: also return each query's ``topk`` best items.
    Blocks of ``block_rows`` images x ``block_cols`` captions (default: the largest that fit
    ``budget_bytes``); the result is the same for any blocks.
    """
    import numpy as np
    import torch

    device = torch.device(device)
    img = torch.as_tensor(np.asarray(image_features, dtype=np.float32), device=device)
    txt = torch.as_tensor(np.asarray(text_features, dtype=np.float32), device=device)
    owner_np = np.asarray(text_image, dtype=np.int64)
    if img.ndim != 2 or txt.ndim != 2 or img.shape[1] != txt.shape[1]:
        raise ClipbenchError(f"image features {tuple(img.shape)} and caption features {tuple(txt.shape)} do not share "
                             "an embedding dimension (retrieval needs projected features)")
    n_img, n_txt = img.shape[0], txt.shape[0]
    if owner_np.shape != (n_txt,) or n_img == 0 or n_txt == 0:
        raise ClipbenchError(f"need one image index per caption and at least one of each, got {owner_np.shape} for "
                             f"{n_txt} captions and {n_img} images")
    if owner_np.min() < 0 or owner_np.max() >= n_img:
        raise ClipbenchError(f"caption image indices must lie in [0, {n_img})")
    if np.bincount(owner_np, minlength=n_img).min() == 0:
        raise ClipbenchError("every image needs at least one caption")
    if topk is not None and topk < 1:
        raise ClipbenchError(f"top-k must be at least 1, got {topk}")
    auto_rows, auto_cols = block_sizes(n_img, n_txt, budget_bytes, topk is not None)
    rows, cols = min(n_img, block_rows or auto_rows), min(n_txt, block_cols or auto_cols)
    owner = torch.as_tensor(owner_np, device=device)
    img_index = torch.arange(n_img, device=device)
    txt_index = torch.arange(n_txt, device=device)
    lowest = torch.iinfo(torch.int64).min
    best_i2t = torch.full((n_img,), lowest, dtype=torch.int64, device=device)  # key of each image's best caption
    correct_t2i = torch.zeros(n_txt, dtype=torch.float32, device=device)  # score of each caption with its image

    col_starts = list(range(0, n_txt, cols))
    col_images = [np.unique(owner_np[c:c + cols]) for c in col_starts]

    # pass 1: the scores of correct pairs, from the blocks that hold any (scored exactly as in pass 2)
    for r in range(0, n_img, rows):
        r_end = min(n_img, r + rows)
        for c, imgs in zip(col_starts, col_images, strict=True):
            if np.searchsorted(imgs, r, "left") == np.searchsorted(imgs, r_end, "left"):
                continue  # no caption of this column block belongs to an image of this row block
            c_end = min(n_txt, c + cols)
            scores = _block_scores(img[r:r_end], txt[c:c_end], max(1, -(-(r_end - r) // _SLICES)))
            local = owner[c:c_end] - r
            cap_idx = torch.nonzero((local >= 0) & (local < r_end - r)).squeeze(1)
            rows_of = local[cap_idx]
            picked = scores[rows_of, cap_idx]
            keys = _keys(picked, txt_index[c:c_end][cap_idx])
            best_i2t[r:r_end] = best_i2t[r:r_end].scatter_reduce(0, rows_of, keys, "amax")
            correct_t2i[c + cap_idx] = picked
            del scores, picked, keys  # free this block before the next one is allocated
    best_i2t_score, best_i2t_index = _key_score(best_i2t), _key_index(best_i2t)

    # pass 2: every block once, serving both directions; count the items ahead of the correct one
    above_i2t = torch.zeros(n_img, dtype=torch.int64, device=device)
    above_t2i = torch.zeros(n_txt, dtype=torch.int64, device=device)
    if topk is not None:
        k_i2t, k_t2i = min(topk, n_txt), min(topk, n_img)
        top_i2t = torch.full((n_img, k_i2t), lowest, dtype=torch.int64, device=device)
        top_t2i = torch.full((n_txt, k_t2i), lowest, dtype=torch.int64, device=device)
    for r in range(0, n_img, rows):
        r_end = min(n_img, r + rows)
        step = max(1, -(-(r_end - r) // _SLICES))
        for c in col_starts:
            c_end = min(n_txt, c + cols)
            scores = _block_scores(img[r:r_end], txt[c:c_end], step)
            for q0 in range(r, r_end, step):
                q1 = min(r_end, q0 + step)
                part = scores[q0 - r:q1 - r]
                # image rows query caption columns: ahead = higher score, or equal score and lower caption index
                s_ref, i_ref = best_i2t_score[q0:q1, None], best_i2t_index[q0:q1, None]
                above_i2t[q0:q1] += (part > s_ref).sum(dim=1)
                above_i2t[q0:q1] += ((part == s_ref) & (txt_index[None, c:c_end] < i_ref)).sum(dim=1)
                # caption columns query image rows: ahead = higher score, or equal score and lower image index
                s_ref, i_ref = correct_t2i[None, c:c_end], owner[None, c:c_end]
                above_t2i[c:c_end] += (part > s_ref).sum(dim=0)
                above_t2i[c:c_end] += ((part == s_ref) & (img_index[q0:q1, None] < i_ref)).sum(dim=0)
            if topk is not None:
                keys = _keys(scores, txt_index[c:c_end].unsqueeze(0))
                merged = torch.cat([top_i2t[r:r_end], keys.topk(min(k_i2t, c_end - c), dim=1).values], dim=1)
                top_i2t[r:r_end] = merged.topk(k_i2t, dim=1).values
                del keys
                keys = _keys(scores, img_index[r:r_end].unsqueeze(1))
                merged = torch.cat([top_t2i[c:c_end], keys.topk(min(k_t2i, r_end - r), dim=0).values.T], dim=1)
                top_t2i[c:c_end] = merged.topk(k_t2i, dim=1).values
                del keys
            del scores
    return RetrievalRanks(
        i2t_rank=(above_i2t + 1).cpu().numpy(), t2i_rank=(above_t2i + 1).cpu().numpy(),
        i2t_topk=_key_index(top_i2t).cpu().numpy() if topk is not None else None,
        t2i_topk=_key_index(top_t2i).cpu().numpy() if topk is not None else None,
        blocks=(rows, cols), block_bytes=rows * cols * bytes_per_element(topk is not None),
    )


# ------------------------------------------------------------------------------ metrics


def metric_names(ks: Sequence[int]) -> list[str]:
    recalls = [f"{d}_recall@{k}" for d in ("i2t", "t2i") for k in ks]
    return ["mean_recall", *recalls, "i2t_mean_rank", "i2t_median_rank", "t2i_mean_rank", "t2i_median_rank"]


def _weighted_medians(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Median (numpy's convention: mean of the two middle values) of ``values`` repeated ``weights[b]`` times, per row b."""
    import numpy as np

    order = np.argsort(values, kind="stable")
    sorted_values = values[order].astype(np.float64)
    cum = np.cumsum(weights[:, order], axis=1)
    total = cum[:, -1]
    lo = np.array([np.searchsorted(row, t) for row, t in zip(cum, (total - 1) // 2 + 1, strict=True)])
    hi = np.array([np.searchsorted(row, t) for row, t in zip(cum, total // 2 + 1, strict=True)])
    return (sorted_values[lo] + sorted_values[hi]) / 2


def metrics_from_counts(i2t_rank: np.ndarray, t2i_rank: np.ndarray, text_image: np.ndarray, ks: Sequence[int],
                         counts: np.ndarray, names: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """Every metric (or only ``names``, and what they need) for each row of ``counts`` [B, n_images] (how
    often each image is drawn). The gate's paired bootstrap asks for one metric per draw, not all nine."""
    import numpy as np

    def wanted(name: str) -> bool:
        return names is None or name in names

    counts = counts.astype(np.float64)
    cap_counts = counts[:, text_image]  # a drawn image brings all its captions
    n_i, n_t = counts.sum(axis=1), cap_counts.sum(axis=1)
    out: dict[str, np.ndarray] = {}
    all_recalls = wanted("mean_recall")
    for k in ks:
        if all_recalls or wanted(f"i2t_recall@{k}"):
            out[f"i2t_recall@{k}"] = 100.0 * (counts @ (i2t_rank <= k)) / n_i
    for k in ks:
        if all_recalls or wanted(f"t2i_recall@{k}"):
            out[f"t2i_recall@{k}"] = 100.0 * (cap_counts @ (t2i_rank <= k)) / n_t
    if all_recalls:
        out["mean_recall"] = np.mean([out[f"{d}_recall@{k}"] for d in ("i2t", "t2i") for k in ks], axis=0)
    if wanted("i2t_mean_rank"):
        out["i2t_mean_rank"] = (counts @ i2t_rank) / n_i
    if wanted("t2i_mean_rank"):
        out["t2i_mean_rank"] = (cap_counts @ t2i_rank) / n_t
    if wanted("i2t_median_rank"):
        out["i2t_median_rank"] = _weighted_medians(i2t_rank, counts)
    if wanted("t2i_median_rank"):
        out["t2i_median_rank"] = _weighted_medians(t2i_rank, cap_counts)
    return out


@dataclass
class RetrievalResult:
    metrics: dict[str, float]
    ci95: dict[str, dict[str, float]] | None
    ranks: RetrievalRanks
    chance: dict[str, float] = field(default_factory=dict)


def score_retrieval(ranks: RetrievalRanks, text_image: np.ndarray, ks: Sequence[int] = DEFAULT_KS,
                    n_bootstrap: int = 1000, seed: int = 0, chunk: int = 64) -> RetrievalResult:
    """Metrics (recalls in percent, ranks as ranks) and, with ``n_bootstrap``, 95% percentile CIs over images."""
    import numpy as np

    text_image = np.asarray(text_image, dtype=np.int64)
    n_img = ranks.i2t_rank.shape[0]
    point = metrics_from_counts(ranks.i2t_rank, ranks.t2i_rank, text_image, ks, np.ones((1, n_img)))
    metrics = {name: float(point[name][0]) for name in metric_names(ks)}
    ci = None
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws: dict[str, list[np.ndarray]] = {name: [] for name in metrics}
        for start in range(0, n_bootstrap, chunk):
            b = min(chunk, n_bootstrap - start)
            counts = rng.multinomial(n_img, np.full(n_img, 1.0 / n_img), size=b)
            for name, values in metrics_from_counts(ranks.i2t_rank, ranks.t2i_rank, text_image, ks, counts).items():
                draws[name].append(values)
        ci = {}
        for name, parts in draws.items():
            low, high = np.quantile(np.concatenate(parts), [0.025, 0.975])
            ci[name] = {"low": float(low), "high": float(high)}
    return RetrievalResult(metrics, ci, ranks, chance_recalls(text_image, n_img, ks))


def chance_recalls(text_image: np.ndarray, n_images: int, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Expected recalls (percent) of a model that ranks uniformly at random (ties impossible)."""
    import numpy as np

    per_image = np.bincount(np.asarray(text_image, dtype=np.int64), minlength=n_images)
    n_txt = int(per_image.sum())
    out = {}
    for k in ks:
        kk = min(k, n_txt)
        # P(none of an image's c captions in a random top-k of n_txt) = C(n_txt - c, kk) / C(n_txt, kk)
        miss = np.array([math.comb(n_txt - c, kk) / math.comb(n_txt, kk) for c in per_image])
        out[f"i2t_recall@{k}"] = float(100.0 * (1 - miss).mean())
    for k in ks:
        out[f"t2i_recall@{k}"] = float(100.0 * min(k, n_images) / n_images)
    out["mean_recall"] = float(np.mean([out[f"{d}_recall@{k}"] for d in ("i2t", "t2i") for k in ks]))
    return out


def normalised(features: np.ndarray) -> np.ndarray:
    import numpy as np

    feats = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ClipbenchError("a feature vector is all zeros; cosine similarity is undefined for it")
    return feats / norms


def zeroshot_retrieval(image_features, text_features, text_image, ks: Sequence[int] = DEFAULT_KS,
                       n_bootstrap: int = 1000, seed: int = 0, budget_bytes: int = 256 << 20,
                       device: str | torch.device = "cpu", topk: int | None = None) -> RetrievalResult:
    """Cosine-similarity retrieval in both directions, scored (see the module docstring)."""
    ranks = retrieval_ranks(normalised(image_features), normalised(text_features), text_image, topk,
                            budget_bytes=budget_bytes, device=device)
    return score_retrieval(ranks, text_image, ks, n_bootstrap, seed)


# ------------------------------------------------------------------------------ the task


def _k_list(value) -> bool:
    return (isinstance(value, list) and len(value) > 0 and all(positive_int(v) for v in value)
            and len(set(value)) == len(value))


def _prefix(value) -> bool:
    return value is None or isinstance(value, str)


class ZeroShotRetrievalTask(Task):
    """Image->text and text->image recall@k of cosine similarities (captions encoded as given, plus a prefix)."""

    name = "zeroshot_retrieval"
    title = "Zero-shot retrieval"
    dataset_kinds = ("image_text",)
    metrics = tuple(metric_names(DEFAULT_KS))
    inputs = "evaluation split; projected image features; caption text features"
    options = (
        Option("caption_prefix", None, _prefix, "a string or null",
               "text prepended to every caption (default: the dataset's, usually none; the CLIP paper used "
               "'a photo of ' for Flickr30k/MSCOCO)", str, owner="zeroshot_retrieval"),
        Option("recall_k", list(DEFAULT_KS), _k_list, "a list of distinct positive integers",
               "k values of recall@k (default 1,5,10)", int, owner="zeroshot_retrieval", is_list=True),
        Option("retrieval_block_mb", 256, positive_int, "a positive integer",
               "memory for one block of similarities in MB (does not change the numbers)", int,
               owner="zeroshot_retrieval"),
        Option("retrieval_topk", False, a_bool, "true or false",
               "store each image's top-k retrieved caption indices and each caption's top-k images",
               bool, owner="zeroshot_retrieval"),
    )

    legacy_fields = ("caption_prefix", "recall_k", "n_captions", "chance", "tie_rule", "retrieval_blocks",
                     "retrieval_block_used_mb", "retrieval_topk")

    def primary_metric(self, adapter) -> str:
        return "mean_recall"

    def variant_parts(self, record: dict) -> list[str]:
        block, parts = self.block(record), []
        if block.get("caption_prefix"):
            parts.append(f"prefix={block['caption_prefix']!r}")
        if block.get("recall_k") and list(block["recall_k"]) != list(DEFAULT_KS):
            parts.append("k=" + "/".join(str(k) for k in block["recall_k"]))
        return parts

    def table_note(self, record: dict) -> str:
        m = record.get("metrics", {})
        ks = self.block(record).get("recall_k") or list(DEFAULT_KS)
        i2t = "/".join(f"{m[f'i2t_recall@{k}']:.1f}" for k in ks if f"i2t_recall@{k}" in m)
        t2i = "/".join(f"{m[f't2i_recall@{k}']:.1f}" for k in ks if f"t2i_recall@{k}" in m)
        return f"R@{'/'.join(map(str, ks))} i2t {i2t}  t2i {t2i}"

    def detail_table(self, records, names) -> DetailTable | None:
        if not records:
            return None
        ks = sorted({int(k) for r in records for k in (self.block(r).get("recall_k") or DEFAULT_KS)})
        header = ["model", "dataset", *[f"{d} R@{k}" for d in ("i2t", "t2i") for k in ks], "mean recall"]
        rows = [[names.get(r["model"], r["model"]), r["dataset"],
                 *[cell(r["metrics"].get(f"{d}_recall@{k}")) for d in ("i2t", "t2i") for k in ks],
                 cell(r["metrics"].get("mean_recall"))] for r in records]
        figures = []
        for dataset in dict.fromkeys(r["dataset"] for r in records):
            cells = {}
            for r in (r for r in records if r["dataset"] == dataset):
                cis = r.get("metric_ci95") or {}
                cells[names.get(r["model"], r["model"])] = {
                    f"{d} R@{k}": (r["metrics"].get(f"{d}_recall@{k}"),
                                   *((cis.get(f"{d}_recall@{k}") or {}).get(b) for b in ("low", "high")))
                    for d in ("i2t", "t2i") for k in ks}
            figures.append(Figure(f"Recall@k on {dataset} per model, both directions (whiskers: 95% CI)",
                                  f"recall_at_k_{re.sub(r'[^A-Za-z0-9_.-]+', '_', dataset)}.png",
                                  f"Zero-shot retrieval on {dataset}: recall@k per model", "recall (%)", cells))
        return DetailTable("Zero-shot retrieval: recall@k", header, rows,
                           "Recall in %: image->text (an image is a hit if any of its captions ranks in the top k) "
                           "and text->image (a caption is a hit if its image ranks in the top k).", tuple(figures))

    def run(self, ctx: TaskContext, model, adapter) -> TaskResult:
        import numpy as np

        from clipbench.datasets.image_text import split_captions
        from clipbench.features.text_store import texts_hash

        o = ctx.options
        split = ctx.evaluation_split(adapter)
        captions = split_captions(split)
        feats = ctx.features(model, split)
        prefix = o.caption_prefix if o.caption_prefix is not None else getattr(adapter, "caption_prefix", "")
        texts = [prefix + c for caps in captions for c in caps]
        text_image = np.repeat(np.arange(len(captions), dtype=np.int64), [len(c) for c in captions])
        text_feats = ctx.text_features(model, texts)
        ks = sorted(int(k) for k in o.recall_k)
        device = o.device if str(o.device).startswith("cuda") else "cpu"
        result = zeroshot_retrieval(feats.features, text_feats, text_image, ks, o.bootstrap, o.seed,
                                    o.retrieval_block_mb << 20, device, max(ks) if o.retrieval_topk else None)
        block = {"caption_prefix": prefix, "recall_k": ks, "n_captions": len(texts), "chance": result.chance,
                 "tie_rule": TIE_RULE, "retrieval_blocks": list(result.ranks.blocks),
                 "retrieval_block_used_mb": round(result.ranks.block_bytes / 2**20, 2)}
        if o.retrieval_topk:
            block["retrieval_topk"] = {"i2t": result.ranks.i2t_topk.tolist(), "t2i": result.ranks.t2i_topk.tolist()}

        ranks = {"i2t_rank": result.ranks.i2t_rank, "t2i_rank": result.ranks.t2i_rank, "text_image": text_image,
                 "captions": texts}  # per-sample ranks: what the paired regression gate resamples
        return TaskResult(split, result.metrics, result.ci95, block,
                          SampleTable("retrieval", len(captions), ranks, {"recall_k": ks, "unit": "images"}),
                          core={"prompt_hash": texts_hash(texts)[:32]})
