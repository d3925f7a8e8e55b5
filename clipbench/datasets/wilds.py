"""The WILDS sets of DataComp's suite, read from the layout the ``wilds`` package downloads
(``<data-root>/<name>_v<version>/``, as ``wilds.get_dataset(name, root_dir=<data-root>, download=True)``
writes it), scored on WILDS' OOD test split with DataComp's main metric (its ``tasklist.yml``):

* ``iwildcam`` (``iwildcam_v2.0/``): ``metadata.csv`` (``split``, ``y``, ``filename``,
  ``location_remapped``), images in ``train/<filename>``; test = ``split == "test"`` (42,791
  images, 182 classes); macro F1 (WILDS' ``F1-macro_all``); groups: camera ``location``.
* ``camelyon17`` (``camelyon17_v1.0/``): ``metadata.csv`` (``patient``, ``node``, ``x_coord``,
  ``y_coord``, ``tumor``, ``slide``, ``center``, ``split``), patches in
  ``patches/patient_<p>_node_<n>/patch_patient_<p>_node_<n>_x_<x>_y_<y>.png``; test = hospital
  (``center``) 2 (85,054 patches), train = ``split == 0`` outside hospitals 1 and 2; top-1;
  groups: ``slide``.
* ``fmow`` (``fmow_v1.1/``): ``rgb_metadata.csv`` (``split``, ``category``, ``country_code``,
  ``timestamp``), ``country_code_mapping.csv`` (``alpha-3``, ``region``), images
  ``images/rgb_img_<row>.png``; test = ``split == "test"`` taken on or after 2016-01-01 UTC (22,108
  images), train = ``split == "train"`` before 2013; the worst region's top-1 (region "Other", a
  country code without a region, never counts: DataComp's ``FMoWEvaluator``); groups: ``region``, ``year``.

Splits follow ``p-lambda/wilds`` ``wilds/datasets/*_dataset.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from clipbench.datasets.base import SplitData
from clipbench.datasets.local import LocalAdapter, prompt_fields
from clipbench.datasets.target_splits import GroupedFileSplit, codes_of
from clipbench.datasets.user_data import read_csv
from clipbench.foundations.errors import DataError

_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_DIGITS = re.compile(r"^[0-9]{1,9}$")
#: FMoW's categories in label order (p-lambda/wilds fmow_dataset.py ``categories``)
FMOW_CATEGORIES = (
    "airport airport_hangar airport_terminal amusement_park aquaculture archaeological_site barn border_checkpoint "
    "burial_site car_dealership construction_site crop_field dam debris_or_rubble educational_institution "
    "electric_substation factory_or_powerplant fire_station flooded_road fountain gas_station golf_course "
    "ground_transportation_station helipad hospital impoverished_settlement interchange lake_or_pond lighthouse "
    "military_facility multi-unit_residential nuclear_powerplant office_building oil_or_gas_facility park "
    "parking_lot_or_garage place_of_worship police_station port prison race_track railway_bridge "
    "recreational_facility road_bridge runway shipyard shopping_mall single-unit_residential smokestack solar_farm "
    "space_facility stadium storage_tank surface_mine swimming_pool toll_booth tower tunnel_opening waste_disposal "
    "water_treatment_facility wind_farm zoo").split()
_FMOW_TEST_FROM = datetime(2016, 1, 1, tzinfo=timezone.utc)
_FMOW_OOD_FROM = datetime(2013, 1, 1, tzinfo=timezone.utc)


def _column(rows: list[dict], name: str, where: str) -> list[str]:
    if rows and name not in rows[0]:
        raise DataError(f"{where}: no column {name!r} (the WILDS layout has it)")
    return [str(r.get(name) or "") for r in rows]


def _int(value: str, where: str) -> int:
    try:
        return int(float(value))
    except ValueError as exc:
        raise DataError(f"{where}: {value[:40]!r} is not a number") from exc


def _iwildcam(root: Path, split: str, where: str):
    rows = read_csv(root / "metadata.csv")[1]
    keep = [r for r in rows if r.get("split") == split]
    names = _column(keep, "filename", where)
    bad = next((n for n in names if not _PLAIN_NAME.match(n)), None)
    if bad is not None:
        raise DataError(f"{where}: metadata.csv names image {bad[:80]!r}, not a plain file name under train/")
    labels = [_int(y, where) for y in _column(keep, "y", where)]
    locations = _column(keep, "location_remapped", where)
    return [root / "train" / n for n in names], labels, {"location": codes_of(locations)}


def _camelyon17(root: Path, split: str, where: str):
    rows = read_csv(root / "metadata.csv")[1]
    for name in ("patient", "node", "x_coord", "y_coord", "tumor", "slide", "center", "split"):
        _column(rows, name, where)
    centers = [_int(r["center"], where) for r in rows]
    wanted = [i for i, c in enumerate(centers)
              if (c == 2 if split == "test" else c not in (1, 2) and _int(rows[i]["split"], where) == 0)]
    paths, labels, slides = [], [], []
    for i in wanted:
        r = rows[i]
        if not all(_DIGITS.match(r[k]) for k in ("patient", "node", "x_coord", "y_coord")):
            raise DataError(f"{where}: metadata.csv row {i + 1} has a patient/node/coordinate that is not a number")
        stem = f"patient_{r['patient']}_node_{r['node']}"
        paths.append(root / "patches" / stem / f"patch_{stem}_x_{r['x_coord']}_y_{r['y_coord']}.png")
        labels.append(_int(r["tumor"], where))
        slides.append(r["slide"])
    return paths, labels, {"slide": codes_of(slides)}


def _timestamp(value: str, where: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise DataError(f"{where}: timestamp {value[:40]!r} is not ISO 8601") from exc
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _fmow(root: Path, split: str, where: str):
    rows = read_csv(root / "rgb_metadata.csv")[1]
    mapping = read_csv(root / "country_code_mapping.csv")[1]
    to_region = dict(zip(_column(mapping, "alpha-3", where), _column(mapping, "region", where), strict=True))
    regions = [to_region.get(code, "Other") or "Other" for code in _column(rows, "country_code", where)]
    stamps = [_timestamp(t, where) for t in _column(rows, "timestamp", where)]
    category = {c: i for i, c in enumerate(FMOW_CATEGORIES)}
    wanted = [i for i, r in enumerate(rows) if r.get("split") == split
              and (stamps[i] >= _FMOW_TEST_FROM if split == "test" else stamps[i] < _FMOW_OOD_FROM)]
    labels = []
    for i in wanted:
        if rows[i].get("category") not in category:
            raise DataError(f"{where}: rgb_metadata.csv row {i + 1} has category {str(rows[i].get('category'))[:60]!r}")
        labels.append(category[rows[i]["category"]])
    groups = {"region": codes_of([regions[i] for i in wanted], sorted(set(regions) | {"Other"})),
              "year": codes_of([str(stamps[i].year) for i in wanted], sorted({str(s.year) for s in stamps}))}
    return [root / "images" / f"rgb_img_{i}.png" for i in wanted], labels, groups


_READERS = {"iwildcam": _iwildcam, "camelyon17": _camelyon17, "fmow": _fmow}


@dataclass
class WildsAdapter(LocalAdapter):
    """One WILDS set in the ``wilds`` package's layout (see the module docstring)."""

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        root = self.require(data_root)
        where = f"{self.name} {split}"
        paths, labels, groups = _READERS[self.name](root, split, where)
        if not paths:
            raise DataError(f"{where}: no samples of that split under {root}")
        if min(labels) < 0 or max(labels) >= len(self.classnames):
            raise DataError(f"{where}: labels under {root} fall outside 0..{len(self.classnames) - 1}")
        return GroupedFileSplit(self.name, split, paths, labels, groups, root)


