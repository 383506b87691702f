"""CBIS-DDSM (Curated Breast Imaging Subset of DDSM, TCIA): the ``cbis-ddsm`` dataset adapter.

Reads the dataset exactly as TCIA distributes it (../shared/DATASETS.md, section 1): the four
case-description CSVs, downloaded separately, plus the DICOM tree from the NBIA Data Retriever.

Where things are looked for
    ``root`` is the folder given with ``--root`` / ``data.cbis-ddsm.root`` / ``$BENCH_DATA_ROOT/cbis-ddsm``.
    The four CSVs (``mass_case_description_train_set.csv``, ``mass_case_description_test_set.csv``,
    ``calc_case_description_train_set.csv``, ``calc_case_description_test_set.csv``) are looked for in
    ``root`` and in its sub-folders up to two levels down (e.g. ``root/csv/``), or in ``csv_dir``.
    The DICOM tree is every folder, ``root`` itself or up to two levels below it (``root/CBIS-DDSM/``,
    ``root/DOI/``, ``root/manifest-<id>/CBIS-DDSM/``), or ``images_dir``, that holds *case folders*
    named ``<Type>-<Split>_<patient_id>_<SIDE>_<VIEW>[_<abnormality id>]``, e.g.
    ``Mass-Training_P_00001_LEFT_CC`` and ``Calc-Test_P_00038_LEFT_CC_1``.

Layouts accepted (both may be mixed in one tree; the one used per file is in ``Item.meta["layout"]``)
    ``tcia-classic`` (layout A)::

        CBIS-DDSM/Mass-Training_P_00001_LEFT_CC/<study UID>/<series UID>/000000.dcm      full image
        CBIS-DDSM/Mass-Training_P_00001_LEFT_CC_1/<study UID>/<series UID>/000000.dcm    crop or mask
        CBIS-DDSM/Mass-Training_P_00001_LEFT_CC_1/<study UID>/<series UID>/000001.dcm    mask or crop

    i.e. the CSV path columns exist verbatim under the tree.

    ``tcia-dated`` (layout B, the current NBIA Data Retriever default)::

        manifest-<id>/CBIS-DDSM/Calc-Test_P_00038_LEFT_CC/08-29-2017-DDSM-NA-96009/
            1.000000-full mammogram images-63992/1-1.dcm
        manifest-<id>/CBIS-DDSM/Calc-Test_P_00038_LEFT_CC_1/<date>-DDSM-[NA-]<5 digits>/
            1.000000-ROI mask images-<5 digits>/1-1.dcm, 1-2.dcm        (crop and mask, either order)
        ... or two studies, one with a ``cropped images`` and one with a ``ROI mask images`` series

    Dated folder names are never constructed: a file is located by its case folder (the first
    component of the CSV path) and every DICOM under that folder is considered.

    ``kaggle-jpeg`` (layout C, the Kaggle re-export)::

        csv/mass_case_description_train_set.csv ... dicom_info.csv
        jpeg/<series UID>/1-1.jpg, 1-2.jpg

    The CSV paths' third component (the series UID) names the ``jpeg/`` folder; see :class:`_KaggleTree`.

    Not read: PNG conversions (layout D); a root in that layout gets a :class:`DatasetFormatError` saying so.

Items and labels
    ``mode="image"``: one item per physical view, ``image_id`` = ``<patient_id>_<SIDE>_<VIEW>`` (Shen's
    naming). Label 1 if any selected abnormality on the view is ``MALIGNANT``; ``BENIGN`` and
    ``BENIGN_WITHOUT_CALLBACK`` are 0 (``policy="bwc-benign"``, the majority rule of the literature), or
    BWC abnormalities are ignored and a view carrying only BWC abnormalities is excluded
    (``policy="bwc-exclude"``). ``mask_paths`` = the ROI masks of all its selected abnormalities (merge by
    OR; full-image size; ``masks=False`` skips them). With ``abnormality="mass"`` (or ``"calc"``) the label
    only reflects abnormalities of that type.
    ``mode="roi"``: one item per abnormality (Falconi-style ROI classification), ``image_id`` = the
    abnormality folder name (``Mass-Training_P_00001_LEFT_CC_1``), ``path`` = the CBIS-DDSM cropped image,
    ``mask_paths`` = its ROI mask (full-image coordinates, so a crop-with-margin pipeline can re-crop the
    full image, whose path is ``meta["full_image"]``), label = that abnormality's pathology.
    Patient key: the CSV ``patient_id`` (``P_#####``), never the DICOM PatientID (which is per view, Q7).
    ``meta`` holds the official split, abnormality rows (type, pathology, assessment, descriptors,
    density, subtlety) and the case folders used.

Official split and its leak (section 1.7)
    ``split="all"`` reads both CSV pairs (no official split is imposed; the harness splits by patient).
    ``split="train"`` / ``"test"`` reads only that split's CSVs. Across abnormality types the official
    split is not patient-disjoint; with ``leak_policy="drop_from_train"`` (default) patients who also
    have an abnormality of a selected type in the official test CSVs are dropped from ``split="train"``
    (counted under ``excluded``), so train and test are patient-disjoint and test stays official;
    ``leak_policy="keep"`` keeps them and adds a warning.

Quirks handled (numbers as in DATASETS.md 1.4)
    Q1 embedded newline: the quoted path column ends with a bare LF inside quotes (mask path in the mass
       CSVs, crop path in the calc CSVs), records end with CRLF: parsed with pandas, every value stripped.
    Q2 column spelling: ``breast_density`` vs ``breast density``; column names are normalised (lower case,
       spaces/hyphens to ``_``) and the renamed copies' names (``side``, ``view``, ``abn_num``,
       ``od_img_path``, ``od_crop_path``, ``mask_path``) are accepted, as are ``\\`` path separators and a
       ``;`` delimiter in re-saved copies.
    Q3 crop/mask roles: the file index (``000000``/``000001``, ``1-1``/``1-2``) and even the CSV column do
       not identify the role, and the two files may sit in one series or in two studies. Every DICOM under
       the abnormality folder is classified from its header: a mask is 8-bit or has the full image's
       rows x columns, anything else is the crop; when that puts both files in one class they are ranked by
       (8-bit, full-image size, area, SeriesDescription ``ROI mask images``), and a tie is a problem.
       SeriesDescription alone is not trusted: one series often holds both files.
    Q4 ``N/A`` and ``NA`` descriptors: read with ``keep_default_na=False``; both (and empty) become None.
    Q5 several rows per image: rows are grouped per view; label by the any-malignant rule.
    Q6 a view under both ``Mass-`` and ``Calc-`` prefixes: deduplicated on (patient_id, side, view) when both
       types are selected; the item reads the first series (Mass before Calc, Training before Test) and
       ``meta["series"]`` lists all.
    Q7 per-view DICOM PatientID: ignored; ``patient_id`` comes from the CSV (or the ``P_#####`` token of the
       case folder name when the CSV value is malformed, with a warning).
    Invalid values (density 0, subtlety 0) are kept verbatim in ``meta``; a pathology outside the three
    known values excludes the row with a warning.

Missing files
    Every referenced file the chosen mode uses (image: full image and, with ``masks``, the ROI masks;
    roi: crop and mask) that is missing, ambiguous or unreadable is one line of ``Scan.problems`` naming the
    CSV file, its data row(s) (1 = first record after the header) and the expected path; the item is left
    out of ``Scan.items``. A root in which neither the CSVs nor a tree of case folders can be found raises
    :class:`DatasetFormatError` saying which layout was expected and what was found.
"""
from __future__ import annotations

