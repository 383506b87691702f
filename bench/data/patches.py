"""Patches around lesions and from background tissue, for patch-classifier pre-training (Shen et al.).

Shen et al. (2019) train a patch classifier before the whole-image network. Their "S10" patch set holds,
for every region of interest (ROI), 10 patches whose centres are drawn inside the ROI's bounding box and
accepted when the patch covers enough of the ROI, plus background patches from the same image. Every patch
is one of five classes (background, benign/malignant mass, benign/malignant calcification). This module
does the same on an :class:`~bench.data.ArrayDataset` with lesion masks, deterministically from a seed:

* an ROI is a connected component of the image's mask (``scipy.ndimage.label``, 8-connectivity);
* a lesion patch is centred uniformly in the ROI's bounding box and kept when
  ``max(overlap / roi_area, overlap / patch_area) >= min_overlap``; after ``max_draws`` rejected draws
  the cutoff is relaxed by 0.05, as in Shen's ``sample_patches_combined.py``;
* a background patch is centred anywhere, overlaps no lesion pixel at all and is mostly breast tissue
  (pixels brighter than ``tissue_threshold`` times the image's maximum, Shen's breast segmentation);
* images and masks are zero-padded by half a patch, so patches may reach over the border.

Labels: with the lesion kind known for every lesion image (mass or calcification, from the dataset's
``meta["lesion_kind"]``), 5 classes ``PATCH_CLASSES_5``; otherwise 3 classes ``PATCH_CLASSES_3``
(background, benign, malignant). The pathology of a lesion is its image's label. An image whose kind
names both a mass and calcifications (synthetic ``"spiculated_mass+calcification"``: the cluster sits
on the mass, so the mask is one component) labels its lesions as masses. Sampling of image ``i`` uses
the random stream ``SeedSequence([seed, i])``, so it does not depend on which other images are sampled.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.base import ArrayDataset

PATCH_CLASSES_5 = ("background", "mass_benign", "mass_malignant", "calc_benign", "calc_malignant")
PATCH_CLASSES_3 = ("background", "benign", "malignant")
_BATCH = 256  # candidate centres drawn per vectorised round


class MissingMasksError(ValueError):
    """Patch sampling needs lesion masks and the dataset has none."""


@dataclass(frozen=True)
class PatchSet:
    """Sampled patches.

    Attributes:
        images: ``(M, p, p)`` uint8 patches.
        labels: ``(M,)`` int64 index into ``classes``.
        image_index: ``(M,)`` row of the source image in the dataset.
        centres: ``(M, 2)`` patch centre (row, column) in the image's pixel coordinates.
        classes: class names; ``labels == 0`` is background.
    """

    images: np.ndarray
    labels: np.ndarray
    image_index: np.ndarray
    centres: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        """Patches per class name (JSON-friendly)."""
        return {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)}


def lesion_types(ds: ArrayDataset) -> np.ndarray | None:
    """Per-image lesion type ``"mass"``, ``"calc"`` or ``""`` (no lesion) from ``meta["lesion_kind"]``.

    Returns None when some image with a lesion mask has no known type (then patches use 3 classes).
    """
    kinds = ds.meta.get("lesion_kind")
    if kinds is None or len(kinds) != len(ds):
        return None
    out = np.array(["mass" if "mass" in k else "calc" if "calc" in k else "" for k in map(str, kinds)])
    if ds.masks is not None and np.any((out == "") & ds.masks.any(axis=(1, 2))):
        return None
    return out


def _box_sums(table: np.ndarray, r0: np.ndarray, c0: np.ndarray, p: int) -> np.ndarray:
    """Sums over ``p x p`` windows with top-left corners ``(r0, c0)`` from a summed-area table."""
    return table[r0 + p, c0 + p] - table[r0, c0 + p] - table[r0 + p, c0] + table[r0, c0]


def _summed_area(a: np.ndarray) -> np.ndarray:
    t = np.zeros((a.shape[0] + 1, a.shape[1] + 1), np.int64)
    t[1:, 1:] = a.astype(np.int64).cumsum(0).cumsum(1)
    return t


def _lesion_centres(component: np.ndarray, n: int, p: int, rng: np.random.Generator, *, min_overlap: float,
                    max_draws: int) -> list[tuple[int, int]]:
    """``n`` patch centres (padded coordinates) around one ROI, each covering enough of it."""
    rows, cols = np.nonzero(component)
    area = len(rows)
    table = _summed_area(component)
    out: list[tuple[int, int]] = []
    cutoff, failed = min_overlap, 0
    while len(out) < n:
        # centres inside the ROI's box; the padding keeps every such patch inside the padded image
        r0 = rng.integers(rows.min(), rows.max() + 1, _BATCH) - p // 2
        c0 = rng.integers(cols.min(), cols.max() + 1, _BATCH) - p // 2
        inter = _box_sums(table, r0, c0, p)
        ok = np.maximum(inter / area, inter / (p * p)) >= cutoff - 1e-9
        for i in np.flatnonzero(ok)[: n - len(out)]:
            out.append((int(r0[i] + p // 2), int(c0[i] + p // 2)))
        failed += int((~ok).sum())
        if failed >= max_draws:
            cutoff, failed = cutoff - 0.05, 0
    return out


def _background_centres(lesion: np.ndarray, tissue: np.ndarray, n: int, p: int, rng: np.random.Generator, *,
                        min_tissue: float, max_draws: int) -> list[tuple[int, int]]:
    """Up to ``n`` patch centres (padded coordinates) touching no lesion pixel, mostly on tissue."""
    les_t, tis_t = _summed_area(lesion), _summed_area(tissue)
    h, w = lesion.shape[0] - p, lesion.shape[1] - p  # the unpadded size: top-left corners 0..h-1 centre on pixels
    out: list[tuple[int, int]] = []
    for _ in range(max(1, max_draws // _BATCH)):
        r0, c0 = rng.integers(0, h, _BATCH), rng.integers(0, w, _BATCH)
        ok = (_box_sums(les_t, r0, c0, p) == 0) & (_box_sums(tis_t, r0, c0, p) >= min_tissue * p * p)
        for i in np.flatnonzero(ok)[: n - len(out)]:
            out.append((int(r0[i] + p // 2), int(c0[i] + p // 2)))
        if len(out) >= n:
            break
    return out


def sample_patches(ds: ArrayDataset, indices: np.ndarray | None = None, *, patch_size: int, per_lesion: int = 10,
                   background_per_image: int = 10, min_overlap: float = 0.9, tissue_threshold: float = 0.1,
                   min_tissue: float = 0.5, n_classes: int | None = None, seed: int = 0,
                   max_draws: int = 1000) -> PatchSet:
    """S10-style patches from the images ``indices`` of ``ds`` (default: all).

    Args:
        patch_size: side of a square patch in pixels (Shen: 224 on 1152 x 896 images).
        per_lesion: patches per ROI (connected component of the mask); S10 = 10, S1 = 1.
        background_per_image: background patches per image (lesion and normal images alike); fewer when an
            image has too little lesion-free tissue.
        min_overlap: share of the ROI (or of the patch, for ROIs larger than a patch) a lesion patch covers.
        tissue_threshold: a pixel is tissue when brighter than this fraction of its image's maximum.
        min_tissue: share of a background patch that must be tissue.
        n_classes: 5 or 3; default 5 when :func:`lesion_types` knows every lesion's type, else 3.
        max_draws: rejected draws before relaxing ``min_overlap`` by 0.05 (and the background budget).

    Raises:
        MissingMasksError: the dataset has no lesion masks.
        ValueError: bad sizes, or 5 classes asked for without known lesion types.
    """
    from scipy import ndimage

    if ds.masks is None:
        raise MissingMasksError(f"dataset {ds.name!r} has no lesion masks, and patch sampling (patch_cnn's "
                                "source pre-training, Shen et al.) needs them: use a source with masks, such as "
                                "synth-ddsm, or another backbone for this source")
    size = min(ds.images.shape[1:])
    if not 4 <= patch_size <= size:
        raise ValueError(f"patch_size must be between 4 and the image size {size}; got {patch_size}")
    if per_lesion < 0 or background_per_image < 0:
        raise ValueError("per_lesion and background_per_image must be >= 0")
    types = lesion_types(ds)
    if n_classes is None:
        n_classes = 5 if types is not None else 3
    if n_classes not in (3, 5):
        raise ValueError(f"n_classes must be 3 or 5; got {n_classes}")
    if n_classes == 5 and types is None:
        raise ValueError(f"dataset {ds.name!r}: 5 patch classes need the lesion kind (mass or calcification) of "
                         "every lesion image in meta['lesion_kind']; use n_classes=3")
    classes = PATCH_CLASSES_5 if n_classes == 5 else PATCH_CLASSES_3
    indices = np.arange(len(ds)) if indices is None else np.asarray(indices)
    half = patch_size // 2
    pad = ((half, patch_size - half),) * 2  # zero padding: a patch may be centred on any pixel
    patches, labels, where, centres = [], [], [], []
    for i in indices.tolist():
        rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
        img, mask = np.pad(ds.images[i], pad), np.pad(ds.masks[i], pad)
        comps, n_comp = ndimage.label(mask, structure=np.ones((3, 3), bool))
        malignant = int(ds.labels[i] == 1)
        lesion_class = ({"mass": 1, "calc": 3}.get(str(types[i]), 0) if n_classes == 5 else 1) + malignant
        found = []
        for c in range(1, n_comp + 1):
            found += [(rc, lesion_class) for rc in _lesion_centres(comps == c, per_lesion, patch_size, rng,
                                                                   min_overlap=min_overlap, max_draws=max_draws)]
        tissue = img > tissue_threshold * max(1, int(ds.images[i].max()))
        found += [(rc, 0) for rc in _background_centres(mask, tissue, background_per_image, patch_size, rng,
                                                        min_tissue=min_tissue, max_draws=max_draws)]
        for (r, c), lab in found:
            patches.append(img[r - half:r - half + patch_size, c - half:c - half + patch_size])
            labels.append(lab)
            where.append(i)
            centres.append((r - half, c - half))
    empty = np.zeros((0, patch_size, patch_size), np.uint8)
    return PatchSet(images=np.stack(patches) if patches else empty, labels=np.array(labels, np.int64),
                    image_index=np.array(where, np.int64), centres=np.array(centres, np.int64).reshape(-1, 2),
                    classes=classes)


def balanced_order(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Indices that repeat each present class up to the largest class's count (seeded, shuffled).

    Shen et al. weight samples so that the classes are balanced within a batch; training on this
    oversampled order gives every present class the same expected weight.
    """
    rng = np.random.default_rng(seed)
    present = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    if not present:
        return np.zeros(0, np.int64)
    n = max(len(p) for p in present)
    out = np.concatenate([np.concatenate([p, rng.choice(p, n - len(p))]) if len(p) < n else p for p in present])
    return rng.permutation(out)
