"""Resolving full images, crops and masks under the CBIS-DDSM case folders: the TCIA layouts (quirk Q3) and
the Kaggle JPEG re-export (see :mod:`bench.data.cbis_ddsm`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data.cbis_ddsm.csvs import Row


@dataclass
class _Header:
    bits: int
    shape: tuple[int, int]
    description: str


class Tree:
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

    def roi_files(self, row: Row) -> tuple[Path | None, Path | None, str]:
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


class KaggleTree:
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
        import pandas as pd  # 0.3 s to import: only when a CSV is read

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

    def roi_files(self, row: Row) -> tuple[Path | None, Path | None, str]:
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
