"""Generic adapters for data of your own: ``folder`` (one sub-folder per class) and ``csv`` (a label table).

Both accept PNG, PGM, BMP, JPEG and TIFF (decoded with Pillow) and DICOM (files ending in ``.dcm`` or
``.dicom``). Labels follow the harness convention, 1 = malignant; the options name which folder names or
label values are positive and which negative, and anything not named is an error that lists it, so that a
typo can never silently turn a class into negatives.

``folder``::

    ROOT/
      malignant/  *.png ...        <- data.folder.positive: [malignant]
      benign/     *.png ...        <- data.folder.negative: [benign, normal]
      normal/     ...

Files inside nested sub-folders of a class folder belong to that class (``recursive``). Lesion masks
lying next to their image (``<stem>_mask.png``, ``<stem>_mask_1.png``: BUSI style, ``mask_pattern``) are
attached to the image and never taken as samples.

``csv``: one row per image (or per lesion: rows naming the same file are merged, malignant if any row
says so), with a path column (relative to the CSV's folder or to the root, or absolute), a label column and optionally
a patient column::

    path,label,patient
    images/a.png,malignant,P01
    images/b.png,benign,P01

This module also holds the helpers that the other folder-based adapters (``busi``, ``rodrigues-us``,
``breastmnist``) share: listing image files, pairing masks with images, a cheap header probe that finds
missing and unreadable files without decoding them, and layout error messages.
"""
from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from bench.data import DatasetOptions, register_dataset
from bench.data.items import DatasetFormatError, Item, Reader, Scan, real_dataset_spec

IMAGE_EXTENSIONS = frozenset({".png", ".pgm", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"})
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})
SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS | DICOM_EXTENSIONS
JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx", "@eadir"})
DEFAULT_MASK_PATTERN = r"_mask(?:_(\d+))?$"
MAX_EXAMPLES = 5


# ----------------------------------------------------------------------------------------------------------
# Shared helpers (used by ultrasound.py and breastmnist.py too)
# ----------------------------------------------------------------------------------------------------------

