"""Stage 2: iterative magnitude pruning with rewinding (Frankle & Carbin 2019).

The dense fit, then rounds: rank the survivors (``Mask.prune``), rewind the weights to an early
state, retrain under the new mask. ``prune_round`` is the one round that the codec, the
ablations and the experiments all run; ``prune_rounds`` chains them and yields a snapshot after
each. The masks themselves are in ``mask.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from inrcodec.config import EncodeConfig, check_rewind, parse_rewind
from inrcodec.encoder import rules
from inrcodec.encoder.fit import State, Target, train
from inrcodec.encoder.mask import RULES, Mask
from inrcodec.encoder.progress import Plan, Progress, StepProgress
from inrcodec.siren import Siren

__all__ = ["RULES", "Mask", "Snapshot", "dense_fit", "prune_round", "prune_rounds", "rounds_to"]

MIN_DENSITY = 0.02  # rate control never prunes below this


@dataclass
class Snapshot:
    """The network after the dense fit (round 0) or after a pruning round."""

    round: int
    mask: Mask
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    seconds: float  # encoder time spent to reach this point


def rounds_to(density: float, rate: float) -> int:
    """Pruning rounds of ``rate`` each needed to reach ``density`` (last round trimmed)."""
    if density >= 1.0:
        return 0
    n, d = 0, 1.0
    while d > density + 1e-9:
        d *= 1.0 - rate
        n += 1
    return n


def round_fraction(current: float, target: float, rate: float) -> float:
    """The fraction of survivors to remove this round: ``rate``, or less to land on ``target``."""
    if current * (1.0 - rate) >= target:
        return rate
    return 1.0 - target / current


def dense_fit(
    net: Siren,
    target: Target,
    cfg: EncodeConfig,
    progress: StepProgress | None = None,
    anchor: State | None = None,
    mask: Mask | None = None,
) -> State | None:
    """Stage 1 as pruning needs it: fit ``net`` in place and return the state to rewind to
    (the initialisation for ``init``, step N for ``early:N``, None for ``none``). ``anchor``:
    a prior's weights, for the fit's residual penalty (``fit.train``); ``mask``: a prior's shared
    mask, which the fit keeps."""
    rewind_at = parse_rewind(cfg.prune.rewind)
    theta0 = net.state()
    snap = train(
        net, target, cfg.fit, cfg.fit.steps, mask=mask, progress=progress, snapshot_at=rewind_at, anchor=anchor
    )
    return theta0 if rewind_at == 0 else snap


def prune_round(
    net: Siren,
    target: Target,
    mask: Mask,
    cfg: EncodeConfig,
    fraction: float,
    round_: int,
    rewind: State | None,
    generator: torch.Generator | None = None,
    progress: StepProgress | None = None,
    anchor: State | None = None,
) -> Mask:
    """One IMP round, in place on ``net``: remove ``fraction`` of the survivors by the config's
    rule (ranked on the current weights), rewind (unless ``rewind`` is None), retrain
    ``cfg.prune.steps`` steps under the new mask. Returns the new mask.

    The rule is any of ``rules.py`` but rigl (a training procedure: :func:`prune_rounds` runs it
    instead of the rounds); snip scores one batch of ``cfg.fit.batch`` pixels at the current
    weights (so in IMP it ranks the trained weights, not the initialisation); nm:N:M ignores
    ``fraction``."""
    mask = rules.prune(
        mask, net, target, fraction, cfg.prune.rule, generator, batch=cfg.fit.batch, seed=cfg.fit.seed + round_
    )
    if rewind is not None:
        net.load([w.to(target.coords.device) for w in rewind[0]], rewind[1])
    train(net, target, cfg.fit, cfg.prune.steps, mask=mask, seed_offset=round_, progress=progress, anchor=anchor)
    return mask


def prune_rounds(
    net: Siren,
    target: Target,
    cfg: EncodeConfig,
    progress: Progress | None = None,
    keep_going: Callable[[Snapshot], bool] | None = None,
    densities: list[float] | None = None,
    anchor: State | None = None,
    shared: Mask | None = None,
) -> Iterator[Snapshot]:
    """Dense fit, then IMP rounds until the config's density (or ``keep_going`` says stop).

    Yields a snapshot after the dense fit and after every round. ``densities`` (descending)
    replaces the config's geometric schedule: one round per listed density. ``anchor``: a
    prior's weights, for the residual penalty; ``shared``: its shared mask (format v6), which the
    dense fit trains under and which is never pruned further (one snapshot, no rounds).

    Rules of ``rules.py``: nm:N:M has the fixed density N/M, so it needs the config's density to
    be N/M (or 1: no pruning), runs one round and does not go on for ``keep_going``; a
    ``densities`` ladder is refused. rigl trains sparse from the start (:func:`rigl.train_rigl`,
    ``fit.steps`` steps at the config's density, no dense fit) and yields that one snapshot (as
    round 0); a ladder is refused.
    """
    start = time.perf_counter()
    fit, pr = cfg.fit, cfg.prune
    if shared is not None:
        if pr.density < 1 or densities:
            raise ValueError("a prior's shared mask is not pruned further: give no density below 1")
        plan = Plan(progress, fit.steps + cfg.coder.qat_steps)
        dense_fit(net, target, cfg, plan.stage("fit", 0), anchor, shared)
        yield Snapshot(0, shared, *net.state(), time.perf_counter() - start)
        return
    rules.check(pr.rule)
    rules.check_density(pr.rule, pr.density)
    fixed = rules.fixed_density(pr.rule)
    if (fixed is not None or pr.rule == "rigl") and densities is not None:
        raise ValueError(f"rule {pr.rule} prunes to one density; a ladder of densities needs another rule")
    if pr.rule == "rigl" and pr.density < 1:
        yield _rigl(net, target, cfg, progress, anchor, start)
        return
    if fixed is not None and pr.density < 1:
        densities = [fixed]
    if fixed is not None or pr.rule == "rigl":
        keep_going = None  # neither can prune on for rate control: N:M has one density, RigL one run
    if densities is None:
        n_rounds = 0 if pr.density >= 1 else rounds_to(pr.density, pr.rate)
    else:
        n_rounds = len(densities)
    plan = Plan(progress, fit.steps + n_rounds * pr.steps + cfg.coder.qat_steps)
    rewind = dense_fit(net, target, cfg, plan.stage("fit", 0), anchor)
    mask = Mask.dense(list(net.weights))
    current = Snapshot(0, mask, *net.state(), time.perf_counter() - start)
    yield current
    gen = torch.Generator().manual_seed(fit.seed + 7)
    r = 0
    while True:
        density = mask.density()
        if densities is not None:
            if r >= len(densities):
                return
            goal = densities[r]
        else:
            goal = pr.density
            if density <= goal + 1e-9:
                if keep_going is None or not keep_going(current) or density <= MIN_DENSITY:
                    return
                goal = max(MIN_DENSITY, density * (1 - pr.rate))
        check_rewind(cfg)  # only once pruning happens: a dense encode may fit fewer steps
        r += 1
        frac = round_fraction(density, goal, pr.rate) if densities is None else 1 - goal / density
        stage = plan.stage(f"prune {r}/{max(n_rounds, r)}", fit.steps + (r - 1) * pr.steps)
        mask = prune_round(net, target, mask, cfg, frac, r, rewind, gen, stage, anchor)
        current = Snapshot(r, mask, *net.state(), time.perf_counter() - start)
        yield current


def _rigl(
    net: Siren, target: Target, cfg: EncodeConfig, progress: Progress | None, anchor: State | None, start: float
) -> Snapshot:
    """The rigl rule's encode: RigL from the initialisation at the config's density."""
    from inrcodec.encoder.rigl import train_rigl

    plan = Plan(progress, cfg.fit.steps + cfg.coder.qat_steps)
    mask, (ws, bs) = train_rigl(
        net, target, cfg.fit, cfg.fit.steps, density=cfg.prune.density, progress=plan.stage("rigl", 0), anchor=anchor
    )
    return Snapshot(0, mask, ws, bs, time.perf_counter() - start)
