"""bench.data.mias against a tiny mini-MIAS tree in the exact on-disk format (DATASETS.md section 3)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bench.data.mias as mias  # registers "mias"
from bench.data import ArrayDataset, DATASETS, load_dataset
from bench.data.items import DatasetFormatError, read_pixels

# Kaggle-copy header with its trailing space, then one line per abnormality with the real quirks: NORM lines
# ending in a space, a CALC line ending in two, 3/4/7 fields, repeated REFNUMs (B + M on one image), a
# "*NOTE 3*" where the coordinates would be, runs of spaces and a tab.
INFO_LINES = [
    "REFNUM BG CLASS SEVERITY X Y RADIUS ",
    "mdb901 G CIRC B 535 425 197",
    "mdb901 G CIRC B 500 168 26",
    "mdb902 D NORM ",
    "mdb903 F CALC M  ",
    "mdb904 F CIRC B",
    "mdb905 G SPIC M 100 900 20",
    "mdb905 G CALC B 300 200 10",
    "mdb906 G NORM",
    "mdb907 D CALC M *NOTE 3*",
    "mdb908 F ARCH B  600   50\t33",
]
SPOT = ("mdb905", 100, 900)  # a bright disk is drawn at X=100, Y=900 (bottom-left origin) in this 1024 x 1024 film


def write_pgm(path: Path, refnum: str) -> None:
    """8-bit binary PGM (P5); tiny, except the 1024 x 1024 film that carries the SPOT."""
    n = int(refnum[3:])
    if refnum == SPOT[0]:
        a = np.full((1024, 1024), 40, np.uint8)
        rr, cc = np.ogrid[:1024, :1024]
        a[(rr - (1024 - SPOT[2])) ** 2 + (cc - SPOT[1]) ** 2 <= 15 ** 2] = 221
    else:
        a = (np.arange(16 * 16).reshape(16, 16) * (n % 7 + 1) % 200).astype(np.uint8)
    Image.fromarray(a, mode="L").save(path)


def build_mias(root: Path, lines=INFO_LINES, *, images=None, newline: str = "\n") -> Path:
    """``root/Info.txt`` + ``root/all-mias/{README, Licence.txt, mdbNNN.pgm}`` (Kaggle layout)."""
    films = root / "all-mias"
    films.mkdir(parents=True)
    (root / "Info.txt").write_bytes((newline.join(lines) + newline).encode())
    (films / "README").write_text("MIAS mini database\nNote 3: origin at the bottom-left corner.\n")
    (films / "Licence.txt").write_text("licence text\n")
    for refnum in images or [f"mdb{n}" for n in range(901, 909)]:
        write_pgm(films / f"{refnum}.pgm", refnum)
    return root


def opts(**kw) -> mias.MIASOptions:
    return mias.MIASOptions(**kw)


@pytest.fixture
def tree(tmp_path) -> Path:
    return build_mias(tmp_path)


def test_fixture_is_format_exact(tree):
    assert (tree / "all-mias" / "mdb901.pgm").read_bytes()[:2] == b"P5"
    assert (tree / "Info.txt").read_bytes().splitlines()[3] == b"mdb902 D NORM "


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_counts_default_policy(tmp_path, newline):
    s = mias.scan(opts(), build_mias(tmp_path, newline=newline))
    assert s.problems == [] and not s.excluded
    summ = s.summary()
    assert (summ["images"], summ["positives"], summ["negatives"], summ["patients"]) == (8, 3, 5, 4)
    labels = {it.image_id: it.label for it in s.items}
    assert labels == {"mdb901": 0, "mdb902": 0, "mdb903": 1, "mdb904": 0, "mdb905": 1, "mdb906": 0, "mdb907": 1,
                      "mdb908": 0}
    assert all(it.reader == "image" and it.path.suffix == ".pgm" for it in s.items)


def test_several_lines_per_image_any_m_is_malignant(tree):
    it = next(it for it in mias.scan(opts(), tree).items if it.image_id == "mdb905")
    assert it.label == 1 and it.meta["severity"] == "M"
    assert [a["severity"] for a in it.meta["abnormalities"]] == ["M", "B"]
    assert it.meta["classes"] == ["CALC", "SPIC"] and it.meta["info_lines"] == [7, 8]


def test_missing_fields_and_note_tokens(tree):
    by_id = {it.image_id: it for it in mias.scan(opts(), tree).items}
    (a,) = by_id["mdb903"].meta["abnormalities"]  # 4 fields: no location
    assert a["severity"] == "M" and a["x"] is None and a["row"] is None
    (a,) = by_id["mdb907"].meta["abnormalities"]  # *NOTE 3* instead of X Y RADIUS
    assert a["x"] is None and a["note"] == "*NOTE 3*"
    assert by_id["mdb902"].meta["abnormalities"] == [] and by_id["mdb902"].meta["severity"] == "NORM"
    (a,) = by_id["mdb908"].meta["abnormalities"]  # runs of spaces and a tab
    assert (a["x"], a["y"], a["radius"]) == (600, 50, 33)


def test_bottom_left_origin_becomes_top_left_row_col(tree):
    by_id = {it.image_id: it for it in mias.scan(opts(), tree).items}
    first, second = by_id["mdb901"].meta["abnormalities"]
    assert (first["row"], first["col"]) == (1024 - 425, 535) and (second["row"], second["col"]) == (856, 500)
    (a,) = by_id["mdb908"].meta["abnormalities"]
    assert (a["row"], a["col"]) == (974, 600)
    # the converted position is where the lesion is in the decoded pixels (row 0 = top)
    spot = next(x for x in by_id["mdb905"].meta["abnormalities"] if x["class"] == "SPIC")
    px = read_pixels(by_id["mdb905"])
    assert px.shape == (1024, 1024) and px[spot["row"], spot["col"]] == 221 and px[spot["y"], spot["x"]] == 40


def test_patient_is_the_film_pair(tree):
    s = mias.scan(opts(), tree)
    pats = {it.image_id: it.patient_id for it in s.items}
    assert pats["mdb901"] == pats["mdb902"] == "mdb901+mdb902"
    assert pats["mdb907"] == pats["mdb908"] == "mdb907+mdb908" and pats["mdb903"] != pats["mdb905"]
    assert mias.patient_of("mdb001") == mias.patient_of("mdb002") == "mdb001+mdb002"
    assert mias.patient_of("mdb322") == "mdb321+mdb322"
    side = {it.image_id: it.laterality for it in s.items}
    assert side["mdb901"] == "R" and side["mdb902"] == "L" and all(it.view is None for it in s.items)


def test_policies(tree):
    s = mias.scan(opts(policy="benign-vs-malignant"), tree)
    assert len(s.items) == 6 and s.excluded == {"normal image (policy benign-vs-malignant)": 2}
    s = mias.scan(opts(policy="abnormal-vs-normal"), tree)
    assert sum(it.label for it in s.items) == 6 and len(s.items) == 8
    with pytest.raises(ValueError):
        opts(policy="birads")


def test_malformed_duplicate_and_conflicting_lines(tmp_path):
    lines = INFO_LINES + ["mdb906 G CALC B 687 882 3",  # copies disagree: NORM in one line, CALC in another
                          "mdb908 F ARCH B  600   50\t33",  # an exact repeat (other whitespace)
                          "mdb909 G",  # too few fields
                          "mdb910 G CALC",  # abnormality without severity
                          "mdb911 G BLOB B 1 2 3"]  # unknown class
    s = mias.scan(opts(), build_mias(tmp_path, lines, images=[f"mdb{n}" for n in range(901, 912)]))
    by_id = {it.image_id: it for it in s.items}
    assert by_id["mdb906"].meta["classes"] == ["CALC"] and by_id["mdb906"].label == 0
    assert len(by_id["mdb908"].meta["abnormalities"]) == 1
    text = "\n".join(s.warnings)
    for needle in ["mdb906 is listed both as NORM", "repeats an earlier line", "'mdb909 G' has 2 field(s)",
                   "mdb910", "class 'BLOB'"]:
        assert needle in text, needle
    assert s.excluded == {"abnormality without severity (B/M)": 1, "image not listed in Info.txt": 2}
    assert set(by_id) == {f"mdb{n}" for n in range(901, 909)}


def test_missing_image_is_a_problem_naming_line_and_path(tree):
    (tree / "all-mias" / "mdb901.pgm").unlink()
    s = mias.scan(opts(), tree)
    assert s.problems == ["Info.txt lines 2, 3 (mdb901): expected all-mias/mdb901.pgm, not found"]
    assert len(s.items) == 7
    with pytest.raises(DatasetFormatError, match="mdb901"):
        load_dataset("mias", {}, image_size=32, root=tree)


def test_readme_fallback_and_info_file_option(tmp_path):
    root = build_mias(tmp_path)
    text = (root / "Info.txt").read_text()
    (root / "Info.txt").unlink()
    (root / "all-mias" / "README").write_text("MIAS database\n\nThe list:\n" + text + "\nEnd of list.\n")
    s = mias.scan(opts(), root)
    assert len(s.items) == 8 and any("README" in w for w in s.warnings)
    (root / "lists").mkdir()
    (root / "lists" / "info.txt").write_text(text.replace("mdb901 G CIRC B 535", "mdb901 G CIRC M 535"))
    (root / "Info.txt").write_text(text)
    with pytest.raises(DatasetFormatError, match="info_file"):
        mias.scan(opts(), root)
    s = mias.scan(opts(info_file="lists/info.txt"), root)
    assert next(it for it in s.items if it.image_id == "mdb901").label == 1


def test_bad_layout_names_expected_and_found(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_text("a,b\n")
    with pytest.raises(DatasetFormatError) as e:
        mias.scan(opts(), tmp_path)
    msg = str(e.value)
    assert "Info.txt" in msg and "mdb001.pgm" in msg and "found no Info.txt" in msg
    assert "images/, labels.csv" in msg and "--root" in msg
    (tmp_path / "Info.txt").write_text("\n".join(INFO_LINES) + "\n")
    with pytest.raises(DatasetFormatError, match="found Info.txt but no mdbNNN.pgm image"):
        mias.scan(opts(), tmp_path)


def test_registered_and_loads(tree):
    spec = DATASETS.get("mias")
    assert spec.needs_root and spec.scan is mias.scan and spec.options is mias.MIASOptions
    d = load_dataset("mias", {}, image_size=32, root=tree)
    assert isinstance(d, ArrayDataset) and len(d) == 8
    assert d.images.shape == (8, 32, 32) and d.images.dtype == np.uint8
    assert int(d.labels.sum()) == 3 and len(set(d.patient_ids)) == 4


def test_duplicate_copies_prefer_the_pgm_and_warn_once(tree):
    for n in (901, 902):
        Image.open(tree / "all-mias" / f"mdb{n}.pgm").save(tree / f"mdb{n}.png")
    s = mias.scan(opts(), tree)
    assert all(it.path.suffix == ".pgm" for it in s.items) and len(s.items) == 8
    dup = [w for w in s.warnings if "several files" in w]
    assert len(dup) == 1 and dup[0].startswith("2 image(s)")


def test_located_abnormalities_become_circular_masks(tree):
    from bench.data.generic import read_mask

    by_id = {it.image_id: it for it in mias.scan(opts(), tree).items}
    spot = by_id["mdb905"]
    mask = read_mask(spot, shape=(1024, 1024))
    assert mask[1024 - SPOT[2], SPOT[1]] and not mask[0, 0]
    small = read_mask(spot, shape=(64, 64))  # coordinates refer to the 1024 film: scaled with the image
    assert small[round((1024 - SPOT[2]) / 16), round(SPOT[1] / 16)]
    assert not read_mask(by_id["mdb902"], shape=(16, 16)).any()  # NORM: an empty mask, not a missing one
    assert by_id["mdb907"].mask_shapes is None  # *NOTE 3*: no coordinates, mask unknown


def test_lesion_kind_from_the_class_column(tree):
    """CALC -> calc, CIRC/SPIC/MISC -> mass (patch_cnn's 5 patch classes); ARCH/ASYM are neither -> unknown."""
    by_id = {it.image_id: it.meta["lesion_kind"] for it in mias.scan(opts(), tree).items}
    assert by_id["mdb901"] == "mass" and by_id["mdb903"] == "calc" and by_id["mdb905"] == "calc+mass"
    assert by_id["mdb902"] == "" and by_id["mdb908"] is None
    d = load_dataset("mias", {}, image_size=32, root=tree)
    assert "lesion_kind" not in d.meta  # one finding of unknown kind: no per-image list, patches use 3 classes


def test_a_partial_location_is_kept_without_location_and_warned():
    recs, warnings = mias.parse_info("mdb001 G CIRC B 535 425\nmdb002 G CALC M *NOTE 3*\n")
    (a,) = recs["mdb001"]
    assert a["x"] is None and a["severity"] == "B" and a["note"] == "535 425"
    assert [w for w in warnings if "'535 425' is not X Y RADIUS" in w]
    assert not [w for w in warnings if "NOTE" in w]  # the documented *NOTE 3* is expected, not warned
