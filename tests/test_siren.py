"""siren.py: the architecture, the paper's initialisation, overriding weights, state and load."""

from __future__ import annotations

import math

import pytest
import torch

from inrcodec.siren import Architecture, Siren, default_device, fourier_features


def test_shapes_and_parameter_count():
    arch = Architecture(hidden=16, layers=3, out_features=4)
    assert arch.shapes() == [(16, 2), (16, 16), (16, 16), (4, 16)]
    assert arch.n_params() == 16 * 2 + 16 + 2 * (16 * 16 + 16) + 4 * 16 + 4
    net = Siren(arch)
    assert [tuple(w.shape) for w in net.weights] == arch.shapes()
    assert sum(p.numel() for p in net.parameters()) == arch.n_params()


def test_initialisation_bounds_and_seed():
    arch = Architecture(hidden=64, layers=3, omega_hidden=30.0)
    a = Siren(arch, torch.Generator().manual_seed(5))
    b = Siren(arch, torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    ws, bs = a.state()
    assert float(ws[0].abs().max()) <= 1 / 2  # first layer: U(-1/fan_in, 1/fan_in)
    bound = math.sqrt(6 / 64) / 30  # the others: U(-sqrt(6/fan_in)/omega, ...)
    for w in ws[1:]:
        assert 0.9 * bound < float(w.abs().max()) <= bound
    for bias, (_o, fan_in) in zip(bs, arch.shapes()):
        assert float(bias.abs().max()) <= 1 / math.sqrt(fan_in)
    c = Siren(arch, torch.Generator().manual_seed(6))
    assert not torch.equal(a.weights[1], c.weights[1])


def test_forward_is_the_documented_formula():
    arch = Architecture(hidden=5, layers=2, out_features=3, omega0=20.0, omega_hidden=7.0)
    net = Siren(arch, torch.Generator().manual_seed(0))
    xy = torch.rand(9, 2) * 2 - 1
    w, b = net.weights, net.biases
    h = torch.sin(20.0 * (xy @ w[0].T + b[0]))
    h = torch.sin(7.0 * (h @ w[1].T + b[1]))
    expected = h @ w[2].T + b[2]
    torch.testing.assert_close(net(xy), expected)


def test_fourier_features_are_the_documented_ones():
    """docs/format.md, version 3: x, y, sin(pi 2^k c) for c = x then y and k = 0..L-1, then cos."""
    xy = torch.tensor([[0.25, -0.5], [1.0, 0.125]])
    assert torch.equal(fourier_features(xy, 0), xy)
    got = fourier_features(xy, 3)
    assert got.shape == (2, 2 * (1 + 2 * 3))
    args = [[c * math.pi * 2**k for c in row for k in range(3)] for row in xy.tolist()]
    expected = torch.tensor(
        [row + [math.sin(a) for a in ar] + [math.cos(a) for a in ar] for row, ar in zip(xy.tolist(), args)]
    )
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    arch = Architecture(hidden=8, layers=2, pe_levels=3)
    assert arch.encoded_features == 14 and arch.shapes()[0] == (8, 14)
    net = Siren(arch, torch.Generator().manual_seed(0))
    h = torch.sin(30.0 * (got @ net.weights[0].T + net.biases[0]))
    h = torch.sin(30.0 * (h @ net.weights[1].T + net.biases[1]))
    torch.testing.assert_close(net(xy), h @ net.weights[2].T + net.biases[2])


def test_override_weights_and_state_load():
    net = Siren(Architecture(hidden=8, layers=2), torch.Generator().manual_seed(0))
    xy = torch.rand(4, 2)
    ws, bs = net.state()
    zeros = [torch.zeros_like(w) for w in ws]
    torch.testing.assert_close(net(xy, zeros, bs), bs[-1].expand(4, 3))  # override, not stored
    out = net(xy)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    assert not torch.equal(net(xy), out)
    net.load(ws, bs)
    assert torch.equal(net(xy), out)
    ws[0].add_(1.0)  # state() returns copies
    assert torch.equal(net(xy), out)


def test_default_device():
    assert default_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert default_device().type == "cuda"
    else:
        assert default_device().type in ("cpu", "mps")


@pytest.mark.parametrize("layers", [1, 4])
def test_depths(layers):
    net = Siren(Architecture(hidden=4, layers=layers, out_features=1))
    assert net(torch.zeros(3, 2)).shape == (3, 1) and len(net.weights) == layers + 1
