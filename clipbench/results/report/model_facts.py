"""Model facts for the report: legend names, family / parameters / GFLOPs / resolution, chance levels, axis labels.

Facts come from the model registry; open_clip and Hugging Face names of the same architectures
(``openclip:ViT-B-16/...``, ``hf:.../clip-vit-base-patch16``) borrow them, since cost depends on the
architecture, not on the weights; a checkpoint file that is a known checkpoint is matched by its SHA-256.
"""

from __future__ import annotations

import logging
import re

import pandas as pd

from clipbench.results.labels import unlabelled
from clipbench.results.report.reading import Provenance
from clipbench.tasks.registry import task_title

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- model facts


def _registry_facts() -> dict[str, dict]:
    try:
        from clipbench.models import describe_models

        rows = describe_models()
    except Exception as exc:  # the report must still render from the records alone
        log.warning("model registry unavailable (%s); using families from the records", exc)
        return {}
    facts = {}
    for row in rows:
        for name in [row["name"], *row.get("aliases", [])]:
            facts[norm_name(name)] = {k: row.get(k) for k in ("family", "params", "image_gflops", "resolution")}
    return facts


def _checkpoint_facts_by_sha() -> dict[str, dict]:
    """Known checkpoints by SHA-256, so a copy of one loaded from a path keeps its facts."""
    try:
        from clipbench.models.checkpoints import OPENAI_CHECKPOINTS, PACKAGED_CHECKPOINTS
    except Exception:
        return {}
    return {c.sha256: {"family": c.family, "params": c.params, "image_gflops": c.image_gflops,
                       "resolution": c.resolution} for c in (*OPENAI_CHECKPOINTS, *PACKAGED_CHECKPOINTS)}


def norm_name(name: str) -> str:
    return re.sub(r"[\s/_\-]", "", str(name)).lower()


_HF_SIZES = {"base": "B", "large": "L", "huge": "H"}


def architecture_alias(model: str) -> str | None:
    """``openclip:ViT-B-16-quickgelu/x`` -> ``ViT-B/16``; ``hf:openai/clip-vit-large-patch14-336`` -> ``ViT-L/14@336px``."""
    if model.lower().startswith("openclip:"):
        arch = re.split(r"[/@]", model.split(":", 1)[1], maxsplit=1)[0]
        arch = re.sub(r"-quickgelu$", "", arch, flags=re.I)
        m = re.fullmatch(r"ViT-([BLH])-(\d+)(?:-(\d+))?", arch, flags=re.I)
        if m:
            return f"ViT-{m[1].upper()}/{m[2]}" + (f"@{m[3]}px" if m[3] else "")
        return arch
    if model.lower().startswith("hf:"):
        m = re.search(r"vit-(base|large|huge)-patch(\d+)(?:-(\d+))?", model, flags=re.I)
        if m:
            return f"ViT-{_HF_SIZES[m[1].lower()]}/{m[2]}" + (f"@{m[3]}px" if m[3] else "")
    return None


def model_facts(models: list[str], frame: pd.DataFrame,
                provenance: dict[str, Provenance] | None = None) -> dict[str, dict]:
    """family / params / image_gflops / resolution per model name.

    The record's own ``model_facts`` first (measured from the loaded model, so a local checkpoint has them);
    what they lack comes from the registry by name, then by the recorded architecture or the name's
    architecture alias, then by the weights' SHA-256 (a checkpoint file that is a known checkpoint). A
    parameter count the records carry at top level (schema 1) wins over the table's.
    """
    registry = _registry_facts()
    by_sha = _checkpoint_facts_by_sha() if provenance else {}
    out = {}
    for model in models:
        prov = (provenance or {}).get(model) or Provenance()
        facts = dict(registry.get(norm_name(unlabelled(model))) or {})
        for alias in (prov.facts.get("architecture"), architecture_alias(unlabelled(model))):
            if not facts and alias:
                facts = dict(registry.get(norm_name(alias)) or {})
        if not facts and prov.weights_sha256 in by_sha:
            facts = dict(by_sha[prov.weights_sha256])
        if prov.params:
            facts["params"] = prov.params
        facts |= {k: v for k, v in prov.facts.items() if k != "architecture"}
        recorded = frame.loc[frame["model"] == model, "model_family"].dropna()
        if not facts.get("family") and len(recorded):
            facts["family"] = str(recorded.iloc[-1])
        facts.setdefault("family", None)
        facts["family"] = facts["family"] or "other"
        out[model] = facts
    return out


# ---------------------------------------------------------------- what is plotted


_METRIC_NAMES = {"top1": "top-1", "top5": "top-5", "mean_per_class_recall": "mean per-class recall"}


def metric_label(task: str, metrics: list[str]) -> str:
    """``"Zero-shot top-1 (%)"``: the task's title (without "classification") and its metric(s)."""
    title = re.sub(r"(?i)\s+classification\b", "", task_title(task))
    names = " / ".join(_METRIC_NAMES.get(m, str(m).replace("_", " ")) for m in metrics)
    return f"{title} {names} (%)"


def _class_count(dataset: str) -> int | None:
    """Classes of a registered dataset (``folder:``/``csv:``/``hf:`` specs are not opened for this)."""
    if ":" in dataset:
        return None
    try:
        from clipbench.datasets.registry import DATASETS

        count = len(DATASETS.get(dataset).classnames)
    except Exception:
        return None
    return count or None


def chance_level(dataset: str, metric: str) -> float | None:
    """A uniform random guess's score in %: 100/K for top-1 and mean per-class recall, 500/K for top-5."""
    k = _class_count(dataset)
    if k is None:
        return None
    if metric in ("top1", "mean_per_class_recall"):
        return 100.0 / k
    if metric == "top5":
        return min(100.0, 500.0 / k)
    return None
