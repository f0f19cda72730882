"""The lottery-ticket experiment on the codec's own SIREN: winning, random and losing tickets.

Round 0 trains the dense network from its initialisation θ0. Every later round prunes each
ticket's surviving weights by its own rule (ranked globally across layers, biases untouched),
rewinds the survivors to their exact values in θ0 (biases too) and retrains. The winner removes
the smallest magnitudes (Frankle & Carbin 2019), the random ticket a random choice, the loser the
largest magnitudes; finder tickets (``--rule``: snip, synflow, rigl, nm:N:M; encoder/rules.py,
encoder/rigl.py) run beside them, see :func:`_finder_mask`. Training, masks, coding and
measuring are the codec's: :func:`fit.train`,
:class:`mask.Mask`, :func:`coding.code` and :class:`session.Session`; nothing here re-implements
them. (A round here is not :func:`prune.prune_round`: each ticket prunes by its own rule and
rewinds to θ0 itself, pruned weights zeroed.)

Per round and ticket it records the remaining fraction, PSNR, high-frequency energy retention
(:func:`.spectra.hf_share`), the bytes of the ticket coded as an ``.inr`` file, and the per-layer Jaccard
similarity of every pair of tickets' masks. The run is resumable: after each round the state of
every ticket (mask, weights) goes to ``state.pt`` and the results to JSON/CSV, each atomically
(:mod:`.checkpoint`). The plots are :func:`.plots.lottery`'s, drawn from ``results.json``; the
command is ``inrcodec lottery`` (``inrcodec/cli/experiments.py``). See docs/lottery.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inrcodec import image
from inrcodec.experiments import checkpoint
from inrcodec.experiments.inputs import square
from inrcodec.experiments.spectra import flat_psnr, hf_share

if TYPE_CHECKING:
    import torch

    from inrcodec.encoder.mask import Mask
    from inrcodec.siren import Architecture

# torch and the encoder are imported where used, so that registering the command keeps the
# CLI's start-up as light as the other commands'.

DATA_FILES = ("results.json", "results.csv", "jaccard.csv")  # rewritten after every round

TICKET_RULES = {"winner": "magnitude", "random": "random", "loser": "largest"}  # ticket -> prune rule
# Besides these, a ticket may be named by one of the survey's other finders (encoder/rules.py,
# encoder/rigl.py): snip, synflow, rigl or nm:N:M (``--rule``); see :func:`_finder_mask`.
RESULTS_VERSION = 1
COLLAPSE_MARGIN_DB = 1.0  # a ticket has collapsed when its PSNR is within this of the flat image's

# The published run (De La Fuente, "Losing Tickets in Neural Representations", 2026): a 256x256
# image, 198,915 parameters, 21 rounds of 20 %. Only the figures it states are here.
PUBLISHED = {
    "winner": {1.2: 29.2},  # remaining % -> PSNR dB
    "loser": {100.0: 47.6, 80.0: 29.3, 64.0: 11.5},
}


@dataclass(frozen=True)
class LotteryConfig:
    """One experiment; everything but ``rounds`` must match for a run to resume."""

    size: int | None = 96  # centre-crop to a square, resize to size x size (None: image as is)
    hidden: int = 64  # SIREN: width of every hidden layer
    layers: int = 4  # SIREN: sine layers, the input layer included (4: input + 3 hidden), then a linear head
    omega0: float = 30.0  # SIREN: frequency factor of every sine layer
    steps: int = 300  # optimizer steps per round, round 0 included (full batch: one step = one epoch)
    batch: int | None = None  # random pixels per step; None: full batch (every pixel, every step)
    lr: float = 1e-3  # Adam learning rate at the start of every round
    lr_final: float = 0.0  # cosine annealing ends here
    rounds: int = 11  # rounds in all, round 0 (dense training) included
    prune: float = 0.35  # fraction of each ticket's surviving weights removed per round
    tickets: tuple[str, ...] = ("winner", "random", "loser")  # keys of TICKET_RULES, or finder rules (FINDERS)
    seed: int = 0  # seeds θ0, the random ticket and pixel sampling
    hfe_radius: float = 0.25  # normalized spatial-frequency radius (1 = Nyquist) above which energy is "high"
    bits: int = 8  # bit depth of the scalar coder that sizes each ticket

    def architecture(self, channels: int = 3) -> Architecture:
        from inrcodec.siren import Architecture

        return Architecture(2, self.hidden, self.layers, channels, self.omega0, self.omega0)


PRESETS: dict[str, LotteryConfig] = {
    # The published set-up: 256x256, input + 3 hidden layers of 256 + linear head = 198,915
    # parameters, omega0 30, 1,000 full-batch epochs per round, Adam 1e-4 with cosine annealing,
    # 21 rounds (0..20) of 20 %: 0.8^20 = 1.2 % of the weights remain. Meant for a GPU.
    "paper": LotteryConfig(size=256, hidden=256, layers=4, steps=1000, lr=1e-4, rounds=21, prune=0.2),
    # Scaled down for a 2-core CPU (one thread, ~15 min measured, docs/lottery.md): 96x96,
    # 4 x 64 (12,867 parameters), 300 full-batch epochs at 1e-3, 11 rounds of 35 % -> 1.35 %.
    "cpu": LotteryConfig(),
}


def jaccards(masks: dict[str, Mask]) -> dict[str, dict]:
    """Per pair of tickets: per-layer Jaccard similarity and the one of all layers pooled
    (``Mask.jaccard``, ``Mask.jaccard_all``)."""
    names = list(masks)
    out = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            out[f"{a}-{b}"] = {"layers": masks[a].jaccard(masks[b]), "all": masks[a].jaccard_all(masks[b])}
    return out


def rewind(theta0: tuple[list[torch.Tensor], list[torch.Tensor]], mask: Mask):
    """The ticket's starting point: θ0's weights with the pruned ones zeroed, θ0's biases."""
    return mask.apply(theta0[0]), [b.clone() for b in theta0[1]]


