"""Regions for region-adaptive tickets (RTL): which pixels each ticket serves.

Every region source ends as a :class:`container.Regions` the decoder can rebuild:

- ``grid:RxC``: R rows x C columns of equal cells of [-1, 1]^2; the file stores only R and C.
- ``kmeans:K`` (or ``kmeans:K@F``): scikit-learn KMeans on (x, y, colour) of the pixels; the
  label map is stored, downsampled by the factor F (default 16) by majority vote.
- ``labels`` (or ``labels@F``) with a label image: L or P images give labels by value, RGB(A)
  images one label per distinct colour; stored at native size (F = 1) or downsampled by F.

The encoder trains region k on exactly the pixels the decoder gives region k at native size:
pixel labels always come from the stored map through :func:`coords.label_rows`.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from inrcodec import coords
from inrcodec.encoder.region_spec import KMEANS_FACTOR, RegionSpec, parse_spec
from inrcodec.format import container
from inrcodec.image import load_labels, to_unit

__all__ = ["KMEANS_FACTOR", "RegionSpec", "build", "parse_spec"]

KMEANS_SAMPLE = 20000  # pixels KMeans is fitted on (all pixels are then labelled)


def build(
    spec: RegionSpec, arr: np.ndarray, region_map: str | os.PathLike | None = None, seed: int = 0
) -> container.Regions:
    """The regions of an (H, W, C) uint8 image, as they will be stored."""
    h, w = arr.shape[:2]
    if spec.kind == "grid":
        if spec.rows > h or spec.cols > w:
            raise ValueError(f"grid {spec.rows}x{spec.cols} is finer than the {w}x{h} image")
        return container.Regions.grid(spec.rows, spec.cols)
    if spec.kind == "kmeans":
        native = kmeans_labels(arr, spec.count, seed)
    else:
        native = load_label_image(region_map)
        if native.shape != (h, w):
            raise ValueError(f"--region-map {region_map}: {native.shape[1]}x{native.shape[0]}, the image {w}x{h}")
    labels = compact(downsample(native, spec.factor))
    count = int(labels.max()) + 1
    if labels.size > container.MAX_LABEL_CELLS:
        raise ValueError(f"a {labels.shape[1]}x{labels.shape[0]} label map is too large; use labels@F")
    if count > container.MAX_REGIONS:
        where = f"--region-map {region_map}: " if spec.kind == "labels" else ""
        raise ValueError(f"{where}{count} regions; at most {container.MAX_REGIONS}")
    return container.Regions(container.REGION_LABELS, count, labels=labels.astype(np.uint8))


def pixel_labels(regions: container.Regions, height: int, width: int) -> torch.Tensor:
    """The region of every pixel of a height x width image, flat row-major (the decoder's rule)."""
    labels = torch.from_numpy(regions.label_map().astype(np.int64))
    return coords.label_rows(labels, 0, height, height, width)


def region_indices(regions: container.Regions, height: int, width: int) -> list[torch.Tensor]:
    """Flat pixel indices of each region at native size (CPU int64, as fit.train's ``region``)."""
    lab = pixel_labels(regions, height, width)
    return [torch.nonzero(lab == k).squeeze(1) for k in range(regions.count)]


def downsample(labels: np.ndarray, factor: int) -> np.ndarray:
    """A (ceil(H/F), ceil(W/F)) map: each cell the most frequent label of the native pixels the
    shared rule (coords.cells) puts in it; ties go to the smaller label."""
    if factor == 1:
        return labels
    h, w = labels.shape
    mh, mw = math.ceil(h / factor), math.ceil(w / factor)
    cell = (coords.cells(h, mh).numpy()[:, None] * mw + coords.cells(w, mw).numpy()[None, :]).reshape(-1)
    k = int(labels.max()) + 1
    votes = np.bincount(cell * k + labels.reshape(-1).astype(np.int64), minlength=mh * mw * k)
    return votes.reshape(mh * mw, k).argmax(axis=1).reshape(mh, mw)


def compact(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..K-1 in order of value, so that every region has pixels."""
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape)


def kmeans_labels(arr: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """(H, W) KMeans cluster of every pixel on (x, y, colour), all scaled to [-1, 1]."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    h, w, c = arr.shape
    xy = coords.grid(h, w).numpy()
    feats = np.concatenate([xy, to_unit(arr).reshape(h * w, c)], axis=1)
    rng = np.random.default_rng(seed)
    sample = feats if h * w <= KMEANS_SAMPLE else feats[rng.choice(h * w, KMEANS_SAMPLE, replace=False)]
    with threadpool_limits(1):  # small problem: threads only contend (10x slower on a busy 2-core CPU)
        km = KMeans(n_clusters=min(k, len(sample)), n_init=4, random_state=seed).fit(sample)
        return km.predict(feats).reshape(h, w)


def load_label_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W) int64 labels from an image (``image.load_labels``: values, or one label per colour)."""
    return load_labels(path)
