"""bench.data.inbreast against a tiny INbreast Release 1.0 tree in the exact on-disk format (DATASETS.md s. 2)."""
from __future__ import annotations

import plistlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import bench.data.inbreast as inbreast  # registers "inbreast"
from bench.data import ArrayDataset, DATASETS, load_dataset
from bench.data.items import DatasetFormatError, read_pixels

HEADER = "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads"
P1, P2, P3 = "9a0000000000000a", "9b0000000000000b", "9c0000000000000c"
# (File Name, patient hash, side, CSV view, acquisition, ACR, Bi-Rads); file names use ML for MLO.
ROWS = [
    ("90000001", P1, "R", "CC", "201001", "2", "1"),
    ("90000002", P1, "R", "MLO", "201001", "2", "1"),
    ("90000003", P1, "L", "CC", "201001", "2", "4c"),
    ("90000004", P1, "L", "MLO", "201001", "2", "4c"),   # MONOCHROME1
    ("90000005", P2, "R", "CC", "200902", "3", "3"),
    ("90000006", P2, "R", "MLO", "200902", "3", "3"),
    ("90000007", P2, "L", "CC", "201001", " " * 193, "2"),  # the blank ACR of 193 spaces; 2nd date, same hash
    ("90000008", P2, "L", "MLO", "201001", "3", "5"),
    ("90000009", P3, "L", "CC", "200801", "4", "6"),     # a mastectomy case: 2 images
    ("90000010", P3, "L", "MLO", "200801", "4", "4a"),
    ("90000011", P3, "R", "FB", "200801", "4", "2"),     # the one FB view
]
MONO1 = "90000004"


