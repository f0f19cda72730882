"""encoder/mask.py and encoder/prune.py: masks, rules, rounds, rewinding, the IMP loop."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import tiny_config

from inrcodec.encoder.fit import Target
from inrcodec.encoder.mask import Mask
from inrcodec.encoder.prune import parse_rewind, prune_rounds, round_fraction, rounds_to
from inrcodec.siren import Siren


def _weights() -> list[torch.Tensor]:
    return [torch.tensor([[0.1, -0.5], [0.3, 0.0]]), torch.tensor([[-0.2, 0.4, 0.6]])]


def test_dense_mask():
    m = Mask.dense(_weights())
    assert m.count() == m.total() == 7 and m.density() == 1.0
    assert all(k.dtype == torch.bool for k in m.keep)


def test_magnitude_prunes_smallest_globally():
    ws = _weights()
    m = Mask.dense(ws).prune(ws, 3 / 7)
    # The three smallest |w| across both layers: 0.0, 0.1, -0.2.
    assert m.keep[0].tolist() == [[False, True], [True, False]] and m.keep[1].tolist() == [[False, True, True]]
    applied = m.apply(ws)
    assert torch.equal(applied[0], torch.tensor([[0.0, -0.5], [0.3, 0.0]]))
    # Pruning again never "removes" a dead weight twice: it takes the next smallest survivors.
    m2 = m.prune(ws, 0.5)
    assert m2.count() == 2 and m2.keep[1].tolist() == [[False, False, True]] and m2.keep[0][0, 1]


def test_largest_and_random_rules():
    ws = _weights()
    loser = Mask.dense(ws).prune(ws, 2 / 7, "largest")
    # The losing ticket drops the largest |w| first: 0.6, then -0.5.
    assert loser.keep[1].tolist() == [[True, True, False]] and loser.keep[0].tolist() == [[True, False], [True, True]]
    a = Mask.dense(ws).prune(ws, 0.5, "random", torch.Generator().manual_seed(3))
    b = Mask.dense(ws).prune(ws, 0.5, "random", torch.Generator().manual_seed(3))
    assert a.jaccard(b) == [1.0, 1.0] and a.count() == 3  # round(3.5) = 4 removed (ties to even)
    with pytest.raises(ValueError, match="unknown pruning rule"):
        Mask.dense(ws).prune(ws, 0.5, "median")


def test_a_positive_fraction_always_removes_a_weight():
    """Regression: a fraction that rounds to zero weights used to leave the mask unchanged, and
    the IMP loop that waits for the target density spun forever on small networks."""
    ws = _weights()
    m = Mask.dense(ws)
    assert m.prune(ws, 0.01).count() == 6
    assert m.prune(ws, 0.0) is m


def test_imp_reaches_any_target_density_on_a_tiny_net(crop):
    """IMP on a 336-weight network must stop at (or one weight under) the target density."""
    cfg = tiny_config(steps=5, density=0.6)
    cfg = replace(cfg, prune=replace(cfg.prune, steps=1))
    arr = crop[:8, :8]
    net = Siren(replace(cfg.arch, out_features=3), torch.Generator().manual_seed(0))
    snaps = list(prune_rounds(net, Target.of(arr, torch.device("cpu")), cfg))
    densities = [s.mask.density() for s in snaps]
    assert densities[0] == 1.0 and densities == sorted(densities, reverse=True)
    assert 0.6 - 1 / 336 <= densities[-1] <= 0.6 and len(snaps) <= 6
    for s in snaps[1:]:  # pruned weights are zero in every snapshot
        for w, k in zip(s.weights, s.mask.keep):
            assert not w[~k].any()


def test_rewinding_restores_the_early_weights(crop):
    """With rewind init, each round restarts from the initial weights (under the new mask)."""
    cfg = tiny_config(steps=3, density=0.8)
    cfg = replace(cfg, prune=replace(cfg.prune, steps=0, rewind="init", rate=0.2))
    net = Siren(replace(cfg.arch, out_features=3), torch.Generator().manual_seed(0))
    init = net.state()
    snaps = list(prune_rounds(net, Target.of(crop[:8, :8], torch.device("cpu")), cfg))
    last = snaps[-1]
    for w, w0, k in zip(last.weights, init[0], last.mask.keep):
        assert torch.equal(w[k], w0[k]) and not w[~k].any()


def test_jaccard():
    ws = _weights()
    a = Mask.dense(ws)
    b = a.prune(ws, 3 / 7)
    assert a.jaccard(a) == [1.0, 1.0]
    assert b.jaccard(a) == [2 / 4, 2 / 3]
    empty = Mask(tuple(torch.zeros_like(k) for k in a.keep))
    assert empty.jaccard(empty) == [1.0, 1.0]


def test_schedule_helpers():
    assert rounds_to(1.0, 0.2) == 0
    assert rounds_to(0.8, 0.2) == 1
    assert rounds_to(0.5, 0.2) == 4  # 0.8, 0.64, 0.512, then a trimmed last round
    assert round_fraction(1.0, 0.5, 0.2) == 0.2
    assert round_fraction(0.512, 0.5, 0.2) == pytest.approx(1 - 0.5 / 0.512)
    assert parse_rewind("init") == 0 and parse_rewind("none") is None and parse_rewind("early:100") == 100
    for bad in ("early:", "early:x", "late", ""):
        with pytest.raises(ValueError, match="rewind"):
            parse_rewind(bad)
