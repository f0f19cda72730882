"""The RTL experiment: one ticket per image region (Routing the Lottery) against one IMP mask.

One dense fit is shared by both methods (same architecture, same seed, same rewind point). Then,
per sparsity level (25, 50, 75, 90 % of the weights pruned by default), one pruning round each:

- IMP: the single mask loses the fraction that reaches the level (magnitude, ranked globally),
  the weights rewind and retrain for ``retrain_steps``: :func:`pipeline.imp`'s round.
- RTL: each region's mask reaches the level by adaptive ticket extraction (``extract_steps`` of
  training per region), then joint retraining for the same ``retrain_steps``: :func:`rtl.rtl_round`.

Both are then coded with the codec's own functions (``pipeline.code``, ``pipeline.finish``; the
same quantization-aware fine-tuning steps) and written as real ``.inr`` files: IMP as a
single-mask file, RTL as a format v2 file with its REGIONS section and K masks. Both use one bit
depth for all layers, by one rule: the smallest candidate whose PSNR loss stays within
``max_loss_db`` (``pipeline.choose_bits``, ``rtl.choose_bits``). The single-mask encoder's
per-layer allocation (``pipeline.allocate_bits``) is not used: it has no multi-ticket
counterpart. PSNR comes from decoding those files with the real decoder; bytes are their
lengths. The mean pairwise Jaccard similarity of the RTL masks is recorded per layer and level.

Resumable per level: after each level the state of both methods goes to ``state.pt`` and the
results to ``results.json``, atomically; a rerun with the same setup continues. See docs/rtl.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import click
import numpy as np

from inrcodec import image

RESULTS_VERSION = 1
PAPER = {  # Stefański et al. 2026, INR table: PSNR (dB) at 25 / 50 / 75 % sparsity
    "rtl": {25: 18.86, 50: 17.25, 75: 14.87},
    "imp": {25: 15.94, 50: 14.72, 75: 12.69},
}


@dataclass(frozen=True)
class RtlConfig:
    """One experiment; everything must match for a run to resume."""

    hidden: int = 48  # SIREN: width of every hidden layer
    layers: int = 3  # SIREN: sine layers, first included
    omega0: float = 30.0  # SIREN: frequency factor of every sine layer
    fit_steps: int = 1500  # dense fit, shared by both methods
    batch: int = 4096  # random pixels per step (RTL joint steps: batch / K from each region)
    lr: float = 2e-3  # Adam, start of every cosine schedule
    lr_final: float = 1e-4  # Adam, end of every cosine schedule
    rewind: str = "early:100"  # rewinding point of both methods (pipeline's default)
    retrain_steps: int = 600  # per level: IMP retraining = RTL joint retraining
    extract_steps: int = 300  # per level and region: RTL ticket extraction
    qat_steps: int = 100  # quantization-aware fine-tuning before coding, both methods
    levels: tuple[int, ...] = (25, 50, 75, 90)  # sparsity levels, % of weights pruned
    seed: int = 0  # initialisation, sampling, k-means

    def encode_config(self, channels: int = 3):
        """The codec's EncodeConfig of both methods (an image of ``channels`` colours)."""
        from inrcodec.config import CoderConfig, EncodeConfig, FitConfig, PruneConfig
        from inrcodec.siren import Architecture

        arch = Architecture(2, self.hidden, self.layers, channels, self.omega0, self.omega0)
        return EncodeConfig(
            arch=arch,
            fit=FitConfig(steps=self.fit_steps, batch=self.batch, lr=self.lr, lr_final=self.lr_final, seed=self.seed),
            prune=PruneConfig(rewind=self.rewind, steps=self.retrain_steps),
            coder=CoderConfig(weight_coder="scalar", qat_steps=self.qat_steps),
        )


PRESETS: dict[str, RtlConfig] = {
    # A 768x512 Kodak image, kmeans:4, one thread: ~2 min of CPU; 2.5-5 min wall on the shared
    # 2-core machine, ~9 min when it is busy (docs/rtl.md).
    "cpu": RtlConfig(),
    # For a GPU (not run for docs/rtl.md): 3.3x the steps at 4x the batch, a 3 x 64 SIREN.
    "gpu": RtlConfig(hidden=64, fit_steps=5000, batch=16384, retrain_steps=2000, extract_steps=1000, qat_steps=200),
}


