"""coords.py: the one coordinate convention (pixel centres in [-1, 1]) of encoder and decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inrcodec import coords


@pytest.mark.parametrize("n", [1, 2, 3, 8, 255])
def test_axis_is_pixel_centres(n):
    a = coords.axis(n)
    assert a.dtype == torch.float32 and a.shape == (n,)
    expected = (2 * np.arange(n) + 1) / n - 1
    np.testing.assert_array_equal(a.numpy(), expected.astype(np.float32))
    np.testing.assert_allclose(a.numpy(), -a.flip(0).numpy(), atol=1e-7)  # symmetric about 0
    assert -1 < float(a.min()) and float(a.max()) < 1


def test_single_pixel_sits_at_the_centre():
    assert coords.axis(1).tolist() == [0.0]


def test_grid_is_row_major_with_x_first():
    g = coords.grid(3, 4)
    assert g.shape == (12, 2) and g.dtype == torch.float32
    xs, ys = coords.axis(4), coords.axis(3)
    for i in range(12):
        y, x = divmod(i, 4)
        assert g[i, 0] == xs[x] and g[i, 1] == ys[y]


def test_rows_are_slices_of_the_grid():
    g = coords.grid(7, 5)
    for y0, y1 in ((0, 7), (0, 1), (2, 5), (6, 7)):
        torch.testing.assert_close(coords.rows(y0, y1, 7, 5), g[y0 * 5 : y1 * 5], rtol=0, atol=0)


def test_coarse_centres_are_the_mean_of_fine_ones():
    """Pixel i of an n-pixel axis covers pixels 2i and 2i+1 of a 2n-pixel axis: the same image at
    any resolution."""
    coarse, fine = coords.axis(6).double(), coords.axis(12).double()
    torch.testing.assert_close(coarse, fine.reshape(6, 2).mean(1), rtol=0, atol=1e-7)