def _config_doc(cfg: LotteryConfig) -> dict:
    doc = asdict(cfg)
    doc["tickets"] = list(cfg.tickets)
    return doc


def _csvs(results: dict) -> tuple[str, str]:
    cols = ["round", "ticket", "remaining", "remaining_weights", "remaining_params", "psnr", "psnr_coded"]
    cols += ["hfe", "hf_share", "bytes", "bpp", "train_seconds"]
    main, jac = io.StringIO(), io.StringIO()
    w = csv.writer(main, lineterminator="\n")
    w.writerow(cols)
    j = csv.writer(jac, lineterminator="\n")
    j.writerow(["round", "remaining", "pair", "layer", "jaccard"])
    for rec in results["rounds"]:
        for name, t in rec["tickets"].items():
            w.writerow([rec["round"], name] + [t[c] for c in cols[2:]])
        first = next(iter(rec["tickets"].values()))["remaining"]
        for pair, d in rec["jaccard"].items():
            for i, v in enumerate(d["layers"]):
                j.writerow([rec["round"], first, pair, i, v])
            j.writerow([rec["round"], first, pair, "all", d["all"]])
    return main.getvalue(), jac.getvalue()


def findings(results: dict) -> dict:
    """The two published claims, tested on these results."""
    flat = results["image"]["flat_psnr"]
    rounds = results["rounds"]
    out: dict = {"flat_psnr": flat, "collapse_margin_db": COLLAPSE_MARGIN_DB}
    tickets = results["config"]["tickets"]
    if "winner" in tickets and "random" in tickets:
        gaps = [(r["round"], r["tickets"]["winner"]["psnr"] - r["tickets"]["random"]["psnr"]) for r in rounds]
        out["winner_minus_random_db"] = {str(k): round(v, 3) for k, v in gaps}
        out["winner_ge_random_every_round"] = all(v >= 0 for _k, v in gaps)
        out["rounds_random_beats_winner"] = [k for k, v in gaps if v < 0]
    if "loser" in tickets:
        hit = [r["round"] for r in rounds[1:] if r["tickets"]["loser"]["psnr"] <= flat + COLLAPSE_MARGIN_DB]
        out["loser_collapse_round"] = hit[0] if hit else None
        out["loser_collapsed_within_3_rounds"] = bool(hit) and hit[0] <= 3
    return out


def check_finder(rule: str) -> str:
    """``rule`` if it names a finder ticket (snip, synflow, rigl, nm:N:M), else ValueError."""
    from inrcodec.encoder import rules

    if rule in rules.FINDERS:
        return rule
    if rule.startswith("nm:"):
        rules.parse_nm(rule)  # ValueError for a bad one
        return rule
    known = ", ".join([*TICKET_RULES, *rules.FINDERS, "nm:N:M"])
    raise ValueError(f"unknown ticket {rule!r}; choose from {known}")


def recon_file(r: int, ticket: str) -> str:
    """The reconstruction's file name under ``recon/`` (a ':' of nm:N:M becomes '-')."""
    return "r00-dense.png" if r == 0 else f"r{r:02d}-{ticket.replace(':', '-')}.png"


