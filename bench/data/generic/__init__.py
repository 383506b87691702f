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

The adapters live in :mod:`bench.data.generic.folder` and :mod:`bench.data.generic.table`; the file helpers
they share with the other adapters in :mod:`bench.data.helpers` (re-exported here, where they used to live).
"""
from __future__ import annotations

from bench.data.generic.folder import FOLDER_SPEC, FolderOptions, scan_folder
from bench.data.generic.table import CSV_SPEC, CsvOptions, normalize_label, scan_csv
from bench.data.helpers import (
    DEFAULT_MASK_PATTERN,
    DICOM_EXTENSIONS,
    IMAGE_EXTENSIONS,
    JUNK_NAMES,
    MAX_EXAMPLES,
    SUPPORTED_EXTENSIONS,
    ImageGroup,
    check_group,
    decode_text,
    describe_dir,
    draw_shapes,
    examples,
    is_junk,
    list_files,
    locate_layout,
    natural_key,
    pair_masks,
    probe,
    read_mask,
    reader_for,
    relpath,
    subdirs,
    summarize_files,
    warn_mismatched,
)

__all__ = ["CSV_SPEC", "DEFAULT_MASK_PATTERN", "DICOM_EXTENSIONS", "FOLDER_SPEC", "IMAGE_EXTENSIONS", "JUNK_NAMES",
           "MAX_EXAMPLES", "SUPPORTED_EXTENSIONS", "CsvOptions", "FolderOptions", "ImageGroup", "check_group",
           "decode_text", "describe_dir", "draw_shapes", "examples", "is_junk", "list_files", "locate_layout",
           "natural_key", "normalize_label", "pair_masks", "probe", "read_mask", "reader_for", "relpath", "scan_csv",
           "scan_folder", "subdirs", "summarize_files", "warn_mismatched"]
