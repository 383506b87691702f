"""bench.data.generic: the ``folder`` and ``csv`` adapters on tiny fixture trees in every accepted format."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

import bench.data.generic  # noqa: F401  (registers folder, csv)
from bench.data import ArrayDataset, DATASETS, load_dataset
from bench.data.generic import normalize_label, read_mask
from bench.data.items import DatasetFormatError, read_pixels

FOLDER, CSV = DATASETS.get("folder"), DATASETS.get("csv")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))


def _img(h: int = 20, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def _save(path: Path, arr: np.ndarray | None = None, seed: int = 0) -> Path:
    """Write ``path`` in the format its extension names (DICOM via pydicom)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = _img(seed=seed) if arr is None else arr
    if path.suffix == ".dcm":
        _dicom(path, arr.astype(np.uint16) * 16)
    else:
        Image.fromarray(arr).save(path)
    return path


def _dicom(path: Path, arr: np.ndarray) -> None:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "MG", "90000001"
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = arr.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def make_folder(root: Path) -> Path:
    """malignant/ (PNG, 3-channel PNG, DICOM, nested TIFF), benign/ (PGM, BMP, JPEG), normal/ (PNG + mask)."""
    _save(root / "malignant" / "m1.png", seed=1)
    rgb = root / "malignant" / "m2.png"
    Image.fromarray(np.stack([_img(seed=2)] * 3, axis=-1)).save(rgb)
    _save(root / "malignant" / "m3.dcm", seed=3)
    _save(root / "malignant" / "patient9" / "m4.tif", seed=4)
    _save(root / "benign" / "b1.pgm", seed=5)
    _save(root / "benign" / "b2.bmp", seed=6)
    _save(root / "benign" / "b3.jpg", seed=7)
    _save(root / "normal" / "n1.png", seed=8)
    m = np.zeros((20, 16), np.uint8)
    m[:5, :5] = 255
    _save(root / "normal" / "n1_mask.png", m)
    _save(root / "normal" / "n1_mask_1.png", np.flipud(m))
    (root / "normal" / ".DS_Store").write_bytes(b"x")
    return root


def test_registered_and_option_validation():
    for spec in (FOLDER, CSV):
        assert spec.needs_root and spec.scan is not None
        with pytest.raises(ValidationError):
            spec.options(not_an_option=1)
    assert FOLDER.options(positive="cancer").positive == ("cancer",)
    for bad in [{"positive": []}, {"positive": ["a"], "negative": ["A"]}, {"ignore": ["benign"]},
                {"mask_pattern": "(unclosed"}, {"positive": [" "]}]:
        with pytest.raises(ValidationError):
            FOLDER.options(**bad)
    assert CSV.options(positive=[1, "M"]).positive == ("1", "M")
    with pytest.raises(ValidationError, match="both positive and negative"):
        CSV.options(positive=["1"], negative=["1.0"])
    assert [normalize_label(v) for v in [" Malignant ", "1.0", "0", "4a"]] == ["malignant", "1", "0", "4a"]


def test_folder_every_format(tmp_path):
    root = make_folder(tmp_path / "data")
    scan = FOLDER.scan(FOLDER.options(), root)
    ids = {it.image_id: it for it in scan.items}
    assert sorted(ids) == ["benign/b1.pgm", "benign/b2.bmp", "benign/b3.jpg", "malignant/m1.png", "malignant/m2.png",
                           "malignant/m3.dcm", "malignant/patient9/m4.tif", "normal/n1.png"]  # masks not samples
    s = scan.summary()
    assert (s["images"], s["positives"], s["negatives"], s["patients"]) == (8, 4, 4, None)
    assert s["problems"] == [] and s["warnings"] == []
    assert ids["malignant/m3.dcm"].reader == "dicom" and ids["benign/b1.pgm"].reader == "image"
    assert np.array_equal(read_pixels(ids["malignant/m2.png"]), _img(seed=2).astype(np.float32))  # 3 channels -> L
    assert np.array_equal(read_pixels(ids["malignant/m3.dcm"]), _img(seed=3).astype(np.float32) * 16)
    for it in scan.items:
        assert read_pixels(it).shape == (20, 16)
    assert [p.name for p in ids["normal/n1.png"].mask_paths] == ["n1_mask.png", "n1_mask_1.png"]
    assert read_mask(ids["normal/n1.png"]).sum() == 50  # two 5x5 squares merged


def test_folder_custom_names_ignore_and_unknown(tmp_path):
    _save(tmp_path / "Cancer" / "a.png")
    _save(tmp_path / "healthy" / "b.png")
    _save(tmp_path / "xyz" / "c.png")
    _save(tmp_path / "extra" / "d.png")
    with pytest.raises(DatasetFormatError) as err:
        FOLDER.scan(FOLDER.options(positive=["cancer"], negative=["healthy"]), tmp_path)
    msg = str(err.value)
    assert "extra/, xyz/" in msg and "data.folder.ignore" in msg
    scan = FOLDER.scan(FOLDER.options(positive=["cancer"], negative=["healthy"], ignore=["xyz", "extra"]), tmp_path)
    assert [(it.image_id, it.label) for it in scan.items] == [("Cancer/a.png", 1), ("healthy/b.png", 0)]
    assert scan.excluded == {"in ignored folder extra/": 1, "in ignored folder xyz/": 1}


