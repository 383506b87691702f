"""Write a small uncompressed grayscale DICOM for fixture trees (pydicom), with any extra attributes."""
from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
DIGITAL_MAMMOGRAPHY = "1.2.840.10008.5.1.4.1.1.1.2"


def write_dicom(path, arr, *, sop_class: str = SECONDARY_CAPTURE, explicit: bool = False, **attrs):
    """``arr`` (rows x columns, or frames x rows x columns) as MONOCHROME2 unsigned pixels; ``attrs`` override."""
    arr = np.asarray(arr)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian if explicit else ImplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SamplesPerPixel, ds.PhotometricInterpretation = "MG", 1, "MONOCHROME2"
    ds.Rows, ds.Columns = arr.shape[-2:]
    ds.BitsAllocated = ds.BitsStored = arr.dtype.itemsize * 8
    ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, 0
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.PixelData = arr.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