def _save_torch(path: Path, obj) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    image.atomic_write(path, lambda f: f.write(buf.getvalue()))


def _write_json(path: Path, doc: dict) -> None:
    image.atomic_write(path, lambda f: f.write((json.dumps(doc, indent=1) + "\n").encode()))


def _checkpoint(state: dict, results: dict, state_path: Path, results_path: Path, clock: list[float]) -> None:
    """State and results in one atomic write (state.pt, the truth on resuming), then results.json.

    ``clock`` is (wall, CPU) seconds at the last checkpoint; the run's totals grow by the time since."""
    wall, cpu = time.perf_counter(), time.process_time()
    spent = results.setdefault("seconds", {"wall": 0.0, "cpu": 0.0})
    spent["wall"] = round(spent["wall"] + wall - clock[0], 1)
    spent["cpu"] = round(spent["cpu"] + cpu - clock[1], 1)
    clock[:] = [wall, cpu]
    state["results"] = json.dumps(results)
    _save_torch(state_path, state)
    _write_json(results_path, results)


def _same_setup(old: dict, new: dict) -> bool:
    """Equal but for the levels, which may be extended (the done ones must match)."""
    a = dict(old, config=dict(old.get("config", {}), levels=None))
    b = dict(new, config=dict(new["config"], levels=None))
    done = tuple(old.get("config", {}).get("levels", ()))
    levels = tuple(new["config"]["levels"])
    return a == b and (done[: len(levels)] == levels[: len(done)])


