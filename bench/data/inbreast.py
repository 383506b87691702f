"""INbreast (Release 1.0): full-field digital mammograms, BI-RADS as the label proxy.

Layout read (../shared/DATASETS.md section 2)::

    INbreast Release 1.0/            <- the root, or a folder holding exactly one such folder
      INbreast.csv                   <- ';'-separated, CRLF, header
                                        Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads
      AllDICOMs/<File Name>_<16-hex patient hash>_MG_<L|R>_<CC|ML>_ANON.dcm
      AllXML/<File Name>.xml         <- optional Osirix ROI plists (recorded in meta, not parsed)

Quirks handled:

* The CSV is read with the csv module as strings (``;`` separator, CRLF, optional BOM); column names are matched
  case- and punctuation-insensitively (``Bi-Rads`` = ``BI-RADS`` = ``birads``). A copy re-saved with ``,``
  or tab separators is read with a warning. Every value is stripped, so the ACR cell made of 193 spaces
  becomes "no density"; blank rows (Excel exports) are skipped.
* ``Patient ID`` is the literal ``removed``: the patient is the 16-hex token of the DICOM file name (the
  2nd ``_`` field), lower-cased. A patient's images stay together whatever their acquisition date. A renamed
  file without a 16-hex token is its own patient (warned), never grouped by another token such as ``MG``.
* ``Bi-Rads`` is a string (``1``..``6``, ``4a``/``4b``/``4c``); the label comes from a named policy
  (:data:`POLICIES`). Excluded images are counted per reason in ``Scan.excluded``.
* The view is ``MLO`` in the CSV but ``ML`` in file names: both become ``MLO``. The one ``FB`` view is
  kept as ``FB`` (select views with the ``views`` option). CSV laterality/view and the file-name tokens are
  cross-checked; on disagreement the CSV wins and a warning is given.
* DICOMs are matched to CSV rows by the first file-name token (= ``File Name``); a row without its DICOM
  is a problem (one line naming the CSV line and the expected path); a DICOM without a CSV row is excluded
  (it has no BI-RADS) and named in a warning. macOS ``._*`` files are ignored.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from bench.data.base import DatasetFormatError, DatasetOptions, register_dataset
from bench.data.cache import real_dataset_spec
from bench.data.helpers import decode_text, describe_dir, examples
from bench.data.items import Item, Scan

NAME = "inbreast"
CSV_NAME = "INbreast.csv"
DICOM_DIR = "AllDICOMs"
XML_DIR = "AllXML"
EXPECTED_HEADER = "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads"
FILE_PATTERN = "<File Name>_<16-hex patient hash>_MG_<L|R>_<CC|ML>_ANON.dcm"

# BI-RADS category (0-6) -> label, or None = excluded. Sub-categories 4a/4b/4c map through category 4.
POLICIES: dict[str, dict[int, int | None]] = {
    # Shen et al. 2019 (section 3.2.1): 1-2 negative, 4-6 positive, BI-RADS 3 excluded (387 of 410 images).
    "shen": {0: None, 1: 0, 2: 0, 3: None, 4: 1, 5: 1, 6: 1},
    # Zhu et al. 2017 (deep MIL): BI-RADS >= 4 positive, <= 3 negative (BI-RADS 3 kept as negative).
    "zhu": {0: None, 1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 1},
}

_BIRADS = re.compile(r"^([0-6])([abc])?$")
_HASH = re.compile(r"^[0-9a-f]{16}$", re.IGNORECASE)
_FILE = re.compile(r"^(?P<id>[^_]+)_(?P<hash>[0-9a-f]{16})_MG_(?P<lat>[LR])_(?P<view>[A-Z]+)_ANON$", re.IGNORECASE)
_COLUMNS = {"laterality": "Laterality", "view": "View", "filename": "File Name", "birads": "Bi-Rads"}


def _norm_view(view: str) -> str:
    v = view.strip().upper()
    return "MLO" if v in ("ML", "MLO") else v


class INbreastOptions(DatasetOptions):
    """Options of the ``inbreast`` dataset (``data.inbreast`` in a suite; ``bench data check --policy``)."""

    policy: Literal["shen", "zhu"] = Field(
        "shen", description="BI-RADS -> label: 'shen' = 1-2 negative, 4a-6 positive, 3 excluded (Shen et al.); "
                            "'zhu' = 1-3 negative, 4a-6 positive (Zhu et al. deep MIL). BI-RADS 0 is always excluded")
    views: tuple[str, ...] | None = Field(
        None, description="keep only these views (after ML -> MLO), e.g. ['CC', 'MLO'] to drop the one 'FB' "
                          "image; None keeps every view. A comma-separated string is accepted")
    resize: Literal["pad", "stretch"] = Field("pad", description="resize to the square image size keeping the "
                                                                 "aspect ratio (zero padding) or stretching")

    @field_validator("views", mode="before")
    @classmethod
    def _split_views(cls, v):
        if isinstance(v, str):
            v = [s for s in re.split(r"[,\s]+", v) if s]
        if v is not None:
            v = tuple(dict.fromkeys(_norm_view(str(s)) for s in v))
            if not v:
                raise ValueError("views is empty; give at least one of CC, MLO, FB or leave it unset (all views)")
        return v


def birads_label(birads: str, policy: str = "shen") -> tuple[int | None, str | None]:
    """Label of one BI-RADS string under ``policy``.

    Returns:
        ``(label, None)`` for a kept image, ``(None, reason)`` for an excluded one.
    """
    s = re.sub(r"\s+", "", str(birads)).lower()
    m = _BIRADS.match(s)
    if not m:
        return None, "unrecognised BI-RADS value"
    cat = int(m.group(1))
    label = POLICIES[policy][cat]
    if label is None:
        return None, f"BI-RADS {cat} (policy {policy})" if cat else "BI-RADS 0 (incomplete assessment)"
    return label, None


def _child(folder: Path, name: str, *, is_dir: bool) -> Path | None:
    """``folder/name`` matched case-insensitively."""
    for p in sorted(folder.iterdir()):
        if p.name.lower() == name.lower() and (p.is_dir() if is_dir else p.is_file()):
            return p
    return None


def find_release(root: Path) -> tuple[Path, Path]:
    """The ``INbreast.csv`` and ``AllDICOMs/`` of the release at ``root`` (or in one sub-folder of it).

    Raises:
        DatasetFormatError: naming the expected layout and what ``root`` holds.
    """
    expected = (f"expected the INbreast Release 1.0 layout: {CSV_NAME} (';'-separated) next to {DICOM_DIR}/ "
                f"holding {FILE_PATTERN} files")
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    found = [(d, c) for d in candidates if (c := _child(d, CSV_NAME, is_dir=False)) is not None]
    if not found:
        hint = ""
        if any(p.suffix.lower() in (".xls", ".xlsx") for d in candidates for p in d.iterdir()):
            hint = (f" (an .xls file is there: the adapter reads {CSV_NAME}, which the release ships next to "
                    f"INbreast.xls; export the sheet as ';'-separated {CSV_NAME} if yours is missing)")
        raise DatasetFormatError(f"dataset {NAME!r} at {root}: {expected}; found {describe_dir(root)}{hint}. Point "
                                 f"--root (or data.{NAME}.root) at the folder holding {CSV_NAME}")
    if found[0][0] != root and len(found) > 1:
        raise DatasetFormatError(f"dataset {NAME!r} at {root}: several folders hold {CSV_NAME}: "
                                 f"{', '.join(str(d.relative_to(root)) for d, _ in found)}; point --root (or "
                                 f"data.{NAME}.root) at one of them")
    folder, csv_path = found[0]
    dicoms = _child(folder, DICOM_DIR, is_dir=True)
    if dicoms is None:
        raise DatasetFormatError(f"dataset {NAME!r} at {root}: {expected}; {csv_path.relative_to(root)} is there "
                                 f"but no {DICOM_DIR}/ next to it (found {describe_dir(folder)}). Put the DICOMs in "
                                 f"{folder / DICOM_DIR}")
    return csv_path, dicoms


def read_csv(path: Path) -> tuple[list[dict], list[str]]:
    """The rows of ``INbreast.csv`` as dicts of stripped strings keyed by canonical column names, and warnings.

    Keys: ``laterality``, ``view``, ``filename``, ``birads``, ``acr``, ``acquisitiondate`` ... (lower-case, no
    spaces or punctuation) plus ``line``, the row's line number in the file. The separator is ``;`` in the
    release; ``,`` or tab (a re-saved copy) is accepted with a warning. Blank and separator-only rows are
    skipped.
    """
    warnings: list[str] = []
    try:
        text = decode_text(path.read_bytes())[0]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"{path}: cannot read {CSV_NAME} ({exc}); save it as a ';'-separated text "
                                 "file") from None
    header = text.splitlines()[0] if text.strip() else ""
    counts = {sep: header.count(sep) for sep in (";", ",", "\t")}
    sep = ";" if counts[";"] else max(counts, key=counts.get)
    if not counts[sep]:
        raise DatasetFormatError(f"{path}: the header line {header[:120]!r} has no ';' separator; expected "
                                 f"{EXPECTED_HEADER!r}")
    if sep != ";":
        warnings.append(f"{path.name} is {sep!r}-separated (the release uses ';'); read it anyway")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    columns = [re.sub(r"[\s_\-]+", "", c).lower() for c in next(reader)]
    missing = [v for k, v in _COLUMNS.items() if k not in columns]
    if missing:
        raise DatasetFormatError(f"{path}: column(s) {', '.join(repr(m) for m in missing)} missing; expected the "
                                 f"header {EXPECTED_HEADER!r}, found {header[:200]!r}")
    rows = []
    for fields in reader:
        fields = [f.strip() for f in fields]
        if not any(fields):
            continue
        row = dict(zip(columns, fields + [""] * (len(columns) - len(fields))))
        if len(fields) > len(columns) and any(fields[len(columns):]):
            warnings.append(f"{path.name} line {reader.line_num}: {len(fields)} fields for {len(columns)} "
                            "columns; the extra ones are ignored")
        row["line"] = reader.line_num
        rows.append(row)
    return rows, warnings


def _index_dicoms(folder: Path) -> tuple[dict[str, list[Path]], int]:
    """DICOM files under ``folder`` by their first file-name token; also the number of ignored ``._`` files."""
    index: dict[str, list[Path]] = {}
    hidden = 0
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() != ".dcm" or not p.is_file():
            continue
        if p.name.startswith("."):
            hidden += 1
            continue
        index.setdefault(p.stem.split("_")[0], []).append(p)
    return index, hidden


def read_osirix_rois(path: Path) -> tuple:
    """Lesion outlines of an ``AllXML/<id>.xml`` Osirix plist (DATASETS.md 2.4) as ``Item.mask_shapes``:
    a polygon per ROI from ``Point_px`` ("(x, y)" strings, x = column); ROIs of at most 2 points are single
    calcifications, drawn as discs of radius 3 px. Parsed with the standard library's ``plistlib``."""
    import plistlib
    from xml.parsers.expat import ExpatError

    try:
        with open(path, "rb") as f:
            doc = plistlib.load(f)
        rois = [roi for image in doc.get("Images", []) for roi in image.get("ROIs", [])]
        if not all(isinstance(roi, dict) and isinstance(roi.get("Point_px", []), list) for roi in rois):
            raise ValueError("an ROI is not a dict with a Point_px array")
    except (plistlib.InvalidFileException, ExpatError, ValueError, AttributeError, OSError) as exc:
        raise ValueError(f"not an Osirix ROI plist: {exc}") from None
    shapes = []
    for roi in rois:
        pts = []
        for text in roi.get("Point_px", []):
            nums = re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", str(text))
            if len(nums) >= 2:
                pts.append((float(nums[1]), float(nums[0])))  # (row, col)
        if len(pts) >= 3:
            shapes.append(("polygon", tuple(pts)))
        elif pts:
            r, c = np.mean(pts, axis=0)
            shapes.append(("circle", (float(r), float(c), 3.0)))
    return tuple(shapes)


