"""``clipbench lite RESULTS --budget N``: the lite choice for every dataset of a results set, its measured rank
agreement (``clipbench.results.lite``), and the suite file that names the subsets.

The suite file lists the datasets and tasks, and under ``subsets:`` each dataset's split, its full split
fingerprint and the chosen sample indices (chosen on every model's files); ``clipbench run --suite FILE``
scores exactly those samples, refuses another copy of the data (another fingerprint), and marks its
records with the variant ``lite=<digest of the indices>`` so they never pass for full-set numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import atomic_write_text
from clipbench.results.lite import (
    Agreement,
    Outcomes,
    agreement,
    check_budget,
    choose_subset,
    collect_outcomes,
    full_rank_intervals,
    held_out_scores,
    subset_digest,
)


@dataclass
class LiteDataset:
    outcomes: Outcomes
    subset: np.ndarray  # chosen on every model of this task: its agreement table's "lite n"
    agreement: Agreement


@dataclass
class LiteReport:
    budget: int
    seed: int
    datasets: list[LiteDataset]
    overall: Agreement | None  # models' mean score over the datasets all of them have

    def suite_subsets(self) -> dict[str, tuple[Outcomes, np.ndarray]]:
        """Per dataset, the subset the suite names: chosen on every model and task run there (the rows of all
        its tasks' correctness on that split stacked), so one subset serves each of its tasks."""
        by_dataset: dict[str, list[Outcomes]] = {}
        for d in self.datasets:
            by_dataset.setdefault(d.outcomes.dataset, []).append(d.outcomes)
        out = {}
        for dataset, group in by_dataset.items():
            same = [o for o in group if o.fingerprint == group[0].fingerprint and o.split == group[0].split]
            out[dataset] = (group[0], choose_subset(np.vstack([o.correct for o in same]), self.budget, self.seed))
        return out

    def suite(self, name: str = "lite") -> dict:
        subsets = self.suite_subsets()
        return {
            "name": name, "version": 1,
            "description": (f"lite subsets of at most {self.budget} samples per dataset, chosen by clipbench lite "
                            "from the per-sample files of the models already run"),
            "datasets": [{dataset: [d.outcomes.task for d in self.datasets if d.outcomes.dataset == dataset]}
                         for dataset in subsets],
            "tasks": list(dict.fromkeys(d.outcomes.task for d in self.datasets)),
            "subsets": {dataset: {"split": o.split, "fingerprint": o.fingerprint, "digest": subset_digest(idx),
                                  "indices": [int(i) for i in idx]} for dataset, (o, idx) in subsets.items()},
        }

    def lines(self) -> list[str]:
        from clipbench.foundations.tables import render

        out = [f"Lite subsets (budget {self.budget} samples per dataset); agreement measured leave-one-model-out:", ""]
        summary = []
        for d in self.datasets:
            a = d.agreement
            summary.append({"dataset": d.outcomes.dataset, "task": d.outcomes.task, "models": len(a.models),
                            "full n": d.outcomes.correct.shape[1], "lite n": len(d.subset),
                            "spearman": _with_ci(a.spearman, a.spearman_ci), "kendall": _with_ci(a.kendall, a.kendall_ci)})
        if self.overall is not None:
            a = self.overall
            summary.append({"dataset": "(mean over datasets)", "task": "-", "models": len(a.models), "full n": "-",
                            "lite n": "-", "spearman": _with_ci(a.spearman, a.spearman_ci),
                            "kendall": _with_ci(a.kendall, a.kendall_ci)})
        out += render(summary, "table").splitlines()
        for d in self.datasets:
            out += ["", f"{d.outcomes.dataset} / {d.outcomes.task}: each model scored on a subset chosen without it"]
            out += render(d.agreement.rows(), "table").splitlines()
        return out


def _with_ci(value: float, ci: tuple[float, float]) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def build_lite(results: str | os.PathLike, budget: int, seed: int = 0, n_resamples: int = 1000) -> LiteReport:
    """The lite choice and its measured agreement for every usable (dataset, task) of ``results``."""
    budget = check_budget(budget)
    datasets = []
    for outcomes in collect_outcomes(results):
        lite, sizes = held_out_scores(outcomes.correct, budget, seed)
        a = agreement(outcomes.full_scores, lite, outcomes.models,
                      full_rank_intervals(outcomes.correct, n_resamples, seed), n_resamples, seed, sizes)
        datasets.append(LiteDataset(outcomes, choose_subset(outcomes.correct, budget, seed), a))
    if not datasets:
        raise ClipbenchError(f"{results}: no dataset has per-sample files of at least 3 models (run the models "
                             "first, with --log-samples auto or always)")
    return LiteReport(budget, seed, datasets, _overall(datasets, n_resamples, seed))


def _overall(datasets: list[LiteDataset], n_resamples: int, seed: int) -> Agreement | None:
    """Mean full and mean held-out lite score over the datasets, for the models present in all of them."""
    if len(datasets) < 2:
        return None
    common = [m for m in datasets[0].outcomes.models if all(m in d.outcomes.models for d in datasets)]
    if len(common) < 3:
        return None
    full = np.mean([[d.agreement.full[d.agreement.models.index(m)] for m in common] for d in datasets], axis=0)
    lite = np.mean([[d.agreement.lite_held_out[d.agreement.models.index(m)] for m in common] for d in datasets],
                   axis=0)
    return agreement(full, lite, common, np.full((len(common), 2), np.nan), n_resamples, seed)


def write_suite(report: LiteReport, path: str | os.PathLike, name: str | None = None) -> Path:
    path = Path(path)
    text = "# written by `clipbench lite`; run it with `clipbench run --suite " + path.name + " --model ...`\n"
    text += yaml.safe_dump(report.suite(name or path.stem), sort_keys=False, width=120)
    atomic_write_text(path, text)
    return path
