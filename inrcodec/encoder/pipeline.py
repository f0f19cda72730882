"""The encoders, stage by stage: fit and prune (``prune``), choose depths (``allocate``) or meet a
rate cap (``rate``), fine-tune and code (``coding``), measure (``session``).

Every reported rate is the length of the bytes returned, and every reported PSNR comes from
decoding those bytes with the real decoder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from inrcodec.config import EncodeConfig
from inrcodec.encoder.allocate import allocate_bits
from inrcodec.encoder.coding import Coded, depths, finish
from inrcodec.encoder.progress import Plan, Progress
from inrcodec.encoder.prune import Snapshot, prune_rounds
from inrcodec.encoder.rate import RateControl
from inrcodec.encoder.session import Session


@dataclass
class Encoded:
    """The bytes of an ``.inr`` file and what it took to make them."""

    data: bytes
    stats: dict = field(default_factory=dict)


def measured(session: Session, coded: Coded, snap: Snapshot, bits: int | list[int], t_fit: float, t_code: float):
    """The file with its stats: the session's measurement, plus what the encoder chose."""
    stats, _decoded = session.measure(coded.data)
    stats.update(
        params=session.cfg.arch.n_params(),
        density=snap.mask.density(),
        rounds=snap.round,
        bits=depths(bits, len(coded.weights)),
        coders=coded.coders,
        device=str(session.device),
    )
    stats["seconds"] = {"fit_and_prune": round(t_fit, 3), "code": round(t_code, 3), **stats["seconds"]}
    return Encoded(coded.data, stats)


def encode_array(
    arr: np.ndarray, cfg: EncodeConfig, device: str | None = None, progress: Progress | None = None
) -> Encoded:
    """Encode an (H, W, C) uint8 image; with ``cfg.bpp`` the file stays at or under that rate."""
    t0 = time.perf_counter()
    session = Session.create(arr, cfg, device)
    cfg = session.cfg
    net = session.network()
    rate = None if cfg.bpp is None else RateControl(session, net, cfg.bpp)
    last = None
    keep_going = rate and rate.nothing_fits
    rounds = prune_rounds(net, session.target, cfg, progress, keep_going, anchor=session.anchor, shared=session.shared)
    for snap in rounds:
        last = snap
        if rate is not None and snap.mask.density() > cfg.prune.density + 1e-9:
            rate.nothing_fits(snap)  # rounds on the way to the config's density are candidates too
    t_fit = time.perf_counter() - t0
    total = cfg.fit.steps + last.round * cfg.prune.steps + cfg.coder.qat_steps
    qat = Plan(progress, total).stage("quantize", total - cfg.coder.qat_steps)
    if rate is None:
        net.load(last.weights, last.biases)
        snap, bits = last, allocate_bits(session, net, last)
        coded = finish(session, net, snap, bits, qat)
    else:
        snap, bits, coded = rate.finish(last, qat)
    return measured(session, coded, snap, bits, t_fit, time.perf_counter() - t0 - t_fit)


def encode_ladder(
    arr: np.ndarray,
    cfg: EncodeConfig,
    densities: list[float],
    device: str | None = None,
    progress: Progress | None = None,
) -> list[Encoded]:
    """One pruning trajectory, several operating points: a file after the dense fit and after
    each round (one round per entry of ``densities``, descending), each coded as by
    :func:`encode_array` without a rate cap. Stats carry the encoder time up to that point.
    """
    t0 = time.perf_counter()
    session = Session.create(arr, cfg, device)
    net = session.network()
    out = []
    rounds = prune_rounds(
        net, session.target, session.cfg, progress, densities=densities, anchor=session.anchor, shared=session.shared
    )
    for snap in rounds:
        tc = time.perf_counter()
        bits = allocate_bits(session, net, snap)
        coded = finish(session, net, snap, bits)
        net.load(snap.weights, snap.biases)  # the trajectory goes on from the unquantized weights
        enc = measured(session, coded, snap, bits, snap.seconds, time.perf_counter() - tc)
        enc.stats["seconds"]["trajectory_total"] = round(time.perf_counter() - t0, 3)
        out.append(enc)
    return out
