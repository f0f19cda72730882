"""RigL (inrcodec/encoder/rigl.py): the mask update and sparse training on a tiny image."""

from __future__ import annotations

import math

import torch

from inrcodec.config import FitConfig
from inrcodec.encoder import rigl
from inrcodec.encoder.fit import Target
from inrcodec.encoder.mask import Mask
from inrcodec.siren import Architecture, Siren


def test_drop_fraction_is_a_cosine_to_t_end():
    cfg = rigl.RigLConfig(delta=10, alpha=0.3, end=0.75)
    assert rigl.drop_fraction(0, 100, cfg) == 0.3
    assert math.isclose(rigl.drop_fraction(37.5, 100, cfg), 0.15)
    assert rigl.drop_fraction(75, 100, cfg) == 0.0 and rigl.drop_fraction(90, 100, cfg) == 0.0


def test_update_drops_smallest_and_regrows_largest_gradient():
    w = torch.tensor([[0.5, -0.1, 0.0, 0.9, 0.0, 0.0], [0.2, 0.0, 0.0, 0.0, -0.3, 0.0]])
    keep = torch.tensor([[True, True, False, True, False, False], [True, False, False, False, True, False]])
    g = torch.tensor([[9.0, 9.0, 0.1, 9.0, -2.0, 0.05], [9.0, 0.3, -0.4, 0.1, 9.0, 0.2]])
    mask = Mask((keep,))
    new, grown = rigl.update([w], [g], mask, 0.4)  # round(0.4 * 5) = 2 moved
    assert new.count() == mask.count()
    dropped = keep & ~new.keep[0]
    assert dropped.nonzero().tolist() == [[0, 1], [1, 0]]  # |w| 0.1 and 0.2, the smallest active
    assert grown[0].nonzero().tolist() == [[0, 4], [1, 2]]  # |g| 2.0 and 0.4, the largest inactive
    assert (new.keep[0] == ((keep & ~dropped) | grown[0])).all()


def test_update_keeps_each_layers_count():
    g = torch.Generator().manual_seed(0)
    ws = [torch.randn(8, 5, generator=g), torch.randn(3, 8, generator=g)]
    mask = rigl.random_mask(ws, 20, g)
    for frac in (0.3, 0.1, 0.5):
        new, _ = rigl.update(ws, [torch.randn(w.shape, generator=g) for w in ws], mask, frac)
        assert [int(k.sum()) for k in new.keep] == [int(k.sum()) for k in mask.keep]
        mask = new


def test_train_rigl_keeps_density_and_moves_the_mask(monkeypatch):
    g = torch.Generator().manual_seed(1)
    target = Target.of((torch.rand(16, 16, 3, generator=g) * 255).round().to(torch.uint8).numpy())
    net = Siren(Architecture(2, 16, 2, 3, 30.0, 30.0), torch.Generator().manual_seed(0))
    total = sum(w.numel() for w in net.weights)
    seen: list[tuple[Mask, Mask, list[torch.Tensor], float]] = []
    real = rigl.update

    def spy(weights, grads, mask, fraction):
        new, grown = real(weights, grads, mask, fraction)
        seen.append((mask, new, grown, fraction))
        return new, grown

    monkeypatch.setattr(rigl, "update", spy)
    cfg = FitConfig(steps=40, batch=128, lr=1e-3, seed=0)
    mask, (ws, _bs) = rigl.train_rigl(net, target, cfg, 40, density=0.3, rcfg=rigl.RigLConfig(delta=10))
    # Steps 10 and 20 (T_end = 30): 0.3 / 2 (1 + cos(pi / 3)), 0.3 / 2 (1 + cos(2 pi / 3)).
    assert [round(s[3], 6) for s in seen] == [0.225, 0.075]
    for before, after, grown, _ in seen:
        assert after.count() == before.count() == round(0.3 * total)
        assert any(bool(x.any()) for x in grown)
    assert mask.count() == round(0.3 * total)
    assert all(not w[~k].any() for w, k in zip(ws, mask.keep))  # pruned weights exactly zero