def write_dicom(path: Path, pixels: np.ndarray, *, photometric: str = "MONOCHROME2", side: str = "L",
                view: str = "CC") -> None:
    """A minimal 16-bit digital-mammography DICOM (unsigned, all 16 bits stored)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.ImageLaterality, ds.ViewPosition = "MG", "removed", side, view
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def dicom_name(fid: str, patient: str, side: str, view: str) -> str:
    return f"{fid}_{patient}_MG_{side}_{'ML' if view == 'MLO' else view}_ANON.dcm"


# One mass outline (x = column, y = row, as Osirix writes Point_px) and one single-point calcification.
XML_ROIS = {"Images": [{"ImageIndex": 0, "NumberOfROIs": 2, "ROIs": [
    {"Name": "Mass", "NumberOfPoints": 4, "Point_mm": ["(0, 0, 0)"] * 4,
     "Point_px": ["(1.0, 1.0)", "(5.0, 1.0)", "(5.0, 6.0)", "(1.0, 6.0)"]},
    {"Name": "Calcification", "NumberOfPoints": 1, "Point_px": ["(7.0, 8.0)"]}]}]}


def build_inbreast(root: Path, rows=ROWS) -> Path:
    """Write ``INbreast Release 1.0/`` under ``root``: the CSV (';', CRLF), AllDICOMs/, one XML, README."""
    rel = root / "INbreast Release 1.0"
    (rel / "AllDICOMs").mkdir(parents=True)
    (rel / "AllXML").mkdir()
    lines = [HEADER] + [f"removed;removed;{s};{v};{d};{fid};{acr};{b}" for fid, _, s, v, d, acr, b in rows]
    (rel / "INbreast.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    rng = np.random.default_rng(0)
    for i, (fid, pat, side, view, *_rest) in enumerate(rows):
        shape = (12, 10) if i % 2 else (10, 8)  # the two INbreast matrix shapes, in miniature (portrait)
        px = rng.integers(200, 16000, size=shape).astype(np.uint16)
        px[0, 0], px[-1, -1] = 0, 40000  # values beyond 8 (and 14) bits
        write_dicom(rel / "AllDICOMs" / dicom_name(fid, pat, side, view), px,
                    photometric="MONOCHROME1" if fid == MONO1 else "MONOCHROME2", side=side, view=view)
    (rel / "AllDICOMs" / ("._" + dicom_name(*ROWS[0][:4]))).write_bytes(b"\x00\x05\x16\x07 mac junk")
    (rel / "AllXML" / "90000003.xml").write_bytes(plistlib.dumps(XML_ROIS))  # an Osirix ROI plist
    (rel / "README.txt").write_text("INbreast fixture\n")
    return rel


def opts(**kw) -> inbreast.INbreastOptions:
    return inbreast.INbreastOptions(**kw)


@pytest.fixture
def tree(tmp_path) -> Path:
    return build_inbreast(tmp_path)


def test_fixture_is_format_exact(tree):
    raw = (tree / "INbreast.csv").read_bytes()
    assert raw.startswith(HEADER.encode() + b"\r\n") and raw.count(b"\r\n") == len(ROWS) + 1
    assert b";" + b" " * 193 + b";" in raw
    assert pydicom.dcmread(next((tree / "AllDICOMs").glob("90000002_*"))).BitsAllocated == 16


def test_counts_default_policy_shen(tree):
    s = inbreast.scan(opts(), tree)
    assert s.problems == []
    summ = s.summary()
    assert (summ["images"], summ["positives"], summ["negatives"], summ["patients"]) == (9, 5, 4, 3)
    assert s.excluded == {"BI-RADS 3 (policy shen)": 2}
    assert {it.image_id for it in s.items} == {r[0] for r in ROWS} - {"90000005", "90000006"}
    by_id = {it.image_id: it for it in s.items}
    assert by_id["90000003"].label == 1 and by_id["90000010"].label == 1 and by_id["90000007"].label == 0
    assert by_id["90000003"].meta["birads"] == "4c"
    assert all(it.reader == "dicom" and it.path.is_file() for it in s.items)


def test_alternative_policy_keeps_birads3_negative(tree):
    s = inbreast.scan(opts(policy="zhu"), tree)
    summ = s.summary()
    assert (summ["images"], summ["positives"], summ["negatives"]) == (11, 5, 6)
    assert not s.excluded
    assert {it.label for it in s.items if it.meta["birads"] == "3"} == {0}


def test_unknown_policy_is_an_options_error():
    with pytest.raises(ValueError, match="shen"):
        opts(policy="birads4")


def test_birads_strings():
    assert inbreast.birads_label("4a") == (1, None) and inbreast.birads_label(" 4C ") == (1, None)
    assert inbreast.birads_label("2") == (0, None) and inbreast.birads_label("6") == (1, None)
    assert inbreast.birads_label("3") == (None, "BI-RADS 3 (policy shen)")
    assert inbreast.birads_label("0")[0] is None and inbreast.birads_label("7")[0] is None


def test_patient_from_file_name_hash_across_dates(tree):
    s = inbreast.scan(opts(), tree)
    by_id = {it.image_id: it for it in s.items}
    assert by_id["90000001"].patient_id == P1
    assert by_id["90000007"].patient_id == by_id["90000008"].patient_id == P2  # kept together across dates
    assert {it.patient_id for it in s.items} == {P1, P2, P3}
    assert by_id["90000007"].meta["acquisition"] == "201001"


def test_views_laterality_and_meta(tree):
    s = inbreast.scan(opts(), tree)
    by_id = {it.image_id: it for it in s.items}
    assert by_id["90000002"].view == "MLO" and by_id["90000002"].path.name.endswith("_MG_R_ML_ANON.dcm")
    assert by_id["90000001"].view == "CC" and by_id["90000011"].view == "FB"
    assert by_id["90000003"].laterality == "L" and by_id["90000001"].laterality == "R"
    assert by_id["90000007"].meta["acr"] is None and by_id["90000008"].meta["acr"] == 3
    assert by_id["90000003"].meta["xml"] == "AllXML/90000003.xml"
    assert by_id["90000001"].meta["xml"] is None
    assert not any(it.path.name.startswith("._") for it in s.items) and any("'._*'" in w for w in s.warnings)


def test_views_option_drops_fb(tree):
    s = inbreast.scan(opts(views="CC,ML"), tree)
    assert {it.view for it in s.items} == {"CC", "MLO"}
    assert s.excluded["view FB not selected"] == 1 and len(s.items) == 8


def test_root_may_be_the_release_folder_or_its_parent(tree):
    a = inbreast.scan(opts(), tree)
    b = inbreast.scan(opts(), tree.parent)
    assert [it.image_id for it in a.items] == [it.image_id for it in b.items]
    assert b.items[0].meta["file"].startswith("INbreast Release 1.0/AllDICOMs/")


def test_monochrome1_is_inverted(tree):
    s = inbreast.scan(opts(), tree)
    it = next(it for it in s.items if it.image_id == MONO1)
    raw = pydicom.dcmread(it.path).pixel_array.astype(np.float32)
    px = read_pixels(it)
    assert px.shape == raw.shape and px.max() == 40000
    np.testing.assert_allclose(px, raw.max() + raw.min() - raw)


def test_missing_dicom_is_a_problem_naming_row_and_path(tree):
    next((tree / "AllDICOMs").glob("90000002_*")).unlink()
    s = inbreast.scan(opts(), tree.parent)  # paths are relative to the root given
    assert len(s.problems) == 1
    assert s.problems[0] == ("INbreast Release 1.0/INbreast.csv line 3 (File Name 90000002): expected "
                             "INbreast Release 1.0/AllDICOMs/90000002_<patient hash>_MG_R_ML_ANON.dcm, not found")
    assert len(s.items) == 8
    with pytest.raises(DatasetFormatError, match="90000002"):
        load_dataset("inbreast", {}, image_size=32, root=tree.parent)


def test_missing_dicom_of_an_excluded_image_is_not_a_problem(tree):
    next((tree / "AllDICOMs").glob("90000005_*")).unlink()  # BI-RADS 3: excluded by the default policy
    assert inbreast.scan(opts(), tree).problems == []
    assert len(inbreast.scan(opts(policy="zhu"), tree).problems) == 1


def test_dicom_without_csv_row_is_excluded_and_named(tree):
    write_dicom(tree / "AllDICOMs" / dicom_name("90000099", P1, "L", "CC"), np.ones((4, 4), np.uint16))
    s = inbreast.scan(opts(), tree)
    assert s.excluded["DICOM not listed in INbreast.csv"] == 1
    assert any("90000099" in w for w in s.warnings) and len(s.items) == 9


def test_csv_quirks_blank_rows_bom_and_other_separator(tmp_path):
    rel = build_inbreast(tmp_path)
    csv_path = rel / "INbreast.csv"
    raw = csv_path.read_bytes()
    csv_path.write_bytes(b"\xef\xbb\xbf" + raw + b";;;;;;;\r\n\r\n")  # BOM, an Excel-style empty row
    s = inbreast.scan(opts(), rel)
    assert len(s.items) == 9 and not s.problems
    csv_path.write_bytes(raw.replace(b";", b","))
    s = inbreast.scan(opts(), rel)
    assert len(s.items) == 9 and any("','-separated" in w for w in s.warnings)


def test_side_view_disagreement_warns_and_csv_wins(tmp_path):
    rows = list(ROWS)
    rows[0] = ("90000001", P1, "R", "MLO", "201001", "2", "1")  # CSV says MLO; file is written with ML ...
    rel = build_inbreast(tmp_path, rows)
    f = next((rel / "AllDICOMs").glob("90000001_*"))
    f.rename(f.with_name(dicom_name("90000001", P1, "R", "CC")))  # ... but the file name says CC
    s = inbreast.scan(opts(), rel)
    assert next(it for it in s.items if it.image_id == "90000001").view == "MLO"
    assert any("disagree" in w and "90000001" in w for w in s.warnings)


def test_bad_layout_names_expected_and_found(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_text("a,b\n")
    with pytest.raises(DatasetFormatError) as e:
        inbreast.scan(opts(), tmp_path)
    msg = str(e.value)
    assert "INbreast.csv" in msg and "AllDICOMs/" in msg and "images/, labels.csv" in msg and "--root" in msg


def test_csv_without_dicom_folder(tmp_path):
    (tmp_path / "INbreast.csv").write_bytes((HEADER + "\r\n").encode())
    (tmp_path / "dicoms").mkdir()
    with pytest.raises(DatasetFormatError, match=r"no AllDICOMs/ next to it \(found dicoms/, INbreast.csv\)"):
        inbreast.scan(opts(), tmp_path)


def test_wrong_header_names_the_column(tmp_path):
    rel = build_inbreast(tmp_path)
    csv_path = rel / "INbreast.csv"
    csv_path.write_bytes(csv_path.read_bytes().replace(b"Bi-Rads", b"Assessment", 1))
    with pytest.raises(DatasetFormatError, match="'Bi-Rads' missing; expected the header"):
        inbreast.scan(opts(), rel)


def test_registered_and_loads(tree):
    spec = DATASETS.get("inbreast")
    assert spec.needs_root and spec.scan is inbreast.scan and spec.options is inbreast.INbreastOptions
    d = load_dataset("inbreast", {"policy": "shen"}, image_size=32, root=tree)
    assert isinstance(d, ArrayDataset) and len(d) == 9
    assert d.images.shape == (9, 32, 32) and d.images.dtype == np.uint8
    assert int(d.labels.sum()) == 5 and set(d.patient_ids) == {P1, P2, P3}
    assert d.meta["excluded"] == {"BI-RADS 3 (policy shen)": 2}


def test_xls_only_release_says_which_file_is_read(tmp_path):
    rel = build_inbreast(tmp_path)
    (rel / "INbreast.csv").rename(rel / "INbreast.xls")
    with pytest.raises(DatasetFormatError, match=r"found INbreast Release 1\.0/.*export the sheet as ';'-separated"):
        inbreast.scan(opts(), tmp_path)


def test_xml_rois_become_lesion_masks(tree):
    from bench.data.generic import read_mask

    by_id = {it.image_id: it for it in inbreast.scan(opts(), tree).items}
    it = by_id["90000003"]
    mask = read_mask(it, shape=read_pixels(it).shape)
    assert mask[2:6, 2:5].all() and not mask[0, 0]  # inside the polygon (rows 1-6, cols 1-5), not outside it
    assert mask[8, 7]  # the calcification disc at row 8, column 7
    no_xml = by_id["90000001"]
    assert no_xml.mask_shapes == () and not read_mask(no_xml, shape=(10, 8)).any()  # no XML = no ROI