def decode_text(raw: bytes) -> tuple[str, str]:
    """A metadata file's text and the encoding read: UTF-8 (BOM optional), UTF-16 when it starts with a
    UTF-16 BOM (Notepad's "Unicode", Excel's "Unicode Text"), else Windows-1252 (a spreadsheet re-save on
    Windows; Latin-1 text reads the same), undefined bytes replaced. Callers warn when it is not UTF."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16"), "utf-16"
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "windows-1252"


def natural_key(text: str) -> list:
    """Sort key that orders ``benign (2)`` before ``benign (10)``."""
    return [int(t) if t.isdigit() else t.casefold() for t in re.split(r"(\d+)", text)]


def is_junk(path: Path) -> bool:
    """Hidden files and OS clutter (``.DS_Store``, ``Thumbs.db``, ``__MACOSX/``) that are never data."""
    return path.name.startswith(".") or path.name.casefold() in JUNK_NAMES


def reader_for(path: Path) -> Reader:
    """How to decode a file, from its extension: ``.dcm``/``.dicom`` is DICOM, anything else goes to Pillow."""
    return "dicom" if path.suffix.casefold() in DICOM_EXTENSIONS else "image"


def subdirs(folder: Path) -> dict[str, Path]:
    """Non-junk sub-folders of ``folder`` by case-folded name."""
    return {p.name.casefold(): p for p in sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
            if p.is_dir() and not is_junk(p)}


def describe_dir(folder: Path, limit: int = 12) -> str:
    """What a folder holds, for error messages: ``a.png, xyz/, ... (+3 more)``, or ``nothing``."""
    try:
        entries = sorted((p for p in folder.iterdir() if not is_junk(p)), key=lambda p: natural_key(p.name))
    except OSError as exc:
        return f"(cannot list: {exc.strerror})"
    if not entries:
        return "nothing (empty folder)"
    names = [p.name + ("/" if p.is_dir() else "") for p in entries]
    more = f", ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def examples(values: Iterable[str], n: int = MAX_EXAMPLES) -> str:
    """The first ``n`` values joined for a message, with ``(+k more)`` when there are more."""
    values = list(values)
    more = f" (+{len(values) - n} more)" if len(values) > n else ""
    return ", ".join(values[:n]) + more


def relpath(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form when it lies under it, else the full path."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def locate_layout(root: Path, ok: Callable[[Path], bool], *, prefer: tuple[str, ...] = (),
                  depth: int = 2) -> Path | None:
    """The folder at or below ``root`` whose layout passes ``ok``.

    Users point at the folder the archive unpacked into as often as at the dataset folder itself, so
    this also looks inside a sub-folder named in ``prefer`` (e.g. ``originals``) or inside the only
    sub-folder of ``root``, up to ``depth`` levels down.
    """
    if ok(root):
        return root
    if depth <= 0:
        return None
    subs = subdirs(root)
    for name in prefer:
        if name.casefold() in subs and (found := locate_layout(subs[name.casefold()], ok, depth=depth - 1)):
            return found
    if len(subs) == 1:
        return locate_layout(next(iter(subs.values())), ok, prefer=prefer, depth=depth - 1)
    return None


def list_files(folder: Path, *, recursive: bool,
               extensions: frozenset[str] = SUPPORTED_EXTENSIONS) -> tuple[list[Path], list[Path], list[Path]]:
    """Files under ``folder`` in natural order, skipping junk.

    Returns:
        (files with one of ``extensions``, other files, sub-folders not entered because not ``recursive``).
    """
    wanted, others, skipped_dirs = [], [], []
    stack = [folder]
    while stack:
        d = stack.pop()
        for p in d.iterdir():
            if is_junk(p):
                continue
            if p.is_dir():
                (stack if recursive else skipped_dirs).append(p)
            elif p.suffix.casefold() in extensions:
                wanted.append(p)
            else:
                others.append(p)
    key = lambda p: natural_key(p.relative_to(folder).as_posix())
    return sorted(wanted, key=key), sorted(others, key=key), sorted(skipped_dirs, key=key)


def probe(path: Path, reader: Reader = "image") -> tuple[str | None, tuple[int, int] | None]:
    """Check that a referenced file exists and has a readable header, without decoding its pixels.

    Cheap enough to run on every scan (Pillow reads only the header; pydicom stops before the pixel
    data), so it cannot see a file truncated in its pixel data: decoding (``bench data check``, the
    first load) finds those.

    Returns:
        (problem or None, (width, height) or None).
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing file", None
    except OSError as exc:
        return f"unreadable ({exc.strerror})", None
    if not path.is_file():
        return "not a file", None
    if st.st_size == 0:
        return "unreadable (empty file)", None
    if reader == "dicom":
        import pydicom

        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:  # pydicom raises many types for a broken file
            return f"unreadable DICOM ({type(exc).__name__}: {exc})", None
        if "Rows" not in ds or "Columns" not in ds:
            return "DICOM without an image (no Rows/Columns)", None
        return None, (int(ds.Columns), int(ds.Rows))
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return None, im.size
    except UnidentifiedImageError:
        return "unreadable image (not a PNG/PGM/BMP/JPEG/TIFF file: Pillow cannot identify it)", None
    except (OSError, SyntaxError, ValueError) as exc:
        return f"unreadable image ({type(exc).__name__}: {str(exc).replace(str(path), path.name)})", None


@dataclass
class ImageGroup:
    """An image file and the mask files that belong to it."""

    image: Path
    masks: list[Path] = field(default_factory=list)