import io
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from bench.data import DatasetOptions, register_dataset
from bench.data.generic import decode_text, describe_dir
from bench.data.items import DatasetFormatError, Item, Scan, real_dataset_spec

NAME = "cbis-ddsm"
CSV_NAMES = {("mass", "train"): "mass_case_description_train_set.csv",
             ("mass", "test"): "mass_case_description_test_set.csv",
             ("calc", "train"): "calc_case_description_train_set.csv",
             ("calc", "test"): "calc_case_description_test_set.csv"}
CASE_RE = re.compile(r"^(Mass|Calc)-(Training|Test)_(P_\d{5})_(LEFT|RIGHT)_(CC|MLO)(?:_(\d+))?$")
PATIENT_RE = re.compile(r"^P_\d{5}$")
PATHOLOGIES = ("MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK")
MISSING_MARKERS = {"", "N/A", "NA", "NAN", "NONE"}

# canonical column -> accepted normalised spellings (Q2)
COLUMNS: dict[str, tuple[str, ...]] = {
    "patient_id": ("patient_id", "patient"),
    "breast_density": ("breast_density", "density"),
    "side": ("left_or_right_breast", "side", "laterality"),
    "view": ("image_view", "view"),
    "abnormality_id": ("abnormality_id", "abn_num", "abn_id"),
    "abnormality_type": ("abnormality_type", "abn_type"),
    "pathology": ("pathology",),
    "assessment": ("assessment",),
    "subtlety": ("subtlety",),
    "image_path": ("image_file_path", "od_img_path", "img_path", "image_path"),
    "crop_path": ("cropped_image_file_path", "od_crop_path", "crop_path", "cropped_image_path"),
    "mask_path": ("roi_mask_file_path", "mask_path", "mask_file_path", "roi_mask_path"),
    "mass_shape": ("mass_shape",),
    "mass_margins": ("mass_margins",),
    "calc_type": ("calc_type",),
    "calc_distribution": ("calc_distribution",),
}
REQUIRED = ("patient_id", "side", "view", "abnormality_id", "pathology", "image_path", "crop_path", "mask_path")
DESCRIPTORS = {"mass": ("mass_shape", "mass_margins"), "calc": ("calc_type", "calc_distribution")}
TYPE_ORDER = {"Mass": 0, "Calc": 1}
SPLIT_ORDER = {"Training": 0, "Test": 1}


