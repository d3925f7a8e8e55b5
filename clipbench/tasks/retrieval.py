"""Zero-shot image-text retrieval (the CLIP paper's Table 13; CLIP_benchmark's ``zeroshot_retrieval``).

Image->text and text->image recall@k of the cosine similarities of image and caption features,
with mean and median ranks and 95% bootstrap intervals over images; the protocol, the tie rule
and the memory budget are ``clipbench.scoring.retrieval``'s.
"""

from __future__ import annotations

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.escaping import file_slug
from clipbench.foundations.option import Option, a_bool, positive_int
from clipbench.scoring.retrieval import DEFAULT_KS, TIE_RULE, metric_names, zeroshot_retrieval
from clipbench.tasks.base import DetailTable, Figure, SampleTable, Task, TaskContext, TaskResult, cell

# ------------------------------------------------------------------------------ the task


def _k_list(value) -> bool:
    return (isinstance(value, list) and len(value) > 0 and all(positive_int(v) for v in value)
            and len(set(value)) == len(value))


def _prefix(value) -> bool:
    return value is None or isinstance(value, str)


def degenerate_recall(dataset: str, n_images: int, ks: list[int]) -> list[str]:
    """Text->image recall@k is 100 by construction for k >= the image count, as classification with one class
    scores 100%: a split where every k is that large measures nothing (an error, like a one-class folder);
    one where only some are gets a note in the log and the record."""
    trivial = [k for k in ks if k >= n_images]
    if trivial == ks:
        raise ClipbenchError(f"{dataset} has {n_images} image{'s' if n_images != 1 else ''} and recall@k is asked "
                             f"for k = {', '.join(map(str, ks))}: text->image recall@k is 100% by construction "
                             f"when k >= the image count; retrieval needs more images than the smallest k")
    if trivial:
        return [f"{dataset} has {n_images} images: text->image recall@{'/'.join(map(str, trivial))} is 100% by "
                "construction (k >= the image count), and mean_recall includes it"]
    return []


class ZeroShotRetrievalTask(Task):
    """Image->text and text->image recall@k of cosine similarities (captions encoded as given, plus a prefix)."""

    name = "zeroshot_retrieval"
    title = "Zero-shot retrieval"
    dataset_kinds = ("image_text",)
    metrics = tuple(metric_names(DEFAULT_KS))
    inputs = "evaluation split; projected image features; caption text features"
    uses_text = True
    options = (
        Option("caption_prefix", None, _prefix, "a string or null",
               "text prepended to every caption (default: the dataset's, usually none; the CLIP paper is said to "
               "have used a prompt such as 'a photo of ' for Flickr30k/MSCOCO, not verified here)", str,
               owner="zeroshot_retrieval"),
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
                                  f"recall_at_k_{file_slug(dataset)}.png",
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
        ks = sorted(int(k) for k in o.recall_k)
        notes = degenerate_recall(adapter.name, len(captions), ks)
        feats = ctx.features(model, split)
        prefix = o.caption_prefix if o.caption_prefix is not None else getattr(adapter, "caption_prefix", "")
        texts = [prefix + c for caps in captions for c in caps]
        text_image = np.repeat(np.arange(len(captions), dtype=np.int64), [len(c) for c in captions])
        text_feats = ctx.text_features(model, texts)
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
                          core={"prompt_hash": texts_hash(texts)[:32]}, notes=notes)