def pair_masks(files: list[Path], mask_pattern: str | None = DEFAULT_MASK_PATTERN
               ) -> tuple[list[ImageGroup], list[Path]]:
    """Split the files of one folder into images (each with its masks) and masks without an image.

    A file whose stem matches ``mask_pattern`` (default ``_mask`` or ``_mask_<n>`` at the end) is a mask
    of the image with the rest of the stem, in the same folder, whatever its extension; it is never a
    sample. Masks are ordered ``_mask``, ``_mask_1``, ``_mask_2``, ...

    Returns:
        (image groups in the order of ``files``, orphan masks).
    """
    if not mask_pattern:
        return [ImageGroup(f) for f in files], []
    rx = re.compile(mask_pattern)
    images: list[ImageGroup] = []
    masks: dict[tuple[Path, str], list[tuple[int, Path]]] = defaultdict(list)
    for f in files:
        m = rx.search(f.stem)
        if m is None:
            images.append(ImageGroup(f))
        else:
            nums = [g for g in m.groups() if g is not None and g.isdigit()]
            masks[(f.parent, f.stem[:m.start()].casefold())].append((int(nums[0]) if nums else 0, f))
    for g in images:
        found = masks.get((g.image.parent, g.image.stem.casefold()))
        if found:
            g.masks = [p for _, p in sorted(found, key=lambda t: (t[0], natural_key(t[1].name)))]
    taken = {(g.image.parent, g.image.stem.casefold()) for g in images}
    orphans = sorted((p for k, v in masks.items() if k not in taken for _, p in v), key=lambda p: natural_key(str(p)))
    return images, orphans


def check_group(scan: Scan, group: ImageGroup, base: Path, mismatched: list[str] | None = None) -> list[Path] | None:
    """Probe an image and its masks, recording missing or unreadable files in ``scan.problems``.

    Args:
        mismatched: collects ``mask (WxH vs image WxH)`` for masks whose size differs from their image's
            (see :func:`warn_mismatched`).

    Returns:
        The readable masks, or None when the image itself is missing or unreadable (then it is no item).
    """
    problem, size = probe(group.image, reader_for(group.image))
    if problem:
        scan.problems.append(f"{relpath(group.image, base)}: {problem}")
        return None
    good = []
    for m in group.masks:
        mproblem, msize = probe(m, reader_for(m))
        if mproblem:
            scan.problems.append(f"{relpath(m, base)}: {mproblem} (mask of {group.image.name})")
            continue
        if msize != size and mismatched is not None:
            mismatched.append(f"{relpath(m, base)} ({msize[0]}x{msize[1]} vs image {size[0]}x{size[1]})")
        good.append(m)
    return good


def warn_mismatched(scan: Scan, mismatched: list[str]) -> None:
    """One warning for the masks whose size differs from their image's."""
    if mismatched:
        scan.warnings.append(f"{len(mismatched)} mask(s) of another size than their image (resized to the image "
                             f"when read): {examples(mismatched)}")


def read_mask(item: Item, shape: tuple[int, int] | None = None) -> np.ndarray | None:
    """The item's lesion mask: all of its mask files merged by pixel-wise max (OR), as a 2-d bool array.

    Args:
        shape: (height, width) to resize every mask to (nearest neighbour), normally the image's; default:
            the first mask's.

    Returns:
        None when the item has neither mask files nor mask shapes.
    """
    from PIL import Image

    from bench.data import imageio

    merged = None
    for p in item.mask_paths:
        m = (imageio.read_dicom(p) if reader_for(p) == "dicom" else imageio.read_image(p)) > 0
        target = shape or (merged.shape if merged is not None else m.shape)
        if m.shape != tuple(target):
            m = np.asarray(Image.fromarray(m).resize((target[1], target[0]), Image.Resampling.NEAREST))
        merged = m if merged is None else merged | m
    if item.mask_shapes is not None:
        target = shape or (merged.shape if merged is not None else item.mask_frame)
        if target is None:
            raise ValueError(f"{item.image_id}: mask shapes need the image shape or Item.mask_frame")
        drawn = draw_shapes(item.mask_shapes, tuple(target), item.mask_frame)
        merged = drawn if merged is None else merged | drawn
    return merged


def draw_shapes(shapes, shape: tuple[int, int], frame: tuple[int, int] | None = None) -> np.ndarray:
    """Rasterise ``("polygon", ((row, col), ...))`` and ``("circle", (row, col, radius))`` outlines into a
    boolean mask of ``shape``; coordinates in ``frame`` pixels are scaled to ``shape`` (scikit-image draw)."""
    from skimage.draw import disk, polygon

    mask = np.zeros(shape, bool)
    fy, fx = (shape[0] / frame[0], shape[1] / frame[1]) if frame else (1.0, 1.0)
    for kind, data in shapes:
        if kind == "polygon":
            pts = np.asarray(data, float)
            rr, cc = polygon(pts[:, 0] * fy, pts[:, 1] * fx, shape=shape)
        elif kind == "circle":
            r, c, rad = data
            rr, cc = disk((r * fy, c * fx), max(1.0, rad * (fy + fx) / 2), shape=shape)
        else:
            raise ValueError(f"unknown mask shape {kind!r} (polygon or circle)")
        mask[rr, cc] = True
    return mask