class CBISDDSMOptions(DatasetOptions):
    """Options of the ``cbis-ddsm`` dataset (``data.cbis-ddsm`` in a suite; ``bench data check --policy/-o``)."""

    abnormality: Literal["mass", "calc", "both"] = Field(
        "both", description="which CSV pair(s) to read; 'both' deduplicates views listed under both prefixes")
    mode: Literal["image", "roi"] = Field(
        "image", description="'image' = one item per view (label: any abnormality malignant); 'roi' = one item per "
                             "abnormality, its CBIS-DDSM cropped image (Falconi-style ROI classification)")
    split: Literal["all", "train", "test"] = Field(
        "all", description="'all' reads both official splits; 'train'/'test' only that split's CSVs")
    policy: Literal["bwc-benign", "bwc-exclude"] = Field(
        "bwc-benign", description="BENIGN_WITHOUT_CALLBACK: 'bwc-benign' = label 0; 'bwc-exclude' = ignored, and "
                                  "views/abnormalities left without any other abnormality are excluded")
    leak_policy: Literal["drop_from_train", "keep"] = Field(
        "drop_from_train", description="split='train': drop patients who also appear in the official test CSVs of "
                                       "the selected types (cross-type leak), or keep them (with a warning)")
    masks: bool = Field(True, description="image mode: look up the ROI masks; False skips them (no mask problems)")
    csv_dir: str | None = Field(None, description="folder of the four CSVs, relative to the root or absolute "
                                                  "(default: the root and two levels of sub-folders are searched)")
    images_dir: str | None = Field(None, description="folder holding the case folders, relative to the root or "
                                                     "absolute (default: searched like csv_dir)")
    resize: Literal["pad", "stretch"] = Field("pad", description="resize to the square image size keeping the "
                                                                 "aspect ratio (zero padding) or stretching")
    roi_pipeline: Literal["crop", "falconi"] = Field(
        "crop", description="roi mode: 'crop' = the CBIS-DDSM cropped image; 'falconi' = Falconi et al.'s pipeline "
                            "from the full image and the ROI mask (CLAHE, mask bounding box, 8-px margin, NLM "
                            "denoising; ROIs with aspect ratio outside [0.4, 1.5] excluded)")


# ----------------------------------------------------------------------------------------------------------------
# CSV reading


@dataclass
class _Row:
    """One abnormality row of a case-description CSV, normalised."""

    csv: str
    row: int  # 1-based data record (header not counted)
    kind: str  # "mass" | "calc"
    split: str  # "train" | "test"
    patient_id: str
    side: str  # "LEFT" | "RIGHT"
    view: str  # "CC" | "MLO"
    abnormality_id: str
    pathology: str
    image_rel: tuple[str, ...]
    crop_rel: tuple[str, ...]
    mask_rel: tuple[str, ...]
    info: dict = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.csv} row {self.row}"

    @property
    def view_key(self) -> tuple[str, str, str]:
        return self.patient_id, self.side, self.view

    @property
    def case(self) -> str:
        return self.image_rel[0]

    @property
    def abn_folders(self) -> list[str]:
        return list(dict.fromkeys([self.crop_rel[0], self.mask_rel[0]]))


