"""Breast-ultrasound datasets: ``busi`` (Dataset_BUSI_with_GT) and ``rodrigues-us`` (Rodrigues 2017 BMPs).

Neither releases patient ids, so their scans have ``has_patients=False`` and the splitter falls back to
one group per image. BUSI has 780 images from 600 women, so some women contribute several images; see
../shared/DATASETS.md section 4 and 6 for the formats and this limitation.

``busi``::

    Dataset_BUSI_with_GT/
      benign/     benign (1).png, benign (1)_mask.png, benign (1)_mask_1.png, ...   (437 images)
      malignant/  malignant (1).png, malignant (1)_mask.png, ...                     (210 images)
      normal/     normal (1).png, normal (1)_mask.png, ...   <- masks all zero        (133 images)

The label is the folder (malignant = 1; benign and, by default, normal = 0). ``<stem>_mask.png`` and
``<stem>_mask_<n>.png`` are the lesion masks of ``<stem>.png``: they are attached to it (merged by
pixel-wise max when read) and never taken as samples, the trap of Keras-style folder loaders. Images
are PNG, sometimes saved with three identical channels; all are read as grayscale.

``rodrigues-us``::

    originals/
      benign/     *.bmp   (100)
      malignant/  *.bmp   (150)

Small grayscale lesion crops of varying size; the label is the folder. Not the same dataset as BUSI,
although several repositories cite this one's DOI for BUSI.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from bench.data.base import DatasetFormatError, DatasetOptions, register_dataset
from bench.data.cache import real_dataset_spec
from bench.data.helpers import (
    IMAGE_EXTENSIONS,
    ImageGroup,
    check_group,
    describe_dir,
    list_files,
    locate_layout,
    pair_masks,
    relpath,
    subdirs,
    summarize_files,
    warn_mismatched,
)
from bench.data.items import Item, Scan

BUSI_CLASSES = {"benign": 0, "malignant": 1, "normal": 0}
RODRIGUES_CLASSES = {"benign": 0, "malignant": 1}
BMP = frozenset({".bmp"})


class BusiOptions(DatasetOptions):
    """``busi``: Dataset_BUSI_with_GT (``data.busi`` in a suite)."""

    modality: ClassVar[str] = "ultrasound"
    normal: Literal["negative", "drop"] = Field(
        "negative", description="images of normal/: 'negative' keeps them as label 0 (malignant vs rest, "
                                "780 images); 'drop' excludes them (lesion classification, 647 images)")


class RodriguesOptions(DatasetOptions):
    """``rodrigues-us``: Rodrigues 2017 breast ultrasound BMPs (no options)."""

    modality: ClassVar[str] = "ultrasound"


def _has_classes(*required: str):
    def ok(folder: Path) -> bool:
        return set(required) <= set(subdirs(folder))
    return ok


def _unexpected_folders(scan: Scan, base: Path, known: dict[str, int]) -> None:
    extra = [d.name + "/" for k, d in subdirs(base).items() if k not in known]
    if extra:
        scan.warnings.append(f"sub-folder(s) not part of the dataset ignored under {base}: {', '.join(extra)}")


def _wrong_prefix(stem: str, cls: str, classes: dict[str, int]) -> bool:
    """True when a BUSI file name names another class than its folder (``malignant (3).png`` in benign/)."""
    low = stem.casefold()
    return any(low.startswith(c) for c in classes if c != cls) and not low.startswith(cls)


def scan_busi(options: BusiOptions, root: Path) -> Scan:
    """Scan Dataset_BUSI_with_GT (the folder itself, or a folder holding it)."""
    root = Path(root)
    base = locate_layout(root, _has_classes("benign", "malignant"), prefer=("Dataset_BUSI_with_GT",))
    if base is None:
        hint = ""
        if "originals" in subdirs(root):
            hint = " (an originals/ folder with BMPs is the Rodrigues set: use dataset rodrigues-us)"
        raise DatasetFormatError(f"busi: expected sub-folders benign/, malignant/, normal/ under {root} (the "
                                 f"Dataset_BUSI_with_GT folder); found: {describe_dir(root)}{hint}. Point the root "
                                 "at Dataset_BUSI_with_GT")
    if _looks_like_rodrigues(base):
        raise DatasetFormatError(f"busi: {base}/benign/ and malignant/ hold only .bmp images and no _mask file: that "
                                 "is the Rodrigues 2017 set (originals/*.bmp), not BUSI (PNG images with _mask "
                                 "files); use dataset rodrigues-us, or point the root at Dataset_BUSI_with_GT")
    scan = Scan(dataset="busi", root=base, has_patients=False)
    dirs = subdirs(base)
    _unexpected_folders(scan, base, BUSI_CLASSES)
    no_mask, orphans, non_images, nested, misnamed, mismatched = [], [], [], [], [], []
    for cls, label in BUSI_CLASSES.items():
        d = dirs.get(cls)
        if d is None:  # benign/ and malignant/ exist (locate_layout); normal/ may be missing
            if options.normal == "negative":
                scan.warnings.append(f"no normal/ folder under {base}: only benign and malignant images (the full "
                                     "dataset has 133 normal images)")
            continue
        files, others, skipped = list_files(d, recursive=False, extensions=IMAGE_EXTENSIONS)
        groups, orph = pair_masks(files)
        if cls == "normal" and options.normal == "drop":
            if groups:
                scan.excluded["normal (data.busi.normal: drop)"] += len(groups)
            continue
        orphans += orph
        non_images += others
        nested += skipped
        if not groups:
            scan.warnings.append(f"{cls}/ holds no image")
        for g in groups:
            masks = check_group(scan, g, base, mismatched)
            if masks is None:
                continue
            if not g.masks:
                no_mask.append(g.image)
            if _wrong_prefix(g.image.stem, cls, BUSI_CLASSES):
                misnamed.append(g.image)
            scan.items.append(Item(image_id=relpath(g.image, base), label=label, path=g.image,
                                   mask_paths=tuple(masks), meta={"class": cls, "masks": len(masks)}))
    summarize_files(scan, "image(s) without a mask file (kept; no lesion mask)", no_mask, base)
    summarize_files(scan, "mask(s) without their image (not samples; ignored)", orphans, base)
    warn_mismatched(scan, mismatched)
    summarize_files(scan, "non-image file(s) ignored", non_images, base)
    summarize_files(scan, "nested folder(s) inside class folders ignored", nested, base)
    summarize_files(scan, "file(s) named after another class than their folder (label taken from the folder)",
                    misnamed, base)
    return scan


def _looks_like_rodrigues(folder: Path) -> bool:
    files = [p for d in subdirs(folder).values() for p in list_files(d, recursive=False)[0]]
    return bool(files) and all(p.suffix.casefold() in BMP and "_mask" not in p.stem.casefold() for p in files)


def _looks_like_busi(folder: Path) -> bool:
    files = [p for d in subdirs(folder).values() for p in list_files(d, recursive=False)[0]]
    return any("_mask" in p.stem.casefold() for p in files)


def scan_rodrigues(options: RodriguesOptions, root: Path) -> Scan:
    """Scan the Rodrigues 2017 ``originals/`` folder (the folder itself, or the archive folder holding it)."""
    root = Path(root)
    base = locate_layout(root, _has_classes("benign", "malignant"), prefer=("originals",))
    expected = f"expected originals/benign/*.bmp and originals/malignant/*.bmp under {root}"
    if base is None:
        raise DatasetFormatError(f"rodrigues-us: {expected}; found: {describe_dir(root)}. Point the root at the "
                                 "unpacked archive or at its originals/ folder")
    scan = Scan(dataset="rodrigues-us", root=base, has_patients=False)
    dirs = subdirs(base)
    _unexpected_folders(scan, base, RODRIGUES_CLASSES)
    not_bmp, non_images = [], []
    for cls, label in RODRIGUES_CLASSES.items():
        bmps, others, _ = list_files(dirs[cls], recursive=True, extensions=BMP)
        for p in others:
            (not_bmp if p.suffix.casefold() in IMAGE_EXTENSIONS else non_images).append(p)
        for p in bmps:
            if check_group(scan, ImageGroup(p), base) is not None:
                scan.items.append(Item(image_id=relpath(p, base), label=label, path=p, meta={"class": cls}))
    if not scan.items and not scan.problems:
        hint = (" The folders hold PNG images with _mask files: that is BUSI; use dataset busi."
                if _looks_like_busi(base) else "")
        raise DatasetFormatError(f"rodrigues-us: {expected}; found no .bmp file in {base}/benign/ or "
                                 f"{base}/malignant/ (they hold: {describe_dir(dirs['benign'])}).{hint}")
    if not_bmp:
        scan.excluded["not a .bmp (the Rodrigues images are BMP)"] += len(not_bmp)
    summarize_files(scan, "image file(s) that are not .bmp excluded", not_bmp, base)
    summarize_files(scan, "non-image file(s) ignored", non_images, base)
    return scan


BUSI_SPEC = register_dataset(real_dataset_spec(
    "busi", scan_busi, BusiOptions, modality="ultrasound",
    description="BUSI (Dataset_BUSI_with_GT): 780 ultrasound PNGs, benign/malignant/normal folders, lesion masks"))
RODRIGUES_SPEC = register_dataset(real_dataset_spec(
    "rodrigues-us", scan_rodrigues, RodriguesOptions, modality="ultrasound",
    description="Rodrigues 2017 breast ultrasound: 250 BMP lesion crops in originals/benign, originals/malignant"))