def summarize_files(scan: Scan, what: str, paths: list[Path], base: Path, advice: str = "") -> None:
    """Add one warning for a list of files (count and the first few), if there are any."""
    if paths:
        scan.warnings.append(f"{len(paths)} {what}: {examples([relpath(p, base) for p in paths])}"
                             + (f"; {advice}" if advice else ""))


def _names(values: Iterable[str]) -> tuple[str, ...]:
    out = tuple(str(v).strip() for v in values)
    if any(not v for v in out):
        raise ValueError("names must not be empty")
    return out


# ----------------------------------------------------------------------------------------------------------
# folder
# ----------------------------------------------------------------------------------------------------------

class FolderOptions(DatasetOptions):
    """``folder``: one sub-folder per class under the dataset root (``data.folder`` in a suite)."""

    positive: tuple[str, ...] = Field(("malignant",), min_length=1,
                                      description="class folder names whose images are malignant (label 1)")
    negative: tuple[str, ...] = Field(("benign", "normal"), min_length=1,
                                      description="class folder names whose images are benign or normal (label 0)")
    ignore: tuple[str, ...] = Field((), description="sub-folders to skip (their images are counted as excluded)")
    recursive: bool = Field(True, description="take images in nested folders of a class folder as that class")
    mask_pattern: str | None = Field(DEFAULT_MASK_PATTERN,
                                     description="regex on the file stem marking lesion masks (never samples); "
                                                 "the stem before the match names the image; null: no masks")
    patient_pattern: str | None = Field(None, description="regex searched in the image path relative to the root; "
                                                          "its first group (or the match) is the patient id; "
                                                          "null: no patient ids")
    modality: Literal["mammography", "ultrasound"] = Field("mammography", description="imaging modality")

    @field_validator("positive", "negative", "ignore", mode="before")
    @classmethod
    def _listify(cls, v):
        return (v,) if isinstance(v, str) else v

    @field_validator("positive", "negative", "ignore")
    @classmethod
    def _not_blank(cls, v):
        return _names(v)

    @field_validator("mask_pattern", "patient_pattern")
    @classmethod
    def _regex(cls, v):
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return v

    @model_validator(mode="after")
    def _disjoint(self):
        seen: dict[str, str] = {}
        for role in ("positive", "negative", "ignore"):
            for name in getattr(self, role):
                if name.casefold() in seen and seen[name.casefold()] != role:
                    raise ValueError(f"folder name {name!r} is both {seen[name.casefold()]} and {role}; "
                                     "keep it in one list")
                seen[name.casefold()] = role
        return self


def _patient(pattern: re.Pattern, text: str) -> str | None:
    m = pattern.search(text)
    if m is None:
        return None
    return next((g for g in m.groups() if g), None) if m.groups() else m.group(0) or None


