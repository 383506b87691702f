"""mini-MIAS: 322 digitised-film mammograms (8-bit PGM, 1024 x 1024) and their ``Info.txt`` list.

Layout read (../shared/DATASETS.md section 3)::

    <root>/
      Info.txt                       <- found anywhere under the root (case-insensitive); else the mdb
      all-mias/                         lines of a README are used (the official tarball)
        README, Licence.txt
        mdb001.pgm ... mdb322.pgm    <- found anywhere under the root

``Info.txt`` columns: REFNUM, background tissue (F/G/D), CLASS (CALC CIRC SPIC MISC ARCH ASYM NORM),
SEVERITY (B/M), X, Y, RADIUS - one line per abnormality. Quirks handled:

* Lines are split on any whitespace (trailing spaces, double spaces, tabs, CRLF), and on commas or semicolons
  (a copy re-saved as CSV); only lines whose first token is ``mdbNNN`` are data (header and README prose are
  skipped). A UTF-16 file (Notepad's "Unicode") is read by its BOM.
* Lines have 3 (NORM), 4 (abnormality without location: widely distributed calcifications, mdb059) or 7
  fields; a non-numeric X (``*NOTE 3*`` in some copies) means "no location". Lines with too few fields or an
  unknown class are ignored with a warning.
* Several lines per image (one per abnormality): the image is malignant if any line says ``M``. An image
  listed both as NORM and with an abnormality (copies disagree, e.g. mdb212/mdb214) counts as abnormal.
  Exactly repeated lines are kept once.
* The Y axis points up from the bottom-left corner (README note 3): each located abnormality gets
  ``row = 1024 - Y`` and ``col = X`` (top-left origin, in the 1024 x 1024 film frame) in ``meta``.
* Patient = film pair (README note 1): ``mdb(2k-1)`` (right) and ``mdb(2k)`` (left) share the patient id
  ``"mdb(2k-1)+mdb(2k)"``; laterality is R for odd, L for even numbers. The view is not set (MLO is
  unconfirmed).
* An Info line without its image file is a problem (one line naming the Info line and the expected path);
  an image without an Info line is excluded (it has no label) and named in a warning.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field

from bench.data.base import DatasetFormatError, DatasetOptions, register_dataset
from bench.data.cache import real_dataset_spec
from bench.data.helpers import decode_text, describe_dir, examples
from bench.data.items import Item, Scan

NAME = "mias"
FILM_SIZE = 1024  # pixels; Info.txt coordinates refer to this frame
BACKGROUNDS = {"F": "fatty", "G": "fatty-glandular", "D": "dense-glandular"}
CLASSES = ("CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM", "NORM")
IMAGE_SUFFIXES = (".pgm", ".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg")  # .pgm preferred, others warned
EXPECTED = ("expected the mini-MIAS layout: Info.txt (REFNUM BG CLASS SEVERITY X Y RADIUS, one line per "
            "abnormality) and the images mdb001.pgm ... mdb322.pgm (e.g. in all-mias/)")
_REF = re.compile(r"^mdb(\d{3})$", re.IGNORECASE)
_NUM = re.compile(r"^[+-]?\d+(\.\d+)?$")
_SEP = re.compile(r"[\s,;]+")  # whitespace; commas or semicolons in a copy re-saved as CSV

Policy = Literal["malignant", "benign-vs-malignant", "abnormal-vs-normal"]


class MIASOptions(DatasetOptions):
    """Options of the ``mias`` dataset (``data.mias`` in a suite; ``bench data check --policy``)."""

    policy: Policy = Field(
        "malignant", description="'malignant' = image positive if any line says M, benign and normal negative; "
                                 "'benign-vs-malignant' = the same without the NORM images (excluded); "
                                 "'abnormal-vs-normal' = any abnormality positive, NORM negative")
    info_file: str | None = Field(
        None, description="the abnormality list, relative to the root (default: the one Info.txt found under the "
                          "root, else the mdb lines of the README)")
    resize: Literal["pad", "stretch"] = Field("pad", description="resize to the square image size keeping the "
                                                                 "aspect ratio (zero padding) or stretching")


MASS_CLASSES = ("CIRC", "SPIC", "MISC")  # circumscribed, spiculated, ill-defined masses


def lesion_kind(abnormalities: list[dict]) -> str | None:
    """``"mass"``, ``"calc"``, both joined by ``+``, ``""`` for a normal film, or None when a finding is neither
    (architectural distortion ARCH, asymmetry ASYM): patch sampling then falls back to 3 classes."""
    kinds = set()
    for r in abnormalities:
        if r["class"] == "CALC":
            kinds.add("calc")
        elif r["class"] in MASS_CLASSES:
            kinds.add("mass")
        else:
            return None
    return "+".join(sorted(kinds))


def patient_of(refnum: str) -> str:
    """The film-pair patient id of ``mdbNNN``: ``mdb(2k-1)+mdb(2k)`` with ``k = (NNN + 1) // 2``."""
    k = (int(refnum[3:]) + 1) // 2
    return f"mdb{2 * k - 1:03d}+mdb{2 * k:03d}"