def _finder_mask(name: str, prev_mask: Mask, prev_weights, theta0, snip, prune: float) -> Mask:
    """A finder ticket's mask for the next round, with as many weights as the rule tickets keep
    (:meth:`Mask.prune` of ``prune``), nm:N:M aside (always N/M).

    - snip: pruning at initialisation: the SNIP scores at θ0 on every pixel (``snip()``, computed
      once); ranking the previous mask's survivors by fixed scores is one-shot SNIP at this count.
    - synflow: SynFlow at θ0 from the dense mask down to this count (data-free, 100 iterations).
    - nm:N:M: the N:M mask of the previous round's trained weights (the winner's analogue: round 1
      takes the dense fit's); from round 2 on it is the same mask.
    """
    from inrcodec.encoder import rules

    nm = rules.parse_nm(name)
    if nm is not None:
        return rules.nm_mask(prev_weights, *nm, prev_mask)
    if name == "snip":
        return prev_mask.prune_by(snip(), prune)
    if name == "synflow":
        return rules.synflow_mask(theta0[0], rules.count_after(prev_mask, prune))
    raise ValueError(name)


def check(cfg: LotteryConfig) -> None:
    """ValueError for a config no run can use (before any work)."""
    for t in cfg.tickets:
        if t not in TICKET_RULES:
            check_finder(t)
    if len(set(cfg.tickets)) != len(cfg.tickets) or not cfg.tickets:
        raise ValueError("--tickets: give each ticket once")
    if cfg.rounds < 1 or not 0 < cfg.prune < 1 or cfg.steps < 1:
        raise ValueError("need rounds >= 1, 0 < prune < 1, steps >= 1")