def run(
    arr: np.ndarray,
    cfg: RtlConfig,
    spec,
    out: Path,
    region_map: Path | None = None,
    device: str | None = None,
    say=None,
    source: str = "",
    fresh: bool = False,
    draw: bool = True,
) -> dict:
    """Run (or resume) the experiment on an (H, W, C) uint8 image; returns the results.
    ``draw`` also writes the plot, rtl.png."""
    import torch

    from inrcodec.decoder import decode
    from inrcodec.encoder import pipeline, rtl
    from inrcodec.encoder import regions as regionlib
    from inrcodec.encoder.fit import evaluate, train
    from inrcodec.encoder.prune import Mask
    from inrcodec.format import container
    from inrcodec.siren import Siren, default_device

    clock = [time.perf_counter(), time.process_time()]
    out.mkdir(parents=True, exist_ok=True)
    setup = {
        "version": RESULTS_VERSION,
        "source": source,
        "sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
        "shape": list(arr.shape),
        "regions": str(spec),
        "config": asdict(cfg),
    }
    results_path, state_path = out / "results.json", out / "state.pt"
    results = state = None
    if not fresh and state_path.exists():
        state = torch.load(state_path, weights_only=True)
        results = json.loads(state["results"])  # the state and its results are saved in one write
        if not _same_setup(results.get("setup", {}), setup):
            raise ValueError(f"{out} holds a run with another setup; use --fresh or another -o")
        results["setup"] = setup
        del results["levels"][len(cfg.levels) :]
    ecfg = cfg.encode_config(arr.shape[2])
    dev = default_device(device)
    h, w, _c = arr.shape
    regions = regionlib.build(spec, arr, region_map, seed=cfg.seed)
    region_idx = regionlib.region_indices(regions, h, w)
    k = regions.count
    header = pipeline.header_for(arr, ecfg)
    target = pipeline.make_target(arr, dev)
    net = Siren(ecfg.arch, torch.Generator().manual_seed(cfg.seed)).to(dev)
    n_bias = sum(o for o, _i in ecfg.arch.shapes())

    def load(ws, bs):
        net.load([x.to(dev) for x in ws], [x.to(dev) for x in bs])

    def record(data: bytes, name: str) -> dict:
        image.atomic_write(out / name, lambda f: f.write(data))
        decoded = decode(data, device=str(dev))
        return {
            "file": name,
            "bytes": len(data),
            "bpp": round(8 * len(data) / (h * w), 4),
            "psnr": round(image.psnr(decoded, arr), 3),
            "region_psnr": [round(p, 3) for p in rtl.region_psnr(decoded, arr, regions)],
        }

    def code_single(weights, biases, mask: Mask, name: str) -> dict:
        """The single-mask file: one bit depth by the rule of rtl.choose_bits, then pipeline.finish."""
        t = time.perf_counter()
        snap = pipeline.Snapshot(0, mask, weights, biases, 0.0)
        load(weights, biases)
        cands = pipeline.choose_bits(net, target, snap, header, ecfg)
        ref = evaluate(net, target, pixels=ecfg.eval_pixels)
        bits = next((b for b, _c, p in cands if ref - p <= ecfg.coder.max_loss_db), cands[-1][0])
        coded = pipeline.finish(net, target, snap, header, ecfg, bits)
        rec = record(coded.data, name)
        rec.update(
            density=round(mask.density(), 4),
            stored_params=mask.count() + n_bias,
            bits=bits,
            sections=container.read(coded.data).section_bytes,
            code_seconds=round(time.perf_counter() - t, 2),
        )
        return rec

    if results is None:
        t0 = time.perf_counter()
        rewind = rtl.dense_fit(net, target, ecfg)
        dense = net.state()
        dense_keep = list(Mask.dense(dense[0]).keep)
        fit_s = time.perf_counter() - t0
        dense_rec = code_single(*dense, Mask(tuple(dense_keep)), "dense.inr")
        dense_rec["fit_seconds"] = round(fit_s, 2)
        results = {
            "setup": setup,
            "regions": {
                "spec": str(spec),
                "count": k,
                "map": list(regions.label_map().shape[::-1]),
                "pixels": [int(i.numel()) for i in region_idx],
            },
            "params": ecfg.arch.n_params(),
            "dense": dense_rec,
            "levels": [],
        }
        state = {"rewind": rewind, "imp": (*dense, dense_keep), "rtl": (*dense, [dense_keep] * k)}
        _checkpoint(state, results, state_path, results_path, clock)
        if say:
            say(f"dense: {dense_rec['psnr']:.2f} dB, {dense_rec['bytes']} B ({fit_s:.0f} s fit)")
    rewind = state["rewind"]
    if rewind is not None:
        rewind = ([x.to(dev) for x in rewind[0]], [x.to(dev) for x in rewind[1]])
    prev = 1.0
    for i, level in enumerate(cfg.levels):
        density = 1.0 - level / 100.0
        fraction, prev = 1.0 - density / prev, density
        if i < len(results["levels"]):
            continue
        r = i + 1
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + r)
        # IMP: pipeline.imp's round (prune the retrained weights, rewind, retrain).
        t = time.perf_counter()
        ws, bs, keep = state["imp"]
        load(ws, bs)
        mask = Mask(tuple(x.to(dev) for x in keep)).prune(list(net.weights), fraction, ecfg.prune.rule, gen)
        if rewind is not None:
            load(*rewind)
        train(net, target, ecfg.fit, ecfg.prune.steps, mask=mask, seed_offset=r)
        imp_state = net.state()
        imp_train = time.perf_counter() - t
        imp_rec = code_single(*imp_state, mask, f"imp_s{level}.inr")
        imp_rec["train_seconds"] = round(imp_train, 2)
        # RTL: extraction per region, then joint retraining.
        t = time.perf_counter()
        ws, bs, keeps = state["rtl"]
        load(ws, bs)
        masks = [Mask(tuple(x.to(dev) for x in kp)) for kp in keeps]
        masks = rtl.rtl_round(net, target, masks, region_idx, rewind, ecfg, fraction, r, cfg.extract_steps, gen)
        rtl_state = net.state()
        rtl_train = time.perf_counter() - t
        t = time.perf_counter()
        bits = rtl.choose_bits(net, target, masks, region_idx, header, ecfg)
        coded = rtl.finish(net, target, masks, region_idx, header, regions, ecfg, bits)
        rtl_rec = record(coded.data, f"rtl_s{level}.inr")
        u = rtl.union(masks)
        rtl_rec.update(
            density=round(float(np.mean([m.density() for m in masks])), 4),
            union_density=round(u.density(), 4),
            stored_params=u.count() + n_bias,
            ticket_params=[m.count() + n_bias for m in masks],
            bits=bits,
            sections=container.read(coded.data).section_bytes,
            jaccard=rtl.mean_jaccard(masks),
            jaccard_vs_imp=round(float(np.mean([sum(m.jaccard(mask)) / len(m.keep) for m in masks])), 4),
            train_seconds=round(rtl_train, 2),
            code_seconds=round(time.perf_counter() - t, 2),
        )
        results["levels"].append({"sparsity": level, "imp": imp_rec, "rtl": rtl_rec})
        state["imp"] = (*imp_state, list(mask.keep))
        state["rtl"] = (*rtl_state, [list(m.keep) for m in masks])
        _checkpoint(state, results, state_path, results_path, clock)
        if say:
            say(
                f"{level}% sparse: IMP {imp_rec['psnr']:.2f} dB {imp_rec['bytes']} B | RTL {rtl_rec['psnr']:.2f} dB "
                f"{rtl_rec['bytes']} B (union {rtl_rec['union_density']:.2f}, Jaccard {rtl_rec['jaccard']['all']:.3f})"
                f"  [{imp_train + imp_rec['code_seconds']:.0f} s + {rtl_train + rtl_rec['code_seconds']:.0f} s]"
            )
    if draw:
        plot(results, out / "rtl.png")
    return results


