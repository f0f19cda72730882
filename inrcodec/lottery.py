"""The lottery-ticket experiment on the codec's own SIREN: winning, random and losing tickets.

Round 0 trains the dense network from its initialisation θ0. Every later round prunes each
ticket's surviving weights by its own rule (ranked globally across layers, biases untouched),
rewinds the survivors to their exact values in θ0 (biases too) and retrains. The winner removes
the smallest magnitudes (Frankle & Carbin 2019), the random ticket a random choice, the loser the
largest magnitudes. Training, masks and coding are the codec's: :func:`fit.train`,
:class:`prune.Mask` and :func:`pipeline.code`; nothing here re-implements them.

Per round and ticket it records the remaining fraction, PSNR, high-frequency energy retention
(:func:`hf_share`), the bytes of the ticket coded as an ``.inr`` file, and the per-layer Jaccard
similarity of every pair of tickets' masks. The run is resumable: after each round the state of
every ticket (mask, weights) goes to ``state.pt`` and the results to JSON/CSV, each atomically.
See docs/lottery.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

from inrcodec import image

if TYPE_CHECKING:
    import torch

    from inrcodec.encoder.prune import Mask
    from inrcodec.siren import Architecture

# torch and the encoder are imported where used, so that registering the command keeps the
# CLI's start-up as light as the other commands'.

TICKET_RULES = {"winner": "magnitude", "random": "random", "loser": "largest"}  # ticket -> prune rule
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
    tickets: tuple[str, ...] = ("winner", "random", "loser")  # keys of TICKET_RULES
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


def prepare(arr: np.ndarray, size: int | None) -> np.ndarray:
    """Centre-crop to the largest square and resize it to ``size`` (Lanczos); None: unchanged."""
    if size is None:
        return arr
    h, w = arr.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    sq = np.ascontiguousarray(arr[y0 : y0 + s, x0 : x0 + s])
    if s == size:
        return sq
    from PIL import Image

    return image.from_pil(image.to_pil(sq).resize((size, size), Image.Resampling.LANCZOS))


def _luma(arr: np.ndarray) -> np.ndarray:
    x = arr.astype(np.float64)
    y = x[..., :3] @ np.array([0.299, 0.587, 0.114]) if arr.shape[2] >= 3 else x[..., 0]
    return y - y.mean()


def power_spectrum(arr: np.ndarray) -> np.ndarray:
    """|FFT|^2 of the mean-removed luminance (BT.601 weights; the channel itself for grey)."""
    return np.abs(np.fft.fft2(_luma(arr))) ** 2


def radius(h: int, w: int) -> np.ndarray:
    """Normalized radial frequency of every FFT bin: sqrt(fx^2 + fy^2) / 0.5 cycles/pixel."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    return np.sqrt(fx**2 + fy**2) / 0.5


def hf_share(arr: np.ndarray, r0: float) -> float:
    """Share of the spectral energy at normalized radius r > r0 (0 for a flat image)."""
    p = power_spectrum(arr)
    total = float(p.sum())
    return float(p[radius(*arr.shape[:2]) > r0].sum()) / total if total > 0 else 0.0


def flat_psnr(arr: np.ndarray) -> float:
    """PSNR of the flat image of the mean colour: what a network that learned nothing scores."""
    mean = np.round(arr.reshape(-1, arr.shape[2]).astype(np.float64).mean(0)).astype(np.uint8)
    return image.psnr(np.broadcast_to(mean, arr.shape).copy(), arr)


def jaccards(masks: dict[str, Mask]) -> dict[str, dict]:
    """Per pair of tickets: per-layer Jaccard similarity and the one of all layers pooled."""
    import torch

    from inrcodec.encoder.prune import Mask

    names = list(masks)
    out = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pooled = Mask((torch.cat([k.reshape(-1) for k in masks[a].keep]),))
            other = Mask((torch.cat([k.reshape(-1) for k in masks[b].keep]),))
            out[f"{a}-{b}"] = {"layers": masks[a].jaccard(masks[b]), "all": pooled.jaccard(other)[0]}
    return out


def rewind(theta0: tuple[list[torch.Tensor], list[torch.Tensor]], mask: Mask):
    """The ticket's starting point: θ0's weights with the pruned ones zeroed, θ0's biases."""
    return mask.apply(theta0[0]), [b.clone() for b in theta0[1]]


def _config_doc(cfg: LotteryConfig) -> dict:
    doc = asdict(cfg)
    doc["tickets"] = list(cfg.tickets)
    return doc