def _number(tok: str) -> int | float:
    f = float(tok)
    return int(f) if f.is_integer() else f


def parse_info(text: str, *, source: str = "Info.txt") -> tuple[dict[str, list[dict]], list[str]]:
    """Parse the lines of an ``Info.txt`` (or README) into abnormality records per image.

    Args:
        text: the file's text.
        source: the file name used in warnings.

    Returns:
        ``({refnum: [record, ...]}, warnings)``; a record has ``line``, ``background``, ``class``,
        ``severity`` (``"B"``, ``"M"`` or None), and ``x``, ``y``, ``radius``, ``row``, ``col`` (None when the
        line has no location). NORM images have one record with class ``"NORM"``.
    """
    out: dict[str, list[dict]] = {}
    seen: set[tuple[str, ...]] = set()
    warnings: list[str] = []
    for lineno, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        tokens = [t for t in _SEP.split(raw) if t]
        if not tokens or not _REF.match(tokens[0]):
            continue
        where = f"{source} line {lineno}"
        refnum = tokens[0].lower()
        if len(tokens) < 3:
            warnings.append(f"{where}: {raw.strip()!r} has {len(tokens)} field(s), at least REFNUM BG CLASS "
                            "expected; line ignored")
            continue
        if tuple(t.upper() for t in tokens) in seen:
            warnings.append(f"{where}: repeats an earlier line exactly ({raw.strip()!r}); kept once")
            continue
        seen.add(tuple(t.upper() for t in tokens))
        bg, cls = tokens[1].upper(), tokens[2].upper()
        if cls not in CLASSES:
            warnings.append(f"{where}: class {tokens[2]!r} is not one of {', '.join(CLASSES)}; line ignored")
            continue
        if bg not in BACKGROUNDS:
            warnings.append(f"{where}: background tissue {tokens[1]!r} is not F, G or D; kept")
        rec = {"line": lineno, "background": bg if bg in BACKGROUNDS else None, "class": cls, "severity": None,
               "x": None, "y": None, "radius": None, "row": None, "col": None}
        rest = tokens[3:]
        if cls != "NORM":
            if rest and rest[0].upper() in ("B", "M"):
                rec["severity"] = rest[0].upper()
                rest = rest[1:]
            if len(rest) >= 3 and all(_NUM.match(t) for t in rest[:3]):
                x, y, r = (_number(t) for t in rest[:3])
                rec.update(x=x, y=y, radius=r, row=FILM_SIZE - y, col=x)
                if not (0 <= x <= FILM_SIZE and 0 <= y <= FILM_SIZE):
                    warnings.append(f"{where}: centre ({x}, {y}) lies outside the {FILM_SIZE} x {FILM_SIZE} film")
            elif rest:
                rec["note"] = " ".join(rest)  # "*NOTE 3*" or a partial location: no location
                if _NUM.match(rest[0]):  # numbers, but not all three of X Y RADIUS: say so (a *NOTE* is expected)
                    warnings.append(f"{where}: location {rec['note']!r} is not X Y RADIUS; the abnormality is kept "
                                    "without a location (no lesion mask or patch for it)")
        out.setdefault(refnum, []).append(rec)
    return out, warnings