def plot(results: dict, path: Path) -> None:
    """PSNR vs sparsity, PSNR vs bytes, and the Jaccard curve of one run (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lv = results["levels"]
    if not lv:
        return
    s = [x["sparsity"] for x in lv]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for key, style in (("rtl", "o-"), ("imp", "s--")):
        ax[0].plot(s, [x[key]["psnr"] for x in lv], style, label=key.upper())
        ax[1].plot([x[key]["bytes"] for x in lv], [x[key]["psnr"] for x in lv], style, label=key.upper())
        for x in lv:
            ax[1].annotate(f"{x['sparsity']}%", (x[key]["bytes"], x[key]["psnr"]), fontsize=7)
    d = results["dense"]
    ax[0].axhline(d["psnr"], color="grey", lw=0.8, ls=":", label="dense")
    ax[1].plot([d["bytes"]], [d["psnr"]], "k^", label="dense")
    ax[0].set(xlabel="sparsity (% of weights pruned per ticket)", ylabel="PSNR (dB), decoded file", title="quality")
    ax[1].set(xlabel="bytes of the .inr file", ylabel="PSNR (dB)", title="rate-distortion")
    n_layers = len(lv[0]["rtl"]["jaccard"]["per_layer"])
    for j in range(n_layers):
        ax[2].plot(s, [x["rtl"]["jaccard"]["per_layer"][j] for x in lv], ".-", lw=0.8, label=f"layer {j}")
    ax[2].plot(s, [x["rtl"]["jaccard"]["all"] for x in lv], "k-", lw=2, label="all weights")
    ax[2].set(
        xlabel="sparsity (%)", ylabel="mean pairwise Jaccard of RTL masks", ylim=(0, 1.02), title="mask similarity"
    )
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(
        f"{Path(results['setup']['source']).name or 'image'}: RTL ({results['regions']['spec']}) vs one IMP mask"
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    image.atomic_write(path, lambda f: f.write(buf.getvalue()))


def _imp_curve(run: dict) -> list[tuple[int, float]]:
    """IMP's (bytes, PSNR) points, dense file included, by bytes."""
    return sorted(
        [(run["dense"]["bytes"], run["dense"]["psnr"])] + [(x["imp"]["bytes"], x["imp"]["psnr"]) for x in run["levels"]]
    )


def imp_psnr_within(run: dict, n_bytes: float) -> float | None:
    """The best PSNR IMP reaches with at most ``n_bytes`` (linear between its files); None below its smallest."""
    best = None
    pts = _imp_curve(run)
    for (b0, p0), (b1, p1) in zip(pts, pts[1:] + [(math.inf, pts[-1][1])]):
        if b0 <= n_bytes:
            p = p0 if n_bytes >= b1 or b1 == math.inf else p0 + (p1 - p0) * (n_bytes - b0) / (b1 - b0)
            best = p if best is None else max(best, p, p0)
    return best