def _same_setup(a: dict, b: dict) -> list[str]:
    return [k for k in sorted(set(a) | set(b)) if k != "rounds" and a.get(k) != b.get(k)]


def _save_torch(path: Path, obj) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    image.atomic_write(path, lambda f: f.write(buf.getvalue()))


def _write_text(path: Path, text: str) -> None:
    image.atomic_write(path, lambda f: f.write(text.encode()))


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


Progress = Callable[[str], None]


def run(
    arr: np.ndarray,
    cfg: LotteryConfig,
    outdir: str | Path,
    device: str | None = None,
    progress: Progress | None = None,
    source: str = "",
    fresh: bool = False,
) -> dict:
    """Run (or resume) the experiment on an (H, W, C) uint8 image; returns the results dict.

    Writes ``target.png``, ``recon/rNN-<ticket>.png``, ``state.pt``, ``results.json``,
    ``results.csv`` and ``jaccard.csv`` under ``outdir``, the last four after every round.
    """
    for t in cfg.tickets:
        if t not in TICKET_RULES:
            raise ValueError(f"unknown ticket {t!r}; choose from {', '.join(TICKET_RULES)}")
    if len(set(cfg.tickets)) != len(cfg.tickets) or not cfg.tickets:
        raise ValueError("--tickets: give each ticket once")
    if cfg.rounds < 1 or not 0 < cfg.prune < 1 or cfg.steps < 1:
        raise ValueError("need rounds >= 1, 0 < prune < 1, steps >= 1")
    import torch

    from inrcodec.config import CoderConfig, EncodeConfig, FitConfig
    from inrcodec.decoder import decode
    from inrcodec.decoder.render import render
    from inrcodec.encoder.fit import train
    from inrcodec.encoder.pipeline import code, header_for, make_target
    from inrcodec.encoder.prune import Mask
    from inrcodec.siren import Siren, default_device

    say = progress or (lambda _msg: None)
    out = Path(outdir)
    (out / "recon").mkdir(parents=True, exist_ok=True)
    arr = prepare(arr, cfg.size)
    h, w, c = arr.shape
    dev = default_device(device)
    arch = cfg.architecture(c)
    doc = _config_doc(cfg)
    digest = hashlib.sha256(arr.tobytes() + repr(arr.shape).encode()).hexdigest()
    target = make_target(arr, dev)
    header = header_for(arr, EncodeConfig(arch=arch))
    fit = FitConfig(steps=cfg.steps, batch=cfg.batch or h * w, lr=cfg.lr, lr_final=cfg.lr_final, seed=cfg.seed)
    coder = CoderConfig(weight_coder="scalar")
    target_share = hf_share(arr, cfg.hfe_radius)
    net = Siren(arch, torch.Generator().manual_seed(cfg.seed)).to(dev)
    theta0 = tuple([t.cpu() for t in part] for part in net.state())
    state_path = out / "state.pt"

    if state_path.exists() and not fresh:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        diff = _same_setup(state["config"], doc)
        if state["image_sha256"] != digest:
            diff.append("image")
        if diff:
            raise ValueError(
                f"{out} holds a run with another set-up ({', '.join(diff)} differ); use another -o or --fresh"
            )
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
        coded = code(weights, biases, mask, header, coder, cfg.bits)
        kept = mask.count()
        share = hf_share(recon, cfg.hfe_radius)
        rec = {
            "remaining": kept / n_weights,
            "remaining_weights": kept,
            "remaining_params": (kept + n_bias) / (n_weights + n_bias),
            "psnr": image.psnr(recon, arr),
            "psnr_coded": image.psnr(decode(coded.data, device=str(dev)), arr),
            "hfe": share / target_share if target_share > 0 else float("nan"),
            "hf_share": share,
            "bytes": len(coded.data),
            "bpp": 8 * len(coded.data) / (h * w),
            "train_seconds": round(seconds, 3),
        }
        return rec, recon

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
                gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 7919 * r)
                mask = Mask(tuple(prev["keep"])).prune(prev["weights"], cfg.prune, TICKET_RULES[name], gen)
                start_w, start_b = rewind(theta0, mask)
                net.load([x.to(dev) for x in start_w], [x.to(dev) for x in start_b])
                t0 = time.perf_counter()
                train(net, target, fit, cfg.steps, mask=mask, seed_offset=r, full_batch=cfg.batch is None)
                ws, bs = (list(x.cpu() for x in part) for part in net.state())
                recs[name], recon = measure(ws, bs, mask, time.perf_counter() - t0)
                image.save(recon, out / "recon" / f"r{r:02d}-{name}.png")
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
        _save_torch(state_path, state)
        _write_outputs(out, results)
        say(_round_line(results["rounds"][-1], cfg.rounds))
    return results


