"""CBIS-DDSM (Curated Breast Imaging Subset of DDSM, TCIA): the ``cbis-ddsm`` dataset adapter.

Reads the dataset exactly as TCIA distributes it (../shared/DATASETS.md, section 1): the four
case-description CSVs, downloaded separately, plus the DICOM tree from the NBIA Data Retriever.

Where things are looked for
    ``root`` is the folder given with ``--root`` / ``data.cbis-ddsm.root`` / ``$BENCH_DATA_ROOT/cbis-ddsm``.
    The four CSVs (``mass_case_description_train_set.csv``, ``mass_case_description_test_set.csv``,
    ``calc_case_description_train_set.csv``, ``calc_case_description_test_set.csv``) are looked for in
    ``root`` and in its sub-folders up to two levels down (e.g. ``root/csv/``), or in ``csv_dir``.
    The DICOM tree is every folder, ``root`` itself or up to two levels below it (``root/CBIS-DDSM/``,
    ``root/DOI/``, ``root/manifest-<id>/CBIS-DDSM/``), or ``images_dir``, that holds *case folders*
    named ``<Type>-<Split>_<patient_id>_<SIDE>_<VIEW>[_<abnormality id>]``, e.g.
    ``Mass-Training_P_00001_LEFT_CC`` and ``Calc-Test_P_00038_LEFT_CC_1``.

Layouts accepted (both may be mixed in one tree; the one used per file is in ``Item.meta["layout"]``)
    ``tcia-classic`` (layout A)::

        CBIS-DDSM/Mass-Training_P_00001_LEFT_CC/<study UID>/<series UID>/000000.dcm      full image
        CBIS-DDSM/Mass-Training_P_00001_LEFT_CC_1/<study UID>/<series UID>/000000.dcm    crop or mask
        CBIS-DDSM/Mass-Training_P_00001_LEFT_CC_1/<study UID>/<series UID>/000001.dcm    mask or crop

    i.e. the CSV path columns exist verbatim under the tree.

    ``tcia-dated`` (layout B, the current NBIA Data Retriever default)::

        manifest-<id>/CBIS-DDSM/Calc-Test_P_00038_LEFT_CC/08-29-2017-DDSM-NA-96009/
            1.000000-full mammogram images-63992/1-1.dcm
        manifest-<id>/CBIS-DDSM/Calc-Test_P_00038_LEFT_CC_1/<date>-DDSM-[NA-]<5 digits>/
            1.000000-ROI mask images-<5 digits>/1-1.dcm, 1-2.dcm        (crop and mask, either order)
        ... or two studies, one with a ``cropped images`` and one with a ``ROI mask images`` series

    Dated folder names are never constructed: a file is located by its case folder (the first
    component of the CSV path) and every DICOM under that folder is considered.

    ``kaggle-jpeg`` (layout C, the Kaggle re-export)::

        csv/mass_case_description_train_set.csv ... dicom_info.csv
        jpeg/<series UID>/1-1.jpg, 1-2.jpg

    The CSV paths' third component (the series UID) names the ``jpeg/`` folder; see :class:`~bench.data.cbis_ddsm.tree.KaggleTree`.

    Not read: PNG conversions (layout D); a root in that layout gets a :class:`DatasetFormatError` saying so.

Items and labels
    ``mode="image"``: one item per physical view, ``image_id`` = ``<patient_id>_<SIDE>_<VIEW>`` (Shen's
    naming). Label 1 if any selected abnormality on the view is ``MALIGNANT``; ``BENIGN`` and
    ``BENIGN_WITHOUT_CALLBACK`` are 0 (``policy="bwc-benign"``, the majority rule of the literature), or
    BWC abnormalities are ignored and a view carrying only BWC abnormalities is excluded
    (``policy="bwc-exclude"``). ``mask_paths`` = the ROI masks of all its selected abnormalities (merge by
    OR; full-image size; ``masks=False`` skips them). With ``abnormality="mass"`` (or ``"calc"``) the label
    only reflects abnormalities of that type.
    ``mode="roi"``: one item per abnormality (Falconi-style ROI classification), ``image_id`` = the
    abnormality folder name (``Mass-Training_P_00001_LEFT_CC_1``), ``path`` = the CBIS-DDSM cropped image,
    ``mask_paths`` = its ROI mask (full-image coordinates, so a crop-with-margin pipeline can re-crop the
    full image, whose path is ``meta["full_image"]``), label = that abnormality's pathology.
    Patient key: the CSV ``patient_id`` (``P_#####``), never the DICOM PatientID (which is per view, Q7).
    ``meta`` holds the official split, abnormality rows (type, pathology, assessment, descriptors,
    density, subtlety) and the case folders used.

Official split and its leak (section 1.7)
    ``split="all"`` reads both CSV pairs (no official split is imposed; the harness splits by patient).
    ``split="train"`` / ``"test"`` reads only that split's CSVs. Across abnormality types the official
    split is not patient-disjoint; with ``leak_policy="drop_from_train"`` (default) patients who also
    have an abnormality of a selected type in the official test CSVs are dropped from ``split="train"``
    (counted under ``excluded``), so train and test are patient-disjoint and test stays official;
    ``leak_policy="keep"`` keeps them and adds a warning.

Quirks handled (numbers as in DATASETS.md 1.4)
    Q1 embedded newline: the quoted path column ends with a bare LF inside quotes (mask path in the mass
       CSVs, crop path in the calc CSVs), records end with CRLF: parsed with pandas, every value stripped.
    Q2 column spelling: ``breast_density`` vs ``breast density``; column names are normalised (lower case,
       spaces/hyphens to ``_``) and the renamed copies' names (``side``, ``view``, ``abn_num``,
       ``od_img_path``, ``od_crop_path``, ``mask_path``) are accepted, as are ``\\`` path separators and a
       ``;`` delimiter in re-saved copies.
    Q3 crop/mask roles: the file index (``000000``/``000001``, ``1-1``/``1-2``) and even the CSV column do
       not identify the role, and the two files may sit in one series or in two studies. Every DICOM under
       the abnormality folder is classified from its header: a mask is 8-bit or has the full image's
       rows x columns, anything else is the crop; when that puts both files in one class they are ranked by
       (8-bit, full-image size, area, SeriesDescription ``ROI mask images``), and a tie is a problem.
       SeriesDescription alone is not trusted: one series often holds both files.
    Q4 ``N/A`` and ``NA`` descriptors: read with ``keep_default_na=False``; both (and empty) become None.
    Q5 several rows per image: rows are grouped per view; label by the any-malignant rule.
    Q6 a view under both ``Mass-`` and ``Calc-`` prefixes: deduplicated on (patient_id, side, view) when both
       types are selected; the item reads the first series (Mass before Calc, Training before Test) and
       ``meta["series"]`` lists all.
    Q7 per-view DICOM PatientID: ignored; ``patient_id`` comes from the CSV (or the ``P_#####`` token of the
       case folder name when the CSV value is malformed, with a warning).
    Invalid values (density 0, subtlety 0) are kept verbatim in ``meta``; a pathology outside the three
    known values excludes the row with a warning.

Missing files
    Every referenced file the chosen mode uses (image: full image and, with ``masks``, the ROI masks;
    roi: crop and mask) that is missing, ambiguous or unreadable is one line of ``Scan.problems`` naming the
    CSV file, its data row(s) (1 = first record after the header) and the expected path; the item is left
    out of ``Scan.items``. A root in which neither the CSVs nor a tree of case folders can be found raises
    :class:`DatasetFormatError` saying which layout was expected and what was found.

Modules
    :mod:`~bench.data.cbis_ddsm.options` (the options), :mod:`~bench.data.cbis_ddsm.csvs` (reading the CSVs),
    :mod:`~bench.data.cbis_ddsm.layout` (finding the CSVs and the case folders), :mod:`~bench.data.cbis_ddsm.tree`
    (resolving full images, crops and masks in a tree), :mod:`~bench.data.cbis_ddsm.scanner` (the scan).
"""
from __future__ import annotations