def scan_folder(options: FolderOptions, root: Path) -> Scan:
    """Scan a folder with one sub-folder per class (see the module docstring)."""
    root = Path(root)
    role = {n.casefold(): 1 for n in options.positive} | {n.casefold(): 0 for n in options.negative}
    ignored = {n.casefold() for n in options.ignore}
    layout = (f"one sub-folder per class under {root} (positive: {', '.join(n + '/' for n in options.positive)}; "
              f"negative: {', '.join(n + '/' for n in options.negative)})")
    dirs = subdirs(root)
    if not dirs:
        raise DatasetFormatError(f"folder: expected {layout}; found: {describe_dir(root)}. Put each class's "
                                 "images in its own sub-folder, or list them in a table and use the csv dataset")
    unknown = [d.name + "/" for k, d in dirs.items() if k not in role and k not in ignored]
    if unknown:
        raise DatasetFormatError(
            f"folder: sub-folder(s) {', '.join(unknown)} under {root} are neither positive "
            f"({', '.join(options.positive)}) nor negative ({', '.join(options.negative)}); add each to "
            "data.folder.positive, data.folder.negative or data.folder.ignore")
    scan = Scan(dataset="folder", root=root, has_patients=options.patient_pattern is not None)
    # Folders the user named, and a class none of whose folders exists; not a default alternative that is absent
    # while another folder of its class is there (benign/ without normal/ is the usual two-folder layout).
    absent = [n for field in ("positive", "negative") for names in [getattr(options, field)]
              if field in options.model_fields_set or not any(x.casefold() in dirs for x in names)
              for n in names if n.casefold() not in dirs]
    if not any(k in dirs for k in role):
        raise DatasetFormatError(f"folder: expected {layout}; found: {describe_dir(root)}")
    if absent:
        scan.warnings.append(f"configured class folder(s) not found under {root}: {', '.join(absent)}")
    loose, _, _ = list_files(root, recursive=False)
    if loose:
        scan.excluded["not in a class folder"] += len(loose)
        summarize_files(scan, "image file(s) directly under the root, not in a class folder, skipped", loose, root)
    patient_rx = re.compile(options.patient_pattern) if options.patient_pattern else None
    non_images, nested, orphans, no_patient, mismatched = [], [], [], [], []
    found = {0: 0, 1: 0}  # image files per label, readable or not
    for key, d in dirs.items():
        files, others, skipped = list_files(d, recursive=options.recursive)
        groups, orph = pair_masks(files, options.mask_pattern)
        if key in ignored:
            if groups:
                scan.excluded[f"in ignored folder {d.name}/"] += len(groups)
            continue
        found[role[key]] += len(groups)
        if not groups:
            scan.warnings.append(f"class folder {d.name}/ holds no image")
        non_images += others
        nested += skipped
        orphans += orph
        for g in groups:
            masks = check_group(scan, g, root, mismatched)
            if masks is None:
                continue
            image_id = relpath(g.image, root)
            patient = None
            if patient_rx is not None:
                patient = _patient(patient_rx, image_id)
                if patient is None:
                    no_patient.append(g.image)
                    scan.excluded["no patient id (patient_pattern did not match)"] += 1
                    continue
            scan.items.append(Item(image_id=image_id, label=role[key], path=g.image, reader=reader_for(g.image),
                                   patient_id=patient, mask_paths=tuple(masks),
                                   meta={"class": d.name, "masks": len(masks)}))
    for label, names, option in ((1, options.positive, "positive"), (0, options.negative, "negative")):
        if not found[label] and found[1 - label]:  # one class only: every AUC would be undefined
            # a warning here, so that `bench data check` still prints the counts; it exits 1 and loading refuses
            scan.warnings.append(
                f"folder: no image in the {option} class folder(s) {', '.join(n + '/' for n in names)} under {root} "
                f"(missing or empty), so every image would be label {1 - label} and no AUC could be computed. Put "
                f"the {'malignant' if label else 'benign/normal'} images there, or name their folder in "
                f"data.folder.{option}")
    summarize_files(scan, "non-image file(s) ignored", non_images, root)
    summarize_files(scan, "nested folder(s) inside class folders not read", nested, root,
                    "set data.folder.recursive: true to read them")
    summarize_files(scan, "mask(s) without their image ignored", orphans, root)
    warn_mismatched(scan, mismatched)
    summarize_files(scan, "image(s) whose path does not match patient_pattern, excluded", no_patient, root,
                    "fix data.folder.patient_pattern")
    return scan


# ----------------------------------------------------------------------------------------------------------
# csv
# ----------------------------------------------------------------------------------------------------------

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


FOLDER_SPEC = register_dataset(real_dataset_spec(
    "folder", scan_folder, FolderOptions, modality="any",
    description="your own images, one sub-folder per class (options: positive, negative, ignore)"))
CSV_SPEC = register_dataset(real_dataset_spec(
    "csv", scan_csv, CsvOptions, modality="any",
    description="your own images listed in a CSV table (options: file, path_column, label_column, patient_column)"))
