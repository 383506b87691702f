"""``bench data check``: read a whole real dataset and summarise what a careful user needs to know."""
from __future__ import annotations

import sys

from tqdm import tqdm

from bench.data import DATASETS, data_root
from bench.data.items import DatasetFormatError, read_pixels


def check_dataset(name: str, root, options: dict | None = None, *, skip_bad: bool = False,
                  progress: bool = True) -> dict:
    """Scan dataset ``name`` at ``root`` and decode every image.

    Returns the summary dict (``dataset, root, images, positives, negatives, patients, excluded,
    warnings, problems``). Missing or unreadable files are listed under ``problems``; with ``skip_bad``
    they are dropped from the counts and counted under ``excluded`` instead.
    """
    spec = DATASETS.get(name)
    if spec.scan is None:
        raise DatasetFormatError(f"dataset {name!r} is built in (synthetic); there is nothing on disk to check")
    opts = spec.options(**(options or {}))
    scan = spec.scan(opts, data_root(name, root))
    good, unreadable = [], []
    for it in tqdm(scan.items, desc=f"reading {name}", unit="img", file=sys.stderr, disable=not progress):
        try:
            read_pixels(it)
            good.append(it)
        except (ValueError, OSError) as exc:
            unreadable.append(f"{it.image_id}: {exc}")
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
    return scan.summary()


def format_summary(s: dict) -> str:
    lines = [f"{s['dataset']} at {s['root']}",
             f"  images: {s['images']} ({s['positives']} malignant, {s['negatives']} benign/normal)",
             f"  patients: {s['patients'] if s['patients'] is not None else 'none (no patient id in this dataset)'}"]
    for reason, n in sorted(s["excluded"].items()):
        lines.append(f"  excluded: {n} x {reason}")
    for w in s["warnings"]:
        lines.append(f"  warning: {w}")
    if s["problems"]:
        lines.append(f"  {len(s['problems'])} missing or unreadable file(s) (use --skip-bad to skip them):")
        lines += [f"    {p}" for p in s["problems"]]
    return "\n".join(lines)
