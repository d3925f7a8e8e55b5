"""FairFace and UTKFace: faces classified zero-shot by one attribute, with accuracy tables per race, gender
and age group (DataComp reports them beside its suite, not in its average: ``eval_utils/fairness_eval.py``).

DataComp classifies each face's race, gender and age with one classifier per attribute and tabulates
accuracy by race (white / non-white, and the seven races) and by race x gender. Here each attribute is
its own adapter: ``fairface`` and ``utkface`` classify gender (DataComp's Table 5 attribute), and
``fairface_race``, ``fairface_age``, ``utkface_race``, ``utkface_age`` the others; every split carries
the group variables ``race``, ``race_binary`` (White / non-White), ``gender``, ``age`` and
``race_x_gender``, so the zero-shot record holds top-1 per group of each. The primary metric is
top-1; no worst-group metric is defined for these sets.

Layouts:

* FairFace (``fairface-img-margin025-trainval.zip`` and the two label files, in ``<data-root>/fairface/``):
  ``fairface_label_val.csv`` / ``fairface_label_train.csv`` (``file`` = ``val/<n>.jpg``, ``age``,
  ``gender``, ``race``, ``service_test``), images ``val/`` and ``train/``; test = val (10,954 faces,
  DataComp's size).
* UTKFace (the aligned and cropped ``UTKFace.tar.gz``, in ``<data-root>/utkface/``):
  ``UTKFace/<age>_<gender>_<race>_<date>.jpg.chip.jpg`` (gender 0 male, 1 female; race 0 White,
  1 Black, 2 Asian, 3 Indian, 4 Others); one test split of every file whose name has the four fields;
  ages fall in FairFace's nine bins.

Prompts: ``prompts/fairface_*.yaml``: DataComp's gender and race templates (its webdataset copies'
``zeroshot_classification_templates.txt``), clipbench's own wording of the classes (DataComp's ``classnames.txt``
was not readable offline) and of the age template (DataComp's needs its age classnames).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from clipbench.datasets.base import SplitData
from clipbench.datasets.local import LocalAdapter, prompt_fields
from clipbench.datasets.target_splits import GroupedFileSplit, codes_of
from clipbench.datasets.user_data import read_csv
from clipbench.foundations.errors import DataError

FAIRFACE_RACES = ["White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern"]
UTK_RACES = ["White", "Black", "Asian", "Indian", "Others"]
GENDERS = ["Male", "Female"]
AGE_BINS = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"]
_AGE_EDGES = (3, 10, 20, 30, 40, 50, 60, 70)
_FAIRFACE_FILE = re.compile(r"^(train|val)/[0-9]{1,7}\.jpg$")
_UTK_FILE = re.compile(r"^([0-9]{1,3})_([01])_([0-4])_[0-9]{1,20}\.jpg\.chip\.jpg$")


def age_bin(age: int) -> str:
    """FairFace's age group of an age in years."""
    return AGE_BINS[sum(age >= edge for edge in _AGE_EDGES)]


def _groups(races: list[str], genders: list[str], ages: list[str], race_names: list[str]) -> dict:
    return {"race": codes_of(races, race_names), "race_binary": codes_of(
                ["White" if r == "White" else "non-White" for r in races], ["White", "non-White"]),
            "gender": codes_of(genders, GENDERS), "age": codes_of(ages, AGE_BINS),
            "race_x_gender": codes_of([f"{r} {g}" for r, g in zip(races, genders, strict=True)],
                                      [f"{r} {g}" for r in race_names for g in GENDERS])}


def _fairface(root: Path, split: str, where: str):
    rows = read_csv(root / f"fairface_label_{'val' if split == 'test' else 'train'}.csv")[1]
    paths, races, genders, ages = [], [], [], []
    for i, r in enumerate(rows, 2):
        file, race, gender, age = r.get("file") or "", r.get("race"), r.get("gender"), r.get("age")
        if not _FAIRFACE_FILE.match(file):
            raise DataError(f"{where}: label file line {i}: 'file' must be train/<n>.jpg or val/<n>.jpg")
        if race not in FAIRFACE_RACES or gender not in GENDERS or age not in AGE_BINS:
            raise DataError(f"{where}: label file line {i}: unknown race, gender or age "
                            f"({str(race)[:30]!r}, {str(gender)[:30]!r}, {str(age)[:30]!r})")
        paths.append(root / file)
        races.append(race)
        genders.append(gender)
        ages.append(age)
    return paths, races, genders, ages, FAIRFACE_RACES


def _utkface(root: Path, split: str, where: str):
    folder = root / "UTKFace"
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError as exc:
        raise DataError(f"{where}: cannot list {folder} ({exc})") from exc
    paths, races, genders, ages = [], [], [], []
    for name in names:
        match = _UTK_FILE.match(name)
        if match is None:  # a few files of the release lack a field in their name; they carry no labels
            continue
        paths.append(folder / name)
        ages.append(age_bin(int(match.group(1))))
        genders.append(GENDERS[int(match.group(2))])
        races.append(UTK_RACES[int(match.group(3))])
    return paths, races, genders, ages, UTK_RACES


_READERS = {"fairface": _fairface, "utkface": _utkface}


@dataclass
class FaceAttributeAdapter(LocalAdapter):
    """One attribute (``objective``: gender, race or age) of FairFace or UTKFace, with every group variable."""

    face_set: str = "fairface"
    objective: str = "gender"

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        root = self.require(data_root)
        where = f"{self.name} {split}"
        paths, races, genders, ages, race_names = _READERS[self.face_set](root, split, where)
        if not paths:
            raise DataError(f"{where}: no labelled faces under {root}")
        groups = _groups(races, genders, ages, race_names)
        labels = groups[self.objective][0]
        return GroupedFileSplit(self.name, split, paths, labels, groups, root)


_MANUAL = {
    "fairface": "download fairface-img-margin025-trainval.zip and fairface_label_{train,val}.csv from "
                "github.com/joojs/fairface (Google Drive links) and unpack them so that <data-root>/fairface/val/ "
                "and <data-root>/fairface/fairface_label_val.csv exist",
    "utkface": "download the aligned and cropped UTKFace.tar.gz (susanqq.github.io/UTKFace) and unpack it into "
               "<data-root>/utkface/ so that <data-root>/utkface/UTKFace/*.jpg.chip.jpg exist",
}


def face_adapters() -> list[FaceAttributeAdapter]:
    out = []
    for source, folder, expected, splits, counts in (
            ("fairface", "fairface", "fairface_label_val.csv", ("train", "test"), 10954),
            ("utkface", "utkface", "UTKFace", ("test",), 0)):
        for objective in ("gender", "race", "age"):
            name = source if objective == "gender" else f"{source}_{objective}"
            prompts = f"{source}_{objective}" if objective == "race" else f"fairface_{objective}"
            out.append(FaceAttributeAdapter(
                name=name, splits=splits, primary_metric="top1", folder=folder, expected=expected,
                expected_count=counts, count_note="FairFace's val set" if counts else "", face_set=source, objective=objective, manual=_MANUAL[source],
                description=f"{'FairFace' if source == 'fairface' else 'UTKFace'}: zero-shot {objective}, top-1 "
                            "with accuracy per race, gender and age group (not in DataComp's average)",
                **prompt_fields(prompts)))
    return out