def image_label(records: list[dict], policy: str = "malignant") -> tuple[int | None, str | None]:
    """The label of one image from its Info records under ``policy``: ``(label, None)`` or ``(None, reason)``."""
    abn = [r for r in records if r["class"] != "NORM"]
    if policy == "abnormal-vs-normal":
        return int(bool(abn)), None
    if any(r["severity"] == "M" for r in abn):
        return 1, None
    if any(r["severity"] is None for r in abn):
        return None, "abnormality without severity (B/M)"
    if not abn and policy == "benign-vs-malignant":
        return None, f"normal image (policy {policy})"
    return 0, None


def _read_text(path: Path) -> str:
    try:
        return decode_text(path.read_bytes())[0]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"dataset {NAME!r}: cannot read {path} ({exc}); save it as a plain-text "
                                 "file") from None


def find_list(root: Path, info_file: str | None) -> tuple[Path | None, str, list[str]]:
    """The abnormality list under ``root``: ``(path, text, warnings)``; path None when there is none."""
    if info_file:
        p = Path(info_file) if Path(info_file).is_absolute() else root / info_file
        if not p.is_file():
            raise DatasetFormatError(f"dataset {NAME!r}: info_file {info_file!r} is not a file under {root}; fix "
                                     f"data.{NAME}.info_file (a path relative to the root) or leave it unset")
        return p, _read_text(p), []
    infos = sorted((p for p in root.rglob("*") if p.name.lower() == "info.txt" and p.is_file()),
                   key=lambda p: (len(p.relative_to(root).parts), str(p)))
    if infos:
        texts = {p: _read_text(p) for p in infos}
        distinct = {t.replace("\r\n", "\n").strip() for t in texts.values()}
        if len(distinct) > 1:
            raise DatasetFormatError(f"dataset {NAME!r} at {root}: {len(infos)} different Info.txt files ("
                                     f"{', '.join(p.relative_to(root).as_posix() for p in infos)}); choose one "
                                     f"with data.{NAME}.info_file (or -o info_file=PATH)")
        return infos[0], texts[infos[0]], []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name.lower() in ("readme", "readme.txt"):
            text = _read_text(p)
            if any(_REF.match(ln.split()[0]) for ln in text.splitlines() if ln.split()):
                return p, text, [f"no Info.txt under the root; the mdb lines of {p.relative_to(root).as_posix()} "
                                 "are used as the abnormality list"]
    return None, "", []


def _index_images(root: Path) -> tuple[dict[str, list[Path]], Path | None]:
    """Image files ``mdbNNN.<ext>`` under ``root`` by refnum (.pgm first), and the folder holding most."""
    index: dict[str, list[Path]] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and _REF.match(p.stem) and not p.name.startswith(".") and p.is_file():
            index.setdefault(p.stem.lower(), []).append(p)
    for files in index.values():
        files.sort(key=lambda p: (p.suffix.lower() != ".pgm", len(p.parts), str(p)))
    folders = [files[0].parent for files in index.values()]
    main = max(set(folders), key=folders.count) if folders else None
    return index, main