def test_folder_quirks(tmp_path):
    root = make_folder(tmp_path)
    _save(root / "loose.png")
    (root / "benign" / "notes.txt").write_text("x")
    _save(root / "benign" / "b9_mask.png")
    (root / "benign" / "b4.png").write_bytes(b"corrupt")
    _save(root / "normal" / "n1_mask_2.png", np.zeros((8, 8), np.uint8))
    scan = FOLDER.scan(FOLDER.options(recursive=False), root)
    assert "malignant/patient9/m4.tif" not in {it.image_id for it in scan.items} and len(scan.items) == 7
    assert scan.excluded == {"not in a class folder": 1}
    assert scan.problems == ["benign/b4.png: unreadable image (not a PNG/PGM/BMP/JPEG/TIFF file: Pillow cannot "
                             "identify it)"]
    text = "\n".join(scan.warnings)
    for needle in ["loose.png", "benign/notes.txt", "malignant/patient9", "recursive: true", "benign/b9_mask.png",
                   "normal/n1_mask_2.png (8x8 vs image 16x20)"]:
        assert needle in text, needle
    n1 = next(it for it in scan.items if it.image_id == "normal/n1.png")
    assert read_mask(n1).shape == (20, 16) and read_mask(n1, shape=(10, 8)).shape == (10, 8)


def test_folder_patients_and_no_layout(tmp_path):
    for name in ["malignant/P01_a.png", "malignant/P02_a.png", "benign/P01_b.png", "benign/odd.png"]:
        _save(tmp_path / "d" / name)
    scan = FOLDER.scan(FOLDER.options(patient_pattern=r"/(P\d+)_"), tmp_path / "d")
    assert [(it.image_id, it.patient_id) for it in scan.items] == [
        ("benign/P01_b.png", "P01"), ("malignant/P01_a.png", "P01"), ("malignant/P02_a.png", "P02")]
    assert scan.summary()["patients"] == 2 and scan.excluded == {"no patient id (patient_pattern did not match)": 1}
    _save(tmp_path / "flat" / "a.png")
    _save(tmp_path / "flat" / "b.png")
    with pytest.raises(DatasetFormatError, match=r"expected one sub-folder per class under .*found: a\.png, b\.png"):
        FOLDER.scan(FOLDER.options(), tmp_path / "flat")
    (tmp_path / "flat" / "benign").mkdir()
    # only benign/: the missing positive folder is named (the default negative alternative normal/ is not, issue 13)
    warnings = FOLDER.scan(FOLDER.options(), tmp_path / "flat").warnings
    assert warnings[0].startswith("configured class folder(s) not found") and warnings[0].endswith(": malignant")


def test_folder_load_dataset(tmp_path):
    root = make_folder(tmp_path / "data")
    d = load_dataset("folder", {"modality": "ultrasound"}, image_size=32, root=root)
    assert isinstance(d, ArrayDataset) and d.images.shape == (8, 32, 32) and d.images.dtype == np.uint8
    assert sorted(d.labels.tolist()) == [0, 0, 0, 0, 1, 1, 1, 1] and d.patient_ids is None
    assert d.modality == "ultrasound"


def make_csv(root: Path, text: str, name: str = "meta/labels.csv") -> Path:
    """Images under root/images/, the table under root/meta/ (paths relative to the table's folder)."""
    for i, n in enumerate(["a.png", "b.bmp", "c.pgm", "d.dcm", "e.jpg"]):
        _save(root / "images" / n, seed=i)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


TABLE = ('path,label,patient,note\r\n'
         '../images/a.png,malignant,P01,"two\r\nlines"\r\n'
         '../images/b.bmp,Benign,P01,\r\n'
         '..\\images\\c.pgm,0,P02,written on Windows\r\n'
         '../images/d.dcm,1.0,P03,\r\n'
         '\r\n'
         '../images/a.png,benign,P01,second lesion of a.png\r\n'
         '../images/e.jpg,,P04,no label\r\n'
         '../images/e.jpg,normal,,no patient\r\n')


def test_csv_counts_labels_patients(tmp_path):
    make_csv(tmp_path, TABLE)
    scan = CSV.scan(CSV.options(file="meta/labels.csv", patient_column="patient"), tmp_path)
    assert [(it.image_id, it.label, it.patient_id) for it in scan.items] == [
        ("images/a.png", 1, "P01"), ("images/b.bmp", 0, "P01"), ("images/c.pgm", 0, "P02"),
        ("images/d.dcm", 1, "P03")]
    s = scan.summary()
    assert (s["images"], s["positives"], s["negatives"], s["patients"]) == (4, 2, 2, 3)
    assert s["excluded"] == {"missing label": 1, "missing patient id": 1} and s["problems"] == []
    assert scan.items[0].meta == {"label_raw": "malignant", "line": 3, "labels_raw": ["malignant", "benign"]}
    assert scan.items[1].meta == {"label_raw": "Benign", "line": 4} and scan.items[3].reader == "dicom"
    text = "\n".join(scan.warnings)
    assert "1 row(s) repeat an image" in text and "empty 'label' cell excluded: line 9" in text
    assert "empty 'patient' cell excluded: line 10" in text