def run(
    arr: np.ndarray,
    cfg: LotteryConfig,
    outdir: str | Path,
    device: str | None = None,
    say: Callable[[str], None] | None = None,
    source: str = "",
    fresh: bool = False,
) -> dict:
    """Run (or resume) the experiment on an (H, W, C) uint8 image; returns the results dict.

    Writes ``target.png``, ``recon/rNN-<ticket>.png``, ``state.pt`` and :data:`DATA_FILES` under
    ``outdir``, the last four after every round; ``say`` gets a line per round.
    """
    check(cfg)
    import torch

    from inrcodec.config import CoderConfig, EncodeConfig, FitConfig
    from inrcodec.decoder.render import render
    from inrcodec.encoder.coding import code
    from inrcodec.encoder.fit import train
    from inrcodec.encoder.mask import Mask
    from inrcodec.encoder.rigl import train_rigl
    from inrcodec.encoder.rules import count_after, snip_scores
    from inrcodec.encoder.session import Session

    say = say or (lambda _msg: None)
    out = Path(outdir)
    (out / "recon").mkdir(parents=True, exist_ok=True)
    arr = square(arr, cfg.size)
    h, w, c = arr.shape
    arch = cfg.architecture(c)
    doc = _config_doc(cfg)
    digest = hashlib.sha256(arr.tobytes() + repr(arr.shape).encode()).hexdigest()
    fit = FitConfig(steps=cfg.steps, batch=cfg.batch or h * w, lr=cfg.lr, lr_final=cfg.lr_final, seed=cfg.seed)
    session = Session.create(arr, EncodeConfig(arch=arch, fit=fit, coder=CoderConfig(weight_coder="scalar")), device)
    dev, target = session.device, session.target
    target_share = hf_share(arr, cfg.hfe_radius)
    net = session.network()  # θ0, from the seed
    theta0 = tuple([t.cpu() for t in part] for part in net.state())
    state = checkpoint.load(out, fresh)
    if state is not None:
        saved = dict(state["config"], image=state["image_sha256"])
        checkpoint.check_same_setup(out, saved, dict(doc, image=digest), grows="rounds")
        say(f"resuming {out} after round {state['round']}")
    else:
        results = {
            "version": RESULTS_VERSION,
            "source": source,
            "config": doc,
            "image": {
                "width": w,
                "height": h,
                "channels": c,
                "flat_psnr": flat_psnr(arr),
                "hf_share": target_share,
                "sha256": digest,
            },
            "params": {"total": arch.n_params(), "weights": sum(o * i for o, i in arch.shapes())},
            "device": str(dev),
            "rounds": [],
        }
        state = {"config": doc, "image_sha256": digest, "round": -1, "tickets": {}, "results": results}
        image.save(arr, out / "target.png")
    results = state["results"]
    results["config"]["rounds"] = cfg.rounds
    n_weights = results["params"]["weights"]
    n_bias = results["params"]["total"] - n_weights

    def measure(weights, biases, mask: Mask, seconds: float) -> tuple[dict, np.ndarray]:
        net.load([x.to(dev) for x in weights], [x.to(dev) for x in biases])
        recon = render(net, w, h)
        coded = code(weights, biases, mask, session.header, session.cfg.coder, cfg.bits)
        stats, _decoded = session.measure(coded.data)
        kept = mask.count()
        share = hf_share(recon, cfg.hfe_radius)
        rec = {
            "remaining": kept / n_weights,
            "remaining_weights": kept,
            "remaining_params": (kept + n_bias) / (n_weights + n_bias),
            "psnr": image.psnr(recon, arr),
            "psnr_coded": stats["psnr"],
            "hfe": share / target_share if target_share > 0 else float("nan"),
            "hf_share": share,
            "bytes": stats["bytes"],
            "bpp": stats["bpp"],
            "train_seconds": round(seconds, 3),
        }
        return rec, recon

    snip_cache: list = []

    def snip_at_theta0() -> list[torch.Tensor]:
        """SNIP's scores at θ0 on every pixel, computed once per run (the same on a resume)."""
        if not snip_cache:
            snip_cache.append(snip_scores(net, target, theta0[0], biases=theta0[1]))
        return snip_cache[0]

    for r in range(state["round"] + 1, cfg.rounds):
        t_round = time.perf_counter()
        tickets, recs = {}, {}
        if r == 0:
            net.load([x.to(dev) for x in theta0[0]], [x.to(dev) for x in theta0[1]])
            t0 = time.perf_counter()
            train(net, target, fit, cfg.steps, seed_offset=0, full_batch=cfg.batch is None)
            ws, bs = (list(x.cpu() for x in part) for part in net.state())
            mask = Mask.dense(ws)
            rec, recon = measure(ws, bs, mask, time.perf_counter() - t0)
            image.save(recon, out / "recon" / "r00-dense.png")
            for name in cfg.tickets:
                tickets[name] = {"keep": list(mask.keep), "weights": ws, "biases": bs}
                recs[name] = dict(rec)
        else:
            for name in cfg.tickets:
                prev = state["tickets"][name]
                prev_mask = Mask(tuple(prev["keep"]))
                gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 7919 * r)
                t0 = time.perf_counter()
                if name == "rigl":  # sparse from the start at this round's count: trained, not rewound
                    net.load([x.to(dev) for x in theta0[0]], [x.to(dev) for x in theta0[1]])
                    mask, (ws, bs) = train_rigl(
                        net, target, fit, cfg.steps, count=count_after(prev_mask, cfg.prune), seed_offset=r,
                        full_batch=cfg.batch is None,
                    )  # fmt: skip
                    mask = mask.to("cpu")
                    ws, bs = [x.cpu() for x in ws], [x.cpu() for x in bs]
                else:
                    if name in TICKET_RULES:
                        mask = prev_mask.prune(prev["weights"], cfg.prune, TICKET_RULES[name], gen)
                    else:
                        mask = _finder_mask(name, prev_mask, prev["weights"], theta0, snip_at_theta0, cfg.prune)
                    if r > 1 and all(torch.equal(a, b) for a, b in zip(mask.keep, prev_mask.keep)):
                        # A fixed-density ticket (nm:N:M) already at its mask: the same ticket again.
                        recs[name] = dict(results["rounds"][-1]["tickets"][name], train_seconds=0.0)
                        shutil.copyfile(out / "recon" / recon_file(r - 1, name), out / "recon" / recon_file(r, name))
                        tickets[name] = prev
                        continue
                    start_w, start_b = rewind(theta0, mask)
                    net.load([x.to(dev) for x in start_w], [x.to(dev) for x in start_b])
                    train(net, target, fit, cfg.steps, mask=mask, seed_offset=r, full_batch=cfg.batch is None)
                    ws, bs = (list(x.cpu() for x in part) for part in net.state())
                recs[name], recon = measure(ws, bs, mask, time.perf_counter() - t0)
                image.save(recon, out / "recon" / recon_file(r, name))
                tickets[name] = {"keep": list(mask.keep), "weights": ws, "biases": bs}
        masks = {name: Mask(tuple(t["keep"])) for name, t in tickets.items()}
        results["rounds"].append(
            {
                "round": r,
                "seconds": round(time.perf_counter() - t_round, 3),
                "tickets": recs,
                "jaccard": jaccards(masks),
            }
        )
        results["findings"] = findings(results)
        state.update(round=r, tickets=tickets)
        main, jac = _csvs(results)
        checkpoint.save(out, state, dict(zip(DATA_FILES, (checkpoint.json_text(results), main, jac))))
        say(_round_line(results["rounds"][-1], cfg.rounds))
    return results


def _round_line(rec: dict, rounds: int) -> str:
    first = next(iter(rec["tickets"].values()))
    parts = [f"round {rec['round']:>2}/{rounds - 1}", f"{100 * first['remaining']:6.2f}% left"]
    parts += [f"{name} {t['psnr']:5.2f} dB" for name, t in rec["tickets"].items()]
    return "  ".join(parts) + f"  [{rec['seconds']:.0f} s]"