def _norm_col(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _split_path(value: str) -> tuple[str, ...] | None:
    """CSV path -> components starting at the case folder (``\\`` accepted, prefixes such as ``CBIS-DDSM/`` cut)."""
    parts = [p for p in value.strip().replace("\\", "/").split("/") if p not in ("", ".")]
    for i, p in enumerate(parts):
        if CASE_RE.match(p):
            return tuple(parts[i:])
    return None


def _missing(value: str) -> str | None:
    return None if value.strip().upper() in MISSING_MARKERS else value.strip()


def read_case_csv(path: Path, kind: str, split: str, warnings: list[str], excluded: Counter) -> list[_Row]:
    """Read one case-description CSV into normalised rows (quirks Q1, Q2, Q4).

    Raises:
        DatasetFormatError: the file cannot be parsed or lacks a required column.
    """
    text, encoding = decode_text(path.read_bytes())
    if encoding == "windows-1252":  # re-saved by a spreadsheet on Windows
        warnings.append(f"{path.name} is not UTF-8; read as Windows-1252 (descriptor spellings may differ)")
    header = text.split("\n", 1)[0]
    sep = max((",", ";", "\t"), key=header.count)  # ',' in the release; ';' or tab in re-saved copies
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise DatasetFormatError(f"{path}: not a readable CBIS-DDSM case-description CSV ({exc}); replace it with "
                                 "the file from the TCIA CBIS-DDSM page") from None
    if df.empty:
        warnings.append(f"{path.name} has a header but no data row: no abnormality of {kind}-{split} is read")
    normalised = {_norm_col(c): c for c in df.columns}
    cols: dict[str, str] = {}
    for canon, spellings in COLUMNS.items():
        for s in spellings:
            if s in normalised:
                cols[canon] = normalised[s]
                break
    absent = [c for c in REQUIRED if c not in cols]
    if absent:
        want = ", ".join(repr(COLUMNS[c][0].replace("_", " ")) for c in absent)
        raise DatasetFormatError(f"{path}: missing column(s) {want}; found columns {list(df.columns)}. Expected the "
                                 f"TCIA header (e.g. 'patient_id,breast_density,left or right breast,image view,...,"
                                 f"image file path,cropped image file path,ROI mask file path'); replace the file "
                                 f"with the original from TCIA")
    rows: list[_Row] = []
    name = path.name
    for i, rec in enumerate(df.itertuples(index=False), start=1):
        rec = dict(zip(df.columns, rec))
        get = {canon: str(rec[col]).strip() for canon, col in cols.items()}
        where = f"{name} row {i}"
        paths = {k: _split_path(get[k]) for k in ("image_path", "crop_path", "mask_path")}
        bad = [k for k, v in paths.items() if v is None]
        if bad:
            warnings.append(f"{where}: {', '.join(bad)} {[get[k] for k in bad]} does not contain a case folder name "
                            "like Mass-Training_P_00001_LEFT_CC; row skipped (fix the CSV)")
            excluded["CSV row with an unusable file path"] += 1
            continue
        case = CASE_RE.match(paths["image_path"][0])
        pathology = get["pathology"].upper()
        if pathology not in PATHOLOGIES:
            warnings.append(f"{where}: pathology {get['pathology']!r} is not one of {', '.join(PATHOLOGIES)}; "
                            "row skipped")
            excluded["CSV row with an unknown pathology"] += 1
            continue
        patient = get["patient_id"]
        if not PATIENT_RE.match(patient):
            warnings.append(f"{where}: patient_id {patient!r} is not P_#####; using {case.group(3)} from the "
                            f"folder name {paths['image_path'][0]}")
            patient = case.group(3)
        side, view = get["side"].upper(), get["view"].upper()
        if (side, view) != (case.group(4), case.group(5)) or patient != case.group(3):
            warnings.append(f"{where}: patient/side/view {patient} {side} {view} disagree with the image folder "
                            f"{paths['image_path'][0]}; the folder name wins")
            patient, side, view = case.group(3), case.group(4), case.group(5)
        if case.group(1).lower() != kind or (case.group(2) == "Training") != (split == "train"):
            warnings.append(f"{where}: image folder {paths['image_path'][0]} is not a {kind}-{split} folder")
        info = {"abnormality_type": get.get("abnormality_type") or kind,
                "pathology": pathology,
                "assessment": get.get("assessment"),
                "subtlety": get.get("subtlety"),
                "breast_density": get.get("breast_density")}
        for d in DESCRIPTORS[kind]:
            if d in get:
                info[d] = _missing(get[d])
        rows.append(_Row(csv=name, row=i, kind=kind, split=split, patient_id=patient, side=side, view=view,
                         abnormality_id=get["abnormality_id"], pathology=pathology, image_rel=paths["image_path"],
                         crop_rel=paths["crop_path"], mask_rel=paths["mask_path"], info=info))
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Finding the CSVs and the image tree


def _is_case(name: str) -> bool:
    return CASE_RE.match(name) is not None


def _subdirs(d: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(d) if e.is_dir() and not _is_case(e.name))
    except OSError:
        return []


def _candidates(root: Path) -> list[Path]:
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


def _case_index(dirs: list[Path]) -> dict[str, list[Path]]:
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


# ----------------------------------------------------------------------------------------------------------------
# Resolving files in the tree


@dataclass
class _Header:
    bits: int
    shape: tuple[int, int]
    description: str


class _Tree:
    """Locates full images, crops and masks under the case folders (both layouts; quirk Q3)."""

    reader = "dicom"

    def __init__(self, index: dict[str, list[Path]], image_dirs: list[Path]):
        self.index = index
        self.image_dirs = image_dirs
        self._headers: dict[Path, _Header | str] = {}
        self._full: dict[str, tuple[Path | None, str, str]] = {}
        self._roi: dict[tuple[str, ...], tuple[Path | None, Path | None, str]] = {}

    def expected(self, rel: tuple[str, ...]) -> Path:
        base = self.index[rel[0]][0].parent if rel[0] in self.index else self.image_dirs[0]
        return base.joinpath(*rel)

    def where(self, rel: tuple[str, ...], what: str) -> str:
        """Where a CSV path's file was looked for, for problem messages."""
        return f"{self.expected(rel)} (classic layout) or {what} under {self.expected(rel[:1])}/ (dated layout)"

    def roi_layout(self, rel: tuple[str, ...]) -> str:
        return "tcia-classic" if self.expected(rel).is_file() else "tcia-dated"

    def _dicoms(self, case: str) -> list[Path]:
        return sorted(p for d in self.index.get(case, []) for p in d.rglob("*") if p.suffix.lower() == ".dcm"
                      and p.is_file())

    def header(self, path: Path) -> _Header | str:
        """Header facts of a DICOM, or an error message."""
        if path not in self._headers:
            import pydicom
            from pydicom.errors import InvalidDicomError

            try:
                try:
                    ds = pydicom.dcmread(path, stop_before_pixels=True)
                except InvalidDicomError:
                    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
                if "Rows" not in ds:
                    raise ValueError("no Rows attribute: not an image")
                self._headers[path] = _Header(int(ds.get("BitsAllocated", 0) or 0),
                                              (int(ds.Rows), int(ds.get("Columns", 0) or 0)),
                                              str(ds.get("SeriesDescription", "")).lower())
            except Exception as exc:  # noqa: BLE001 - any decoding failure is reported as unreadable
                self._headers[path] = f"unreadable DICOM {path} ({type(exc).__name__}: {exc})"
        return self._headers[path]

    def full_image(self, rel: tuple[str, ...]) -> tuple[Path | None, str, str]:
        """``(path, layout, error)`` of the full image a CSV ``image file path`` refers to."""
        case = rel[0]
        if case not in self._full:
            self._full[case] = self._find_full(rel)
        return self._full[case]

    def _find_full(self, rel: tuple[str, ...]) -> tuple[Path | None, str, str]:
        case = rel[0]
        exact = self.expected(rel)
        if exact.is_file():
            return exact, "tcia-classic", ""
        if case not in self.index:
            return None, "", f"folder {self.image_dirs[0] / case}/ does not exist (expected {exact})"
        dcms = self._dicoms(case)
        if len(dcms) == 1:
            return dcms[0], "tcia-dated", ""
        if not dcms:
            return None, "", f"no .dcm file under {self.index[case][0]}/ (expected {exact} or a dated-layout series)"
        suffix = rel[-2][-5:] if len(rel) >= 3 else None
        hits = [p for p in dcms if suffix and (p.parent.name.endswith("-" + suffix) or p.parent.name == rel[-2])]
        if len(hits) != 1:
            hits = [p for p in dcms if isinstance(h := self.header(p), _Header) and "full" in h.description]
        if len(hits) == 1:
            return hits[0], "tcia-dated", ""
        return None, "", (f"{len(dcms)} DICOMs under {self.index[case][0]}/ and none is identified as the full image "
                          f"(series UID ...{suffix} or SeriesDescription 'full mammogram images'); keep only one")

    def roi_files(self, row: _Row) -> tuple[Path | None, Path | None, str]:
        """``(crop, mask, note)`` for an abnormality row: every DICOM under its folder(s) classified (Q3)."""
        key = tuple(row.abn_folders)
        if key in self._roi:
            return self._roi[key]
        dcms = sorted({p for f in key for p in self._dicoms(f)})
        if not dcms:
            present = [f for f in key if f in self.index]
            note = (f"no .dcm file under {self.index[present[0]][0]}/" if present
                    else f"folder {self.image_dirs[0] / key[0]}/ does not exist")
            self._roi[key] = (None, None, note)
            return self._roi[key]
        headers: dict[Path, _Header] = {}
        notes: list[str] = []
        for p in dcms:
            h = self.header(p)
            if isinstance(h, str):
                notes.append(h)
            else:
                headers[p] = h
        full_shape = None
        bits = sorted(h.bits for h in headers.values())
        if any(b != 8 for b in bits) and not (bits.count(8) == 1 and all(b in (8, 16) for b in bits)):
            # bit depth alone does not separate one 8-bit mask from 16-bit crops: the full image's size decides
            full, _, _ = self.full_image(row.image_rel)
            fh = self.header(full) if full else None
            full_shape = fh.shape if isinstance(fh, _Header) else None

        def is_mask(h: _Header) -> bool:
            return h.bits == 8 or h.shape == full_shape

        def maskness(p: Path) -> tuple:
            h = headers[p]
            return (h.bits == 8, h.shape == full_shape, h.shape[0] * h.shape[1],
                    "mask" in h.description and "crop" not in h.description)

        masks = [p for p, h in headers.items() if is_mask(h)]
        crops = [p for p, h in headers.items() if not is_mask(h)]
        if len(headers) >= 2 and (not masks or not crops):  # same class by the rules: rank them instead
            ranked = sorted(headers, key=maskness, reverse=True)
            if maskness(ranked[0]) == maskness(ranked[-1]):
                masks = crops = []
                notes.append(f"cannot tell crop from mask among {', '.join(p.name for p in ranked)} under "
                             f"{key[0]}/ (same bit depth and size)")
            else:
                masks, crops = ranked[:1], ranked[-1:]
        mask = max(masks, key=maskness) if masks else None
        crop = min(crops, key=maskness) if crops else None
        if len(headers) > 2:
            notes.append(f"{len(headers)} DICOMs under {key[0]}/, expected a crop and a mask; using {crop} and {mask}")
        self._roi[key] = (crop, mask, "; ".join(notes))
        return self._roi[key]


class _KaggleTree:
    """Layout C, the Kaggle JPEG re-export: ``jpeg/<series UID>/1-<n>.jpg``.

    The CSVs keep the TCIA DICOM paths; their third component is the series UID, i.e. the ``jpeg/``
    sub-folder (the join every Kaggle kernel uses). Crop and mask of an abnormality may share a series
    folder; roles are decided like the DICOM quirk Q3: a file with the full image's size is the mask, then
    ``dicom_info.csv``'s SeriesDescription (``cropped images`` / ``ROI mask images``; an ``Unknown`` row is
    a mask, the known Kaggle labelling bug), then the pixels (a mask is black and white up to JPEG noise).
    """

    reader = "image"

    def __init__(self, jpeg_dir: Path, info_csv: Path | None, warnings: list[str]):
        self.jpeg_dir = jpeg_dir
        self.image_dirs = [jpeg_dir]
        self.roles: dict[Path, str] = {}
        if info_csv is not None:
            self._read_info(info_csv, warnings)
        self._full: dict[str, tuple[Path | None, str, str]] = {}
        self._roi: dict[tuple[str, ...], tuple[Path | None, Path | None, str]] = {}

    def _read_info(self, path: Path, warnings: list[str]) -> None:
        try:
            df = pd.read_csv(path, sep=None, engine="python", dtype=str)  # ';' in re-saved copies: sniff it
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            warnings.append(f"{path.name} unreadable ({exc}); crop/mask roles decided from the images alone")
            return
        cols = {c.strip().lower(): c for c in df.columns}
        if "image_path" not in cols or "seriesdescription" not in cols:
            warnings.append(f"{path.name} lacks image_path/SeriesDescription columns; crop/mask roles decided from "
                            "the images alone")
            return
        for raw, desc in zip(df[cols["image_path"]].fillna(""), df[cols["seriesdescription"]].fillna("")):
            parts = raw.replace("\\", "/").split("/")
            if "jpeg" in parts:  # CBIS-DDSM/jpeg/<UID>/1-1.jpg -> <local jpeg>/<UID>/1-1.jpg
                self.roles[self.jpeg_dir.joinpath(*parts[parts.index("jpeg") + 1:])] = desc.strip().lower()

    def expected(self, rel: tuple[str, ...]) -> Path:
        return self.jpeg_dir / (rel[2] if len(rel) >= 3 else rel[0])

    def where(self, rel: tuple[str, ...], what: str) -> str:
        return f"a JPEG in {self.expected(rel)}/ (the series UID of the CSV path {'/'.join(rel)})"

    def roi_layout(self, rel: tuple[str, ...]) -> str:
        return "kaggle-jpeg"

    def _files(self, rel: tuple[str, ...]) -> list[Path]:
        d = self.expected(rel)
        return sorted(p for p in d.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if d.is_dir() else []

    def full_image(self, rel: tuple[str, ...]) -> tuple[Path | None, str, str]:
        key = rel[2] if len(rel) >= 3 else rel[0]
        if key not in self._full:
            files = self._files(rel)
            if len(files) > 1:
                files = [p for p in files if "full" in self.roles.get(p, "full")]
            if len(files) == 1:
                self._full[key] = (files[0], "kaggle-jpeg", "")
            else:
                self._full[key] = (None, "", f"{'no' if not files else len(files)} JPEG(s) in {self.expected(rel)}/ "
                                             "(expected the series folder of the full mammogram, one JPEG)")
        return self._full[key]

    def roi_files(self, row: _Row) -> tuple[Path | None, Path | None, str]:
        from PIL import Image

        key = (row.crop_rel[2:3] + row.mask_rel[2:3]) or tuple(row.abn_folders)
        if key in self._roi:
            return self._roi[key]
        files = sorted(set(self._files(row.crop_rel)) | set(self._files(row.mask_rel)))
        if not files:
            self._roi[key] = (None, None, f"no JPEG in {self.expected(row.crop_rel)}/")
            return self._roi[key]
        full, _, _ = self.full_image(row.image_rel)
        sizes, binary = {}, {}
        for p in files + ([full] if full else []):
            try:
                with Image.open(p) as im:
                    sizes[p] = im.size
                binary[p] = _looks_binary(p)
            except OSError as exc:
                self._roi[key] = (None, None, f"unreadable JPEG {p} ({exc})")
                return self._roi[key]

        def maskness(p: Path) -> tuple:
            role = self.roles.get(p, "")
            return (full is not None and sizes[p] == sizes[full], "mask" in role or role == "unknown",
                    "crop" not in role, binary[p])

        ranked = sorted(files, key=maskness, reverse=True)
        if len(files) == 1 or maskness(ranked[0]) == maskness(ranked[-1]):
            note = f"cannot tell crop from mask among {', '.join(p.name for p in files)} in {files[0].parent}/"
            self._roi[key] = (None, None, note)
        else:
            note = "" if len(files) == 2 else f"{len(files)} JPEGs for {row.abn_folders[0]}, expected a crop and a mask"
            self._roi[key] = (ranked[-1], ranked[0], note)
        return self._roi[key]


def _looks_binary(path: Path) -> bool:
    """A JPEG mask: nearly every pixel near 0 or 255 (compression leaves a thin grey fringe)."""
    from PIL import Image

    with Image.open(path) as im:
        im.draft("L", (256, 256))  # JPEG decodes at reduced scale: cheap on full-size masks
        a = np.asarray(im.convert("L"))
    return bool(np.mean((a > 40) & (a < 215)) < 0.02)


# ----------------------------------------------------------------------------------------------------------------
# The scan


def _find_inputs(options: CBISDDSMOptions, root: Path) -> tuple[dict[tuple[str, str], Path], list[Path]]:
    """The CSVs this configuration needs and the folders holding case folders; layout errors raised here."""
    kinds = ("mass", "calc") if options.abnormality == "both" else (options.abnormality,)
    splits = ("train", "test") if options.split == "all" else (options.split,)
    csv_dir = _resolve_dir(root, options.csv_dir, "csv_dir")
    img_dir = _resolve_dir(root, options.images_dir, "images_dir")
    seen = _candidates(root)
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


def scan(options: CBISDDSMOptions, root: Path) -> Scan:
    """Scan a CBIS-DDSM folder (see the module docstring for layouts, labels and quirks).

    Args:
        options: the dataset options.
        root: the dataset folder.

    Returns:
        The :class:`Scan`: items, exclusions, warnings and one problem per missing/unreadable referenced file.

    Raises:
        DatasetFormatError: no recognisable layout, a needed CSV missing, or a CSV lacking a required column.
    """
    root = Path(root)
    result = Scan(dataset=NAME, root=root)
    csvs, image_dirs = _find_inputs(options, root)
    kinds = ("mass", "calc") if options.abnormality == "both" else (options.abnormality,)
    splits = ("train", "test") if options.split == "all" else (options.split,)
    rows: list[_Row] = []
    for kind in kinds:
        for split in splits:
            rows += read_case_csv(csvs[(kind, split)], kind, split, result.warnings, result.excluded)
    rows = _dedupe_rows(rows, result)

    if options.split == "train":
        test_files = [csvs.get((k, "test")) for k in kinds]
        if options.leak_policy == "drop_from_train" and None in test_files:
            result.warnings.append("official test CSV(s) not found, so patients shared between the official train "
                                   "and test splits (DATASETS.md 1.7) could not be dropped from split='train'")
        test_patients = {r.patient_id for k in kinds if (k, "test") in csvs
                         for r in read_case_csv(csvs[(k, "test")], k, "test", [], Counter())}
        shared = {r.patient_id for r in rows} & test_patients
        if shared and options.leak_policy == "keep":
            result.warnings.append(f"{len(shared)} patient(s) of split='train' also appear in the official test CSVs "
                                   f"(cross-type leak, e.g. {', '.join(sorted(shared)[:3])}); kept "
                                   "(leak_policy='keep')")
        elif shared:
            result.warnings.append(f"{len(shared)} patient(s) of the official train CSVs also appear in the official "
                                   f"test CSVs (e.g. {', '.join(sorted(shared)[:3])}); dropped from split='train' "
                                   "(leak_policy='drop_from_train')")
            leak = [r for r in rows if r.patient_id in shared]
            unit = {r.view_key for r in leak} if options.mode == "image" else leak
            result.excluded["patient also in the official test split"] += len(unit)
            rows = [r for r in rows if r.patient_id not in shared]

    if image_dirs[0].name == "jpeg" and not _case_index(image_dirs):
        info = next((d / "dicom_info.csv" for d in [csvs[next(iter(csvs))].parent, *_candidates(root)]
                     if (d / "dicom_info.csv").is_file()), None)
        tree = _KaggleTree(image_dirs[0], info, result.warnings)
        result.warnings.append("Kaggle JPEG re-export: 8-bit lossy JPEGs, so intensities differ from the 16-bit "
                               "DICOM route" + ("" if info else "; no dicom_info.csv found (roles from the images)"))
    else:
        tree = _Tree(_case_index(image_dirs), image_dirs)
    if options.mode == "image":
        _image_items(rows, tree, options, result)
    else:
        _roi_items(rows, tree, options, result)
    result.items.sort(key=lambda it: it.image_id)
    layouts = Counter(it.meta.get("layout") for it in result.items)
    if len(layouts) > 1:
        result.warnings.append(f"mixed layouts: {dict(layouts)}")
    return result


def _dedupe_rows(rows: list[_Row], result: Scan) -> list[_Row]:
    seen: dict[tuple, _Row] = {}
    out = []
    for r in rows:
        key = (r.kind, r.split, r.patient_id, r.side, r.view, r.abnormality_id, r.crop_rel)
        if key in seen:
            result.warnings.append(f"{r.where} repeats {seen[key].where}; the repeat is ignored")
            result.excluded["duplicate CSV row"] += 1
            continue
        seen[key] = r
        out.append(r)
    return out


def _keep_row(r: _Row, options: CBISDDSMOptions) -> bool:
    return not (options.policy == "bwc-exclude" and r.pathology == "BENIGN_WITHOUT_CALLBACK")


def _official_split(rows: list[_Row]) -> str:
    return "+".join(s for s in ("train", "test") if any(r.split == s for r in rows))


def _abn_meta(r: _Row) -> dict:
    return {"folder": r.crop_rel[0], "abnormality_id": r.abnormality_id, "type": r.kind,
            "official_split": r.split, "csv": r.where, **r.info}


def _case_sort_key(case: str) -> tuple:
    m = CASE_RE.match(case)
    return TYPE_ORDER[m.group(1)], SPLIT_ORDER[m.group(2)], case


def _image_items(rows: list[_Row], tree: _Tree, options: CBISDDSMOptions, result: Scan) -> None:
    groups: dict[tuple[str, str, str], list[_Row]] = defaultdict(list)
    for r in rows:
        groups[r.view_key].append(r)
    # one problem line per missing full image, naming every row that references it
    case_rows: dict[str, list[_Row]] = defaultdict(list)
    for r in rows:
        if _keep_row(r, options):
            case_rows[r.case].append(r)
    reported: set[str] = set()
    for (patient, side, view), grp in sorted(groups.items()):
        kept = [r for r in grp if _keep_row(r, options)]
        if not kept:
            result.excluded["only benign-without-callback abnormalities (policy='bwc-exclude')"] += 1
            continue
        cases = sorted({r.case for r in kept}, key=_case_sort_key)
        fulls, ok = [], True
        for case in cases:
            rel = next(r.image_rel for r in kept if r.case == case)
            path, layout, err = tree.full_image(rel)
            if path is None:
                ok = False
                if case not in reported:
                    reported.add(case)
                    refs = case_rows[case]
                    result.problems.append(f"{refs[0].csv} row{'s' if len(refs) > 1 else ''} "
                                           f"{', '.join(str(r.row) for r in refs)}: full image missing: {err}")
            fulls.append((path, layout))
        masks: list[Path] = []
        if options.masks:
            for r in kept:
                _, mask, note = tree.roi_files(r)
                if mask is None:
                    ok = False
                    result.problems.append(f"{r.where}: ROI mask missing: expected "
                                           f"{tree.where(r.mask_rel, 'an 8-bit mask DICOM')}"
                                           + (f"; {note}" if note else ""))
                else:
                    masks.append(mask)
        if not ok:
            continue
        label = int(any(r.pathology == "MALIGNANT" for r in kept))
        path, layout = fulls[0]
        result.items.append(Item(
            image_id=f"{patient}_{side}_{view}", label=label, path=path, reader=tree.reader, patient_id=patient,
            view=view, laterality=side[0], mask_paths=tuple(dict.fromkeys(masks)),
            meta={"official_split": _official_split(kept), "series": cases, "layout": layout,
                  "abnormality_types": sorted({r.kind for r in kept}),
                  "lesion_kind": "+".join(sorted({r.kind for r in kept})),  # "calc", "mass" or "calc+mass"
                  "pathologies": sorted({r.pathology for r in kept}),
                  "abnormalities": [_abn_meta(r) for r in kept],
                  "ignored_bwc": len(grp) - len(kept)}))


def _roi_items(rows: list[_Row], tree: _Tree, options: CBISDDSMOptions, result: Scan) -> None:
    no_full = []
    for r in rows:
        if not _keep_row(r, options):
            result.excluded["benign-without-callback abnormality (policy='bwc-exclude')"] += 1
            continue
        crop, mask, note = tree.roi_files(r)
        ok = True
        for role, found, rel, what in (("cropped image", crop, r.crop_rel, "a 16-bit crop DICOM"),
                                       ("ROI mask", mask, r.mask_rel, "an 8-bit mask DICOM")):
            if found is None:
                ok = False
                result.problems.append(f"{r.where}: {role} missing: expected {tree.where(rel, what)}"
                                       + (f"; {note}" if note else ""))
        if not ok:
            continue
        full, layout, _ = tree.full_image(r.image_rel)
        if full is None:
            if options.roi_pipeline == "falconi":
                result.problems.append(f"{r.where}: full image missing (roi_pipeline 'falconi' crops it): expected "
                                       f"{tree.expected(r.image_rel)}")
                continue
            no_full.append(r.case)
        source = full if options.roi_pipeline == "falconi" else crop
        result.items.append(Item(
            image_id=r.crop_rel[0], label=int(r.pathology == "MALIGNANT"), path=source, reader=tree.reader,
            patient_id=r.patient_id, view=r.view, laterality=r.side[0], mask_paths=(mask,),
            meta={"official_split": r.split, "full_image": str(full) if full else None,
                  "layout": layout or tree.roi_layout(r.crop_rel),
                  "lesion_kind": r.kind, **_abn_meta(r)}))
    if no_full:
        result.warnings.append(f"{len(set(no_full))} full image(s) referenced by the CSVs are missing (not needed in "
                               f"roi mode; meta['full_image'] is None), e.g. {sorted(set(no_full))[0]}")


SPEC = register_dataset(real_dataset_spec(
    NAME, scan, CBISDDSMOptions, modality="mammography",
    description="CBIS-DDSM (TCIA DICOM + 4 case-description CSVs): mass/calc, image-level or ROI crops"))
