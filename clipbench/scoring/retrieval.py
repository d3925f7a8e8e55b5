"""Scoring of zero-shot image-text retrieval (the CLIP paper's Table 13; CLIP_benchmark's ``zeroshot_retrieval``).

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
float32 rounding boundary (odds of order 1e-9 per score). Each image's best caption is found with
one int64 key per (image, caption), ``order-preserving bits of the float32 score << 32 |
(2^32 - 1 - caption index)``; the optional top-k lists (``retrieval_topk``) are the running top-k
of ``clipbench.scoring.similarity`` (the one top-k, the same tie rule), merged block by block.

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
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clipbench.foundations.errors import ClipbenchError

if TYPE_CHECKING:  # numpy and torch load when a task scores, not when the CLI builds its parser
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
    element of the block), plus allocator slack; with top-k lists also the running top-k's temporaries (36 was
    measured with int64 keys per similarity, which the shared top-k no longer builds: an upper bound, kept so
    that the blocks a record reports do not change)."""
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
        from clipbench.scoring.similarity import merge_top_k

        k_i2t, k_t2i = min(topk, n_txt), min(topk, n_img)
        i2t_score = torch.full((n_img, k_i2t), -torch.inf, device=device)
        i2t_item = torch.full((n_img, k_i2t), -1, dtype=torch.int64, device=device)
        t2i_score = torch.full((n_txt, k_t2i), -torch.inf, device=device)
        t2i_item = torch.full((n_txt, k_t2i), -1, dtype=torch.int64, device=device)
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
            if topk is not None:  # blocks come in index order, as the running top-k needs
                i2t_score[r:r_end], i2t_item[r:r_end] = merge_top_k(i2t_score[r:r_end], i2t_item[r:r_end], scores,
                                                                    c, k_i2t)
                t2i_score[c:c_end], t2i_item[c:c_end] = merge_top_k(t2i_score[c:c_end], t2i_item[c:c_end], scores.T,
                                                                    r, k_t2i)
            del scores
    return RetrievalRanks(
        i2t_rank=(above_i2t + 1).cpu().numpy(), t2i_rank=(above_t2i + 1).cpu().numpy(),
        i2t_topk=i2t_item.cpu().numpy() if topk is not None else None,
        t2i_topk=t2i_item.cpu().numpy() if topk is not None else None,
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
                    n_bootstrap: int = 1000, seed: int = 0) -> RetrievalResult:
    """Metrics (recalls in percent, ranks as ranks) and, with ``n_bootstrap``, 95% percentile CIs over images."""
    import numpy as np

    text_image = np.asarray(text_image, dtype=np.int64)
    n_img = ranks.i2t_rank.shape[0]
    point = metrics_from_counts(ranks.i2t_rank, ranks.t2i_rank, text_image, ks, np.ones((1, n_img)))
    metrics = {name: float(point[name][0]) for name in metric_names(ks)}
    ci = None
    if n_bootstrap > 0:  # images drawn by the one resampling engine, each with all its captions
        from clipbench.scoring.resample import percentile_interval, resample

        draws = resample(lambda d: metrics_from_counts(ranks.i2t_rank, ranks.t2i_rank, text_image, ks, d.counts),
                         n_img, n_bootstrap, seed)
        ci = {}
        for name in metrics:
            low, high = percentile_interval(draws[name])
            ci[name] = {"low": low, "high": high}
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
    """float32 unit rows (``clipbench.scoring.similarity.l2_normalise``); an all-zero row is an error."""
    import numpy as np

    from clipbench.scoring.similarity import l2_normalise

    return l2_normalise(np.asarray(features, dtype=np.float32), reject_zero=True)


def zeroshot_retrieval(image_features, text_features, text_image, ks: Sequence[int] = DEFAULT_KS,
                       n_bootstrap: int = 1000, seed: int = 0, budget_bytes: int = 256 << 20,
                       device: str | torch.device = "cpu", topk: int | None = None) -> RetrievalResult:
    """Cosine-similarity retrieval in both directions, scored (see the module docstring)."""
    ranks = retrieval_ranks(normalised(image_features), normalised(text_features), text_image, topk,
                            budget_bytes=budget_bytes, device=device)
    return score_retrieval(ranks, text_image, ks, n_bootstrap, seed)


