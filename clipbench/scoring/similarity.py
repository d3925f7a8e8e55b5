"""Cosine similarity, top-k and zero-shot logits: the one normaliser and the one tie rule.

Tie rule (every ranking clipbench reports): among equal scores the lower index ranks first. A
row's top-k is found by value (``numpy.partition`` / ``torch.topk`` give the k-th largest score),
then the columns are chosen by comparison, the lowest columns among those equal to the k-th, and
ordered by score, ties by column. ``torch.topk`` or ``argpartition`` alone leave the order of
equal values unspecified.

Blockwise top-k streams a database through blocks of ``database_block`` rows, each scored against
query blocks of at most ``block_elements`` similarities and merged into a running top-k (running
entries first: they hold the lower database indices, so column order is index order), so memory
is O(block + queries x k) however large the database is. Every function takes numpy arrays or
torch tensors and answers in kind; torch is never imported here (scoring a warm run needs none).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from clipbench.foundations.errors import ClipbenchError

if TYPE_CHECKING:
    import torch

#: similarities in one block of blockwise top-k (query rows x database rows): 2**24 float32 = 64 MiB
BLOCK_ELEMENTS = 1 << 24
#: database rows per block of blockwise top-k (fewer when the database is smaller)
DATABASE_BLOCK = 65536
#: CLIP's learned temperature cap: zero-shot logits are 100 x cosine
LOGIT_SCALE = 100.0


def _torch_of(x: Any):
    """The torch module if ``x`` is a tensor (torch is then loaded), else None."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(x, torch.Tensor) else None


def as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """``x`` as a numpy array: a tensor on any device (floats as float32), or anything numpy takes."""
    if _torch_of(x) is not None:
        return x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def l2_normalise(x, reject_zero: bool = False):
    """Rows of ``x`` (numpy or torch, dtype kept) scaled to unit L2 norm; an all-zero row stays zero, or is a
    ``ClipbenchError`` with ``reject_zero`` (cosine similarity is undefined for it)."""
    torch = _torch_of(x)
    norms = x.norm(dim=1, keepdim=True) if torch is not None else np.linalg.norm(x, axis=1, keepdims=True)
    if reject_zero and bool((norms == 0).any()):
        raise ClipbenchError("a feature vector is all zeros; cosine similarity is undefined for it")
    return x / norms.clamp_min(1e-12) if torch is not None else x / np.maximum(norms, 1e-12)


def top_k(values, k: int, rows: int | None = None):
    """Column positions [R, k] of each row's ``k`` largest values, best first, equal values lowest column first.

    ``rows``: work through that many rows at a time (bounds the temporaries on wide inputs).
    """
    torch = _torch_of(values)
    if rows is not None and values.shape[0] > rows:
        parts = [top_k(values[a:a + rows], k) for a in range(0, values.shape[0], rows)]
        return torch.cat(parts) if torch is not None else np.concatenate(parts)
    n_rows, n_cols = values.shape
    if torch is not None:
        kth = values.topk(k, dim=1, sorted=True).values[:, -1:]
    else:
        kth = np.partition(values, n_cols - k, axis=1)[:, n_cols - k, None]
    select = values > kth
    places = k - select.sum(1, keepdims=True) if torch is None else k - select.sum(1, keepdim=True)
    equal = values == kth
    tied = (equal.sum(1, keepdims=True) if torch is None else equal.sum(1, keepdim=True)) > places
    if bool(tied.any()):  # more values equal the k-th than fit: keep the lowest columns among them
        tied_rows = tied[:, 0].nonzero()[0] if torch is None else tied[:, 0].nonzero()[:, 0]
        rank = (np.cumsum(equal[tied_rows], axis=1) if torch is None
                else equal[tied_rows].cumsum(dim=1, dtype=torch.int32))
        equal[tied_rows] &= rank <= places[tied_rows]
    select |= equal
    if torch is not None:
        columns = select.nonzero()[:, 1].view(n_rows, k)  # row-major: ascending columns within each row
        # + 0.0 makes -0.0 and +0.0 one value (a radix sort on the GPU would order their bits)
        order = (values.gather(1, columns) + 0.0).sort(dim=1, descending=True, stable=True).indices
        return columns.gather(1, order)
    columns = np.nonzero(select)[1].reshape(n_rows, k)
    order = np.argsort(-np.take_along_axis(values, columns, 1), axis=1, kind="stable")
    return np.take_along_axis(columns, order, 1)


