"""Finding the CBIS-DDSM CSVs and the folders of case folders under a root; layout errors (see
:mod:`bench.data.cbis_ddsm`)."""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from bench.data.base import DatasetFormatError
from bench.data.cbis_ddsm.csvs import CASE_RE, CSV_NAMES
from bench.data.cbis_ddsm.options import NAME, CBISDDSMOptions
from bench.data.helpers import describe_dir


def _is_case(name: str) -> bool:
    return CASE_RE.match(name) is not None


def _subdirs(d: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(d) if e.is_dir() and not _is_case(e.name))
    except OSError:
        return []


def candidates(root: Path) -> list[Path]:
    """``root`` and its non-case sub-folders up to two levels down."""
    level1 = _subdirs(root)
    return [root, *level1, *(d2 for d1 in level1 for d2 in _subdirs(d1))]


def _resolve_dir(root: Path, value: str | None, what: str) -> Path | None:
    if value is None:
        return None
    d = Path(value) if Path(value).is_absolute() else root / value
    if not d.is_dir():
        raise DatasetFormatError(f"{NAME}: {what} {d} does not exist; fix the option or leave it unset to search")
    return d


def case_index(dirs: list[Path]) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = defaultdict(list)
    for d in dirs:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            if e.is_dir() and _is_case(e.name):
                index[e.name].append(Path(e.path))
    return index


EXPECTED = ("the four TCIA case-description CSVs (mass_case_description_train_set.csv, "
            "mass_case_description_test_set.csv, calc_case_description_train_set.csv, "
            "calc_case_description_test_set.csv; downloaded separately from the DICOMs) in the root or a sub-folder, "
            "and the DICOM tree: a folder (the root, CBIS-DDSM/, DOI/ or manifest-<id>/CBIS-DDSM/) of case folders "
            "like Mass-Training_P_00001_LEFT_CC/ in the TCIA classic layout (<study UID>/<series UID>/000000.dcm) "
            "or the dated layout (08-29-2017-DDSM-NA-12345/1.000000-full mammogram images-67890/1-1.dcm); or the "
            "Kaggle JPEG re-export (csv/ with the CSVs and dicom_info.csv, jpeg/<series UID>/1-1.jpg)")


def _layout_error(root: Path, missing: str, seen_dirs: list[Path]) -> DatasetFormatError:
    hint = ""
    if any(p.suffix.lower() == ".png" for d in seen_dirs[:3] for p in d.glob("*.png")):
        hint = " PNG conversions are not read by this adapter; use the TCIA DICOM download."
    return DatasetFormatError(f"{NAME} at {root}: {missing}. Expected {EXPECTED}. Found in {root}: "
                              f"{describe_dir(root)}.{hint}")


def find_inputs(options: CBISDDSMOptions, root: Path) -> tuple[dict[tuple[str, str], Path], list[Path]]:
    """The CSVs this configuration needs and the folders holding case folders; layout errors raised here."""
    kinds = ("mass", "calc") if options.abnormality == "both" else (options.abnormality,)
    splits = ("train", "test") if options.split == "all" else (options.split,)
    csv_dir = _resolve_dir(root, options.csv_dir, "csv_dir")
    img_dir = _resolve_dir(root, options.images_dir, "images_dir")
    seen = candidates(root)
    csv_dirs = [csv_dir] if csv_dir else seen
    found: dict[tuple[str, str], Path] = {}
    for key, fname in CSV_NAMES.items():
        for d in csv_dirs:
            if (d / fname).is_file():
                found[key] = d / fname
                break
    image_dirs = [img_dir] if img_dir else [d for d in seen if any(True for _ in _iter_cases(d))]
    if not image_dirs:  # layout C: a jpeg/ folder of series-UID folders
        image_dirs = [d / "jpeg" for d in ([img_dir] if img_dir else seen) if (d / "jpeg").is_dir()][:1]
    needed = [(k, s) for k in kinds for s in splits]
    lacking = [CSV_NAMES[k] for k in needed if k not in found]
    if not found and not image_dirs:
        raise _layout_error(root, "neither the case-description CSVs nor a folder of case folders was found", seen)
    if lacking:
        where = str(csv_dir) if csv_dir else f"{root} and its sub-folders (two levels)"
        raise _layout_error(root, f"case-description CSV(s) {', '.join(lacking)} not found in {where} (needed for "
                                  f"abnormality={options.abnormality!r}, split={options.split!r}; set csv_dir if "
                                  "they are elsewhere, or narrow abnormality/split)", seen)
    if not image_dirs:
        raise _layout_error(root, f"no folder of case folders (e.g. CBIS-DDSM/Mass-Training_P_00001_LEFT_CC/) in "
                                  f"{img_dir or root} or two levels below it", seen)
    return found, image_dirs


def _iter_cases(d: Path):
    try:
        with os.scandir(d) as it:
            for e in it:
                if _is_case(e.name) and e.is_dir():
                    yield e.name
    except OSError:
        return
