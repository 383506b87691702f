"""Tiny CBIS-DDSM trees in the exact TCIA on-disk formats (DATASETS.md 1.2-1.5, recipe 1.8).

``build_cbis(root, layout)`` writes the four case-description CSVs (exact headers, CRLF record ends, the one
quoted path field per row ending in a bare LF: the ROI mask path in the mass CSVs, the crop path in the calc
CSVs; ``N/A`` descriptors, ``NA`` in one file) and a DICOM tree in the ``classic`` layout
(``CBIS-DDSM/<case>/<study UID>/<series UID>/00000{0,1}.dcm``) or the ``dated`` layout
(``manifest-<id>/CBIS-DDSM/<case>/<MM-DD-YYYY>-DDSM-[NA-]<5>/1.000000-<description>-<5>/1-{1,2}.dcm``).

Abnormalities (patients P_9xxxx so they can never be mistaken for real data):

=== ==================== ====== ======== ========================= ============================================
row CSV                  pat.   view     pathology                 quirk
=== ==================== ====== ======== ========================= ============================================
1   mass train row 1     90001  LEFT CC  MALIGNANT                 classic: crop 000000 / mask 000001 as the CSV
                                                                   says; dated: one series, mask in 1-1
2   mass train row 2     90001  LEFT CC  BENIGN_WITHOUT_CALLBACK   abnormality id 2 (mixed image); classic: roles
                                                                   swapped against the CSV; dated: mask in 1-2
3   mass train row 3     90002  RIGHT CC BENIGN                    crop and mask both 000000.dcm in two series;
                                                                   dated: two studies, the mask's a later date
                                                                   whose UIDs do not match the CSV
4   mass test row 1      90003  LEFT MLO MALIGNANT                 ``NA`` descriptors (the other copy); dated: old
                                                                   study name without ``NA-``
5   calc train row 1     90001  LEFT CC  BENIGN                    same view as rows 1-2 under the Calc- prefix (Q6);
                                                                   calc role inversion (crop 000001, mask 000000)
6   calc train row 2     90003  RIGHT CC BENIGN_WITHOUT_CALLBACK   a 16-bit full-size mask (role by size);
                                                                   patient also in mass-test (leak)
7   calc test row 1      90002  RIGHT MLO MALIGNANT                breast density 0 (invalid); patient also in
                                                                   mass-train (leak)
=== ==================== ====== ======== ========================= ============================================

Image level (both types, all splits): 5 views, 3 malignant, 3 patients; ROI level: 7 abnormalities.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, SecondaryCaptureImageStorage

MASS_HEADER = ("patient_id,breast_density,left or right breast,image view,abnormality id,abnormality type,mass shape,"
               "mass margins,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path")
CALC_HEADER = ("patient_id,breast density,left or right breast,image view,abnormality id,abnormality type,calc type,"
               "calc distribution,assessment,pathology,subtlety,image file path,cropped image file path,"
               "ROI mask file path")
FULL_SHAPE = (40, 30)  # rows x columns of every full mammogram
UID_ROOT = "1.3.6.1.4.1.9590.100.1.2."


@dataclass
class Abn:
    kind: str  # mass | calc
    split: str  # Training | Test
    patient: str
    side: str
    view: str
    abn: int
    pathology: str
    desc: tuple[str, str]
    density: str = "3"
    subtlety: str = "4"
    assessment: str = "4"
    classic: str = "normal"  # normal | swapped | two-series
    dated: str = "mask-1-1"  # mask-1-1 | mask-1-2 | two-studies | no-na
    mask_bits: int = 8
    crop_shape: tuple[int, int] = (12, 10)

    @property
    def case(self) -> str:
        return f"{self.kind.capitalize()}-{self.split}_{self.patient}_{self.side}_{self.view}"

    @property
    def abn_folder(self) -> str:
        return f"{self.case}_{self.abn}"

    @property
    def csv(self) -> str:
        return f"{self.kind}_case_description_{'train' if self.split == 'Training' else 'test'}_set.csv"


ABNS = [
    Abn("mass", "Training", "P_90001", "LEFT", "CC", 1, "MALIGNANT", ("IRREGULAR", "SPICULATED"), assessment="5"),
    Abn("mass", "Training", "P_90001", "LEFT", "CC", 2, "BENIGN_WITHOUT_CALLBACK", ("OVAL", "CIRCUMSCRIBED"),
        classic="swapped", dated="mask-1-2", crop_shape=(9, 11)),
    Abn("mass", "Training", "P_90002", "RIGHT", "CC", 1, "BENIGN", ("N/A", "N/A"), subtlety="0",
        classic="two-series", dated="two-studies"),
    Abn("mass", "Test", "P_90003", "LEFT", "MLO", 1, "MALIGNANT", ("NA", "NA"), dated="no-na"),
    Abn("calc", "Training", "P_90001", "LEFT", "CC", 1, "BENIGN", ("PLEOMORPHIC", "CLUSTERED"), dated="mask-1-2"),
    Abn("calc", "Training", "P_90003", "RIGHT", "CC", 1, "BENIGN_WITHOUT_CALLBACK",
        ("ROUND_AND_REGULAR-LUCENT_CENTER", "N/A"), mask_bits=16),
    Abn("calc", "Test", "P_90002", "RIGHT", "MLO", 1, "MALIGNANT", ("AMORPHOUS", "SEGMENTAL"), density="0"),
]
CSV_FILES = ["mass_case_description_train_set.csv", "mass_case_description_test_set.csv",
             "calc_case_description_train_set.csv", "calc_case_description_test_set.csv"]


class _Uids:
    """Deterministic CBIS-like UIDs with distinct last five digits."""

    def __init__(self):
        self.n = 10000

    def __call__(self) -> str:
        self.n += 137
        return UID_ROOT + f"{self.n:039d}"


def write_dicom(path: Path, pixels: np.ndarray, *, patient: str, side: str, view: str, description: str) -> None:
    """A Secondary Capture MG DICOM as TCIA distributes CBIS-DDSM (Implicit VR LE, MONOCHROME2, unsigned)."""
    bits = 8 if pixels.dtype == np.uint8 else 16
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = UID_ROOT + str(zlib.crc32(str(path).encode()) + 1)
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MG"
    ds.PatientID = patient  # per view / abnormality folder (Q7), not the patient
    ds.Laterality = side[0]
    ds.PatientOrientation = view
    ds.SeriesDescription = description
    ds.StudyID = "DDSM"
    ds.BodyPartExamined = "BREAST"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _pixels(seed: int, a: Abn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    full = rng.integers(1000, 60000, FULL_SHAPE, dtype=np.uint16)
    crop = rng.integers(1000, 60000, a.crop_shape, dtype=np.uint16)
    mask = np.zeros(FULL_SHAPE, np.uint8)
    mask[5 + a.abn * 3:15 + a.abn * 3, 8:18] = 255
    if a.mask_bits == 16:
        mask = mask.astype(np.uint16) * 257
    return full, crop, mask


def _date_folder(date: str, study_uid: str, na: bool = True) -> str:
    return f"{date}-DDSM-{'NA-' if na else ''}{study_uid[-5:]}"


def _series_folder(description: str, series_uid: str) -> str:
    return f"1.000000-{description}-{series_uid[-5:]}"


def build_cbis(root: Path, layout: str = "classic", *, csv_subdir: str = "") -> dict:
    """Write the fixture tree under ``root``; returns ``{"csv_dir", "images_dir", "paths"}``.

    ``paths`` maps ``(abn_folder, role)`` (role: full/crop/mask) to the written file.
    """
    assert layout in ("classic", "dated")
    uid = _Uids()
    images = root / "CBIS-DDSM" if layout == "classic" else root / "manifest-1690000000000" / "CBIS-DDSM"
    csv_dir = root / csv_subdir if csv_subdir else root
    csv_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[str]] = {name: [] for name in CSV_FILES}
    paths: dict[tuple[str, str], Path] = {}
    full_uids: dict[str, tuple[str, str]] = {}
    written_full: set[str] = set()
    for i, a in enumerate(ABNS):
        full, crop, mask = _pixels(i, a)
        if a.case not in full_uids:
            full_uids[a.case] = (uid(), uid())
        f_study, f_series = full_uids[a.case]
        full_rel = f"{a.case}/{f_study}/{f_series}/000000.dcm"
        c_study, c_series = uid(), uid()
        m_study, m_series = (uid(), uid()) if a.classic == "two-series" else (c_study, c_series)
        crop_idx, mask_idx = ("000000", "000001") if a.kind == "mass" else ("000001", "000000")
        if a.classic == "two-series":
            crop_idx = mask_idx = "000000"
        crop_rel = f"{a.abn_folder}/{c_study}/{c_series}/{crop_idx}.dcm"
        mask_rel = f"{a.abn_folder}/{m_study}/{m_series}/{mask_idx}.dcm"

        def write(path: Path, pixels: np.ndarray, folder: str, description: str, role: str) -> None:
            write_dicom(path, pixels, patient=folder, side=a.side, view=a.view, description=description)
            paths[(a.abn_folder if role != "full" else a.case, role)] = path

        if layout == "classic":
            if a.case not in written_full:
                write(images / full_rel, full, a.case, "full mammogram images", "full")
            on_disk_crop, on_disk_mask = (mask_rel, crop_rel) if a.classic == "swapped" else (crop_rel, mask_rel)
            write(images / on_disk_crop, crop, a.abn_folder, "ROI mask images", "crop")
            write(images / on_disk_mask, mask, a.abn_folder, "ROI mask images", "mask")
        else:
            na = a.dated != "no-na"
            if a.case not in written_full:
                d = images / a.case / _date_folder("08-29-2017", f_study, na) / _series_folder(
                    "full mammogram images", f_series)
                write(d / "1-1.dcm", full, a.case, "full mammogram images", "full")
            base = images / a.abn_folder
            if a.dated == "two-studies":  # the mask study is a later re-release: its UIDs are not the CSV's
                write(base / _date_folder("08-30-2017", c_study) / _series_folder("cropped images", c_series)
                      / "1-1.dcm", crop, a.abn_folder, "cropped images", "crop")
                write(base / _date_folder("09-06-2017", uid()) / _series_folder("ROI mask images", uid())
                      / "1-1.dcm", mask, a.abn_folder, "ROI mask images", "mask")
            else:
                d = base / _date_folder("08-29-2017", c_study, na) / _series_folder("ROI mask images", c_series)
                crop_name, mask_name = ("1-2.dcm", "1-1.dcm") if a.dated != "mask-1-2" else ("1-1.dcm", "1-2.dcm")
                write(d / crop_name, crop, a.abn_folder, "ROI mask images", "crop")
                write(d / mask_name, mask, a.abn_folder, "ROI mask images", "mask")
        written_full.add(a.case)

        # the CSV record: one quoted path per row ends with a bare LF (mask path for mass, crop path for calc)
        if a.kind == "mass":
            paths_fields = [full_rel, crop_rel, f'"{mask_rel}\n"']
        else:
            paths_fields = [full_rel, f'"{crop_rel}\n"', mask_rel]
        abn_type = "mass" if a.kind == "mass" else "calcification"
        rows[a.csv].append(",".join([a.patient, a.density, a.side, a.view, str(a.abn), abn_type, *a.desc,
                                     a.assessment, a.pathology, a.subtlety, *paths_fields]))
    for name in CSV_FILES:
        header = MASS_HEADER if name.startswith("mass") else CALC_HEADER
        (csv_dir / name).write_bytes("".join(line + "\r\n" for line in [header, *rows[name]]).encode())
    if layout == "dated":
        (images.parent / "metadata.csv").write_text(
            "Series UID,Collection,3rd Party Analysis,Data Description URI,Subject ID,Study UID,Study Description,"
            "Study Date,Series Description,Manufacturer,Modality,SOP Class Name,SOP Class UID,Number of Images,"
            "File Size,File Location,Download Timestamp\r\n")
    return {"csv_dir": csv_dir, "images_dir": images, "paths": paths}


def build_kaggle(root: Path, *, dicom_info: bool = True) -> dict:
    """The Kaggle JPEG re-export of the classic fixture: csv/ (4 CSVs + dicom_info.csv) and
    jpeg/<series UID>/1-<n>.jpg; the DICOM tree is removed. Returns ``{"paths"}`` like build_cbis."""
    import shutil

    import pydicom
    from PIL import Image

    tmp = root / "_classic"
    info = build_cbis(tmp, "classic")
    (root / "csv").mkdir(parents=True)
    for name in CSV_FILES:
        shutil.move(tmp / name, root / "csv" / name)
    rows = ["file_path,image_path,AccessionNumber,BitsAllocated,PatientID,SeriesDescription,SeriesInstanceUID"]
    where: dict[Path, Path] = {}
    for dcm in sorted((tmp / "CBIS-DDSM").rglob("*.dcm")):
        case, _study, series, fname = dcm.relative_to(tmp / "CBIS-DDSM").parts
        ds = pydicom.dcmread(dcm)
        a = ds.pixel_array.astype(np.float64)
        a8 = (255 * (a - a.min()) / max(1.0, a.max() - a.min())).astype(np.uint8)
        jpg = root / "jpeg" / series / f"1-{int(fname[:6]) + 1}.jpg"
        jpg.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a8).save(jpg, quality=90)
        where[dcm] = jpg
        # the Kaggle labelling bug: mask rows may say "Unknown"; real crops say "cropped images"
        is_mask = a8.max() == 255 and np.isin(a8, (0, 255)).all()
        desc = ("Unknown" if case.endswith("_2") else "ROI mask images") if is_mask else (
            "full mammogram images" if not case[-1].isdigit() else "cropped images")
        rows.append(f"CBIS-DDSM/dicom/{series}.dcm,CBIS-DDSM/jpeg/{series}/{jpg.name},,8,{case},{desc},{series}")
    if dicom_info:
        (root / "csv" / "dicom_info.csv").write_text("\n".join(rows) + "\n")
    paths = {k: where[v] for k, v in info["paths"].items()}
    shutil.rmtree(tmp)
    return {"paths": paths}
