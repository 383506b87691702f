"""How fast full-field mammograms decode, and what the decode cache buys.

Writes ``--n`` synthetic 16-bit DICOM mammograms of ``--shape`` (default 4084 x 3328, the size of a
CBIS-DDSM full image) into a temporary folder, then times, per image and single-threaded:

1. ``read_dicom`` (pydicom, modality + VOI LUT),
2. ``to_uint8`` to each output size (min-max, box pre-shrink + bilinear, pad),
3. loading the decode cache (``.npz``) of the same images at each size — what every epoch after the
   first, every later cell and every later run pays instead.

Run: ``.venv/bin/python benchmarks/decode_speed.py [--n 12]``. Numbers depend on the disk cache: the DICOMs
were just written, so they are read from the page cache (as they would be on a warm machine).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def write_mammograms(folder: Path, n: int, shape: tuple[int, int]) -> list[Path]:
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    paths = []
    for i in range(n):
        breast = ((yy - shape[0] / 2) ** 2 / (0.45 * shape[0]) ** 2 + xx ** 2 / (0.8 * shape[1]) ** 2) < 1
        pixels = (breast * rng.normal(30000, 4000, shape)).clip(0, 65535).astype(np.uint16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PhotometricInterpretation, ds.SamplesPerPixel = "MG", "MONOCHROME2", 1
        ds.Rows, ds.Columns = shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = pixels.tobytes()
        p = folder / f"mammo_{i:03d}.dcm"
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="number of mammograms")
    ap.add_argument("--shape", type=int, nargs=2, default=(4084, 3328), metavar=("H", "W"))
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from bench.data.imageio import read_dicom
    from bench.data.preprocess import size_label, to_uint8

    sizes = [64, 224, (1152, 896)]
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_mammograms(Path(tmp), args.n, tuple(args.shape))
        mb = paths[0].stat().st_size / 2**20
        print(f"{args.n} DICOMs of {args.shape[0]} x {args.shape[1]} x 16 bit ({mb:.0f} MB each)")
        t0 = time.perf_counter()
        decoded = [read_dicom(p) for p in paths]
        t_read = (time.perf_counter() - t0) / args.n
        print(f"  read_dicom:            {1000 * t_read:7.1f} ms/image  ({1 / t_read:6.1f} images/s)")
        for size in sizes:
            t0 = time.perf_counter()
            small = np.stack([to_uint8(a, size) for a in decoded])
            t_resize = (time.perf_counter() - t0) / args.n
            cache = Path(tmp) / f"cache-{size_label(size)}.npz"
            np.savez_compressed(cache, images=small)
            t0 = time.perf_counter()
            with np.load(cache) as z:
                _ = z["images"]
            t_cache = (time.perf_counter() - t0) / args.n
            total = t_read + t_resize
            print(f"  to {size_label(size):>8s}: resize {1000 * t_resize:6.1f} ms, decode+resize {1 / total:5.1f} "
                  f"images/s; from the cache {1e6 * t_cache:8.1f} us/image ({1 / t_cache:9.0f} images/s)")


if __name__ == "__main__":
    main()
