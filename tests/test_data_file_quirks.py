"""Dataset files with a quirk or a defect (format-exact trees per ../shared/DATASETS.md) for the mias, inbreast,
breastmnist, folder and csv adapters: DICOM elements, PGM encodings, text encodings that ``bench data check`` or
loading once got wrong.

Every test here failed before its fix, except ``test_pgm_variants_decode`` (a guard for the PGM encodings).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.data import load_dataset
from bench.data.imageio import read_dicom, read_image
from bench.data.items import DatasetFormatError
from dicom_fixture import DIGITAL_MAMMOGRAPHY, write_dicom

INB_HEADER = "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads"
HASH = "6c613a14b80a8591"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))


def _dicom(path, arr, **attrs):
    """A 16-bit MONOCHROME2 mammography DICOM (explicit VR little endian) holding ``arr``."""
    return write_dicom(path, arr, sop_class=DIGITAL_MAMMOGRAPHY, explicit=True, **attrs)


def _check(capsys, name, root, *args):
    rc = main(["data", "check", name, "--root", str(root), "--json", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return rc, (json.loads(captured.out) if captured.out.strip() else None), captured.err


PIXELS = (np.arange(40 * 32).reshape(40, 32) * 10).astype(np.uint16)


def _inbreast(root, rows, name=lambda fid, side, view: f"{fid}_{HASH}_MG_{side}_{view}_ANON.dcm"):
    """``root/INbreast Release 1.0``: INbreast.csv (';', CRLF) and AllDICOMs/; ``rows`` = (fid, side, view, birads,
    DICOM attributes)."""
    rel = root / "INbreast Release 1.0"
    lines = [INB_HEADER]
    for fid, side, view, birads, attrs in rows:
        lines.append(f"removed;removed;{side};{view};201001;{fid};2;{birads}")
        _dicom(rel / "AllDICOMs" / name(fid, side, "ML" if view == "MLO" else view), PIXELS, **attrs)
    (rel / "INbreast.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return rel


# ---------------------------------------------------------------------------------------------------- DICOM


def test_inbreast_dicom_with_empty_rescale_and_window_elements_is_read_not_a_traceback(tmp_path, capsys):
    """Zero-length Rescale Slope/Intercept (some exporters write them) made apply_modality_lut raise TypeError."""
    _inbreast(tmp_path, [("90000001", "R", "CC", "1", {}),
                         ("90000002", "R", "MLO", "4c", dict(RescaleSlope=None, RescaleIntercept=None)),
                         ("90000003", "L", "CC", "5", dict(WindowCenter=None, WindowWidth=None,
                                                           PhotometricInterpretation="MONOCHROME1"))])
    rc, out, _ = _check(capsys, "inbreast", tmp_path)
    assert rc == 0 and (out["images"], out["positives"], out["patients"]) == (3, 2, 1) and out["problems"] == []


@pytest.mark.parametrize("attrs", [dict(WindowCenter=6000, WindowWidth=0),
                                   dict(WindowCenter=[6000, 3000], WindowWidth=[12000, 4000], VOILUTFunction="FOO")])
def test_invalid_display_window_is_ignored_not_an_unreadable_image(tmp_path, capsys, attrs):
    """Window Width 0 or an unknown VOI LUT Function only spoil display contrast; the pixels are fine."""
    path = _dicom(tmp_path / "w.dcm", PIXELS, **attrs)
    np.testing.assert_array_equal(read_dicom(path), PIXELS.astype(np.float32))
    _inbreast(tmp_path / "inb", [("90000001", "R", "CC", "1", {}), ("90000002", "R", "MLO", "5", attrs)])
    rc, out, _ = _check(capsys, "inbreast", tmp_path / "inb")
    assert rc == 0 and (out["images"], out["positives"]) == (2, 1)


def test_multiframe_dicom_is_an_error_naming_the_file_not_a_garbled_image(tmp_path, capsys):
    """A 2-frame file (tomosynthesis) was read as a (frames, rows) 'image' through the RGB-to-gray path."""
    for cls in ("malignant", "benign"):
        _dicom(tmp_path / cls / "ok.dcm", PIXELS)
    frames = _dicom(tmp_path / "malignant" / "dbt.dcm", np.stack([PIXELS, PIXELS]), NumberOfFrames=2)
    with pytest.raises(ValueError, match="multi-frame"):
        read_dicom(frames)
    rc, out, _ = _check(capsys, "folder", tmp_path)
    assert rc == 1 and len(out["problems"]) == 1
    assert str(frames) in out["problems"][0] and "multi-frame" in out["problems"][0]


# ---------------------------------------------------------------------------------------------------- mini-MIAS

FILM = (np.arange(64 * 64).reshape(64, 64) % 200).astype(np.uint8)
INFO = ["REFNUM BG CLASS SEVERITY X Y RADIUS ", "mdb001 G CIRC B 535 425 197", "mdb002 D NORM ",
        "mdb003 F CALC M  ", "mdb004 F CIRC M 30 40 5"]


def _mias(root, info: bytes, pgm=lambda a: b"P5\n64 64\n255\n" + a.tobytes()):
    (root / "all-mias").mkdir(parents=True)
    (root / "Info.txt").write_bytes(info)
    for n in range(1, 5):
        (root / "all-mias" / f"mdb{n:03d}.pgm").write_bytes(pgm(FILM))
    return root


@pytest.mark.parametrize("info", [("\r\n".join(INFO) + "\r\n").encode("utf-16"),  # Notepad "Unicode" (BOM)
                                  "\n".join(ln.strip().replace(" ", ",") for ln in INFO).encode()])  # re-saved CSV
def test_mias_info_txt_in_utf16_or_csv_is_read(tmp_path, capsys, info):
    """Both used to fail with 'Info.txt has no line starting with mdbNNN' although every line starts with one."""
    _mias(tmp_path, info)
    rc, out, _ = _check(capsys, "mias", tmp_path)
    assert rc == 0 and (out["images"], out["positives"], out["negatives"], out["patients"]) == (4, 2, 2, 2)


def test_malformed_ascii_pgm_is_a_problem_naming_the_file(tmp_path, capsys):
    """Pillow raises ValueError for bad P2 text; the message gave only "invalid literal for int()"."""
    root = _mias(tmp_path, ("\n".join(INFO) + "\n").encode())
    bad = root / "all-mias" / "mdb002.pgm"
    bad.write_bytes(b"P2\n64 64\n255\n1 2 x 4\n")
    with pytest.raises(ValueError, match="mdb002.pgm"):
        read_image(bad)
    rc, out, _ = _check(capsys, "mias", tmp_path)
    assert rc == 1 and len(out["problems"]) == 1 and str(bad) in out["problems"][0]


@pytest.mark.parametrize("pgm", [lambda a: b"P5\n# comment\n64 64\n255\n" + a.tobytes(),
                                 lambda a: b"P2\n64 64\n255\n" + " ".join(map(str, a.ravel())).encode() + b"\n",
                                 lambda a: b"P5\n64 64\n65535\n" + (a.astype(np.uint16) * 300).astype(">u2").tobytes(),
                                 lambda a: b"P5\n64 64\n1023\n" + (a.astype(np.uint16) * 5).astype(">u2").tobytes()])
def test_pgm_variants_decode(tmp_path, capsys, pgm):
    root = _mias(tmp_path, ("\n".join(INFO) + "\n").encode(), pgm)
    px = read_image(root / "all-mias" / "mdb001.pgm")
    assert px.shape == (64, 64) and np.corrcoef(px.ravel(), FILM.ravel())[0, 1] > 0.999
    rc, out, _ = _check(capsys, "mias", tmp_path)
    assert rc == 0 and out["images"] == 4


# ---------------------------------------------------------------------------------------------------- INbreast


def test_inbreast_renamed_dicoms_without_hash_are_not_one_patient(tmp_path, capsys):
    """``<File Name>_MG_<side>_<view>.dcm`` gave every image the patient "mg": one patient for the dataset."""
    _inbreast(tmp_path, [("90000001", "R", "CC", "1", {}), ("90000002", "R", "MLO", "2", {}),
                         ("90000003", "L", "CC", "5", {}), ("90000004", "L", "MLO", "4b", {})],
              name=lambda fid, side, view: f"{fid}_MG_{side}_{view}.dcm")
    rc, out, _ = _check(capsys, "inbreast", tmp_path)
    assert rc == 0 and (out["images"], out["positives"], out["patients"]) == (4, 2, 4)
    assert any("no patient grouping" in w for w in out["warnings"])


# ---------------------------------------------------------------------------------------------------- folder / csv


def _png(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random((24, 24)) * 255).astype(np.uint8)).save(path)


@pytest.mark.parametrize("malignant", ["empty", "junk only", "absent"])
def test_folder_without_any_positive_image_is_an_error(tmp_path, capsys, malignant):
    """An empty malignant/ passed with exit 0 and no warning; bench run then 'computed' cells with no AUC."""
    for i in range(3):
        _png(tmp_path / "benign" / f"b{i}.png", i)
    if malignant != "absent":
        (tmp_path / "malignant").mkdir()
    if malignant == "junk only":
        (tmp_path / "malignant" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        (tmp_path / "malignant" / "notes.txt").write_text("to do")
    rc, out, err = _check(capsys, "folder", tmp_path)
    # issue 12: a non-zero exit naming the missing class, and the counts still printed
    assert rc == 1 and (out["images"], out["positives"], out["negatives"]) == (3, 0, 3)
    assert "no malignant (label 1) image among its 3 usable image(s)" in err
    assert any("malignant/" in w and "data.folder.positive" in w for w in out["warnings"])
    with pytest.raises(DatasetFormatError, match="no AUC can be computed"):
        load_dataset("folder", {}, image_size=16, root=tmp_path)


def test_one_class_dataset_warns_in_check_and_refuses_to_load(tmp_path, capsys):
    for i in range(3):
        _png(tmp_path / "images" / f"a{i}.png", i)
    (tmp_path / "labels.csv").write_text("path,label\n" + "".join(f"images/a{i}.png,benign\n" for i in range(3)))
    rc, out, err = _check(capsys, "csv", tmp_path)
    assert (out["images"], out["positives"]) == (3, 0)
    assert any("all 3 usable image(s) are benign/normal" in w for w in out["warnings"])
    assert rc == 1 and "no malignant (label 1) image among its 3 usable image(s)" in err  # issue 12; counts above
    with pytest.raises(DatasetFormatError, match="no AUC can be computed"):
        load_dataset("csv", {}, image_size=16, root=tmp_path)


def test_csv_in_a_subfolder_may_list_paths_from_the_dataset_root(tmp_path, capsys):
    """meta/labels.csv naming images/a0.png (root-relative) reported every file missing as meta/images/a0.png."""
    for i in range(4):
        _png(tmp_path / "images" / f"a{i}.png", i)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "labels.csv").write_text("path,label,patient\nimages/a0.png,Malignant,P1\n"
                                                  "images/a1.png,BENIGN,P1\nimages/a2.png,1,P2\nimages/a3.png,0,P3\n"
                                                  f"{tmp_path}/images/a2.png,malignant,P2\n")
    rc, out, _ = _check(capsys, "csv", tmp_path, "-o", "file=meta/labels.csv", "-o", "patient_column=patient")
    assert rc == 0 and (out["images"], out["positives"], out["negatives"], out["patients"]) == (4, 2, 2, 3)


def test_csv_table_saved_as_utf16_is_read(tmp_path, capsys):
    """Excel's "Unicode Text" (UTF-16 with BOM, tab-separated) was read as Latin-1 garbage: 'no column path'."""
    for i in range(2):
        _png(tmp_path / f"a{i}.png", i)
    (tmp_path / "labels.csv").write_bytes("path\tlabel\r\na0.png\tmalignant\r\na1.png\tbenign\r\n".encode("utf-16"))
    rc, out, _ = _check(capsys, "csv", tmp_path)
    assert rc == 0 and (out["images"], out["positives"]) == (2, 1)


# ---------------------------------------------------------------------------------------------------- BreastMNIST


def test_breastmnist_string_labels_are_named_as_strings(tmp_path, capsys):
    """Labels stored as text ('0', '1') were excluded with the message 'train/00000=0', which reads as valid."""
    arrays = {}
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        arrays[f"{split}_images"] = (np.random.default_rng(n).random((n, 28, 28)) * 255).astype(np.uint8)
        arrays[f"{split}_labels"] = np.array([[0]] + [[1]] * (n - 1), np.uint8)
    arrays["train_labels"] = np.array([["0"], ["1"], ["1"], ["1"]])
    np.savez_compressed(tmp_path / "breastmnist.npz", **arrays)
    rc, out, _ = _check(capsys, "breastmnist", tmp_path)
    assert rc == 0 and out["images"] == 4 and out["excluded"] == {"label not 0 or 1": 4}
    assert any("train/00000='0'" in w for w in out["warnings"])