def imp_bytes_for(run: dict, psnr_db: float) -> float | None:
    """The fewest bytes at which IMP's curve reaches ``psnr_db``; None if no IMP file does."""
    pts = _imp_curve(run)
    if psnr_db <= pts[0][1]:
        return float(pts[0][0])
    for (b0, p0), (b1, p1) in zip(pts, pts[1:]):
        if p0 < psnr_db <= p1:
            return b0 + (b1 - b0) * (psnr_db - p0) / (p1 - p0)
    return None


def _spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def summarize(runs: list[Path], out: Path) -> str:
    """Tables (markdown) and a plot over several runs: the figures of docs/rtl.md."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = [json.loads((r / "results.json").read_text()) for r in runs]
    names = [Path(x["setup"]["source"]).stem or r.name for x, r in zip(res, runs)]
    levels = [x["sparsity"] for x in res[0]["levels"]]
    lines = ["### PSNR (dB) of the decoded files, RTL / IMP", ""]
    lines.append("| sparsity | " + " | ".join(names) + " | mean RTL | mean IMP | paper RTL | paper IMP |")
    lines.append("|" + "---|" * (len(names) + 5))
    mean = {"rtl": [], "imp": []}
    for i, s in enumerate(levels):
        cells = [f"{x['levels'][i]['rtl']['psnr']:.2f} / {x['levels'][i]['imp']['psnr']:.2f}" for x in res]
        for key in mean:
            mean[key].append(float(np.mean([x["levels"][i][key]["psnr"] for x in res])))
        paper = [f"{PAPER[k][s]:.2f}" if s in PAPER[k] else "–" for k in ("rtl", "imp")]
        lines.append(
            f"| {s} % | "
            + " | ".join(cells)
            + f" | {mean['rtl'][-1]:.2f} | {mean['imp'][-1]:.2f} | "
            + " | ".join(paper)
            + " |"
        )
    dense = " | ".join(f"{x['dense']['psnr']:.2f}" for x in res)
    lines += [f"| dense | {dense} | {np.mean([x['dense']['psnr'] for x in res]):.2f} | | | |", ""]
    lines += ["### Parameters and bytes of every file", ""]
    lines.append(
        "| image | sparsity | IMP params | IMP bytes | RTL params stored (union) | RTL params per ticket | "
        "RTL bytes | of which masks + regions | union density |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for n, x in zip(names, res):
        d = x["dense"]
        lines.append(f"| {n} | dense | {d['stored_params']} | {d['bytes']} | | | | | |")
        for lv in x["levels"]:
            a, b = lv["imp"], lv["rtl"]
            side = b["sections"].get("masks", 0) + b["sections"].get("regions", 0)
            lo, hi = min(b["ticket_params"]), max(b["ticket_params"])
            lines.append(
                f"| {n} | {lv['sparsity']} % | {a['stored_params']} | {a['bytes']} | {b['stored_params']} | "
                f"{lo if lo == hi else f'{lo}–{hi}'} | {b['bytes']} | {side} | {b['union_density']:.2f} |"
            )
    lines += ["", "### Equal bytes: RTL's files against IMP's curve (dense file included)", ""]
    lines.append(
        "| image | sparsity | RTL bytes | RTL dB | IMP dB with ≤ RTL's bytes | Δ dB (RTL − IMP) | "
        "IMP bytes for RTL's dB | bytes RTL − IMP | Δ dB if RTL's masks + regions cost IMP's one mask |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    deltas, hyp = [], []
    for n, x in zip(names, res):
        for lv in x["levels"]:
            a, b = lv["imp"], lv["rtl"]
            at = imp_psnr_within(x, b["bytes"])
            need = imp_bytes_for(x, b["psnr"])
            deltas.append(b["psnr"] - at)
            extra = "not reached" if need is None else f"{(b['bytes'] - need) / need:+.0%}"
            need_s = "none reaches it" if need is None else f"{need:.0f}"
            side = b["sections"].get("masks", 0) + b["sections"].get("regions", 0)
            hyp.append(b["psnr"] - imp_psnr_within(x, b["bytes"] - side + a["sections"].get("masks", 0)))
            lines.append(
                f"| {n} | {lv['sparsity']} % | {b['bytes']} | {b['psnr']:.2f} | {at:.2f} | {b['psnr'] - at:+.2f} | "
                f"{need_s} | {extra} | {hyp[-1]:+.2f} |"
            )
    lines += [
        "",
        f"RTL − IMP at equal bytes: mean {np.mean(deltas):+.2f} dB, best {max(deltas):+.2f} dB, RTL ahead in "
        f"{sum(d > 0 for d in deltas)} of {len(deltas)} points. Had the K masks and the label map cost only what "
        f"IMP's one mask costs: mean {np.mean(hyp):+.2f} dB, RTL ahead in {sum(d > 0 for d in hyp)} of {len(hyp)}.",
        "",
    ]
    lines += ["### Mask similarity and the PSNR drop", ""]
    lines.append(
        "| image | sparsity | Jaccard (all) | chance | per layer | RTL drop from dense (dB) | "
        "drop from previous level (dB) | RTL − IMP (dB) |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    pts = []
    for n, x in zip(names, res):
        prev = x["dense"]["psnr"]
        for lv in x["levels"]:
            b, j = lv["rtl"], lv["rtl"]["jaccard"]
            drop, step = x["dense"]["psnr"] - b["psnr"], prev - b["psnr"]
            prev = b["psnr"]
            gain = b["psnr"] - lv["imp"]["psnr"]
            pts.append((lv["sparsity"], j["all"], j["all"] - j["chance"], drop, step, gain))
            layers = ", ".join(f"{v:.2f}" for v in j["per_layer"])
            lines.append(
                f"| {n} | {lv['sparsity']} % | {j['all']:.3f} | {j['chance']:.3f} | {layers} | {drop:.2f} | "
                f"{step:.2f} | {gain:+.2f} |"
            )
    cols = list(zip(*pts))
    lines += [
        "",
        f"Spearman rank correlations, all images and levels pooled ({len(pts)} points; sparsity itself drives both):",
        "",
    ]
    for label, xi in (("Jaccard", 1), ("Jaccard − chance", 2)):
        corr = ", ".join(
            f"{name} {_spearman(cols[xi], cols[yi]):+.2f}"
            for name, yi in (("drop from dense", 3), ("drop from previous level", 4), ("RTL − IMP", 5))
        )
        lines.append(f"- {label} vs {corr}")
    within = []
    for s in levels:
        sel = [p for p in pts if p[0] == s]
        within.append(f"{s} %: {_spearman([p[1] for p in sel], [p[3] for p in sel]):+.2f}")
    lines.append("- at one sparsity, across images, Jaccard vs drop from dense: " + ", ".join(within))

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.4))
    ax[0].plot(levels, mean["rtl"], "o-", label="RTL (mean of images)")
    ax[0].plot(levels, mean["imp"], "s--", label="IMP (mean of images)")
    ax[0].plot(list(PAPER["rtl"]), list(PAPER["rtl"].values()), "o:", color="grey", label="paper RTL")
    ax[0].plot(list(PAPER["imp"]), list(PAPER["imp"].values()), "s:", color="silver", label="paper IMP")
    ax[0].set(xlabel="sparsity (%)", ylabel="PSNR (dB)", title="PSNR vs sparsity")
    for n, x in zip(names, res):
        rtl_pts = [(lv["rtl"]["bytes"], lv["rtl"]["psnr"]) for lv in x["levels"]]
        (line,) = ax[1].plot(*zip(*rtl_pts), "o-", label=f"{n} RTL")
        ax[1].plot(*zip(*_imp_curve(x)), "s--", color=line.get_color(), label=f"{n} IMP (+ dense)")
        jac = [lv["rtl"]["jaccard"]["all"] for lv in x["levels"]]
        drop = [x["dense"]["psnr"] - lv["rtl"]["psnr"] for lv in x["levels"]]
        ax[2].plot(jac, drop, "o-", color=line.get_color(), label=n)
        for lv, j, dd in zip(x["levels"], jac, drop):
            ax[2].annotate(f"{lv['sparsity']}%", (j, dd), fontsize=7)
    ax[1].set(xlabel="bytes of the .inr file", ylabel="PSNR (dB)", title="rate-distortion (solid RTL, dashed IMP)")
    ax[2].set(
        xlabel="mean pairwise Jaccard of the RTL masks",
        ylabel="RTL PSNR drop from dense (dB)",
        title="does mask similarity predict the drop?",
    )
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "summary.png", dpi=110)
    plt.close(fig)
    _plot_regions(res, names, out / "regions.png", plt)
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def _plot_regions(res: list[dict], names: list[str], path: Path, plt) -> None:
    """Each source image beside its regions as the decoder sees them (the stored map, resampled)."""
    from inrcodec.encoder import regions as regionlib

    fig, ax = plt.subplots(2, len(res), figsize=(3.2 * len(res), 4.6), squeeze=False)
    for j, (x, name) in enumerate(zip(res, names)):
        if x["setup"]["regions"].startswith("labels"):
            continue  # the label image's path is not recorded
        arr = image.load(x["setup"]["source"])
        h, w = arr.shape[:2]
        spec = regionlib.parse_spec(x["setup"]["regions"])
        regions = regionlib.build(spec, arr, seed=x["setup"]["config"]["seed"])
        ax[0, j].imshow(arr)
        ax[1, j].imshow(regionlib.pixel_labels(regions, h, w).reshape(h, w).numpy(), cmap="tab10", vmin=0, vmax=9)
        ax[0, j].set_title(name, fontsize=9)
        ax[1, j].set_title(f"{x['setup']['regions']}: {regions.count} regions", fontsize=8)
        for a in ax[:, j]:
            a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), help="default: runs/SRC-stem-rtl")
@click.option("--regions", "regions_spec", help="grid:RxC | kmeans:K[@F] | labels[@F]  [default: kmeans:4]")
@click.option(
    "--region-map", type=click.Path(dir_okay=False, path_type=Path), help="label image (with --regions labels)"
)
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="cpu", show_default=True)
@click.option("--levels", help="sparsity levels in %, e.g. 25,50,75,90 (the preset's)")
@click.option("--device", help="cpu, cuda, mps (default: best available)")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="CPU threads for torch")
@click.option("--fresh", is_flag=True, help="discard a run already in the output folder")
@click.option("-q", "--quiet", is_flag=True, help="no line per level")
def rtl_command(src, output, regions_spec, region_map, preset, levels, device, threads, fresh, quiet):
    """RTL (one ticket per region) against one IMP mask at several sparsities (resumable)."""
    import torch

    from inrcodec.cli import run_guarded
    from inrcodec.encoder.regions import parse_spec

    torch.set_num_threads(threads)
    output = output or Path("runs") / f"{src.stem}-rtl"
    cfg = PRESETS[preset]
    say = None if quiet else (lambda msg: click.echo(msg, err=True))

    def job():
        nonlocal cfg
        if levels:
            lv = tuple(int(x) for x in levels.split(",") if x.strip())
            if not lv or sorted(set(lv)) != list(lv) or not 0 < lv[0] <= lv[-1] < 100:
                raise ValueError("--levels: increasing percentages in (0, 100)")
            cfg = replace(cfg, levels=lv)
        spec = parse_spec(regions_spec or (None if region_map else "kmeans:4"), region_map)
        arr = image.load(src)
        if say:
            say(
                f"rtl: {src} -> {output}  preset {preset}, regions {spec}, levels {list(cfg.levels)}, "
                f"{torch.get_num_threads()} thread(s)"
            )
        t0 = time.perf_counter()
        res = run(arr, cfg, spec, output, region_map, device, say, source=str(src), fresh=fresh)
        return res, time.perf_counter() - t0

    res, secs = run_guarded(job)
    click.echo(f"{output}: results.json, rtl.png, *.inr ({secs:.0f} s)")
    click.echo("sparsity  RTL dB   bytes  |  IMP dB   bytes  | Jaccard")
    for lv in res["levels"]:
        a, b = lv["imp"], lv["rtl"]
        click.echo(
            f"{lv['sparsity']:>6} %  {b['psnr']:6.2f} {b['bytes']:7d}  |  {a['psnr']:6.2f} {a['bytes']:7d}  | "
            f"{b['jaccard']['all']:.3f}"
        )


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "summarize":
    print(summarize([Path(p) for p in sys.argv[3:]], Path(sys.argv[2])))
