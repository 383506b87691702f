"""File helpers shared by the real-dataset adapters: listing, probing, masks, text, messages.

Used by every adapter that reads files (``folder``, ``csv``, ``busi``, ``rodrigues-us``, ``breastmnist``,
``cbis-ddsm``, ``inbreast``, ``mias``), by the decode cache (:func:`read_mask`) and by ``bench data check``:
listing image files, pairing masks with images, a cheap header probe that finds missing and unreadable
files without decoding them, decoding metadata text, and layout error messages.
"""
from __future__ import annotations

import codecs
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.data.items import Item, Reader, Scan

IMAGE_EXTENSIONS = frozenset({".png", ".pgm", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"})
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})
SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS | DICOM_EXTENSIONS
JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx", "@eadir"})
DEFAULT_MASK_PATTERN = r"_mask(?:_(\d+))?$"
MAX_EXAMPLES = 5


def decode_text(raw: bytes) -> tuple[str, str]:
    """A metadata file's text and the encoding read: UTF-8 (BOM optional), UTF-16 when it starts with a
    UTF-16 BOM (Notepad's "Unicode", Excel's "Unicode Text"), else Windows-1252 (a spreadsheet re-save on
    Windows; Latin-1 text reads the same), undefined bytes replaced. Callers warn when it is not UTF."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16"), "utf-16"
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "windows-1252"


def natural_key(text: str) -> list:
    """Sort key that orders ``benign (2)`` before ``benign (10)``."""
    return [int(t) if t.isdigit() else t.casefold() for t in re.split(r"(\d+)", text)]


def is_junk(path: Path) -> bool:
    """Hidden files and OS clutter (``.DS_Store``, ``Thumbs.db``, ``__MACOSX/``) that are never data."""
    return path.name.startswith(".") or path.name.casefold() in JUNK_NAMES


def reader_for(path: Path) -> Reader:
    """How to decode a file, from its extension: ``.dcm``/``.dicom`` is DICOM, anything else goes to Pillow."""
    return "dicom" if path.suffix.casefold() in DICOM_EXTENSIONS else "image"


def subdirs(folder: Path) -> dict[str, Path]:
    """Non-junk sub-folders of ``folder`` by case-folded name."""
    return {p.name.casefold(): p for p in sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
            if p.is_dir() and not is_junk(p)}


def describe_dir(folder: Path, limit: int = 12) -> str:
    """What a folder holds, for error messages: ``a.png, xyz/, ... (+3 more)``, or ``nothing``."""
    try:
        entries = sorted((p for p in folder.iterdir() if not is_junk(p)), key=lambda p: natural_key(p.name))
    except OSError as exc:
        return f"(cannot list: {exc.strerror})"
    if not entries:
        return "nothing (empty folder)"
    names = [p.name + ("/" if p.is_dir() else "") for p in entries]
    more = f", ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def examples(values: Iterable[str], n: int = MAX_EXAMPLES, sep: str = ", ") -> str:
    """The first ``n`` values joined by ``sep`` for a message, with ``(+k more)`` when there are more."""
    values = list(values)
    more = f" (+{len(values) - n} more)" if len(values) > n else ""
    return sep.join(values[:n]) + more


def relpath(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form when it lies under it, else the full path."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def locate_layout(root: Path, ok: Callable[[Path], bool], *, prefer: tuple[str, ...] = (),
                  depth: int = 2) -> Path | None:
    """The folder at or below ``root`` whose layout passes ``ok``.

    Users point at the folder the archive unpacked into as often as at the dataset folder itself, so
    this also looks inside a sub-folder named in ``prefer`` (e.g. ``originals``) or inside the only
    sub-folder of ``root``, up to ``depth`` levels down.
    """
    if ok(root):
        return root
    if depth <= 0:
        return None
    subs = subdirs(root)
    for name in prefer:
        if name.casefold() in subs and (found := locate_layout(subs[name.casefold()], ok, depth=depth - 1)):
            return found
    if len(subs) == 1:
        return locate_layout(next(iter(subs.values())), ok, prefer=prefer, depth=depth - 1)
    return None


def list_files(folder: Path, *, recursive: bool,
               extensions: frozenset[str] = SUPPORTED_EXTENSIONS) -> tuple[list[Path], list[Path], list[Path]]:
    """Files under ``folder`` in natural order, skipping junk.

    Returns:
        (files with one of ``extensions``, other files, sub-folders not entered because not ``recursive``).
    """
    wanted, others, skipped_dirs = [], [], []
    stack = [folder]
    while stack:
        d = stack.pop()
        for p in d.iterdir():
            if is_junk(p):
                continue
            if p.is_dir():
                (stack if recursive else skipped_dirs).append(p)
            elif p.suffix.casefold() in extensions:
                wanted.append(p)
            else:
                others.append(p)
    key = lambda p: natural_key(p.relative_to(folder).as_posix())
    return sorted(wanted, key=key), sorted(others, key=key), sorted(skipped_dirs, key=key)


def probe(path: Path, reader: Reader = "image") -> tuple[str | None, tuple[int, int] | None]:
    """Check that a referenced file exists and has a readable header, without decoding its pixels.

    Cheap enough to run on every scan (Pillow reads only the header; pydicom stops before the pixel
    data), so it cannot see a file truncated in its pixel data: decoding (``bench data check``, the
    first load) finds those.

    Returns:
        (problem or None, (width, height) or None).
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing file", None
    except OSError as exc:
        return f"unreadable ({exc.strerror})", None
    if not path.is_file():
        return "not a file", None
    if st.st_size == 0:
        return "unreadable (empty file)", None
    if reader == "dicom":
        import pydicom

        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:  # pydicom raises many types for a broken file
            return f"unreadable DICOM ({type(exc).__name__}: {exc})", None
        if "Rows" not in ds or "Columns" not in ds:
            return "DICOM without an image (no Rows/Columns)", None
        return None, (int(ds.Columns), int(ds.Rows))
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return None, im.size
    except UnidentifiedImageError:
        return "unreadable image (not a PNG/PGM/BMP/JPEG/TIFF file: Pillow cannot identify it)", None
    except (OSError, SyntaxError, ValueError) as exc:
        return f"unreadable image ({type(exc).__name__}: {str(exc).replace(str(path), path.name)})", None


