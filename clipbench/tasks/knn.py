"""k-NN classification on frozen image features: DINO's weighted k-NN (Caron et al. 2021, section 4.1).

The training images are the database, the evaluation split the queries. Features are
L2-normalised, so the dot product is the cosine similarity; each query's k most similar database
images vote for their labels, with weight exp(sim / T) ("dino", k = 20, T = 0.07 by default) or 1
("uniform", a majority vote as scikit-learn's ``KNeighborsClassifier``). A class's score is the sum
of its neighbours' weights, and the ranked class scores give top-1, top-5 and mean per-class recall
as for zero-shot. The nearest neighbour alone (k = 1) is reported beside them as ``top1_k1`` and
``mean_per_class_recall_k1``.

Choices, and why:

* Database = the probe's train + val (the dataset's own val split where it has one, else the
  linear probe's carve re-joined: the whole train split). k-NN fits nothing, so it needs no held-out
  part, and DINO uses the full training set; it also reuses the features the probe caches.
* Features default to the projected embedding (what CLIP_benchmark and MIEB score);
  ``knn_features: pre_projection`` takes the encoder's output before the projection.
* Ties are broken by index, so a run is a pure function of its features: among equal similarities
  the lower database index (train before val, each in split order) is the nearer neighbour; among
  equal class scores the lower class index ranks first (``numpy.argmax`` and
  ``clipbench.scoring.classification.topk_correct``). Votes are summed in float64 on the CPU, so no GPU atomics
  reorder them.
* Similarities are computed block by block (database blocks x query blocks) with a running top-k
  (``clipbench.scoring.similarity``, the one top-k and tie rule), so ImageNet's 1.28M x 50k
  similarity matrix is never held in memory.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from clipbench.foundations.errors import ClipbenchError, DataError
from clipbench.foundations.option import Option, a_bool, one_of, positive_int
from clipbench.tasks.base import Task, TaskContext, TaskResult, classification_samples

if TYPE_CHECKING:  # numpy and torch load when the task runs, not when the CLI builds its parser
    import numpy as np
    import torch

log = logging.getLogger(__name__)

DEFAULT_K = 20
DEFAULT_TEMPERATURE = 0.07
WEIGHTINGS = ("dino", "uniform")


def _positive_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not a_bool(v) and math.isfinite(v) and v > 0


def knn_neighbours(queries: np.ndarray | torch.Tensor, database: np.ndarray | torch.Tensor, k: int,
                   device: str | torch.device = "cpu", **blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities [Nq, k] (float32) and database indices [Nq, k] of each query's k nearest.

    Most similar first; equal similarities: lower database index first. Queries live on ``device``;
    the database streams through it in blocks (``blocks``: ``block_elements``, ``database_block`` of
    ``clipbench.scoring.similarity.blockwise_top_k``), so memory is O(block + Nq * k) however large the database is.
    """
    import torch

    from clipbench.scoring.similarity import blockwise_top_k, l2_normalise

    queries = torch.as_tensor(queries, dtype=torch.float32)
    database = torch.as_tensor(database, dtype=torch.float32)
    if queries.ndim != 2 or database.ndim != 2 or queries.shape[1] != database.shape[1]:
        raise ClipbenchError(f"knn: query features {tuple(queries.shape)} and database features "
                             f"{tuple(database.shape)} do not share a dimension")
    n_db = database.shape[0]
    if not 1 <= k <= n_db:
        raise ClipbenchError(f"knn: k={k} needs at least {k} database images, the database has {n_db} "
                             "(lower --knn-k or raise --limit)")
    if not torch.isfinite(queries).all():
        raise ClipbenchError("knn: query features contain NaN or Inf")
    device = torch.device(device)

    def prepare(block: torch.Tensor) -> torch.Tensor:
        block = block.to(device)
        if not torch.isfinite(block).all():  # checked per block: a mask of ImageNet's database is 1 GB
            raise ClipbenchError("knn: database features contain NaN or Inf")
        return l2_normalise(block)

    best_sim, best_idx = blockwise_top_k(l2_normalise(queries.to(device)), database, k, prepare=prepare, **blocks)
    return best_sim.cpu(), best_idx.cpu()


def knn_class_scores(similarities: torch.Tensor, neighbour_labels: torch.Tensor, num_classes: int,
                     weighting: str = "dino", temperature: float = DEFAULT_TEMPERATURE) -> np.ndarray:
    """[Nq, C] float64 votes: per class, the sum over its neighbours of exp(sim / T) (dino) or 1 (uniform)."""
    import torch

    if weighting not in WEIGHTINGS:
        raise ClipbenchError(f"knn: unknown weighting {weighting!r}; expected one of {', '.join(WEIGHTINGS)}")
    sims = torch.as_tensor(similarities).to("cpu", torch.float64)
    labels = torch.as_tensor(neighbour_labels).to("cpu", torch.int64)
    weights = torch.exp(sims / temperature) if weighting == "dino" else torch.ones_like(sims)
    scores = torch.zeros((sims.shape[0], num_classes), dtype=torch.float64)
    return scores.scatter_add_(1, labels, weights).numpy()