def _manual(name: str, folder: str) -> str:
    return (f"pip install wilds, then python -c \"import wilds; wilds.get_dataset('{name}', root_dir='<data-root>', "
            f"download=True)\" (it writes <data-root>/{folder}/)")


def wilds_adapters() -> list[WildsAdapter]:
    common = dict(splits=("train", "test"))
    return [
        WildsAdapter(name="iwildcam", primary_metric="macro_f1", folder="iwildcam_v2.0", expected="metadata.csv",
                     expected_count=42791, count_note="WILDS' OOD test split",
                     description="iWildCam (WILDS v2.0): 182 camera-trap species, OOD test, macro F1 (DataComp's main "
                                 "metric); k-NN and the linear probe report top-1",
                     manual=_manual("iwildcam", "iwildcam_v2.0"), **common, **prompt_fields("iwildcam")),
        WildsAdapter(name="camelyon17", primary_metric="top1", folder="camelyon17_v1.0", expected="metadata.csv",
                     expected_count=85054, count_note="WILDS' test hospital",
                     description="Camelyon17 (WILDS v1.0): tumour or not in 96x96 patches, test hospital 2, top-1",
                     manual=_manual("camelyon17", "camelyon17_v1.0"), **common, **prompt_fields("camelyon17")),
        WildsAdapter(name="fmow", primary_metric="worst_group_top1", folder="fmow_v1.1", expected="rgb_metadata.csv",
                     expected_count=22108, count_note="WILDS' OOD test split", group_by="region", group_excluded=("Other",),
                     description="FMoW (WILDS v1.1): 62 land-use classes, OOD test (2016-), worst-region top-1 "
                                 "(DataComp's main metric); k-NN and the linear probe report top-1",
                     manual=_manual("fmow", "fmow_v1.1"), **common, **prompt_fields("fmow")),
    ]
