"""WinoGAViL (Bitton et al. 2022), the ``associations`` dataset kind: a text cue, a set of candidate images,
and the candidates people associated with the cue. The model picks as many candidates as there are
associations (the best-scoring ones) and is scored by the Jaccard index of its picks
(``clipbench.scoring.groups.jaccard_of_choices``; the ``association`` task).

Layout (the WinoGAViL-experiments repository's ``assets/``, in ``<data-root>/winogavil/``)::

    winogavil/winogavil_dataset.csv    candidates (a JSON list of words), cue, associations (a JSON
                                       list), num_associations, num_candidates, ID
    winogavil/images/<word>.png        one image per candidate word (its download-images.py)

A split's samples are the distinct candidate images (labels: their indices); its items hold a cue,
the image index of each candidate and which ones are associations. The text encoded for a cue is
DataComp's (``eval_utils/wino_eval.py`` ``get_clip_prompt``): "A <cue>" or "An <cue>", lower-cased.
``--limit N`` keeps the items of N drawn images, each whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from clipbench.datasets.base import DatasetAdapter, SplitData
from clipbench.datasets.images import FileSplit
from clipbench.datasets.local import DataFolder
from clipbench.datasets.user_data import read_csv
from clipbench.foundations.errors import DataError

KIND = "associations"
PRIMARY_METRIC = "jaccard"
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 '&_-]{0,63}$")


def cue_prompt(cue: str) -> str:
    """DataComp's text for a cue: lower-cased, after "An" before a vowel and "A" otherwise."""
    cue = cue.lower()
    return f"An {cue}" if cue[:1] in "aeiou" else f"A {cue}"


class AssociationSplit(FileSplit):
    """Distinct candidate images (samples) and the items over them: ``cues``, ``candidates`` (image indices per
    item) and ``gold`` (bool per candidate)."""

    kind = KIND

    def __init__(self, dataset_name: str, split: str, paths: Sequence[str | os.PathLike], cues: list[str],
                 candidates: list[np.ndarray], gold: list[np.ndarray], root) -> None:
        super().__init__(dataset_name, split, paths, np.arange(len(paths), dtype=np.int64), root=root)
        self.cues, self.candidates, self.gold = list(cues), [np.asarray(c, np.int64) for c in candidates], \
            [np.asarray(g, bool) for g in gold]

    @property
    def n_items(self) -> int:
        """How many cues (items) the split holds: what WinoGAViL's published size counts (``datasets.counts``)."""
        return len(self.cues)

    @property
    def texts(self) -> list[str]:
        """The text encoded for each item's cue."""
        return [cue_prompt(c) for c in self.cues]

    def targets_digest(self) -> str:
        payload = json.dumps([self.cues, [c.tolist() for c in self.candidates], [g.tolist() for g in self.gold]])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        """The items that use any of the images at ``indices``, whole, over just the images they use."""
        chosen = {int(i) for i in indices}
        items = [k for k, c in enumerate(self.candidates) if chosen & set(c.tolist())] or [0]
        used = sorted({int(i) for k in items for i in self.candidates[k]})
        where = {old: new for new, old in enumerate(used)}
        return self.derived(AssociationSplit(
            self.dataset_name, self.split, [self.paths[i] for i in used], [self.cues[k] for k in items],
            [np.asarray([where[int(i)] for i in self.candidates[k]]) for k in items],
            [self.gold[k] for k in items], self.root), spec)


def _word_list(value: str, where: str) -> list[str]:
    try:
        words = json.loads(value)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not a JSON list of words ({exc.msg})") from exc
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and _WORD.match(w) for w in words):
        raise DataError(f"{where}: expected a non-empty JSON list of plain words")
    return words


@dataclass
class AssociationAdapter(DataFolder, DatasetAdapter):
    """WinoGAViL: one ``test`` split of cue / candidate-images items."""

    kind: ClassVar[str] = KIND
    origin: str = ""
    expected: str = "winogavil_dataset.csv"
    #: published number of items (cues) of the test split, checked before any model loads (``datasets.counts``)
    expected_items: int = 0
    count_note: str = ""

    def is_present(self, data_root) -> bool:
        try:
            return (self.root(data_root) / self.expected).is_file()
        except OSError:
            return False

    def how_to_get(self, data_root=None) -> str:
        return self.manual_for(data_root) if data_root is not None else self.manual

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        root = self.root(data_root)
        if not self.is_present(data_root):
            raise DataError(f"{self.name}: {root / self.expected} not found; {self.how_to_get(data_root)}")
        rows = read_csv(root / self.expected)[1]
        words: dict[str, int] = {}
        cues, candidates, gold = [], [], []
        for line, row in enumerate(rows, 2):
            where = f"{self.name}: {self.expected} line {line}"
            cands = _word_list(row.get("candidates") or "", f"{where} (candidates)")
            assoc = set(_word_list(row.get("associations") or "", f"{where} (associations)"))
            cue = (row.get("cue") or "").strip()
            if not cue or not assoc <= set(cands):
                raise DataError(f"{where}: needs a cue and associations among its candidates")
            cues.append(cue)
            candidates.append(np.asarray([words.setdefault(w, len(words)) for w in cands]))
            gold.append(np.asarray([w in assoc for w in cands]))
        if not cues:
            raise DataError(f"{self.name}: {root / self.expected} has no items")
        paths = [root / "images" / f"{w}.png" for w in words]
        return AssociationSplit(self.name, split, paths, cues, candidates, gold, root)


def winogavil_adapters() -> list[AssociationAdapter]:
    return [AssociationAdapter(
        name="winogavil", splits=("test",), primary_metric=PRIMARY_METRIC, folder="winogavil",
        description="WinoGAViL: pick the images a cue evokes; Jaccard index of the picks (DataComp's main metric "
                    "is jaccard_10_12: items with 10-12 candidates)",
        origin="cue text: DataComp's eval_utils/wino_eval.py get_clip_prompt",
        # DataComp's tasklist.yml (misc/winogavil size: 3563) and the rows of WinoGAViL-experiments'
        # assets/winogavil_dataset.csv (3,563 items over 2,044 distinct candidate images, counted at its commit cbed34f)
        expected_items=3_563, count_note="the items of WinoGAViL-experiments' winogavil_dataset.csv",
        manual="copy winogavil_dataset.csv from github.com/WinoGAViL/WinoGAViL-experiments assets/ and its images "
               "(download-images.py writes assets/images/<word>.png) so that <data-root>/winogavil/"
               "winogavil_dataset.csv and <data-root>/winogavil/images/ exist")]
