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
from inrcodec.encoder.fit import kernel_of
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
        kernel=kernel_of(session.cfg.fit, session.device),  # which ran: "auto" falls back to torch's
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
    coding = cfg.coder.qat_steps + cfg.coder.adaround_steps  # fine-tuning, then AdaRound's steps
    total = cfg.fit.steps + last.round * cfg.prune.steps + coding
    qat = Plan(progress, total).stage("quantize", total - coding)
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

    From the widest width whose file could fit (``RATE_BYTES_PER_PARAM`` bytes a parameter, a
    little under the fewest any ladder file took on the tuning photos), each width is fitted as the
    ladder fits it and coded as the ladder codes it, narrower and narrower until a ladder file fits;
    if this image's file took so few bytes a parameter that the next wider width would fit too,
    that one is tried as well. A fit whose ladder file came out over the cap is also coded at every
    smaller depth (the best under the cap is kept, fine-tuned as :class:`RateControl` does). The
    best PSNR of the files under the cap is returned: at least the widest ladder point under the
    cap, whose PSNR on every image measured is the best of the ladder points under it (ladder
    PSNR grows with width). Only if the narrowest width fits at no depth is it pruned until a file
    fits (the old rate control).
    """
    h, w, c = arr.shape
    cap = int(cfg.bpp * h * w / 8)
    widths = sorted(cfg.widths, reverse=True)
    if cfg.prior not in ("none", "auto"):
        raise ValueError(f"prior {cfg.prior} fixes the network's width: rate control cannot choose one")
    unknown = [x for x in widths if x not in RATE_LADDER]
    if unknown:
        raise ValueError(f"rate control widths {unknown} are not ladder points ({', '.join(map(str, RATE_LADDER))})")

    def params(hidden: int) -> int:
        return replace(at_width(cfg, hidden).arch, out_features=c).n_params()

    def attempt(hidden: int) -> tuple[Encoded | None, bool, dict]:
        """The ladder point's file, or (over the cap) the same fit's best file at fewer bits."""
        tw = time.perf_counter()
        session = Session.create(arr, at_width(cfg, hidden), device)
        net = session.network()
        (snap,) = prune_rounds(net, session.target, session.cfg, progress, anchor=session.anchor)
        t_fit = time.perf_counter() - tw
        bits = allocate_bits(session, net, snap)
        enc = measured(session, finish(session, net, snap, bits), snap, bits, t_fit, time.perf_counter() - tw - t_fit)
        note = {"hidden": hidden, "ladder_bytes": len(enc.data), "ladder_psnr": round(enc.stats["psnr"], 4)}
        if len(enc.data) <= cap:
            return enc, True, note
        net.load(snap.weights, snap.biases)
        rate = RateControl(session, net, cfg.bpp)
        rate.nothing_fits(snap)
        if rate.best is None:
            return None, False, note
        tc = time.perf_counter()
        snap2, bits2, coded = rate.finish(snap)
        enc = measured(session, coded, snap2, bits2, t_fit, time.perf_counter() - tc)
        note.update(capped_bytes=len(enc.data), capped_psnr=round(enc.stats["psnr"], 4))
        return enc, False, note

    # The widest width whose file could fit; then narrower ones until a ladder file fits; and, if
    # this image codes smaller than the estimate says, wider ones while their files could still fit.
    i = next((k for k, x in enumerate(widths) if params(x) * RATE_BYTES_PER_PARAM <= cap), len(widths) - 1)
    t0 = time.perf_counter()
    best: Encoded | None = None
    best_hidden = widths[-1]
    tried: list[dict] = []
    while True:
        enc, fits, note = attempt(widths[i])
        tried.append(note)
        if enc is not None and (best is None or enc.stats["psnr"] > best.stats["psnr"]):
            best, best_hidden = enc, widths[i]
        done = {t["hidden"] for t in tried}
        if fits:
            per_param = note["ladder_bytes"] / params(widths[i])
            if i > 0 and widths[i - 1] not in done and per_param * params(widths[i - 1]) <= cap:
                i -= 1
                continue
            break
        if i + 1 < len(widths) and widths[i + 1] not in done:
            i += 1
            continue
        break
    if best is None:  # the narrowest ladder width fits at no depth: prune it until a file does
        best = encode_array(arr, replace(at_width(cfg, widths[-1]), bpp=cfg.bpp), device, progress)
        tried.append({"hidden": widths[-1], "pruned_to": best.stats["density"]})
    best.stats["rate_control"] = {"cap_bytes": cap, "hidden": best_hidden, "tried": tried}
    best.stats["seconds"]["rate_control_total"] = round(time.perf_counter() - t0, 3)
    return best