@dataclass
class ImageGroup:
    """An image file and the mask files that belong to it."""

    image: Path
    masks: list[Path] = field(default_factory=list)


def pair_masks(files: list[Path], mask_pattern: str | None = DEFAULT_MASK_PATTERN
               ) -> tuple[list[ImageGroup], list[Path]]:
    """Split the files of one folder into images (each with its masks) and masks without an image.

    A file whose stem matches ``mask_pattern`` (default ``_mask`` or ``_mask_<n>`` at the end) is a mask
    of the image with the rest of the stem, in the same folder, whatever its extension; it is never a
    sample. Masks are ordered ``_mask``, ``_mask_1``, ``_mask_2``, ...

    Returns:
        (image groups in the order of ``files``, orphan masks).
    """
    if not mask_pattern:
        return [ImageGroup(f) for f in files], []
    rx = re.compile(mask_pattern)
    images: list[ImageGroup] = []
    masks: dict[tuple[Path, str], list[tuple[int, Path]]] = defaultdict(list)
    for f in files:
        m = rx.search(f.stem)
        if m is None:
            images.append(ImageGroup(f))
        else:
            nums = [g for g in m.groups() if g is not None and g.isdigit()]
            masks[(f.parent, f.stem[:m.start()].casefold())].append((int(nums[0]) if nums else 0, f))
    for g in images:
        found = masks.get((g.image.parent, g.image.stem.casefold()))
        if found:
            g.masks = [p for _, p in sorted(found, key=lambda t: (t[0], natural_key(t[1].name)))]
    taken = {(g.image.parent, g.image.stem.casefold()) for g in images}
    orphans = sorted((p for k, v in masks.items() if k not in taken for _, p in v), key=lambda p: natural_key(str(p)))
    return images, orphans