def test_csv_default_file_delimiter_and_columns(tmp_path):
    make_csv(tmp_path, "File;Diagnosis\nimages/a.png;M\nimages/b.bmp;B\nimages/c.pgm;X\n", name="table.csv")
    opts = dict(path_column="file", label_column="diagnosis", positive=["M"], negative=["B"])
    with pytest.raises(DatasetFormatError, match=r"neither positive \(M\) nor negative \(B\): 'X' \(1 row\(s\), first "
                                                 r"at line 4\).*data\.csv\.exclude"):
        CSV.scan(CSV.options(**opts), tmp_path)
    scan = CSV.scan(CSV.options(**opts, exclude=["x"]), tmp_path)
    assert [(it.image_id, it.label) for it in scan.items] == [("images/a.png", 1), ("images/b.bmp", 0)]
    assert scan.excluded == {"label 'X' excluded (data.csv.exclude)": 1} and not scan.has_patients
    scan = CSV.scan(CSV.options(**{**opts, "negative": None}), tmp_path)
    assert [it.label for it in scan.items] == [1, 0, 0]
    with pytest.raises(DatasetFormatError, match=r"no column 'path' \(columns: File, Diagnosis\).*path_column"):
        CSV.scan(CSV.options(), tmp_path)


def test_csv_delimiter_inside_cells_and_absolute_paths(tmp_path):
    make_csv(tmp_path, "")
    absolute = tmp_path / "images" / "b.bmp"
    # ';' is frequent inside the cells, so a sniffer may pick it; the header decides
    (tmp_path / "t.csv").write_text(f"path,label,comment\nimages/a.png,1,a;b;c;d\n{absolute},0,e;f;g;h\n")
    scan = CSV.scan(CSV.options(file="t.csv"), tmp_path)
    assert [(it.image_id, it.label) for it in scan.items] == [("images/a.png", 1), ("images/b.bmp", 0)]
    elsewhere = tmp_path / "elsewhere"
    _save(elsewhere / "x.png")
    (tmp_path / "images" / "t.csv").write_text(f"path\tlabel\n{elsewhere / 'x.png'}\t1\n")
    assert CSV.scan(CSV.options(file="t.csv"), tmp_path / "images").items[0].image_id == str(elsewhere / "x.png")


def test_csv_table_errors(tmp_path):
    with pytest.raises(DatasetFormatError, match=r"expected one table \(\*\.csv\) .*found no \*\.csv file"):
        CSV.scan(CSV.options(), tmp_path)
    (tmp_path / "a.csv").write_text("path,label\n")
    (tmp_path / "b.csv").write_text("path,label\n")
    with pytest.raises(DatasetFormatError, match=r"found 2 tables \(a\.csv, b\.csv\).*data\.csv\.file"):
        CSV.scan(CSV.options(), tmp_path)
    with pytest.raises(DatasetFormatError, match=r"table 'nope\.csv' \(data\.csv\.file\) not found"):
        CSV.scan(CSV.options(file="nope.csv"), tmp_path)
    assert CSV.scan(CSV.options(file="a.csv"), tmp_path).items == []


def test_csv_missing_and_unreadable_files_one_line_each(tmp_path):
    root = tmp_path
    make_csv(root, "path,label\nimages/a.png,1\nimages/gone.png,0\nimages/bad.png,0\n,1\nimages/b.bmp,0\n",
             name="labels.csv")
    (root / "images" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    scan = CSV.scan(CSV.options(), root)
    assert [it.image_id for it in scan.items] == ["images/a.png", "images/b.bmp"]
    assert len(scan.problems) == 3
    assert "labels.csv line 5: empty 'path' cell" in scan.problems
    assert any(p.startswith("images/gone.png (labels.csv line 3): missing file") for p in scan.problems)
    assert any(p.startswith("images/bad.png (labels.csv line 4): unreadable image") for p in scan.problems)
    with pytest.raises(DatasetFormatError, match="3 referenced file"):
        load_dataset("csv", {}, image_size=32, root=root)


def test_csv_load_dataset(tmp_path):
    make_csv(tmp_path, TABLE)
    d = load_dataset("csv", {"file": "meta/labels.csv", "patient_column": "patient"}, image_size=32, root=tmp_path)
    assert isinstance(d, ArrayDataset) and d.images.shape == (4, 32, 32)
    assert d.labels.tolist() == [1, 0, 0, 1] and d.patient_ids.tolist() == ["P01", "P01", "P02", "P03"]
    assert d.modality == "mammography"
