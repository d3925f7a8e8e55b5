"""The adapters of issue 29 whose metrics need more than the label vector (multi-label, ROC AUC, groups),
one file per source family; ``registry`` registers what ``group_adapters`` returns."""

from __future__ import annotations


def group_adapters() -> list:
    from clipbench.datasets.datacomp_wds import datacomp_wds_adapters
    from clipbench.datasets.fairness import face_adapters
    from clipbench.datasets.hateful_memes import hateful_memes_adapters
    from clipbench.datasets.multilabel_voc import voc_adapters
    from clipbench.datasets.video import video_adapters
    from clipbench.datasets.wilds import wilds_adapters
    from clipbench.datasets.winogavil import winogavil_adapters

    return [*voc_adapters(), *hateful_memes_adapters(), *wilds_adapters(), *datacomp_wds_adapters(), *face_adapters(), *winogavil_adapters(), *video_adapters()]
