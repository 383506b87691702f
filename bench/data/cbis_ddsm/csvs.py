"""Reading the CBIS-DDSM case-description CSVs into normalised rows (quirks Q1, Q2, Q4; see
:mod:`bench.data.cbis_ddsm`)."""
from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.data.base import DatasetFormatError
from bench.data.helpers import decode_text

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


@dataclass
class Row:
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


def read_case_csv(path: Path, kind: str, split: str, warnings: list[str], excluded: Counter) -> list[Row]:
    """Read one case-description CSV into normalised rows (quirks Q1, Q2, Q4).

    Raises:
        DatasetFormatError: the file cannot be parsed or lacks a required column.
    """
    text, encoding = decode_text(path.read_bytes())
    if encoding == "windows-1252":  # re-saved by a spreadsheet on Windows
        warnings.append(f"{path.name} is not UTF-8; read as Windows-1252 (descriptor spellings may differ)")
    header = text.split("\n", 1)[0]
    sep = max((",", ";", "\t"), key=header.count)  # ',' in the release; ';' or tab in re-saved copies
    import pandas as pd  # 0.3 s to import: only when a CSV is read

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
    rows: list[Row] = []
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
        rows.append(Row(csv=name, row=i, kind=kind, split=split, patient_id=patient, side=side, view=view,
                         abnormality_id=get["abnormality_id"], pathology=pathology, image_rel=paths["image_path"],
                         crop_rel=paths["crop_path"], mask_rel=paths["mask_path"], info=info))
    return rows