from bench.data.base import register_dataset
from bench.data.cache import real_dataset_spec
from bench.data.cbis_ddsm.csvs import (
    CASE_RE,
    COLUMNS,
    CSV_NAMES,
    DESCRIPTORS,
    MISSING_MARKERS,
    PATHOLOGIES,
    PATIENT_RE,
    REQUIRED,
    SPLIT_ORDER,
    TYPE_ORDER,
    read_case_csv,
)
from bench.data.cbis_ddsm.layout import EXPECTED
from bench.data.cbis_ddsm.options import NAME, CBISDDSMOptions
from bench.data.cbis_ddsm.scanner import scan
from bench.data.items import Scan

__all__ = ["CASE_RE", "COLUMNS", "CSV_NAMES", "DESCRIPTORS", "EXPECTED", "MISSING_MARKERS", "NAME", "PATHOLOGIES",
           "PATIENT_RE", "REQUIRED", "SPEC", "SPLIT_ORDER", "TYPE_ORDER", "CBISDDSMOptions", "Scan", "read_case_csv",
           "scan"]

SPEC = register_dataset(real_dataset_spec(
    NAME, scan, CBISDDSMOptions, modality="mammography",
    description="CBIS-DDSM (TCIA DICOM + 4 case-description CSVs): mass/calc, image-level or ROI crops"))
