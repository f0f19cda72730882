"""Regions of region-adaptive tickets: the spec, grids, k-means, label images, the shared resampling
rule, and the REGIONS section of format v2 (inrcodec/encoder/regions.py, coords, container)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inrcodec import coords
from inrcodec.encoder import regions as R
from inrcodec.format import container


def blobs(h: int = 24, w: int = 24) -> np.ndarray:
    """Three flat colour areas: left half red, top right green, bottom right blue."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (220, 30, 30)
    arr[: h // 2, w // 2 :] = (30, 220, 30)
    arr[h // 2 :, w // 2 :] = (30, 30, 220)
    return arr


@pytest.mark.parametrize(
    "text, want",
    [
        ("grid:2x3", R.RegionSpec("grid", rows=2, cols=3)),
        ("kmeans:4", R.RegionSpec("kmeans", count=4, factor=R.KMEANS_FACTOR)),
        ("kmeans:5@2", R.RegionSpec("kmeans", count=5, factor=2)),
    ],
)
def test_parse_spec(text, want):
    assert R.parse_spec(text) == want


def test_parse_spec_labels_needs_a_map(tmp_path):
    assert R.parse_spec(None, tmp_path / "m.png") == R.RegionSpec("labels", factor=1)
    assert R.parse_spec("labels@4", tmp_path / "m.png").factor == 4
    for bad in ("grid:0x2", "grid:9x9", "kmeans:0", "kmeans:2@0", "voronoi:3", "labels"):
        with pytest.raises(ValueError):
            R.parse_spec(bad)
    with pytest.raises(ValueError):
        R.parse_spec("grid:2x2", tmp_path / "m.png")


def test_cells_is_nearest_pixel_centre():
    assert coords.cells(24, 8).tolist() == [i // 3 for i in range(24)]
    # Twice the resolution: each native pixel's label covers its 2x2 block.
    assert coords.cells(48, 24).tolist() == [i // 2 for i in range(48)]
    # Against the continuous rule on float64 centres, at an odd ratio.
    x = (2 * np.arange(37) + 1) / 37 - 1
    assert coords.cells(37, 5).tolist() == np.floor((x + 1) / 2 * 5).astype(int).tolist()


def test_grid_regions_partition_the_image():
    reg = R.build(R.parse_spec("grid:2x3"), blobs())
    assert reg.kind == container.REGION_GRID and reg.count == 6
    idx = R.region_indices(reg, 24, 24)
    assert sorted(torch.cat(idx).tolist()) == list(range(24 * 24))
    assert [i.numel() for i in idx] == [96] * 6
    lab = R.pixel_labels(reg, 24, 24).reshape(24, 24)
    assert lab[0, 0] == 0 and lab[0, 23] == 2 and lab[23, 0] == 3 and lab[23, 23] == 5
    with pytest.raises(ValueError):
        R.build(R.parse_spec("grid:5x5"), blobs(4, 4))


def test_kmeans_finds_the_colour_areas():
    arr = blobs()
    reg = R.build(R.parse_spec("kmeans:3@1"), arr, seed=0)
    assert reg.kind == container.REGION_LABELS and reg.count == 3 and reg.labels.shape == (24, 24)
    lab = reg.labels
    # One label per colour area, whatever the numbering.
    for area in (lab[:, :12], lab[:12, 12:], lab[12:, 12:]):
        assert len(np.unique(area)) == 1
    assert len({lab[0, 0], lab[0, 23], lab[23, 23]}) == 3
    coarse = R.build(R.parse_spec("kmeans:3@4"), arr, seed=0)
    assert coarse.labels.shape == (6, 6)
    # The encoder's pixels of each region are the decoder's: the stored map through coords.
    want = coarse.labels[np.arange(24)[:, None] // 4, np.arange(24)[None, :] // 4].reshape(-1)
    assert R.pixel_labels(coarse, 24, 24).numpy().tolist() == want.tolist()


def test_downsample_majority_and_compact():
    lab = np.zeros((4, 4), np.int64)
    lab[0, 0] = 1  # a minority in its 2x2 cell
    lab[2:, 2:] = 3
    lab[3, 3] = 7
    small = R.downsample(lab, 2)
    assert small.tolist() == [[0, 0], [0, 3]]
    assert R.compact(small).tolist() == [[0, 0], [0, 1]]
    assert R.downsample(np.zeros((5, 3), np.int64), 2).shape == (3, 2)


def test_label_images(tmp_path):
    grey = np.zeros((24, 24), np.uint8)
    grey[:, 12:] = 200
    Image.fromarray(grey, "L").save(tmp_path / "l.png")
    reg = R.build(R.parse_spec(None, tmp_path / "l.png"), blobs(), tmp_path / "l.png")
    assert reg.count == 2 and reg.labels[0].tolist() == [0] * 12 + [1] * 12
    Image.fromarray(blobs(), "RGB").save(tmp_path / "rgb.png")
    reg = R.build(R.parse_spec("labels@2", tmp_path / "rgb.png"), blobs(), tmp_path / "rgb.png")
    assert reg.count == 3 and reg.labels.shape == (12, 12)
    with pytest.raises(ValueError, match=f"--region-map {tmp_path / 'l.png'}: 24x24, the image 24x20"):
        R.build(R.parse_spec(None, tmp_path / "l.png"), blobs(20, 24), tmp_path / "l.png")
    many = np.arange(24 * 24, dtype=np.uint16).reshape(24, 24)  # a photograph given as a map: a label a pixel
    Image.fromarray(many).save(tmp_path / "many.png")
    with pytest.raises(ValueError, match=f"--region-map {tmp_path / 'many.png'}: 576 regions; at most 64"):
        R.build(R.parse_spec(None, tmp_path / "many.png"), blobs(), tmp_path / "many.png")


def _header(w: int = 24, h: int = 24) -> container.Header:
    return container.Header(w, h, 3, 8, 2, 30.0, 30.0)


def three_areas() -> np.ndarray:
    lab = np.zeros((24, 24), np.uint8)
    lab[:, 12:] = 1
    lab[12:, 12:] = 2
    return lab


@pytest.mark.parametrize(
    "regions", [container.Regions.grid(2, 3), container.Regions(container.REGION_LABELS, 3, labels=three_areas())]
)
def test_regions_section_round_trip(regions):
    payload = container.pack_regions(regions, 11)
    back = container.parse_regions(payload, _header())
    assert (back.kind, back.count, back.rows, back.cols) == (regions.kind, regions.count, regions.rows, regions.cols)
    assert np.array_equal(back.label_map(), regions.label_map())
    if regions.kind == container.REGION_GRID:
        assert len(payload) == 3  # rows and cols only: the grid costs no map
