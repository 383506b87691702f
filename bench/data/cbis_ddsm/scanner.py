"""The CBIS-DDSM scan: rows to items, image or ROI mode, the official split's leak (see
:mod:`bench.data.cbis_ddsm`)."""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from bench.data.cbis_ddsm.csvs import (
    CASE_RE,
    SPLIT_ORDER,
    TYPE_ORDER,
    Row,
    read_case_csv,
)
from bench.data.cbis_ddsm.layout import candidates, case_index, find_inputs
from bench.data.cbis_ddsm.options import NAME, CBISDDSMOptions
from bench.data.cbis_ddsm.tree import KaggleTree, Tree
from bench.data.items import Item, Scan


def scan(options: CBISDDSMOptions, root: Path) -> Scan:
    """Scan a CBIS-DDSM folder (see :mod:`bench.data.cbis_ddsm` for layouts, labels and quirks).

    Args:
        options: the dataset options.
        root: the dataset folder.

    Returns:
        The :class:`Scan`: items, exclusions, warnings and one problem per missing/unreadable referenced file.

    Raises:
        DatasetFormatError: no recognisable layout, a needed CSV missing, or a CSV lacking a required column.
    """
    root = Path(root)
    result = Scan(dataset=NAME, root=root)
    csvs, image_dirs = find_inputs(options, root)
    kinds = ("mass", "calc") if options.abnormality == "both" else (options.abnormality,)
    splits = ("train", "test") if options.split == "all" else (options.split,)
    rows: list[Row] = []
    for kind in kinds:
        for split in splits:
            rows += read_case_csv(csvs[(kind, split)], kind, split, result.warnings, result.excluded)
    rows = _dedupe_rows(rows, result)

    if options.split == "train":
        test_files = [csvs.get((k, "test")) for k in kinds]
        if options.leak_policy == "drop_from_train" and None in test_files:
            result.warnings.append("official test CSV(s) not found, so patients shared between the official train "
                                   "and test splits (DATASETS.md 1.7) could not be dropped from split='train'")
        test_patients = {r.patient_id for k in kinds if (k, "test") in csvs
                         for r in read_case_csv(csvs[(k, "test")], k, "test", [], Counter())}
        shared = {r.patient_id for r in rows} & test_patients
        if shared and options.leak_policy == "keep":
            result.warnings.append(f"{len(shared)} patient(s) of split='train' also appear in the official test CSVs "
                                   f"(cross-type leak, e.g. {', '.join(sorted(shared)[:3])}); kept "
                                   "(leak_policy='keep')")
        elif shared:
            result.warnings.append(f"{len(shared)} patient(s) of the official train CSVs also appear in the official "
                                   f"test CSVs (e.g. {', '.join(sorted(shared)[:3])}); dropped from split='train' "
                                   "(leak_policy='drop_from_train')")
            leak = [r for r in rows if r.patient_id in shared]
            unit = {r.view_key for r in leak} if options.mode == "image" else leak
            result.excluded["patient also in the official test split"] += len(unit)
            rows = [r for r in rows if r.patient_id not in shared]

    if image_dirs[0].name == "jpeg" and not case_index(image_dirs):
        info = next((d / "dicom_info.csv" for d in [csvs[next(iter(csvs))].parent, *candidates(root)]
                     if (d / "dicom_info.csv").is_file()), None)
        tree = KaggleTree(image_dirs[0], info, result.warnings)
        result.warnings.append("Kaggle JPEG re-export: 8-bit lossy JPEGs, so intensities differ from the 16-bit "
                               "DICOM route" + ("" if info else "; no dicom_info.csv found (roles from the images)"))
    else:
        tree = Tree(case_index(image_dirs), image_dirs)
    if options.mode == "image":
        _image_items(rows, tree, options, result)
    else:
        _roi_items(rows, tree, options, result)
    result.items.sort(key=lambda it: it.image_id)
    layouts = Counter(it.meta.get("layout") for it in result.items)
    if len(layouts) > 1:
        result.warnings.append(f"mixed layouts: {dict(layouts)}")
    return result


def _dedupe_rows(rows: list[Row], result: Scan) -> list[Row]:
    seen: dict[tuple, Row] = {}
    out = []
    for r in rows:
        key = (r.kind, r.split, r.patient_id, r.side, r.view, r.abnormality_id, r.crop_rel)
        if key in seen:
            result.warnings.append(f"{r.where} repeats {seen[key].where}; the repeat is ignored")
            result.excluded["duplicate CSV row"] += 1
            continue
        seen[key] = r
        out.append(r)
    return out


def _keep_row(r: Row, options: CBISDDSMOptions) -> bool:
    return not (options.policy == "bwc-exclude" and r.pathology == "BENIGN_WITHOUT_CALLBACK")