def _write_outputs(out: Path, results: dict) -> None:
    _write_text(out / "results.json", json.dumps(results, indent=1) + "\n")
    main, jac = _csvs(results)
    _write_text(out / "results.csv", main)
    _write_text(out / "jaccard.csv", jac)


def _round_line(rec: dict, rounds: int) -> str:
    first = next(iter(rec["tickets"].values()))
    parts = [f"round {rec['round']:>2}/{rounds - 1}", f"{100 * first['remaining']:6.2f}% left"]
    parts += [f"{name} {t['psnr']:5.2f} dB" for name, t in rec["tickets"].items()]
    return "  ".join(parts) + f"  [{rec['seconds']:.0f} s]"


def default_grid_rounds(n_rounds: int, count: int = 5) -> list[int]:
    last = n_rounds - 1
    return sorted({int(round(x)) for x in np.linspace(0, last, min(count, n_rounds))})


def report(outdir: str | Path, grid_rounds: list[int] | None = None) -> list[Path]:
    """Plots from ``results.json``: PSNR, HFE and rate curves, and the reconstruction grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(outdir)
    results = json.loads((out / "results.json").read_text())
    rounds = results["rounds"]
    names = results["config"]["tickets"]
    colours = {"winner": "tab:green", "random": "tab:blue", "loser": "tab:red"}
    written = []

    def curve(key: str, ylabel: str, fname: str, extra=None) -> None:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name in names:
            xs = [100 * r["tickets"][name]["remaining"] for r in rounds]
            ys = [r["tickets"][name][key] for r in rounds]
            ax.plot(xs, ys, "o-", ms=3, color=colours[name], label=name)
        if extra:
            extra(ax)
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("weights remaining (%)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        img = results["image"]
        ax.set_title(
            f"{Path(results['source']).name or 'image'} {img['width']}x{img['height']}, "
            f"{results['params']['total']:,} params",
            fontsize=9,
        )
        fig.tight_layout()
        fig.savefig(out / fname, dpi=120)
        plt.close(fig)
        written.append(out / fname)

    def psnr_extra(ax):
        ax.axhline(results["image"]["flat_psnr"], color="k", ls="--", lw=0.8, label="flat image (mean colour)")
        for name, pts in PUBLISHED.items():
            if name in names:
                ax.plot(
                    list(pts),
                    list(pts.values()),
                    "x",
                    color=colours[name],
                    ms=7,
                    alpha=0.6,
                    label=f"{name}, published (256x256, 198,915 params)",
                )

    curve("psnr", "PSNR (dB)", "psnr.png", psnr_extra)
    curve(
        "hfe",
        f"HF energy retention (r > {results['config']['hfe_radius']})",
        "hfe.png",
        lambda ax: ax.axhline(1.0, color="k", ls=":", lw=0.8),
    )

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in names:
        ax.plot(
            [r["tickets"][name]["bytes"] for r in rounds],
            [r["tickets"][name]["psnr_coded"] for r in rounds],
            "o-",
            ms=3,
            color=colours[name],
            label=name,
        )
    ax.set_xscale("log")
    ax.set_xlabel(f"coded ticket (bytes, {results['config']['bits']}-bit scalar coder)")
    ax.set_ylabel("PSNR of the decoded file (dB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "rate.png", dpi=120)
    plt.close(fig)
    written.append(out / "rate.png")

    written.append(_grid(out, results, grid_rounds or default_grid_rounds(len(rounds)), plt))
    return written


def _grid(out: Path, results: dict, chosen: list[int], plt) -> Path:
    from matplotlib.patches import Ellipse

    done = {r["round"]: r for r in results["rounds"]}
    chosen = [r for r in chosen if r in done]
    names = results["config"]["tickets"]
    r0 = results["config"]["hfe_radius"]
    tgt = image.load(out / "target.png")
    h, w = tgt.shape[:2]

    def logspec(a):
        return np.log10(np.fft.fftshift(power_spectrum(a)) + 1e-3)

    ref = logspec(tgt)
    vmax = float(ref.max())
    vmin = float(np.percentile(ref, 1))
    cols = len(chosen) + 1
    fig, axes = plt.subplots(2 * len(names), cols, figsize=(1.7 * cols, 1.8 * 2 * len(names)), squeeze=False)

    def show(ax_img, ax_spec, arr, title):
        ax_img.imshow(arr[..., 0] if arr.shape[2] == 1 else arr[..., :3], cmap="gray" if arr.shape[2] == 1 else None)
        ax_img.set_title(title, fontsize=6)
        ax_spec.imshow(logspec(arr), cmap="magma", vmin=vmin, vmax=vmax)
        ax_spec.add_patch(Ellipse((w // 2, h // 2), w * r0, h * r0, fill=False, color="c", lw=0.6, ls="--"))

    for row, name in enumerate(names):
        if row == 0:
            show(axes[0][0], axes[1][0], tgt, "target")
        for j, r in enumerate(chosen, start=1):
            rec = done[r]["tickets"][name]
            fname = "r00-dense.png" if r == 0 else f"r{r:02d}-{name}.png"
            arr = image.load(out / "recon" / fname)
            title = f"{name} r{r}\n{100 * rec['remaining']:.3g}% {rec['psnr']:.1f} dB HFE {rec['hfe']:.2f}"
            show(axes[2 * row][j], axes[2 * row + 1][j], arr, title)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        if not ax.images:
            ax.axis("off")
    fig.suptitle(f"reconstructions and log power spectra (circle: r = {r0} of Nyquist)", fontsize=8)
    fig.tight_layout()
    path = out / "grid.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _ints(text: str | None) -> list[int] | None:
    return None if not text else [int(x) for x in text.split(",") if x.strip()]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), help="default: runs/SRC-stem")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="cpu", show_default=True)
@click.option("--rounds", type=click.IntRange(min=1), help="rounds in all, round 0 (dense) included")
@click.option("--prune", type=float, help="fraction of surviving weights removed per round")
@click.option("--tickets", help="comma-separated: winner,random,loser")
@click.option("--steps", type=click.IntRange(min=1), help="optimizer steps (epochs) per round")
@click.option("--size", type=click.IntRange(min=1), help="square side the image is cropped and resized to")
@click.option("--hidden", type=click.IntRange(min=1), help="width of the hidden layers")
@click.option("--layers", type=click.IntRange(min=1), help="sine layers (first included)")
@click.option("--lr", type=float, help="Adam learning rate")
@click.option("--seed", type=int, help="seed of θ0, sampling and the random ticket")
@click.option("--device", help="cpu, cuda, mps (default: best available)")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="CPU threads for torch")
@click.option("--grid-rounds", help="rounds shown in grid.png, e.g. 0,1,2,5,10 (default: five spread)")
@click.option("--fresh", is_flag=True, help="discard a run already in the output folder")
@click.option("-q", "--quiet", is_flag=True, help="no line per round")
def lottery_command(
    src,
    output,
    preset,
    rounds,
    prune,
    tickets,
    steps,
    size,
    hidden,
    layers,
    lr,
    seed,
    device,
    threads,
    grid_rounds,
    fresh,
    quiet,
):
    """Winning / random / losing tickets of SRC's SIREN, round by round (resumable)."""
    from inrcodec.cli import run_guarded

    output = output or Path("runs") / src.stem
    import torch

    from inrcodec.siren import default_device

    torch.set_num_threads(threads)
    given = dict(rounds=rounds, prune=prune, steps=steps, size=size, hidden=hidden, layers=layers, lr=lr, seed=seed)
    over = {k: v for k, v in given.items() if v is not None}
    cfg = replace(PRESETS[preset], **over)
    if tickets:
        cfg = replace(cfg, tickets=tuple(t.strip() for t in tickets.split(",") if t.strip()))
    say = None if quiet else (lambda msg: click.echo(msg, err=True))

    def job():
        arr = image.load(src)
        if say:
            say(
                f"lottery: {src} -> {output}  preset {preset}, {cfg.rounds} rounds of {cfg.prune:.0%}, "
                f"SIREN {cfg.layers}x{cfg.hidden}, {cfg.steps} steps/round, "
                f"device {default_device(device)}, {torch.get_num_threads()} thread(s)"
            )
        t0 = time.perf_counter()
        res = run(arr, cfg, output, device, say, source=str(src), fresh=fresh)
        report(output, _ints(grid_rounds))
        return res, time.perf_counter() - t0

    res, secs = run_guarded(job)
    f = res["findings"]
    click.echo(
        f"{output}: results.json, results.csv, jaccard.csv, psnr.png, hfe.png, rate.png, grid.png ({secs:.0f} s)"
    )
    if "winner_ge_random_every_round" in f:
        click.echo(f"winner >= random at every round: {f['winner_ge_random_every_round']}")
    if "loser_collapse_round" in f:
        click.echo(
            f"loser within {COLLAPSE_MARGIN_DB:g} dB of the flat image ({f['flat_psnr']:.2f} dB) "
            f"from round: {f['loser_collapse_round']}"
        )
