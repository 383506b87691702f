"""The ``folder`` adapter: your own images, one sub-folder per class (see :mod:`bench.data.generic`)."""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bench.data.base import DatasetFormatError, DatasetOptions, register_dataset
from bench.data.cache import real_dataset_spec
from bench.data.helpers import (
    DEFAULT_MASK_PATTERN,
    check_group,
    describe_dir,
    list_files,
    pair_masks,
    reader_for,
    relpath,
    subdirs,
    summarize_files,
    warn_mismatched,
)
from bench.data.items import Item, Scan


def _names(values: Iterable[str]) -> tuple[str, ...]:
    out = tuple(str(v).strip() for v in values)
    if any(not v for v in out):
        raise ValueError("names must not be empty")
    return out


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


FOLDER_SPEC = register_dataset(real_dataset_spec(
    "folder", scan_folder, FolderOptions, modality="any",
    description="your own images, one sub-folder per class (options: positive, negative, ignore)"))
