"""``bench data check``: read a whole real dataset and summarise what a careful user needs to know."""
from __future__ import annotations

import sys

import numpy as np
from tqdm import tqdm

from bench.data import imageio
from bench.data.base import DATASETS, DatasetFormatError, data_root
from bench.data.dedup import DEFAULT_MAX_DISTANCE, near_duplicate_groups
from bench.data.helpers import reader_for
from bench.data.items import one_class_message, read_pixels
from bench.data.preprocess import to_uint8

__all__ = ["check_dataset", "format_summary", "one_class_message"]


def check_dataset(name: str, root, options: dict | None = None, *, skip_bad: bool = False,
                  progress: bool = True) -> dict:
    """Scan dataset ``name`` at ``root`` and decode every image.

    Returns the summary dict (``dataset, root, images, positives, negatives, patients, excluded,
    warnings, problems, near_duplicate_groups``; the last is None for datasets with patient ids). Missing or unreadable files are listed under ``problems``; with ``skip_bad``
    they are dropped from the counts and counted under ``excluded`` instead.
    """
    spec = DATASETS.get(name)
    if spec.scan is None:
        raise DatasetFormatError(f"dataset {name!r} is built in (synthetic); there is nothing on disk to check")
    opts = spec.options(**(options or {}))
    scan = spec.scan(opts, data_root(name, root, fix="--root" if root is not None else None))
    good, unreadable, thumbs = [], [], []
    for it in tqdm(scan.items, desc=f"reading {name}", unit="img", file=sys.stderr, disable=not progress):
        try:
            pixels = read_pixels(it)
            _read_mask_files(it)
            good.append(it)
        except (ValueError, OSError) as exc:
            unreadable.append(f"{it.image_id}: {exc}")
            continue
        if not scan.has_patients:
            thumbs.append(to_uint8(pixels, 64))
    scan.problems.extend(unreadable)
    if skip_bad:
        n_missing = len(scan.problems) - len(unreadable)
        if n_missing:
            scan.excluded["missing or unreadable file (scan)"] += n_missing
        if unreadable:
            scan.excluded["unreadable file (decode)"] += len(unreadable)
        scan.items = good
        scan.problems = []
    else:
        scan.items = good if unreadable else scan.items
    summary = scan.summary()
    summary["near_duplicate_groups"] = None
    if summary["images"] and not (summary["positives"] and summary["negatives"]):
        summary["warnings"].append(one_class_message(name, summary["positives"], summary["negatives"]))
    if thumbs:
        _, info = near_duplicate_groups(np.stack(thumbs), max_distance=getattr(opts, "near_duplicate_distance",
                                                                               DEFAULT_MAX_DISTANCE))
        summary["near_duplicate_groups"] = info["groups"]
        summary["warnings"].append(
            f"no patient id: splits group near-duplicate images instead ({info['linked_images']} of {len(thumbs)} "
            f"images fall in groups of 2 or more, largest {info['largest_group']}; perceptual hash within "
            f"{info['max_distance']} bits). Patients with dissimilar images can still straddle a split.")
    return summary


def _read_mask_files(item) -> None:
    """Decode each of the item's mask files: a truncated mask is as unreadable as a truncated image."""
    for p in item.mask_paths:
        imageio.read_dicom(p) if reader_for(p) == "dicom" else imageio.read_image(p)


def format_summary(s: dict) -> str:
    lines = [f"{s['dataset']} at {s['root']}",
             f"  images: {s['images']} ({s['positives']} malignant, {s['negatives']} benign/normal)",
             f"  patients: {s['patients'] if s['patients'] is not None else 'none (no patient id in this dataset)'}"]
    if s.get("near_duplicate_groups") is not None:
        lines.append(f"  near-duplicate groups (used as split groups): {s['near_duplicate_groups']}")
    for reason, n in sorted(s["excluded"].items()):
        lines.append(f"  excluded: {n} x {reason}")
    for w in s["warnings"]:
        lines.append(f"  warning: {w}")
    if s["problems"]:
        lines.append(f"  {len(s['problems'])} missing or unreadable file(s) (use --skip-bad to skip them):")
        lines += [f"    {p}" for p in s["problems"]]
    return "\n".join(lines)
