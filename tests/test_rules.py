"""The survey's other ticket finders (inrcodec/encoder/rules.py): N:M, SNIP, SynFlow, and the
encoder's pruning with them. Tiny networks; seconds in all."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from helpers import tiny_config

from inrcodec.encoder import rules
from inrcodec.encoder.fit import Target
from inrcodec.encoder.mask import Mask
from inrcodec.encoder.prune import prune_rounds
from inrcodec.siren import Architecture, Siren


def _net(hidden: int = 8, layers: int = 3, seed: int = 0) -> Siren:
    return Siren(Architecture(2, hidden, layers, 3, 30.0, 30.0), torch.Generator().manual_seed(seed))


def _target(n: int = 16, seed: int = 1) -> Target:
    g = torch.Generator().manual_seed(seed)
    arr = (torch.rand(n, n, 3, generator=g) * 255).round().to(torch.uint8).numpy()
    return Target.of(arr)


# -- rule names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["magnitude", "random", "largest", "snip", "synflow", "rigl", "nm:2:4", "nm:1:8"])
def test_known_rules(rule):
    assert rules.check(rule) == rule


@pytest.mark.parametrize("rule", ["nm:5:4", "nm:4:4", "nm:0:4", "nm:2", "nm:a:4", "nm:2:4:8", "snap", ""])
def test_bad_rules_are_refused(rule):
    with pytest.raises(ValueError, match="rule"):
        rules.check(rule)


def test_nm_density_is_fixed():
    assert rules.fixed_density("nm:2:4") == 0.5 and rules.fixed_density("snip") is None
    rules.check_density("nm:2:4", 0.5)
    rules.check_density("nm:2:4", 1.0)  # no pruning
    rules.check_density("magnitude", 0.3)
    with pytest.raises(ValueError, match=r"nm:2:4 prunes to density 0.5 \(N/M\); asked for 0.3"):
        rules.check_density("nm:2:4", 0.3)


# -- N:M ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, m", [(2, 4), (1, 4), (4, 8)])
def test_nm_keeps_exactly_n_largest_per_group(n, m):
    g = torch.Generator().manual_seed(3)
    w = torch.randn(5, 24, generator=g)
    keep = rules.nm_keep(w, n, m)
    groups, kept = w.abs().reshape(5, 24 // m, m), keep.reshape(5, 24 // m, m)
    assert (kept.sum(-1) == n).all()
    # Every kept weight is at least as large as every dropped one of its group.
    lo = torch.where(kept, groups, torch.full_like(groups, math.inf)).amin(-1)
    hi = torch.where(kept, torch.full_like(groups, -math.inf), groups).amax(-1)
    assert (lo >= hi).all()
    mask = rules.nm_mask([w, torch.randn(3, 8, generator=g)], n, m)
    assert mask.density() == n / m


def test_nm_partial_groups_and_ties():
    w = torch.tensor([[1.0, 5.0, 3.0, 2.0, 9.0, 8.0, 7.0]])  # one group of 4, then a partial one of 3
    keep = rules.nm_keep(w, 2, 4)
    assert keep.tolist() == [[False, True, True, False, True, True, False]]  # ceil(2 * 3 / 4) = 2 of the 3
    assert rules.nm_keep(torch.ones(1, 4), 1, 4).tolist() == [[True, False, False, False]]  # ties: the earlier
    assert rules.nm_keep(torch.tensor([[0.1, 0.2]]), 1, 4).tolist() == [[False, True]]  # a row shorter than M


def test_nm_within_survivors():
    w = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
    alive = torch.tensor([[False, True, False, True]])
    mask = rules.nm_mask([w], 2, 4, Mask((alive,)))
    assert mask.keep[0].tolist() == alive.tolist()  # the two survivors; nothing revived
    assert rules.nm_mask([w], 1, 4, Mask((alive,))).keep[0].tolist() == [[False, True, False, False]]


def test_prune_dispatches_the_old_rules_unchanged():
    net = _net()
    mask = Mask.dense(list(net.weights))
    for rule in ("magnitude", "largest", "random"):
        a = rules.prune(mask, net, None, 0.3, rule, torch.Generator().manual_seed(5))
        b = mask.prune(list(net.weights), 0.3, rule, torch.Generator().manual_seed(5))
        assert all(torch.equal(x, y) for x, y in zip(a.keep, b.keep))
    nm = rules.prune(mask, net, None, 0.9, "nm:2:4")  # the fraction is ignored
    assert nm.count() == rules.nm_mask(list(net.weights), 2, 4).count()
    with pytest.raises(ValueError, match="rigl trains its own mask"):
        rules.prune(mask, net, None, 0.3, "rigl")


def test_keep_best_and_prune_by():
    mask = Mask((torch.tensor([True, True, False, True]), torch.tensor([True, True])))
    scores = [torch.tensor([4.0, 1.0, 9.0, 3.0]), torch.tensor([2.0, 5.0])]
    best = mask.keep_best(scores, 2)
    assert best.keep[0].tolist() == [True, False, False, False] and best.keep[1].tolist() == [False, True]
    assert mask.prune_by(scores, 0.4).count() == 3  # round(0.4 * 5) = 2 removed: the 1 and the 2
    logs = [torch.tensor([-math.inf, 0.0, 1.0, -math.inf]), torch.tensor([2.0, -math.inf])]
    assert mask.keep_best(logs, 2).count() == 2  # -inf survivors go first, dead weights stay dead
    assert not mask.keep_best(logs, 2).keep[0][2]


# -- SNIP -----------------------------------------------------------------------------------------


def test_snip_keeps_the_largest_w_times_grad():
    net, target = _net(), _target()
    ws = [w.detach().clone().requires_grad_(True) for w in net.weights]
    loss = torch.mean((net(target.coords, ws, [b.detach() for b in net.biases]) - target.colours) ** 2)
    loss.backward()
    direct = [(w * w.grad).abs().detach() for w in ws]
    scores = rules.snip_scores(net, target)
    for s, d in zip(scores, direct):
        assert torch.allclose(s.float(), d, rtol=1e-5, atol=1e-12)
    mask = Mask.dense(list(net.weights))
    kept = rules.prune(mask, net, target, 0.6, "snip")
    flat = torch.cat([d.reshape(-1) for d in direct])
    alive = torch.cat([k.reshape(-1) for k in kept.keep])
    assert int(alive.sum()) == flat.numel() - round(0.6 * flat.numel())
    assert flat[alive].min() >= flat[~alive].max()  # globally across layers, like the magnitude rule


def test_snip_batches_are_seeded():
    net, target = _net(), _target()
    a = rules.snip_scores(net, target, batch=64, batches=3, seed=4)
    b = rules.snip_scores(net, target, batch=64, batches=3, seed=4)
    c = rules.snip_scores(net, target, batch=64, batches=3, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not all(torch.equal(x, y) for x, y in zip(a, c))


# -- SynFlow --------------------------------------------------------------------------------------


def test_synflow_scores_are_w_times_dr_dw():
    net = _net(hidden=6, layers=3, seed=2)
    mask = rules.nm_mask(list(net.weights), 3, 4)
    ws = [(w.detach().double().abs() * k).requires_grad_(True) for w, k in zip(net.weights, mask.keep)]
    x = torch.ones(1, ws[0].shape[1], dtype=torch.float64)
    for w in ws:
        x = x @ w.T  # the linear path: no sine, no bias
    x.sum().backward()
    direct = [(w * w.grad).detach() for w in ws]
    logs = rules.synflow_log_scores(list(net.weights), mask)
    for lg, d in zip(logs, direct):
        assert torch.allclose(lg.exp(), d, rtol=1e-9, atol=0)
        assert torch.isneginf(lg[d == 0]).all()


def test_synflow_reaches_the_count_without_layer_collapse():
    net = _net(hidden=32, layers=4, seed=0)
    ws = list(net.weights)
    total = sum(w.numel() for w in ws)
    count = 40  # about 1 % of 3,360 weights
    mask = rules.synflow_mask(ws, count)
    assert mask.count() == count
    assert all(int(k.sum()) >= 1 for k in mask.keep)  # every layer keeps a path
    assert rules.prune(Mask.dense(ws), net, None, 0.5, "synflow").count() == total - round(0.5 * total)


def test_synflow_does_not_overflow_a_deep_wide_net():
    ws = [torch.full((512, 512), 50.0) for _ in range(40)]  # R = (512 * 50) ** 40 * 512 overflows float64
    logs = rules.synflow_log_scores(ws)
    assert all(torch.isfinite(x).all() for x in logs)


# -- the encoder's pruning ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crop():
    return _target(16, seed=7)


def test_encoder_prunes_to_nm_in_one_round(crop):
    cfg = tiny_config(steps=30, density=0.5)
    cfg = replace(cfg, prune=replace(cfg.prune, rule="nm:2:4"))
    snaps = list(prune_rounds(Siren(cfg.arch, torch.Generator().manual_seed(0)), crop, cfg))
    assert [s.round for s in snaps] == [0, 1]
    for w, k in zip(snaps[-1].weights, snaps[-1].mask.keep):
        rows, cols = k.shape
        full = cols - cols % 4
        assert (k[:, :full].reshape(rows, -1, 4).sum(-1) == 2).all()
        assert not w[~k].any()
    bad = replace(cfg, prune=replace(cfg.prune, density=0.3))
    with pytest.raises(ValueError, match="prunes to density 0.5"):
        list(prune_rounds(Siren(cfg.arch), crop, bad))


@pytest.mark.parametrize("rule", ["snip", "synflow"])
def test_encoder_imp_with_a_finder(crop, rule):
    cfg = tiny_config(steps=30, density=0.5)
    cfg = replace(cfg, prune=replace(cfg.prune, rule=rule))
    last = list(prune_rounds(Siren(cfg.arch, torch.Generator().manual_seed(0)), crop, cfg))[-1]
    assert abs(last.mask.density() - 0.5) < 0.01
    assert all(not w[~k].any() for w, k in zip(last.weights, last.mask.keep))


def test_encoder_rigl_is_sparse_from_the_start(crop):
    cfg = tiny_config(steps=30, density=0.4)
    cfg = replace(cfg, prune=replace(cfg.prune, rule="rigl"))
    snaps = list(prune_rounds(Siren(cfg.arch, torch.Generator().manual_seed(0)), crop, cfg))
    assert len(snaps) == 1 and snaps[0].round == 0
    assert snaps[0].mask.count() == round(0.4 * snaps[0].mask.total())
    with pytest.raises(ValueError, match="ladder"):
        list(prune_rounds(Siren(cfg.arch), crop, cfg, densities=[0.5]))


@pytest.mark.parametrize("rule", ["nm:2:4", "rigl"])
def test_fixed_rules_do_not_prune_on_for_rate_control(crop, rule):
    """Rate control's keep_going must not loop (N:M has one density) or fail (RigL is one run)."""
    cfg = tiny_config(steps=20, density=1.0)
    cfg = replace(cfg, prune=replace(cfg.prune, rule=rule))
    snaps = list(prune_rounds(Siren(cfg.arch, torch.Generator().manual_seed(0)), crop, cfg, keep_going=lambda s: True))
    assert [s.round for s in snaps] == [0]
