"""The encoders, stage by stage: fit and prune (``prune``), choose depths (``allocate``) or meet a
rate cap (``rate``), fine-tune and code (``coding``), measure (``session``).

Every reported rate is the length of the bytes returned, and every reported PSNR comes from
decoding those bytes with the real decoder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from inrcodec.config import RATE_BYTES_PER_PARAM, RATE_LADDER, EncodeConfig, at_width
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
    """Encode an (H, W, C) uint8 image; with ``cfg.bpp`` the file stays at or under that rate (with
    ``cfg.widths``, by choosing the ladder width: :func:`encode_to_cap`)."""
    if cfg.bpp is not None and cfg.widths:
        return encode_to_cap(arr, cfg, device, progress)
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


def encode_to_cap(
    arr: np.ndarray, cfg: EncodeConfig, device: str | None = None, progress: Progress | None = None
) -> Encoded:
    """Rate control on the ladder: the best file under ``cfg.bpp`` among ladder widths ``cfg.widths``.

    From the widest width whose file could fit (``RATE_BYTES_PER_PARAM`` bytes a parameter, the
    fewest any ladder file took on the tuning photos), each width is fitted as the ladder fits it
    and coded as the ladder codes it; the first such file under the cap is the widest ladder point
    that fits, and the search stops there. A wider fit whose ladder file came out over the cap is
    also coded at every smaller depth (the best under the cap is kept, fine-tuned as
    :class:`RateControl` does), so the result is never worse than the best ladder point under the
    cap. Only if no width's file fits is the narrowest pruned until one does (the old rate control).
    """
    h, w, c = arr.shape
    cap = int(cfg.bpp * h * w / 8)
    widths = sorted(cfg.widths, reverse=True)
    unknown = [x for x in widths if x not in RATE_LADDER]
    if unknown:
        raise ValueError(f"rate control widths {unknown} are not ladder points ({', '.join(map(str, RATE_LADDER))})")

    def could_fit(hidden: int) -> bool:
        arch = replace(at_width(cfg, hidden).arch, out_features=c)
        return arch.n_params() * RATE_BYTES_PER_PARAM <= cap

    start = next((i for i, x in enumerate(widths) if could_fit(x)), len(widths) - 1)
    t0 = time.perf_counter()
    best: Encoded | None = None
    tried = []
    for hidden in widths[start:]:
        tw = time.perf_counter()
        session = Session.create(arr, at_width(cfg, hidden), device)
        net = session.network()
        (snap,) = prune_rounds(net, session.target, session.cfg, progress, anchor=session.anchor)
        t_fit = time.perf_counter() - tw
        bits = allocate_bits(session, net, snap)
        enc = measured(session, finish(session, net, snap, bits), snap, bits, t_fit, time.perf_counter() - tw - t_fit)
        fits = len(enc.data) <= cap
        tried.append({"hidden": hidden, "ladder_bytes": len(enc.data), "ladder_psnr": round(enc.stats["psnr"], 4)})
        if not fits:  # the same fit at fewer bits per weight
            net.load(snap.weights, snap.biases)
            rate = RateControl(session, net, cfg.bpp)
            rate.nothing_fits(snap)
            if rate.best is None:
                enc = None
            else:
                tc = time.perf_counter()
                snap2, bits2, coded = rate.finish(snap)
                enc = measured(session, coded, snap2, bits2, t_fit, time.perf_counter() - tc)
                tried[-1].update(capped_bytes=len(enc.data), capped_psnr=round(enc.stats["psnr"], 4))
        if enc is not None and (best is None or enc.stats["psnr"] > best.stats["psnr"]):
            best = enc
        if fits:
            break
    if best is None:  # not even the narrowest ladder file fits: prune it until one does
        best = encode_array(arr, replace(at_width(cfg, widths[-1]), bpp=cfg.bpp), device, progress)
        tried.append({"hidden": widths[-1], "pruned_to": best.stats["density"]})
    best.stats["rate_control"] = {"cap_bytes": cap, "hidden": _hidden(best), "tried": tried}
    best.stats["seconds"]["rate_control_total"] = round(time.perf_counter() - t0, 3)
    return best


def _hidden(enc: Encoded) -> int:
    """The width of the network a file holds."""
    from inrcodec.format import container

    return container.read(enc.data).header.hidden