class KnnTask(Task):
    """Weighted k-NN on cached image features: train (+val) as the database, the test split as queries."""

    name = "knn"
    title = "k-NN classification"
    metrics = ("top1", "top5", "mean_per_class_recall", "top1_k1", "mean_per_class_recall_k1")
    inputs = "train and val (the database) and test splits; image features"
    options = (
        Option("knn_k", DEFAULT_K, positive_int, "a positive integer",
               f"k-NN: neighbours that vote (default: {DEFAULT_K})", int, owner="knn"),
        Option("knn_temperature", DEFAULT_TEMPERATURE, _positive_number, "a positive number",
               f"k-NN: temperature T of the exp(sim / T) votes (default: {DEFAULT_TEMPERATURE})", float,
               owner="knn"),
        Option("knn_weighting", "dino", one_of(*WEIGHTINGS), "dino or uniform",
               "k-NN votes: dino = exp(sim / T), uniform = 1 each (default: dino)", str, WEIGHTINGS, owner="knn"),
        Option("knn_features", "projected", one_of("projected", "pre_projection"), "projected or pre_projection",
               "k-NN features (default: projected)", str, ("projected", "pre_projection"), owner="knn"),
    )
    summary_columns = ("top1", "top5")
    classification_view = "k-NN"
    legacy_fields = ("per_class",)
    single_label_only = True

    def variant_parts(self, record: dict) -> list[str]:
        knn = self.block(record)
        parts = []
        if knn.get("features", "projected") != "projected":
            parts.append(str(knn["features"]))
        if knn.get("k", DEFAULT_K) != DEFAULT_K:
            parts.append(f"k={knn['k']}")
        weighting = knn.get("weighting", "dino")
        if weighting != "dino":
            parts.append(str(weighting))
        elif knn.get("temperature", DEFAULT_TEMPERATURE) != DEFAULT_TEMPERATURE:  # T only matters for dino votes
            parts.append(f"T={knn['temperature']:g}")
        return parts

    def run(self, ctx: TaskContext, model, adapter) -> TaskResult:
        import numpy as np
        import torch

        from clipbench.scoring.classification import score_classification

        o = ctx.options
        if "train" not in adapter.splits or "test" not in adapter.splits:
            raise DataError(f"{adapter.name} has splits {', '.join(adapter.splits)}; k-NN needs 'train' (the "
                            "database) and 'test'")
        (train, val, test), (f_train, f_val, f_test) = ctx.probe_features(model, adapter,
                                                                           o.knn_features == "projected")
        db_features = np.concatenate([f_train.features, f_val.features])
        db_labels = torch.from_numpy(np.concatenate([f_train.labels, f_val.labels]).astype(np.int64))
        k, temperature = int(o.knn_k), float(o.knn_temperature)
        sims, idx = knn_neighbours(f_test.features, db_features, k, o.device)
        neighbour_labels = db_labels[idx]
        num_classes = len(adapter.classnames)
        classnames = adapter.classnames if o.per_class else None
        votes = knn_class_scores(sims, neighbour_labels, num_classes, o.knn_weighting, temperature)
        metric = self.primary_metric(adapter)
        main = score_classification(votes, f_test.labels, metric, o.bootstrap, o.seed, classnames)
        nearest = score_classification(knn_class_scores(sims[:, :1], neighbour_labels[:, :1], num_classes,
                                                        "uniform"),
                                       f_test.labels, metric, o.bootstrap, o.seed)
        metrics = dict(main.metrics)
        metrics["top1_k1"] = nearest.metrics["top1"]
        metrics["mean_per_class_recall_k1"] = nearest.metrics["mean_per_class_recall"]
        block = {"k": k, "temperature": temperature, "weighting": o.knn_weighting, "features": o.knn_features,
                 "database": "train+val", "n_database": int(len(db_labels)), "n_train": len(train), "n_val": len(val),
                 "train_fingerprint": train.fingerprint, "val_fingerprint": val.fingerprint, "ci95_k1": nearest.ci95}
        if main.per_class is not None:
            block["per_class"] = main.per_class
        shares = np.asarray(votes, dtype=np.float64)  # per-sample predictions: each class's share of the votes
        shares = shares / np.maximum(shares.sum(axis=1, keepdims=True), 1e-300)
        return TaskResult(test, metrics, {metric: main.ci95}, block,
                          classification_samples(shares.astype(np.float32), f_test.labels, "probabilities",
                                                 adapter.classnames), notes=self.single_label_note(adapter))
