"""The decode cache: decode once, then never touch a source file again; invalidate on change."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench.data import cache as cache_mod
from bench.data.items import DatasetFormatError, Item, Scan
from bench.data.preprocess import to_uint8


def _tree(tmp_path, n=6):
    items = []
    for i in range(n):
        p = tmp_path / f"img{i}.png"
        arr = (np.arange(40 * 30).reshape(40, 30) * (i + 1) % 256).astype(np.uint8)
        Image.fromarray(arr).save(p)
        items.append(Item(image_id=f"img{i}", label=i % 2, path=p, patient_id=f"P{i // 2}"))
    return items


def _scan_of(items, root):
    return lambda options, root_: Scan(dataset="fake", root=root, items=list(items))


def test_second_load_reads_no_source_file(tmp_path, monkeypatch):
    items = _tree(tmp_path)
    first = cache_mod.load_scanned("fake", _scan_of(items, tmp_path), None, image_size=16, root=tmp_path)
    assert first.images.shape == (6, 16, 16) and first.meta["hit"] is False

    def no_decoding(item):
        raise AssertionError(f"decoded {item.path} again")

    monkeypatch.setattr(cache_mod, "read_pixels", no_decoding)
    second = cache_mod.load_scanned("fake", _scan_of(items, tmp_path), None, image_size=16, root=tmp_path)
    assert second.meta["hit"] is True
    np.testing.assert_array_equal(first.images, second.images)
    assert list(second.patient_ids) == ["P0", "P0", "P1", "P1", "P2", "P2"]


def test_changed_file_or_size_invalidates_the_cache(tmp_path):
    items = _tree(tmp_path)
    a, info_a = cache_mod.cached_images("fake", items, 16)
    Image.fromarray(np.zeros((40, 30), np.uint8) + 7).save(items[0].path)  # edit one image
    b, info_b = cache_mod.cached_images("fake", items, 16)
    assert not info_b["hit"] and info_a["cache"] != info_b["cache"]
    _, info_c = cache_mod.cached_images("fake", items, 24)
    assert not info_c["hit"]


def test_pad_keeps_aspect_and_stretch_fills():
    tall = np.ones((100, 50), np.float32)
    tall[0, 0] = 0
    padded = to_uint8(tall, 20, resize="pad")
    stretched = to_uint8(tall, 20, resize="stretch")
    assert padded[:, :5].max() == 0 and padded[:, 5:15].min() > 200  # 10 columns of image, centred
    assert stretched[:, 2:].min() > 200


def test_sixteen_bit_values_are_not_clipped():
    ramp = np.linspace(0, 4095, 64 * 64, dtype=np.float32).reshape(64, 64)  # 12-bit range
    out = to_uint8(ramp, 64)
    assert out.min() == 0 and out.max() == 255 and len(np.unique(out)) > 200


def test_missing_files_are_one_error_naming_each(tmp_path):
    items = _tree(tmp_path, 2)
    scan = lambda o, r: Scan(dataset="fake", root=tmp_path, items=items,  # noqa: E731
                             problems=["row 3: missing a.dcm", "row 9: missing b.dcm"])
    with pytest.raises(DatasetFormatError, match=r"(?s)2 referenced file\(s\).*a\.dcm.*b\.dcm"):
        cache_mod.load_scanned("fake", scan, None, image_size=16, root=tmp_path)


def test_corrupt_image_names_the_file_and_the_way_out(tmp_path):
    items = _tree(tmp_path, 2)
    items[1].path.write_bytes(b"not a png")
    with pytest.raises(DatasetFormatError, match=r"(?s)img1\.png.*--skip-bad"):
        cache_mod.load_scanned("fake", _scan_of(items, tmp_path), None, image_size=16, root=tmp_path)
