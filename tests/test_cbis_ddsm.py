"""bench.data.cbis_ddsm against tiny CBIS-DDSM trees in the exact TCIA formats (DATASETS.md 1; fixtures_cbis.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import bench.data.cbis_ddsm as cbis  # registers "cbis-ddsm"
from bench.data import DATASETS, ArrayDataset, load_dataset
from bench.data.items import DatasetFormatError, read_pixels
from fixtures_cbis import ABNS, CSV_FILES, FULL_SHAPE, build_cbis

LAYOUTS = ["classic", "dated"]
VIEWS = {  # image_id -> (label, patient, laterality, view, number of masks)
    "P_90001_LEFT_CC": (1, "P_90001", "L", "CC", 3),  # MALIGNANT + BWC (mass) + BENIGN (calc, Q6)
    "P_90002_RIGHT_CC": (0, "P_90002", "R", "CC", 1),
    "P_90002_RIGHT_MLO": (1, "P_90002", "R", "MLO", 1),
    "P_90003_LEFT_MLO": (1, "P_90003", "L", "MLO", 1),
    "P_90003_RIGHT_CC": (0, "P_90003", "R", "CC", 1),
}


@pytest.fixture(scope="module", params=LAYOUTS)
def tree(request, tmp_path_factory) -> tuple[str, Path, dict]:
    root = tmp_path_factory.mktemp(f"cbis-{request.param}")
    # dated: the CSVs (downloaded separately) live in a sub-folder, the DICOMs under manifest-<id>/CBIS-DDSM/
    info = build_cbis(root, request.param, csv_subdir="" if request.param == "classic" else "case descriptions")
    return request.param, root, info


def run(root: Path, **options) -> cbis.Scan:
    return cbis.scan(cbis.CBISDDSMOptions(**options), root)


def by_id(scan) -> dict:
    return {it.image_id: it for it in scan.items}


def test_fixture_csvs_are_format_exact(tree):
    _, _, info = tree
    mass = (info["csv_dir"] / "mass_case_description_train_set.csv").read_bytes()
    calc = (info["csv_dir"] / "calc_case_description_train_set.csv").read_bytes()
    assert mass.startswith(b"patient_id,breast_density,") and calc.startswith(b"patient_id,breast density,")
    assert mass.count(b"\r\n") == 4 and mass.count(b'.dcm\n"\r\n') == 3  # Q1: mask path ends in a bare LF
    assert calc.count(b'.dcm\n",') == 2  # Q1: in the calc CSVs it is the crop path


def test_image_mode_counts_labels_patients_views(tree):
    layout, root, _ = tree
    s = run(root)
    assert s.problems == [] and s.warnings == [] and not s.excluded
    assert s.summary() | {"root": None} == {
        "dataset": "cbis-ddsm", "root": None, "images": 5, "positives": 3, "negatives": 2, "patients": 3,
        "excluded": {}, "warnings": [], "problems": []}
    items = by_id(s)
    assert set(items) == set(VIEWS)
    for image_id, (label, patient, lat, view, n_masks) in VIEWS.items():
        it = items[image_id]
        assert (it.label, it.patient_id, it.laterality, it.view, len(it.mask_paths)) == (label, patient, lat, view,
                                                                                         n_masks), image_id
        assert it.reader == "dicom" and it.path.is_file()
        assert it.meta["layout"] == ("tcia-classic" if layout == "classic" else "tcia-dated")
    mixed = items["P_90001_LEFT_CC"]  # Q5 + Q6: one item for the view listed under Mass- and Calc- prefixes
    assert mixed.meta["series"] == ["Mass-Training_P_90001_LEFT_CC", "Calc-Training_P_90001_LEFT_CC"]
    assert mixed.meta["pathologies"] == ["BENIGN", "BENIGN_WITHOUT_CALLBACK", "MALIGNANT"]
    assert "Mass-Training_P_90001_LEFT_CC" in str(mixed.path)
    assert items["P_90002_RIGHT_MLO"].meta["official_split"] == "test"
    assert items["P_90003_RIGHT_CC"].meta["official_split"] == "train"


def test_masks_and_crops_identified_whatever_the_file_order(tree):
    """Q3: role swaps against the CSV, 000000/000000 in two series, two studies, 1-1/1-2 either way, 16-bit mask."""
    _, root, info = tree
    s = run(root, mode="roi")
    for it in s.items:
        assert it.path == info["paths"][(it.image_id, "crop")], it.image_id
        assert it.mask_paths == (info["paths"][(it.image_id, "mask")],), it.image_id
    mixed = by_id(run(root))["P_90001_LEFT_CC"]
    assert set(mixed.mask_paths) == {info["paths"][(f, "mask")] for f in (
        "Mass-Training_P_90001_LEFT_CC_1", "Mass-Training_P_90001_LEFT_CC_2", "Calc-Training_P_90001_LEFT_CC_1")}


def test_roi_mode_one_item_per_abnormality(tree):
    _, root, _ = tree
    s = run(root, mode="roi")
    assert s.problems == [] and len(s.items) == len(ABNS) == 7
    items = by_id(s)
    assert {k: v.label for k, v in items.items()} == {
        "Mass-Training_P_90001_LEFT_CC_1": 1, "Mass-Training_P_90001_LEFT_CC_2": 0,
        "Mass-Training_P_90002_RIGHT_CC_1": 0, "Mass-Test_P_90003_LEFT_MLO_1": 1,
        "Calc-Training_P_90001_LEFT_CC_1": 0, "Calc-Training_P_90003_RIGHT_CC_1": 0, "Calc-Test_P_90002_RIGHT_MLO_1": 1}
    it = items["Mass-Training_P_90001_LEFT_CC_2"]
    assert read_pixels(it).shape == (9, 11)  # the crop
    assert it.meta["full_image"] and Path(it.meta["full_image"]).is_file()
    mask = read_pixels(type(it)(image_id="m", label=0, path=it.mask_paths[0], reader="dicom"))
    assert mask.shape == FULL_SHAPE and set(np.unique(mask)) == {0.0, 255.0}
    assert len(run(root, mode="roi", abnormality="calc").items) == 3


def test_read_pixels_full_image(tree):
    _, root, _ = tree
    px = read_pixels(by_id(run(root))["P_90002_RIGHT_CC"])
    assert px.shape == FULL_SHAPE and px.dtype == np.float32 and px.max() > 255  # 16-bit values kept


@pytest.mark.parametrize("abnormality, expected", [
    ("mass", {"P_90001_LEFT_CC": 1, "P_90002_RIGHT_CC": 0, "P_90003_LEFT_MLO": 1}),
    ("calc", {"P_90001_LEFT_CC": 0, "P_90003_RIGHT_CC": 0, "P_90002_RIGHT_MLO": 1}),
])
def test_abnormality_type_selection(tree, abnormality, expected):
    _, root, _ = tree
    s = run(root, abnormality=abnormality)
    assert {k: v.label for k, v in by_id(s).items()} == expected


def test_csv_quirks_descriptors_and_invalid_values(tree):
    _, root, _ = tree
    abns = {a["folder"]: a for it in run(root).items for a in it.meta["abnormalities"]}
    assert abns["Mass-Training_P_90002_RIGHT_CC_1"]["mass_shape"] is None  # N/A
    assert abns["Mass-Test_P_90003_LEFT_MLO_1"]["mass_margins"] is None  # NA (the other copy, Q4)
    assert abns["Mass-Training_P_90001_LEFT_CC_1"]["mass_shape"] == "IRREGULAR"
    assert abns["Calc-Test_P_90002_RIGHT_MLO_1"]["breast_density"] == "0"  # the invalid value, verbatim
    assert abns["Calc-Training_P_90001_LEFT_CC_1"]["breast_density"] == "3"  # 'breast density' spelling (Q2)
    assert abns["Mass-Training_P_90001_LEFT_CC_1"]["breast_density"] == "3"  # 'breast_density' spelling
    assert abns["Mass-Training_P_90002_RIGHT_CC_1"]["subtlety"] == "0"


def test_official_split_and_cross_type_leak(tree):
    _, root, _ = tree
    train = run(root, split="train")  # P_90002 (calc-test) and P_90003 (mass-test) leak into train
    assert [it.image_id for it in train.items] == ["P_90001_LEFT_CC"]
    assert train.excluded == {"patient also in the official test split": 2}
    assert any("dropped from split='train'" in w for w in train.warnings)
    kept = run(root, split="train", leak_policy="keep")
    assert len(kept.items) == 3 and any("kept" in w for w in kept.warnings)
    test = run(root, split="test")
    assert sorted(it.image_id for it in test.items) == ["P_90002_RIGHT_MLO", "P_90003_LEFT_MLO"]
    assert {it.patient_id for it in train.items} & {it.patient_id for it in test.items} == set()
    assert len(run(root, split="train", mode="roi").items) == 3  # the three P_90001 abnormalities


def test_bwc_exclude_policy(tree):
    _, root, _ = tree
    s = run(root, policy="bwc-exclude")
    assert "P_90003_RIGHT_CC" not in by_id(s) and len(s.items) == 4  # its only abnormality is BWC
    assert by_id(s)["P_90001_LEFT_CC"].label == 1 and len(by_id(s)["P_90001_LEFT_CC"].mask_paths) == 2
    assert sum(s.excluded.values()) == 1
    roi = run(root, mode="roi", policy="bwc-exclude")
    assert len(roi.items) == 5 and sum(roi.excluded.values()) == 2


def test_missing_files_are_problems(tmp_path):
    info = build_cbis(tmp_path, "classic")
    paths = info["paths"]
    paths[("Mass-Training_P_90001_LEFT_CC", "full")].unlink()  # referenced by mass-train rows 1 and 2
    paths[("Mass-Training_P_90002_RIGHT_CC_1", "mask")].unlink()
    shutil.rmtree(info["images_dir"] / "Calc-Test_P_90002_RIGHT_MLO")
    s = run(tmp_path)
    assert len(s.problems) == 3, s.problems
    full, mask, folder = sorted(s.problems, key=lambda p: ("P_90001" not in p, "mask" not in p))
    assert full.startswith("mass_case_description_train_set.csv rows 1, 2: full image missing")
    assert str(paths[("Mass-Training_P_90001_LEFT_CC", "full")]) in full
    assert mask.startswith("mass_case_description_train_set.csv row 3: ROI mask missing")
    assert "Mass-Training_P_90002_RIGHT_CC_1/" in mask
    assert folder.startswith("calc_case_description_test_set.csv row 1: full image missing")
    assert "Calc-Test_P_90002_RIGHT_MLO/ does not exist" in folder
    assert set(by_id(s)) == {"P_90003_LEFT_MLO", "P_90003_RIGHT_CC"}  # the rest is not silently kept or lost
    roi = run(tmp_path, mode="roi")  # roi mode needs crops and masks, not full images
    assert [p.split(":")[0] for p in roi.problems] == ["mass_case_description_train_set.csv row 3"]
    assert len(roi.items) == 6 and any("full image(s)" in w for w in roi.warnings)
    with pytest.raises(DatasetFormatError, match="3 referenced file"):
        load_dataset("cbis-ddsm", {}, image_size=32, root=tmp_path)


def test_unreadable_and_ambiguous_roi_files(tmp_path):
    info = build_cbis(tmp_path, "dated")
    info["paths"][("Mass-Training_P_90001_LEFT_CC_1", "mask")].write_bytes(b"not a dicom")
    s = run(tmp_path, mode="roi")
    assert len(s.problems) == 1 and "row 1: ROI mask missing" in s.problems[0] and "unreadable" in s.problems[0]


def test_no_recognisable_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetFormatError) as err:
        run(tmp_path)
    msg = str(err.value)
    assert "neither the case-description CSVs nor a folder of case folders" in msg
    assert "Expected the four TCIA case-description CSVs" in msg and "Mass-Training_P_00001_LEFT_CC" in msg
    assert "Found in" in msg and "images/, notes.txt" in msg


def test_csvs_or_images_missing(tmp_path):
    info = build_cbis(tmp_path, "dated")
    shutil.rmtree(info["images_dir"])
    with pytest.raises(DatasetFormatError, match="no folder of case folders"):
        run(tmp_path)
    (tmp_path / CSV_FILES[3]).unlink()
    with pytest.raises(DatasetFormatError, match="calc_case_description_test_set.csv not found"):
        run(tmp_path)
    s = run(tmp_path, abnormality="mass", images_dir=".", masks=False)  # a wrong images_dir: every view missing
    assert s.items == [] and len(s.problems) == 3 and all("full image missing" in p for p in s.problems)


def test_kaggle_jpeg_layout_is_named(tmp_path):
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "dicom_info.csv").write_text("file_path,image_path\n")
    (tmp_path / "jpeg" / "1.3.6.1.4.1.9590.100.1.2.1").mkdir(parents=True)
    with pytest.raises(DatasetFormatError, match="Kaggle JPEG re-export"):
        run(tmp_path)


def test_renamed_columns_backslashes_and_semicolons(tmp_path):
    """Q2: a redistributed copy with renamed columns, Windows separators and a ';' delimiter."""
    info = build_cbis(tmp_path, "classic")
    csv = info["csv_dir"] / "mass_case_description_train_set.csv"
    lines = csv.read_bytes().decode().split("\r\n")
    lines[0] = ("patient_id,breast_density,side,view,abn_num,abnormality_type,mass_shape,mass_margins,assessment,"
                "pathology,subtlety,od_img_path,od_crop_path,mask_path")
    text = "\r\n".join(lines).replace("/", "\\").replace(",", ";")
    csv.write_bytes(text.encode("utf-8-sig"))
    s = run(tmp_path, abnormality="mass", split="train", leak_policy="keep")
    assert s.problems == [] and {k: v.label for k, v in by_id(s).items()} == {"P_90001_LEFT_CC": 1,
                                                                            "P_90002_RIGHT_CC": 0}
    csv.write_text("patient_id,pathology\nP_90001,BENIGN\n")
    with pytest.raises(DatasetFormatError, match="mass_case_description_train_set.csv: missing column"):
        run(tmp_path)


def test_options_and_registration():
    spec = DATASETS.get("cbis-ddsm")
    assert spec.options is cbis.CBISDDSMOptions and spec.needs_root and spec.modality == "mammography"
    with pytest.raises(ValidationError):
        cbis.CBISDDSMOptions(abnormality="masses")
    with pytest.raises(ValidationError):
        cbis.CBISDDSMOptions(not_an_option=1)


def test_load_dataset(tree):
    _, root, _ = tree
    d = load_dataset("cbis-ddsm", {"abnormality": "both", "mode": "image"}, image_size=32, root=root)
    assert isinstance(d, ArrayDataset) and d.images.shape == (5, 32, 32) and d.images.dtype == np.uint8
    assert d.labels.tolist() == [1, 0, 1, 1, 0] and len(set(d.patient_ids)) == 3
    roi = load_dataset("cbis-ddsm", {"mode": "roi"}, image_size=32, root=root)
    assert roi.images.shape == (7, 32, 32)
    # the lesion kind of every image is known, so patch_cnn's source pre-training gets Shen's 5 patch classes
    assert sorted(set(d.meta["lesion_kind"])) == ["calc", "calc+mass", "mass"]
    assert sorted(roi.meta["lesion_kind"]) == ["calc"] * 3 + ["mass"] * 4
    from bench.data.patches import PATCH_CLASSES_5, sample_patches

    patches = sample_patches(d, patch_size=8, per_lesion=2, background_per_image=2, min_tissue=0.0)
    assert patches.classes == PATCH_CLASSES_5


@pytest.mark.parametrize("dicom_info", [True, False])
def test_kaggle_jpeg_layout(tmp_path, dicom_info):
    """Layout C: CSV paths joined to jpeg/<series UID>/ by their third component; crop/mask roles found."""
    from fixtures_cbis import build_kaggle

    info = build_kaggle(tmp_path, dicom_info=dicom_info)
    s = run(tmp_path)
    assert s.problems == [] and sorted(it.image_id for it in s.items) == sorted(VIEWS)
    assert all(it.reader == "image" and it.meta["layout"] == "kaggle-jpeg" for it in s.items)
    assert any("Kaggle" in w for w in s.warnings)
    roi = run(tmp_path, mode="roi")
    assert roi.problems == [] and len(roi.items) == 7
    for it in roi.items:
        assert it.path == info["paths"][(it.image_id, "crop")], it.image_id
        assert it.mask_paths == (info["paths"][(it.image_id, "mask")],), it.image_id
    d = load_dataset("cbis-ddsm", {}, image_size=24, root=tmp_path)
    assert len(d) == 5 and d.masks is not None