def check_group(scan: Scan, group: ImageGroup, base: Path, mismatched: list[str] | None = None) -> list[Path] | None:
    """Probe an image and its masks, recording missing or unreadable files in ``scan.problems``.

    Args:
        mismatched: collects ``mask (WxH vs image WxH)`` for masks whose size differs from their image's
            (see :func:`warn_mismatched`).

    Returns:
        The readable masks, or None when the image itself is missing or unreadable (then it is no item).
    """
    problem, size = probe(group.image, reader_for(group.image))
    if problem:
        scan.problems.append(f"{relpath(group.image, base)}: {problem}")
        return None
    good = []
    for m in group.masks:
        mproblem, msize = probe(m, reader_for(m))
        if mproblem:
            scan.problems.append(f"{relpath(m, base)}: {mproblem} (mask of {group.image.name})")
            continue
        if msize != size and mismatched is not None:
            mismatched.append(f"{relpath(m, base)} ({msize[0]}x{msize[1]} vs image {size[0]}x{size[1]})")
        good.append(m)
    return good


def warn_mismatched(scan: Scan, mismatched: list[str]) -> None:
    """One warning for the masks whose size differs from their image's."""
    if mismatched:
        scan.warnings.append(f"{len(mismatched)} mask(s) of another size than their image (resized to the image "
                             f"when read): {examples(mismatched)}")


def read_mask(item: Item, shape: tuple[int, int] | None = None) -> np.ndarray | None:
    """The item's lesion mask: all of its mask files merged by pixel-wise max (OR), as a 2-d bool array.

    Args:
        shape: (height, width) to resize every mask to (nearest neighbour), normally the image's; default:
            the first mask's.

    Returns:
        None when the item has neither mask files nor mask shapes.
    """
    from PIL import Image

    from bench.data import imageio

    merged = None
    for p in item.mask_paths:
        m = (imageio.read_dicom(p) if reader_for(p) == "dicom" else imageio.read_image(p)) > 0
        target = shape or (merged.shape if merged is not None else m.shape)
        if m.shape != tuple(target):
            m = np.asarray(Image.fromarray(m).resize((target[1], target[0]), Image.Resampling.NEAREST))
        merged = m if merged is None else merged | m
    if item.mask_shapes is not None:
        target = shape or (merged.shape if merged is not None else item.mask_frame)
        if target is None:
            raise ValueError(f"{item.image_id}: mask shapes need the image shape or Item.mask_frame")
        drawn = draw_shapes(item.mask_shapes, tuple(target), item.mask_frame)
        merged = drawn if merged is None else merged | drawn
    return merged


def draw_shapes(shapes, shape: tuple[int, int], frame: tuple[int, int] | None = None) -> np.ndarray:
    """Rasterise ``("polygon", ((row, col), ...))`` and ``("circle", (row, col, radius))`` outlines into a
    boolean mask of ``shape``; coordinates in ``frame`` pixels are scaled to ``shape`` (scikit-image draw)."""
    from skimage.draw import disk, polygon

    mask = np.zeros(shape, bool)
    fy, fx = (shape[0] / frame[0], shape[1] / frame[1]) if frame else (1.0, 1.0)
    for kind, data in shapes:
        if kind == "polygon":
            pts = np.asarray(data, float)
            rr, cc = polygon(pts[:, 0] * fy, pts[:, 1] * fx, shape=shape)
        elif kind == "circle":
            r, c, rad = data
            rr, cc = disk((r * fy, c * fx), max(1.0, rad * (fy + fx) / 2), shape=shape)
        else:
            raise ValueError(f"unknown mask shape {kind!r} (polygon or circle)")
        mask[rr, cc] = True
    return mask


def summarize_files(scan: Scan, what: str, paths: list[Path], base: Path, advice: str = "") -> None:
    """Add one warning for a list of files (count and the first few), if there are any."""
    if paths:
        scan.warnings.append(f"{len(paths)} {what}: {examples([relpath(p, base) for p in paths])}"
                             + (f"; {advice}" if advice else ""))
