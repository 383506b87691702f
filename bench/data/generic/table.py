"""The ``csv`` adapter: your own images listed in a label table (see :mod:`bench.data.generic`)."""
from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bench.data.base import DatasetFormatError, DatasetOptions, register_dataset
from bench.data.cache import real_dataset_spec
from bench.data.helpers import (
    decode_text,
    describe_dir,
    examples,
    is_junk,
    natural_key,
    probe,
    reader_for,
)
from bench.data.items import Item, Scan


def normalize_label(value: str) -> str:
    """Label values compare case-insensitively, stripped, and numerically (``1.0`` == ``1``)."""
    v = str(value).strip().casefold()
    try:
        f = float(v)
    except ValueError:
        return v
    return str(int(f)) if f.is_integer() else v


class CsvOptions(DatasetOptions):
    """``csv``: images listed in a table with a path and a label column (``data.csv`` in a suite)."""

    file: str | None = Field(None, description="the table, relative to the root; null: the only *.csv in the root")
    path_column: str = Field("path", description="column with image paths (relative to the table's folder, else "
                                                  "to the root, or absolute)")
    label_column: str = Field("label", description="column with the label")
    patient_column: str | None = Field(None, description="column with the patient id; null: no patient ids")
    positive: tuple[str, ...] = Field(("1", "malignant"), min_length=1,
                                      description="label values meaning malignant (label 1)")
    negative: tuple[str, ...] | None = Field(("0", "benign", "normal"),
                                             description="label values meaning benign/normal (label 0); "
                                                         "null: every value not positive or excluded")
    exclude: tuple[str, ...] = Field((), description="label values whose rows are dropped (counted as excluded)")
    delimiter: str | None = Field(None, min_length=1, max_length=1,
                                  description="field separator; null: detected among , ; tab |")
    modality: Literal["mammography", "ultrasound"] = Field("mammography", description="imaging modality")

    @field_validator("positive", "negative", "exclude", mode="before")
    @classmethod
    def _as_strings(cls, v):
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, (str, int, float)):
            v = [v]
        return tuple(str(x).strip() for x in v) if isinstance(v, (list, tuple)) else v

    @model_validator(mode="after")
    def _disjoint(self):
        seen: dict[str, str] = {}
        for role in ("positive", "negative", "exclude"):
            for value in getattr(self, role) or ():
                k = normalize_label(value)
                if k in seen and seen[k] != role:
                    raise ValueError(f"label value {value!r} is both {seen[k]} and {role}; keep it in one list")
                seen[k] = role
        return self


def _find_table(options: CsvOptions, root: Path) -> Path:
    if options.file is not None:
        path = root / options.file
        if not path.is_file():
            raise DatasetFormatError(f"csv: table {options.file!r} (data.csv.file) not found under {root}; found: "
                                     f"{describe_dir(root)}. Set data.csv.file to the table's path relative to "
                                     "the root")
        return path
    tables = sorted((p for p in root.iterdir() if p.suffix.casefold() == ".csv" and p.is_file() and not is_junk(p)),
                    key=lambda p: natural_key(p.name))
    if len(tables) != 1:
        what = "no *.csv file" if not tables else f"{len(tables)} tables ({', '.join(p.name for p in tables)})"
        raise DatasetFormatError(f"csv: expected one table (*.csv) under {root} listing the images; found "
                                 f"{what}: {describe_dir(root)}. Set data.csv.file to the table's path relative "
                                 "to the root")
    return tables[0]


