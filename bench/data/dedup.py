"""Near-duplicate grouping for datasets without patient ids (BUSI, Rodrigues, BreastMNIST).

Those datasets hold several images of one patient (BUSI: 780 images of 600 patients) but release no
patient id, so a random split can put two frames of one lesion on both sides. As a mitigation, not a
cure, images whose perceptual hashes (``imagehash.phash``: DCT of a 32 x 32 thumbnail, 64 bits) differ
in at most ``max_distance`` bits are linked, and the connected components of that graph
(``scipy.sparse.csgraph``) become the split groups. Two images of one patient that do not look alike
(other lesion, other probe angle) stay apart: the split is then still leaky, and reports say so.
"""
from __future__ import annotations

import numpy as np

DEFAULT_MAX_DISTANCE = 6


def phashes(images: np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes of ``(N, H, W)`` uint8 images, as ``(N,)`` uint64."""
    import imagehash
    from PIL import Image

    out = np.empty(len(images), np.uint64)
    for i, img in enumerate(images):
        bits = imagehash.phash(Image.fromarray(np.asarray(img, np.uint8))).hash.ravel()
        out[i] = np.packbits(bits).view(">u8")[0]
    return out


def near_duplicate_groups(images: np.ndarray, *, max_distance: int = DEFAULT_MAX_DISTANCE,
                          prefix: str = "dup") -> tuple[np.ndarray, dict]:
    """Group ids (``"dup00012"``) linking images within ``max_distance`` phash bits, transitively.

    Returns:
        ``(groups, info)`` with ``info = {"groups": n, "linked_images": n in groups of 2+,
        "largest_group": n, "max_distance": d}``.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(images)
    if n == 0:
        return np.array([], dtype=str), {"groups": 0, "linked_images": 0, "largest_group": 0,
                                         "max_distance": max_distance}
    hashes = phashes(images)
    rows, cols = [], []
    for start in range(0, n, 2048):  # blocks keep memory at 2048 x N bytes
        d = hamming_distances(hashes[start:start + 2048], hashes)
        r, c = np.nonzero(d <= max_distance)
        rows.append(r + start)
        cols.append(c)
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = csr_matrix((np.ones(len(r), np.int8), (r, c)), shape=(n, n))
    k, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    info = {"groups": int(k), "linked_images": int(sizes[sizes > 1].sum()), "largest_group": int(sizes.max()),
            "max_distance": max_distance}
    return np.array([f"{prefix}{lab:05d}" for lab in labels]), info


def hamming_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between two sets of uint64 hashes, ``(len(a), len(b))``."""
    return np.bitwise_count(np.asarray(a, np.uint64)[:, None] ^ np.asarray(b, np.uint64)[None, :]).astype(np.uint8)