def scan(options: INbreastOptions, root: Path) -> Scan:
    """Read the INbreast release at ``root`` into items (no pixels are decoded).

    Args:
        options: label policy and view selection.
        root: the folder holding ``INbreast.csv`` and ``AllDICOMs/`` (or its parent).

    Returns:
        The items in CSV order, exclusions by reason, warnings and missing-file problems.

    Raises:
        DatasetFormatError: no recognisable layout, or a CSV without the needed columns.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"dataset {NAME!r}: folder {root} does not exist; fix --root or data.{NAME}.root")
    csv_path, dicom_dir = find_release(root)
    out = Scan(dataset=NAME, root=root)
    rows, out.warnings = read_csv(csv_path)
    csv_rel = csv_path.relative_to(root).as_posix()
    dicom_rel = dicom_dir.relative_to(root).as_posix()
    xml_dir = _child(csv_path.parent, XML_DIR, is_dir=True)
    xmls = {p.stem: p for p in xml_dir.glob("*.xml")} if xml_dir else {}
    dicoms, hidden = _index_dicoms(dicom_dir)
    if hidden:
        out.warnings.append(f"ignored {hidden} hidden '._*' file(s) in {dicom_rel}/ (macOS metadata)")

    seen: set[str] = set()
    bad_birads, bad_names, mismatch, bad_xml = [], [], [], []
    for row in rows:
        where = f"{csv_rel} line {row['line']}"
        fid = re.sub(r"\.0$", "", row["filename"])
        if not fid:
            out.excluded["CSV row without File Name"] += 1
            out.warnings.append(f"{where}: empty 'File Name'; row skipped")
            continue
        if fid in seen:
            out.warnings.append(f"{where}: File Name {fid} repeats an earlier row; the later row is ignored")
            continue
        seen.add(fid)
        birads = row["birads"]
        label, reason = birads_label(birads, options.policy)
        if label is None:
            out.excluded[reason] += 1
            if reason == "unrecognised BI-RADS value":
                bad_birads.append(f"{where} ({fid}): {birads!r}")
            continue
        csv_lat = row["laterality"].upper()[:1] or None
        csv_view = _norm_view(row["view"]) or None
        files = dicoms.get(fid, [])
        if not files:
            lat, view = csv_lat or "<L|R>", {"MLO": "ML"}.get(csv_view, csv_view) if csv_view else "<CC|ML>"
            out.problems.append(f"{where} (File Name {fid}): expected {dicom_rel}/{fid}_<patient hash>_MG_{lat}_"
                                f"{view}_ANON.dcm, not found")
            continue
        path = files[0]
        if len(files) > 1:
            out.warnings.append(f"File Name {fid}: {len(files)} DICOMs ({', '.join(f.name for f in files)}); "
                                f"using {path.name}")
        m = _FILE.match(path.stem)
        tokens = path.stem.split("_")
        if m:
            patient, f_lat, f_view = m["hash"].lower(), m["lat"].upper(), _norm_view(m["view"])
        else:
            bad_names.append(path.name)
            # a renamed file: the hash is whichever later token is 16 hex digits (never "MG" or a side/view)
            patient = next((t.lower() for t in tokens[1:] if _HASH.match(t)), None)
            f_lat = f_view = None
        if patient is None:
            patient = f"image-{fid}"  # no hash at all: the image is its own group (warned below)
        if (csv_lat and f_lat and csv_lat != f_lat) or (csv_view and f_view and csv_view != f_view):
            mismatch.append(f"{fid} (CSV {csv_lat} {csv_view}, file {f_lat} {f_view})")
        view = csv_view or f_view
        if options.views is not None and view not in options.views:
            out.excluded[f"view {view} not selected"] += 1
            continue
        acr = row.get("acr", "")
        meta = {"birads": birads.lower(), "label_raw": birads, "acr": int(acr) if acr.isdigit() else None,
                "acquisition": row.get("acquisitiondate") or None, "csv_line": row["line"],
                "file": path.relative_to(root).as_posix(),
                "xml": xmls[fid].relative_to(root).as_posix() if fid in xmls else None}
        shapes = ()  # no XML = no ROI (DATASETS.md 2.4)
        if fid in xmls:
            try:
                shapes = read_osirix_rois(xmls[fid])
            except ValueError as exc:
                bad_xml.append(f"{xmls[fid].name} ({exc})")
                shapes = None
        out.items.append(Item(image_id=fid, label=label, path=path, reader="dicom", patient_id=patient,
                              view=view, laterality=csv_lat or f_lat, meta=meta, mask_shapes=shapes))

    unlisted = sorted(k for k in dicoms if k not in seen)
    if unlisted:
        out.excluded[f"DICOM not listed in {CSV_NAME}"] += len(unlisted)
        out.warnings.append(f"{len(unlisted)} DICOM(s) in {dicom_rel}/ have no {CSV_NAME} row (no BI-RADS), "
                            f"ignored: {examples(dicoms[k][0].name for k in unlisted)}")
    if bad_birads:
        out.warnings.append(f"{len(bad_birads)} row(s) with a 'Bi-Rads' value that is not 0-6 or 4a/4b/4c, "
                            f"excluded: {examples(bad_birads, sep='; ')}")
    if bad_names:
        out.warnings.append(f"{len(bad_names)} DICOM name(s) do not follow {FILE_PATTERN}; the patient is the "
                            f"16-hex token of the name, or, without one, the image itself (no patient grouping): "
                            f"{examples(bad_names)}")
    if bad_xml:
        out.warnings.append(f"{len(bad_xml)} unreadable {XML_DIR} file(s); those images have no lesion mask: "
                            f"{examples(bad_xml, 3, sep='; ')}")
    if mismatch:
        out.warnings.append(f"{len(mismatch)} image(s) where {CSV_NAME} and the file name disagree on side/view "
                            f"(the CSV is used): {examples(mismatch, sep='; ')}")
    return out


SPEC = register_dataset(real_dataset_spec(
    NAME, scan, INbreastOptions, modality="mammography",
    description="INbreast FFDM (DICOM), BI-RADS label policy (default Shen: 1-2 neg, 4a-6 pos, 3 excluded), "
                "patient = file-name hash"))