def _read_table(path: Path, delimiter: str | None, scan: Scan,
                required: list[str]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, row) pairs; quoted fields may hold newlines.

    Without an explicit ``delimiter``, the sniffed one is used unless another of ``, ; tab |`` is the one
    that yields a header with all ``required`` columns (paths or labels may contain the sniffed one).
    """
    try:
        text, encoding = decode_text(path.read_bytes())
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"csv: cannot read table {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if encoding == "windows-1252":
        scan.warnings.append(f"{path.name} is not UTF-8; read as Windows-1252 (save it as UTF-8 to be sure of names)")

    def parse(delim: str) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
        header, rows = None, []
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            if header is None:
                header = [c.strip() for c in row]
            else:
                rows.append((reader.line_num, row))
        return header, rows

    if delimiter is None:
        try:
            sniffed = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
        except csv.Error:
            sniffed = ","
        delimiter = sniffed
        want = {c.casefold() for c in required}
        for cand in dict.fromkeys([sniffed, ",", ";", "\t", "|"]):
            first = next((r for r in csv.reader(io.StringIO(text, newline=""), delimiter=cand)
                          if any(c.strip() for c in r)), [])
            if want <= {c.strip().casefold() for c in first}:
                delimiter = cand
                break
    header, rows = parse(delimiter)
    if header is None:
        raise DatasetFormatError(f"csv: table {path} is empty; expected a header row naming the path and label "
                                 "columns, then one row per image")
    return header, rows


def _column(header: list[str], name: str, option: str, path: Path) -> int:
    for match in (lambda h: h == name, lambda h: h.casefold() == name.strip().casefold()):
        hits = [i for i, h in enumerate(header) if match(h)]
        if hits:
            return hits[0]
    raise DatasetFormatError(f"csv: table {path.name} has no column {name!r} (columns: {', '.join(header)}); set "
                             f"data.csv.{option} to the right column")


def _resolve(raw: str, base: Path, root: Path) -> tuple[Path, str]:
    """The file a table cell names (relative to the table's folder; else, when only that exists, relative to
    the dataset root) and its image id.

    The id is the path relative to the dataset root when the file lies under it (stable across
    machines), else the path as written. Backslashes of a table written on Windows are accepted.
    """
    p = Path(raw)
    if os.sep == "/" and "\\" in raw and not (base / p).exists():
        p = Path(raw.replace("\\", "/"))
    if not p.is_absolute() and not (base / p).exists() and (root / p).exists():
        base = root  # a table in a sub-folder listing paths from the dataset root
    path = Path(os.path.normpath(p if p.is_absolute() else base / p))
    try:
        return path, path.relative_to(os.path.normpath(root)).as_posix()
    except ValueError:
        return path, raw.replace("\\", "/")


def scan_csv(options: CsvOptions, root: Path) -> Scan:
    """Scan a table of image paths and labels (see the module docstring)."""
    root = Path(root)
    table = _find_table(options, root)
    scan = Scan(dataset="csv", root=root, has_patients=options.patient_column is not None)
    required = [c for c in (options.path_column, options.label_column, options.patient_column) if c]
    header, rows = _read_table(table, options.delimiter, scan, required)
    ci_path = _column(header, options.path_column, "path_column", table)
    ci_label = _column(header, options.label_column, "label_column", table)
    ci_patient = (_column(header, options.patient_column, "patient_column", table)
                  if options.patient_column is not None else None)
    pos = {normalize_label(v) for v in options.positive}
    neg = None if options.negative is None else {normalize_label(v) for v in options.negative}
    excl = {normalize_label(v) for v in options.exclude}
    base = table.parent
    unknown: dict[str, list[int]] = defaultdict(list)
    no_label, no_patient = [], []
    entries: dict[str, dict] = {}  # image id -> merged row
    merged, conflicts = 0, []
    cell = lambda row, i: row[i].strip() if i is not None and i < len(row) else ""
    for line, row in rows:
        raw_path, raw_label = cell(row, ci_path), cell(row, ci_label)
        if not raw_path:
            scan.problems.append(f"{table.name} line {line}: empty {options.path_column!r} cell")
            continue
        lab = normalize_label(raw_label)
        if not raw_label:
            no_label.append(f"line {line}")
            scan.excluded["missing label"] += 1
            continue
        if lab in excl:
            scan.excluded[f"label {raw_label!r} excluded (data.csv.exclude)"] += 1
            continue
        if lab in pos:
            label = 1
        elif neg is None or lab in neg:
            label = 0
        else:
            unknown[raw_label].append(line)
            continue
        patient = cell(row, ci_patient) if ci_patient is not None else None
        if ci_patient is not None and not patient:
            no_patient.append(f"line {line}")
            scan.excluded["missing patient id"] += 1
            continue
        path, image_id = _resolve(raw_path, base, root)
        if image_id in entries:  # one row per lesion: the image is malignant if any row says so
            e = entries[image_id]
            merged += 1
            e["label"] = max(e["label"], label)
            e["labels_raw"].append(raw_label)
            if patient != e["patient"]:
                conflicts.append(f"{image_id} ({e['patient']} vs {patient})")
            continue
        entries[image_id] = {"path": path, "label": label, "patient": patient, "line": line,
                             "labels_raw": [raw_label]}
    if unknown:
        listed = "; ".join(f"{v!r} ({len(ls)} row(s), first at line {ls[0]})" for v, ls in unknown.items())
        raise DatasetFormatError(
            f"csv: {table.name} column {options.label_column!r} has value(s) that are neither positive "
            f"({', '.join(options.positive)}) nor negative ({', '.join(options.negative or ())}): {listed}; add them "
            "to data.csv.positive, data.csv.negative or data.csv.exclude")
    for image_id, e in entries.items():
        path: Path = e["path"]
        problem, _ = probe(path, reader_for(path))
        if problem:
            scan.problems.append(f"{image_id} ({table.name} line {e['line']}): {problem}")
            continue
        scan.items.append(Item(image_id=image_id, label=e["label"], path=path, reader=reader_for(path),
                               patient_id=e["patient"],
                               meta={"label_raw": e["labels_raw"][0], "line": e["line"],
                                     **({"labels_raw": e["labels_raw"]} if len(e["labels_raw"]) > 1 else {})}))
    if no_label:
        scan.warnings.append(f"{len(no_label)} row(s) with an empty {options.label_column!r} cell excluded: "
                             f"{examples(no_label)}")
    if no_patient:
        scan.warnings.append(f"{len(no_patient)} row(s) with an empty {options.patient_column!r} cell excluded: "
                             f"{examples(no_patient)}")
    if merged:
        scan.warnings.append(f"{merged} row(s) repeat an image already listed; merged (malignant if any row says so)")
    if conflicts:
        scan.warnings.append(f"{len(conflicts)} image(s) listed with different patients; the first row's patient "
                             f"is used: {examples(conflicts)}")
    return scan


CSV_SPEC = register_dataset(real_dataset_spec(
    "csv", scan_csv, CsvOptions, modality="any",
    description="your own images listed in a CSV table (options: file, path_column, label_column, patient_column)"))
