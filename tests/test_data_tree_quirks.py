"""Adversarial dataset trees, built here from ../shared/DATASETS.md alone (not from the other tests' fixtures).

Each test is a bug a reviewer found by pointing ``bench data check`` at a format-exact tree with a quirk or a
defect: a traceback, a wrong count, a misleading message or a wrong exit code.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset

from bench.cli import main
from bench.data import DATASETS
from bench.data.imageio import read_dicom
from dicom_fixture import write_dicom

MASS_HEADER = ("patient_id,breast_density,left or right breast,image view,abnormality id,abnormality type,mass shape,"
               "mass margins,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path")
UID = "1.3.6.1.4.1.9590.100.1.2."

# These fixtures hold one malignant image: read right, but one class, so `bench data check` exits 1 (issue 12).
ONE_CLASS = 1


def _dicom(path, arr, **attrs):
    return write_dicom(path, arr, **attrs)


def _cbis_classic(root, sep=",", encoding="utf-8", descriptor="IRREGULAR"):
    """Layout A, one mass-train row (crop 000000, mask 000001 of one series; quoted mask path ending in LF)."""
    case, abn = "Mass-Training_P_90001_LEFT_CC", "Mass-Training_P_90001_LEFT_CC_1"
    full = (case, UID + "11", UID + "12", "000000.dcm")
    crop, mask = (abn, UID + "21", UID + "22", "000000.dcm"), (abn, UID + "21", UID + "22", "000001.dcm")
    tree = root / "CBIS-DDSM"
    _dicom(tree.joinpath(*full), np.arange(48 * 32, dtype=np.uint16).reshape(48, 32) * 20)
    _dicom(tree.joinpath(*crop), np.full((12, 10), 3000, np.uint16))
    m = np.zeros((48, 32), np.uint8)
    m[10:20, 8:18] = 255
    _dicom(tree.joinpath(*mask), m)
    fields = ["P_90001", "3", "LEFT", "CC", "1", "mass", descriptor, "N/A", "4", "MALIGNANT", "3",
              "/".join(full), "/".join(crop), '"' + "/".join(mask) + '\n"']
    text = MASS_HEADER.replace(",", sep) + "\r\n" + sep.join(fields) + "\r\n"
    (root / "mass_case_description_train_set.csv").write_bytes(text.encode(encoding))
    return tree.joinpath(*mask)


def _check(capsys, name, root, *args):
    rc = main(["data", "check", name, "--root", str(root), "--json", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return rc, (json.loads(captured.out) if captured.out.strip() else None), captured.err


MASS_TRAIN = ("-o", "abnormality=mass", "-o", "split=train")


def test_cbis_csv_resaved_in_windows_1252_is_read_not_a_traceback(tmp_path, capsys):
    _cbis_classic(tmp_path, encoding="cp1252", descriptor="IRRÉGULAR")
    rc, out, _ = _check(capsys, "cbis-ddsm", tmp_path, *MASS_TRAIN)
    assert rc == ONE_CLASS and (out["images"], out["positives"], out["patients"]) == (1, 1, 1)
    assert any("not UTF-8" in w for w in out["warnings"])


def test_cbis_tab_separated_csv_is_read(tmp_path, capsys):
    _cbis_classic(tmp_path, sep="\t")
    rc, out, _ = _check(capsys, "cbis-ddsm", tmp_path, *MASS_TRAIN)
    assert rc == ONE_CLASS and out["images"] == 1 and not out["problems"]


def test_cbis_header_only_csv_is_warned(tmp_path, capsys):
    _cbis_classic(tmp_path)
    (tmp_path / "mass_case_description_test_set.csv").write_text(MASS_HEADER + "\r\n")
    rc, out, _ = _check(capsys, "cbis-ddsm", tmp_path, "-o", "abnormality=mass")
    assert rc == ONE_CLASS and out["images"] == 1 and not out["problems"]
    assert any("mass_case_description_test_set.csv has a header but no data row" in w for w in out["warnings"])


def test_truncated_cbis_mask_is_a_problem_naming_it(tmp_path, capsys):
    mask = _cbis_classic(tmp_path)
    mask.write_bytes(mask.read_bytes()[:-100])  # header intact, pixel data short
    rc, out, _ = _check(capsys, "cbis-ddsm", tmp_path, *MASS_TRAIN)
    assert rc == 1 and out["images"] == 0
    assert len(out["problems"]) == 1 and "000001.dcm" in out["problems"][0]
    rc, out, _ = _check(capsys, "cbis-ddsm", tmp_path, *MASS_TRAIN, "--skip-bad")
    assert out["problems"] == [] and out["excluded"] == {"unreadable file (decode)": 1}


def _busi(root, n=2):
    base = root / "Dataset_BUSI_with_GT"
    for cls in ("benign", "malignant", "normal"):
        (base / cls).mkdir(parents=True)
        for i in range(1, n + 1):
            a = (np.random.default_rng([i, len(cls)]).random((30, 40)) * 255).astype(np.uint8)
            Image.fromarray(np.stack([a] * 3, -1)).save(base / cls / f"{cls} ({i}).png")
            Image.fromarray((a > 128).astype(np.uint8) * 255).save(base / cls / f"{cls} ({i})_mask.png")
    return base


def test_truncated_busi_mask_is_a_problem(tmp_path, capsys):
    base = _busi(tmp_path)
    mask = base / "malignant" / "malignant (1)_mask.png"
    mask.write_bytes(mask.read_bytes()[:80])  # the PNG header still reads, the pixels do not
    rc, out, _ = _check(capsys, "busi", tmp_path)
    assert rc == 1 and any("malignant (1)_mask.png" in p for p in out["problems"])
    assert (out["images"], out["positives"]) == (5, 1)


def test_busi_refuses_the_rodrigues_tree(tmp_path, capsys):
    for cls in ("benign", "malignant"):
        (tmp_path / "originals" / cls).mkdir(parents=True)
        Image.fromarray(np.full((57, 93), 80, np.uint8)).save(tmp_path / "originals" / cls / "x1.bmp")
    rc, out, err = _check(capsys, "busi", tmp_path)
    assert rc == 2 and out is None and "rodrigues-us" in err


@pytest.mark.parametrize("name", ["busi", "folder"])
def test_no_usable_image_is_an_error(tmp_path, capsys, name):
    root = tmp_path / "Dataset_BUSI_with_GT"
    for cls in ("benign", "malignant", "normal"):
        (root / cls).mkdir(parents=True)
        (root / cls / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    rc, out, err = _check(capsys, name, root)
    assert rc == 1 and out["images"] == 0 and "no usable image" in err


@pytest.mark.parametrize("xml", ["<plist><dict>truncated",
                                 ('<plist version="1.0"><dict><key>Images</key><array><dict><key>ROIs</key>'
                                  '<array><string>not a dict</string></array></dict></array></dict></plist>')])
def test_inbreast_broken_xml_is_a_warning_not_a_traceback(tmp_path, capsys, xml):
    rel = tmp_path / "INbreast Release 1.0"
    _dicom(rel / "AllDICOMs" / "90000001_6c613a14b80a8591_MG_R_CC_ANON.dcm", np.ones((20, 16), np.uint16))
    _dicom(rel / "AllDICOMs" / "90000002_6c613a14b80a8591_MG_R_ML_ANON.dcm", np.ones((20, 16), np.uint16),
           PhotometricInterpretation="MONOCHROME1")
    (rel / "INbreast.csv").write_bytes(b"Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads"
                                       b"\r\nremoved;removed;R;CC;201001;90000001;" + b" " * 193 + b";2\r\n"
                                       b"removed;removed;R;MLO;201001;90000002;2;4c\r\n")
    (rel / "AllXML").mkdir()
    (rel / "AllXML" / "90000002.xml").write_text(xml)
    rc, out, _ = _check(capsys, "inbreast", tmp_path)
    assert rc == 0 and (out["images"], out["positives"], out["patients"]) == (2, 1, 1)
    assert any("90000002.xml" in w for w in out["warnings"])


def _kaggle(root):
    """Layout C: csv/ + jpeg/<series UID>/1-<n>.jpg; crop and mask of the abnormality share a series folder."""
    full, abn = (f"{UID}11", f"{UID}12"), (f"{UID}21", f"{UID}22")
    rel_full = f"Mass-Training_P_90001_LEFT_CC/{full[0]}/{full[1]}/000000.dcm"
    rel_crop = f"Mass-Training_P_90001_LEFT_CC_1/{abn[0]}/{abn[1]}/000000.dcm"
    rel_mask = f"Mass-Training_P_90001_LEFT_CC_1/{abn[0]}/{abn[1]}/000001.dcm"
    (root / "csv").mkdir(parents=True)
    fields = ["P_90001", "3", "LEFT", "CC", "1", "mass", "OVAL", "N/A", "4", "BENIGN", "3", rel_full, rel_crop,
              f'"{rel_mask}\n"']
    (root / "csv" / "mass_case_description_train_set.csv").write_bytes(
        (MASS_HEADER + "\r\n" + ",".join(fields) + "\r\n").encode())
    rng = np.random.default_rng(0)
    (root / "jpeg" / full[1]).mkdir(parents=True)
    (root / "jpeg" / abn[1]).mkdir(parents=True)
    Image.fromarray((rng.random((64, 48)) * 255).astype(np.uint8)).save(root / "jpeg" / full[1] / "1-1.jpg")
    Image.fromarray((rng.random((20, 16)) * 255).astype(np.uint8)).save(root / "jpeg" / abn[1] / "1-1.jpg")
    m = np.zeros((64, 48), np.uint8)
    m[10:30, 10:26] = 255
    Image.fromarray(m).save(root / "jpeg" / abn[1] / "1-2.jpg")
    return root / "jpeg" / full[1], root / "jpeg" / abn[1] / "1-1.jpg"


def test_kaggle_unreadable_jpeg_is_named_and_the_message_fits_the_layout(tmp_path, capsys):
    _, crop = _kaggle(tmp_path)
    assert _check(capsys, "cbis-ddsm", tmp_path, *MASS_TRAIN, "-o", "mode=roi")[0] == ONE_CLASS
    crop.write_bytes(crop.read_bytes()[:200])
    rc, out, _ = _check(capsys, "cbis-ddsm", tmp_path, *MASS_TRAIN, "-o", "mode=roi")
    assert rc == 1 and len(out["problems"]) == 2
    assert all(str(crop) in p and "a JPEG in" in p and "dated layout" not in p for p in out["problems"])


def test_kaggle_roi_without_full_image_is_not_called_a_mixed_layout(tmp_path, capsys):
    full_dir, _ = _kaggle(tmp_path)
    (full_dir / "1-1.jpg").unlink()
    rc, out, _ = _check(capsys, "cbis-ddsm", tmp_path, *MASS_TRAIN, "-o", "mode=roi")
    assert rc == ONE_CLASS and out["images"] == 1 and not out["problems"]
    assert not any("mixed layouts" in w for w in out["warnings"])
    spec = DATASETS.get("cbis-ddsm")
    scan = spec.scan(spec.options(abnormality="mass", split="train", mode="roi"), tmp_path)
    assert scan.items[0].meta["layout"] == "kaggle-jpeg"


def test_voi_lut_is_applied_exactly_and_silently(tmp_path):
    raw = (np.arange(12 * 8).reshape(12, 8) * 40).astype(np.uint16)  # 12-bit values
    lut = Dataset()
    lut.LUTDescriptor = [4096, 0, 16]
    lut.LUTData = (np.sqrt(np.arange(4096)) * 1000).astype(np.uint16).tobytes()
    path = _dicom(tmp_path / "lut.dcm", raw, BitsStored=12, HighBit=11, VOILUTSequence=[lut])
    assert pydicom.dcmread(path).VOILUTSequence[0].LUTDescriptor[0] == 4096
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydicom warns when a VOI LUT is applied to floats
        px = read_dicom(path)
    np.testing.assert_array_equal(px, (np.sqrt(raw.astype(np.float64)) * 1000).astype(np.uint16))


def test_root_that_is_a_file_says_so(tmp_path, capsys):
    (tmp_path / "Info.txt").write_text("mdb001 G NORM \n")
    rc, out, err = _check(capsys, "mias", tmp_path / "Info.txt")
    assert rc == 2 and out is None and "is a file, not a folder" in err