def _take(x, index):
    return x.gather(1, index) if _torch_of(x) is not None else np.take_along_axis(x, index, 1)


def merge_top_k(best_values, best_index, block, offset: int, k: int):
    """The running top-k (values, indices) [R, k] merged with a block of scores [R, C] of items ``offset``..

    The running entries must hold lower item indices than the block (blocks are merged in order).
    """
    torch = _torch_of(block)
    cols = top_k(block, min(k, block.shape[1]))
    values = (torch.cat if torch is not None else np.concatenate)([best_values, _take(block, cols)], 1)
    index = (torch.cat if torch is not None else np.concatenate)([best_index, cols + offset], 1)
    keep = top_k(values, k)
    return _take(values, keep), _take(index, keep)


def blockwise_top_k(queries, database, k: int, *, block_elements: int = BLOCK_ELEMENTS,
                    database_block: int = DATABASE_BLOCK, prepare=None, exclude=None):
    """Inner products [Q, k] and database indices [Q, k] of each query's k best rows, best first, ties to the
    lower index (see the module docstring for the blocks).

    ``prepare(block)``: applied to each database block before scoring (e.g. move to the queries' device,
    check, normalise). ``exclude[q]``: a database index query q may not retrieve (itself, leave-one-out).
    """
    torch = _torch_of(queries)
    n_q, n_db = queries.shape[0], database.shape[0]
    db_rows = max(k, min(database_block, n_db))
    q_rows = max(1, block_elements // db_rows)
    if torch is not None:
        best_values = torch.full((n_q, k), -torch.inf, dtype=queries.dtype, device=queries.device)
        best_index = torch.full((n_q, k), -1, dtype=torch.int64, device=queries.device)
    else:
        best_values = np.full((n_q, k), -np.inf, dtype=queries.dtype)
        best_index = np.full((n_q, k), -1, dtype=np.int64)
    for start in range(0, n_db, db_rows):
        block = database[start:start + db_rows]
        if prepare is not None:
            block = prepare(block)
        for qs in range(0, n_q, q_rows):
            sims = queries[qs:qs + q_rows] @ block.T
            if exclude is not None:
                local = exclude[qs:qs + q_rows] - start
                inside = ((local >= 0) & (local < block.shape[0])).nonzero()
                inside = inside[:, 0] if torch is not None else inside[0]
                sims[inside, local[inside]] = -np.inf
            best_values[qs:qs + q_rows], best_index[qs:qs + q_rows] = merge_top_k(
                best_values[qs:qs + q_rows], best_index[qs:qs + q_rows], sims, start, k)
    return best_values, best_index


def zeroshot_logits(image_features: np.ndarray | torch.Tensor, class_weights: np.ndarray | torch.Tensor,
                    chunk: int = 65536) -> np.ndarray:
    """[N, C] float32 logits, ``LOGIT_SCALE`` x cosine; features are normalised here (the store keeps them raw).

    numpy, as are the class weights: a run served from the caches scores without loading torch,
    and cold and warm runs (and ``clipbench predict``) score with the same code.
    """
    feats = as_numpy(image_features).astype(np.float32, copy=False)  # tensors too, on any device
    weights = as_numpy(class_weights).astype(np.float32, copy=False)
    if feats.ndim != 2 or weights.ndim != 2 or feats.shape[1] != weights.shape[1]:
        raise ClipbenchError(f"image features {tuple(feats.shape)} and class weights {tuple(weights.shape)} do not "
                             "share an embedding dimension (zero-shot needs projected features)")
    out = np.empty((feats.shape[0], weights.shape[0]), dtype=np.float32)
    for start in range(0, feats.shape[0], chunk):
        out[start:start + chunk] = LOGIT_SCALE * l2_normalise(feats[start:start + chunk], reject_zero=True) @ weights.T
    return out