def _official_split(rows: list[Row]) -> str:
    return "+".join(s for s in ("train", "test") if any(r.split == s for r in rows))


def _abn_meta(r: Row) -> dict:
    return {"folder": r.crop_rel[0], "abnormality_id": r.abnormality_id, "type": r.kind,
            "official_split": r.split, "csv": r.where, **r.info}


def _case_sort_key(case: str) -> tuple:
    m = CASE_RE.match(case)
    return TYPE_ORDER[m.group(1)], SPLIT_ORDER[m.group(2)], case


def _image_items(rows: list[Row], tree: Tree, options: CBISDDSMOptions, result: Scan) -> None:
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for r in rows:
        groups[r.view_key].append(r)
    # one problem line per missing full image, naming every row that references it
    case_rows: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if _keep_row(r, options):
            case_rows[r.case].append(r)
    reported: set[str] = set()
    for (patient, side, view), grp in sorted(groups.items()):
        kept = [r for r in grp if _keep_row(r, options)]
        if not kept:
            result.excluded["only benign-without-callback abnormalities (policy='bwc-exclude')"] += 1
            continue
        cases = sorted({r.case for r in kept}, key=_case_sort_key)
        fulls, ok = [], True
        for case in cases:
            rel = next(r.image_rel for r in kept if r.case == case)
            path, layout, err = tree.full_image(rel)
            if path is None:
                ok = False
                if case not in reported:
                    reported.add(case)
                    refs = case_rows[case]
                    result.problems.append(f"{refs[0].csv} row{'s' if len(refs) > 1 else ''} "
                                           f"{', '.join(str(r.row) for r in refs)}: full image missing: {err}")
            fulls.append((path, layout))
        masks: list[Path] = []
        if options.masks:
            for r in kept:
                _, mask, note = tree.roi_files(r)
                if mask is None:
                    ok = False
                    result.problems.append(f"{r.where}: ROI mask missing: expected "
                                           f"{tree.where(r.mask_rel, 'an 8-bit mask DICOM')}"
                                           + (f"; {note}" if note else ""))
                else:
                    masks.append(mask)
        if not ok:
            continue
        label = int(any(r.pathology == "MALIGNANT" for r in kept))
        path, layout = fulls[0]
        result.items.append(Item(
            image_id=f"{patient}_{side}_{view}", label=label, path=path, reader=tree.reader, patient_id=patient,
            view=view, laterality=side[0], mask_paths=tuple(dict.fromkeys(masks)),
            meta={"official_split": _official_split(kept), "series": cases, "layout": layout,
                  "abnormality_types": sorted({r.kind for r in kept}),
                  "lesion_kind": "+".join(sorted({r.kind for r in kept})),  # "calc", "mass" or "calc+mass"
                  "pathologies": sorted({r.pathology for r in kept}),
                  "abnormalities": [_abn_meta(r) for r in kept],
                  "ignored_bwc": len(grp) - len(kept)}))


def _roi_items(rows: list[Row], tree: Tree, options: CBISDDSMOptions, result: Scan) -> None:
    no_full = []
    for r in rows:
        if not _keep_row(r, options):
            result.excluded["benign-without-callback abnormality (policy='bwc-exclude')"] += 1
            continue
        crop, mask, note = tree.roi_files(r)
        ok = True
        for role, found, rel, what in (("cropped image", crop, r.crop_rel, "a 16-bit crop DICOM"),
                                       ("ROI mask", mask, r.mask_rel, "an 8-bit mask DICOM")):
            if found is None:
                ok = False
                result.problems.append(f"{r.where}: {role} missing: expected {tree.where(rel, what)}"
                                       + (f"; {note}" if note else ""))
        if not ok:
            continue
        full, layout, _ = tree.full_image(r.image_rel)
        if full is None:
            if options.roi_pipeline == "falconi":
                result.problems.append(f"{r.where}: full image missing (roi_pipeline 'falconi' crops it): expected "
                                       f"{tree.expected(r.image_rel)}")
                continue
            no_full.append(r.case)
        source = full if options.roi_pipeline == "falconi" else crop
        result.items.append(Item(
            image_id=r.crop_rel[0], label=int(r.pathology == "MALIGNANT"), path=source, reader=tree.reader,
            patient_id=r.patient_id, view=r.view, laterality=r.side[0], mask_paths=(mask,),
            meta={"official_split": r.split, "full_image": str(full) if full else None,
                  "layout": layout or tree.roi_layout(r.crop_rel),
                  "lesion_kind": r.kind, **_abn_meta(r)}))
    if no_full:
        result.warnings.append(f"{len(set(no_full))} full image(s) referenced by the CSVs are missing (not needed in "
                               f"roi mode; meta['full_image'] is None), e.g. {sorted(set(no_full))[0]}")