def scan(options: MIASOptions, root: Path) -> Scan:
    """Read mini-MIAS at ``root`` into items (no pixels are decoded).

    Args:
        options: label policy and, when several lists exist, which one to read.
        root: the folder holding ``Info.txt`` and the ``mdbNNN.pgm`` files (at any depth).

    Returns:
        One item per listed image with a file (sorted by refnum), exclusions by reason, warnings and
        missing-file problems.

    Raises:
        DatasetFormatError: no abnormality list or no image file found, naming what is there instead.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"dataset {NAME!r}: folder {root} does not exist; fix --root or data.{NAME}.root")
    list_path, text, warnings = find_list(root, options.info_file)
    images, main = _index_images(root)
    if list_path is None or not images:
        what = ("no Info.txt (nor a README with mdb lines)" if list_path is None else
                f"{list_path.relative_to(root).as_posix()} but no mdbNNN.pgm image")
        raise DatasetFormatError(f"dataset {NAME!r} at {root}: {EXPECTED}; found {what} - the folder holds "
                                 f"{describe_dir(root)}. Point --root (or data.{NAME}.root) at the folder holding "
                                 "Info.txt and all-mias/")
    source = list_path.relative_to(root).as_posix() if list_path.is_relative_to(root) else str(list_path)
    records, parse_warnings = parse_info(text, source=source)
    out = Scan(dataset=NAME, root=root, warnings=warnings + parse_warnings)
    if not records:
        raise DatasetFormatError(f"dataset {NAME!r}: {source} has no line starting with mdbNNN; {EXPECTED}")
    main_rel = main.relative_to(root).as_posix() if main != root else "."
    other_format, duplicates = [], []
    for refnum in sorted(records):
        recs = records[refnum]
        lines = ("lines " if len(recs) > 1 else "line ") + ", ".join(str(r["line"]) for r in recs)
        files = images.get(refnum)
        if not files:
            out.problems.append(f"{source} {lines} ({refnum}): expected "
                                f"{main_rel}/{refnum}.pgm, not found")
            continue
        path = files[0]
        if len(files) > 1:
            duplicates.append(f"{', '.join(p.relative_to(root).as_posix() for p in files)} -> {path.name}")
        if path.suffix.lower() != ".pgm":
            other_format.append(path.name)
        classes = sorted({r["class"] for r in recs})
        if "NORM" in classes and len(classes) > 1:
            out.warnings.append(f"{refnum} is listed both as NORM and with an abnormality ({source} {lines}; "
                                "copies of the list disagree); treated as abnormal")
            recs = [r for r in recs if r["class"] != "NORM"]
        label, reason = image_label(recs, options.policy)
        if label is None:
            out.excluded[reason] += 1
            if reason.startswith("abnormality without"):
                out.warnings.append(f"{refnum} ({source} {lines}): no line gives its severity B/M; excluded")
            continue
        n = int(refnum[3:])
        abn = [r for r in recs if r["class"] != "NORM"]
        sev = "M" if any(r["severity"] == "M" for r in abn) else ("B" if abn else "NORM")
        meta = {"refnum": refnum, "severity": sev, "label_raw": sev, "background": recs[0]["background"],
                "classes": sorted({r["class"] for r in recs}), "abnormalities": abn,
                "info_lines": [r["line"] for r in recs], "file": path.relative_to(root).as_posix(),
                "coordinates": f"row/col: top-left origin, {FILM_SIZE} x {FILM_SIZE} film (row = {FILM_SIZE} - Y)",
                "lesion_kind": lesion_kind(abn)}
        circles = tuple(("circle", (r["row"], r["col"], r["radius"])) for r in abn if r["row"] is not None)
        # located abnormalities give a mask; an abnormality without coordinates leaves the mask unknown
        shapes = circles if all(r["row"] is not None for r in abn) else None
        out.items.append(Item(image_id=refnum, label=label, path=path, reader="image", patient_id=patient_of(refnum),
                              view=None, laterality="L" if n % 2 == 0 else "R", meta=meta, mask_shapes=shapes,
                              mask_frame=(FILM_SIZE, FILM_SIZE)))
    unlisted = sorted(k for k in images if k not in records)
    if unlisted:
        out.excluded[f"image not listed in {Path(source).name}"] += len(unlisted)
        out.warnings.append(f"{len(unlisted)} image(s) have no line in {source} (no label), ignored: "
                            f"{examples(unlisted)}")
    if duplicates:
        out.warnings.append(f"{len(duplicates)} image(s) have several files (the .pgm, then the shallowest, is "
                            f"used): {examples(duplicates, 3, sep='; ')}")
    if other_format:
        out.warnings.append(f"{len(other_format)} image(s) are not the original PGM (e.g. {other_format[0]}); "
                            f"Info.txt coordinates refer to the {FILM_SIZE} x {FILM_SIZE} original")
    return out


SPEC = register_dataset(real_dataset_spec(
    NAME, scan, MIASOptions, modality="mammography",
    description="mini-MIAS digitised film (PGM), malignant if any Info.txt line says M, patient = film pair"))
