"""Per-sample file of a zero-shot retrieval record: every query's rank of its correct item.

One row per query: each image (``i2t``: the best rank among its captions, 1 = first) and each
caption (``t2i``: the rank of its image), with the image it belongs to and, for captions, the
caption text as encoded (prefix included). That is all the metrics need: recall@k, mean and
median rank of any resample follow from the ranks (``clipbench.scoring.retrieval.metrics_from_counts``).

The paired test resamples images, each drawn with all its captions (the protocol of the
record's own confidence intervals), and applies the same draws to both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipbench.foundations.escaping import plain_text
from clipbench.scoring.samples.table import column_array, item_names, text_table


def build_retrieval_table(i2t_rank: np.ndarray, t2i_rank: np.ndarray, text_image: np.ndarray, captions: list[str]):
    """The pyarrow table of one retrieval split's ranks (images first, then captions, each in split order)."""
    import pyarrow as pa

    i2t_rank, t2i_rank = np.asarray(i2t_rank, np.int64), np.asarray(t2i_rank, np.int64)
    text_image = np.asarray(text_image, np.int64)
    n_img, n_txt = i2t_rank.shape[0], t2i_rank.shape[0]
    if text_image.shape != (n_txt,) or len(captions) != n_txt:
        raise ValueError(f"need one image and one caption per caption rank, got {text_image.shape}, {len(captions)}")
    return pa.table({
        "direction": pa.array(["i2t"] * n_img + ["t2i"] * n_txt).dictionary_encode(),
        "query": pa.array(np.concatenate([np.arange(n_img), np.arange(n_txt)]).astype(np.int64)),
        "image": pa.array(np.concatenate([np.arange(n_img), text_image]).astype(np.int64)),
        "rank": pa.array(np.concatenate([i2t_rank, t2i_rank])),
        "caption": pa.array([None] * n_img + list(captions), type=pa.string()),
    })


@dataclass
class RetrievalSamples:
    """Ranks of one retrieval record (``i2t_rank`` [images], ``t2i_rank`` and ``text_image`` [captions])."""

    i2t_rank: np.ndarray
    t2i_rank: np.ndarray
    text_image: np.ndarray
    captions: list[str]
    meta: dict
    image_item: list[str | None] | None = None  # each image's file (``table.with_items``), where the split names one

    @classmethod
    def from_table(cls, table, meta: dict) -> RetrievalSamples:
        direction = np.asarray(table.column("direction").to_pylist(), dtype=object)
        query, image = column_array(table.column("query"), np.int64), column_array(table.column("image"), np.int64)
        rank = column_array(table.column("rank"), np.int64)
        captions = table.column("caption").to_pylist()
        i2t, t2i = np.flatnonzero(direction == "i2t"), np.flatnonzero(direction == "t2i")
        i2t, t2i = i2t[np.argsort(query[i2t], kind="stable")], t2i[np.argsort(query[t2i], kind="stable")]
        if not (np.array_equal(query[i2t], np.arange(len(i2t))) and np.array_equal(query[t2i], np.arange(len(t2i)))):
            raise ValueError("queries must number every image and every caption once")
        items = item_names(table)
        return cls(rank[i2t], rank[t2i], image[t2i], [captions[i] for i in t2i], meta,
                   None if items is None else [items[i] for i in i2t])

    def __len__(self) -> int:
        return int(self.i2t_rank.shape[0])

    @property
    def ks(self) -> list[int]:
        return [int(k) for k in self.meta.get("recall_k") or (1, 5, 10)]

    def same_samples(self, other) -> bool:
        return (isinstance(other, RetrievalSamples) and np.array_equal(self.text_image, other.text_image)
                and self.captions == other.captions)

    def metric(self, name: str, counts: np.ndarray) -> np.ndarray:
        """``name`` (percent for recalls) of each draw of images (``counts`` [B, images])."""
        from clipbench.scoring.retrieval import metrics_from_counts

        return metrics_from_counts(self.i2t_rank, self.t2i_rank, self.text_image, self.ks, counts, (name,))[name]

    def supports(self, metric: str) -> bool:
        # higher-is-better metrics only: the gate reads a negative difference as a drop
        return metric == "mean_recall" or any(metric == f"{d}_recall@{k}" for d in ("i2t", "t2i") for k in self.ks)

    def paired(self, metric: str, new: RetrievalSamples, n_resamples: int, seed: int):
        """Paired bootstrap over images of ``new`` against this baseline."""
        from clipbench.scoring.paired import PairedResult, paired_bootstrap_units

        d, low, high, p = paired_bootstrap_units(lambda c: self.metric(metric, c), lambda c: new.metric(metric, c),
                                                 len(self), n_resamples, seed)
        return PairedResult(metric, "bootstrap", d, low, high, p, len(self))

    def _image(self, i: int) -> str:
        """Image ``i`` for people: its index, and its file where the split names one."""
        return f"{i} {plain_text(self.image_item[i])}" if self.image_item and self.image_item[i] else str(i)

    def describe(self, record: dict, top: int = 10) -> list[str]:
        """Recall summary, then the images and the captions whose correct item ranked worst."""
        ones = np.ones((1, len(self)))
        summary = ", ".join(f"{name} {self.metric(name, ones)[0]:.2f}"
                            for name in ["mean_recall", *(f"{d}_recall@{k}" for d in ("i2t", "t2i") for k in self.ks)])
        lines = [f"{len(self)} images, {len(self.captions)} captions: {summary}", "",
                 "Images whose best caption ranked lowest (image -> text):"]
        worst = np.argsort(-self.i2t_rank, kind="stable")[:top]
        first_caption = {int(img): i for i, img in reversed(list(enumerate(self.text_image.tolist())))}
        rows = [("image", "rank of its best caption", "its first caption")]
        rows += [(self._image(i), str(int(self.i2t_rank[i])), self.captions[first_caption[int(i)]]) for i in worst]
        lines += text_table(rows)
        lines += ["", "Captions whose image ranked lowest (text -> image):"]
        worst = np.argsort(-self.t2i_rank, kind="stable")[:top]
        rows = [("caption", "image", "rank of its image", "text")]
        rows += [(str(t), self._image(int(self.text_image[t])), str(int(self.t2i_rank[t])), self.captions[t])
                 for t in worst]
        lines += text_table(rows)
        return lines
