"""The RTL experiment: one ticket per image region (Routing the Lottery) against one IMP mask.

One dense fit is shared by both methods (same architecture, same seed, same rewind point). Then,
per sparsity level (25, 50, 75, 90 % of the weights pruned by default), one pruning round each:

- IMP: the single mask loses the fraction that reaches the level (magnitude, ranked globally),
  the weights rewind and retrain for ``retrain_steps``: the codec's :func:`prune.prune_round`.
- RTL: each region's mask reaches the level by adaptive ticket extraction (``extract_steps`` of
  training per region), then joint retraining for the same ``retrain_steps``: :func:`rtl.rtl_round`.

Both start from the codec's :class:`session.Session` and :func:`prune.dense_fit`, are coded with
its own functions (``coding.finish``, ``rtl.finish``; the same quantization-aware fine-tuning
steps) and written as real ``.inr`` files: IMP as a single-mask file, RTL as a format v2 file with
its REGIONS section and K masks. Both use one bit depth for all layers, by one rule: the smallest
candidate whose PSNR loss stays within ``max_loss_db`` (``allocate.smallest_depth``, through
``allocate.each_depth`` and ``rtl.choose_depth``). The single-mask encoder's per-layer
allocation (``allocate.allocate_bits``) is not used: it has no multi-ticket counterpart. PSNR
comes from decoding those files with the real decoder (``Session.measure``); bytes are their
lengths. The mean pairwise Jaccard similarity of the RTL masks is recorded per layer and level.

Resumable per level: after each level the state of both methods goes to ``state.pt`` and the
results to ``results.json``, atomically (:mod:`.checkpoint`); a rerun with the same set-up
continues. The plots are :mod:`.plots`'s; the command is ``inrcodec rtl``
(``inrcodec/cli/experiments.py``). See docs/rtl.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from inrcodec import image
from inrcodec.experiments import checkpoint

RESULTS_VERSION = 1
PAPER = {  # Stefański et al. 2026, INR table: PSNR (dB) at 25 / 50 / 75 % sparsity
    "rtl": {25: 18.86, 50: 17.25, 75: 14.87},
    "imp": {25: 15.94, 50: 14.72, 75: 12.69},
}


@dataclass(frozen=True)
class RtlConfig:
    """One experiment; everything but ``levels`` (which may be extended) must match for a run to resume."""

    hidden: int = 48  # SIREN: width of every hidden layer
    layers: int = 3  # SIREN: sine layers, first included
    omega0: float = 30.0  # SIREN: frequency factor of every sine layer
    fit_steps: int = 1500  # dense fit, shared by both methods
    batch: int = 4096  # random pixels per step (RTL joint steps: batch / K from each region)
    lr: float = 2e-3  # Adam, start of every cosine schedule
    lr_final: float = 1e-4  # Adam, end of every cosine schedule
    rewind: str = "early:100"  # rewinding point of both methods (the codec's default)
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

    def scaled(self, fit_steps: int) -> RtlConfig:
        """``fit_steps`` dense steps, and every other step count (the rewinding point included)
        scaled by the same factor, at least 1: a quicker (or longer) run of the same shape."""
        f = fit_steps / self.fit_steps

        def n(steps: int) -> int:
            return max(1, round(steps * f)) if steps > 0 else 0

        rewind = self.rewind
        if rewind.startswith("early:") and rewind[6:].isdigit():
            rewind = f"early:{n(int(rewind[6:]))}"
        return replace(
            self,
            fit_steps=fit_steps,
            rewind=rewind,
            retrain_steps=n(self.retrain_steps),
            extract_steps=n(self.extract_steps),
            qat_steps=n(self.qat_steps),
        )


PRESETS: dict[str, RtlConfig] = {
    # A 768x512 Kodak image, kmeans:4, one thread: ~2 min of CPU; 2.5-5 min wall on the shared
    # 2-core machine, ~9 min when it is busy (docs/rtl.md).
    "cpu": RtlConfig(),
    # For a GPU (not run for docs/rtl.md): 3.3x the steps at 4x the batch, a 3 x 64 SIREN.
    "gpu": RtlConfig(hidden=64, fit_steps=5000, batch=16384, retrain_steps=2000, extract_steps=1000, qat_steps=200),
}


def _checkpoint(out: Path, state: dict, results: dict, clock: list[float]) -> None:
    """State and results in one atomic write (state.pt, the truth on resuming), then results.json.

    ``clock`` is (wall, CPU) seconds at the last checkpoint; the run's totals grow by the time since."""
    wall, cpu = time.perf_counter(), time.process_time()
    spent = results.setdefault("seconds", {"wall": 0.0, "cpu": 0.0})
    spent["wall"] = round(spent["wall"] + wall - clock[0], 1)
    spent["cpu"] = round(spent["cpu"] + cpu - clock[1], 1)
    clock[:] = [wall, cpu]
    state["results"] = json.dumps(results)
    checkpoint.save(out, state, {"results.json": checkpoint.json_text(results)})


def run(
    arr: np.ndarray,
    cfg: RtlConfig,
    spec,
    out: Path,
    region_map: Path | None = None,
    device: str | None = None,
    say: Callable[[str], None] | None = None,
    source: str = "",
    fresh: bool = False,
) -> dict:
    """Run (or resume) the experiment on an (H, W, C) uint8 image; returns the results.

    Writes ``state.pt``, ``results.json`` and every level's ``.inr`` files under ``out``;
    ``say`` gets a line per level. The plot, rtl.png, is :func:`.plots.rtl_run`'s."""
    import torch

    from inrcodec.encoder import regions as regionlib
    from inrcodec.encoder import rtl
    from inrcodec.encoder.allocate import each_depth, smallest_depth
    from inrcodec.encoder.coding import finish
    from inrcodec.encoder.fit import evaluate
    from inrcodec.encoder.mask import Mask
    from inrcodec.encoder.prune import Snapshot, check_rewind, dense_fit, prune_round
    from inrcodec.encoder.session import Session

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
    results = None
    state = checkpoint.load(out, fresh)
    if state is not None:
        results = json.loads(state["results"])  # the state and its results are saved in one write
        checkpoint.check_same_setup(out, results.get("setup", {}), setup, grows="config.levels")
        results["setup"] = setup
        del results["levels"][len(cfg.levels) :]
    session = Session.create(arr, cfg.encode_config(arr.shape[2]), device)
    ecfg, dev, target = session.cfg, session.device, session.target
    h, w, _c = arr.shape
    regions = regionlib.build(spec, arr, region_map, seed=cfg.seed)
    region_idx = regionlib.region_indices(regions, h, w)
    k = regions.count
    net = session.network()
    n_bias = sum(o for o, _i in ecfg.arch.shapes())

    def load(ws, bs):
        net.load([x.to(dev) for x in ws], [x.to(dev) for x in bs])

    def record(data: bytes, name: str) -> tuple[dict, dict]:
        """Write the file; its figures from the real decoder, and its sections' bytes."""
        image.atomic_write(out / name, lambda f: f.write(data))
        stats, decoded = session.measure(data)
        rec = {
            "file": name,
            "bytes": stats["bytes"],
            "bpp": round(stats["bpp"], 4),
            "psnr": round(stats["psnr"], 3),
            "region_psnr": [round(p, 3) for p in rtl.region_psnr(decoded, arr, regions)],
        }
        return rec, stats["sections"]

    def code_single(weights, biases, mask: Mask, name: str) -> dict:
        """The single-mask file: one bit depth by the rule of rtl.choose_depth, then coding.finish."""
        t = time.perf_counter()
        snap = Snapshot(0, mask, weights, biases, 0.0)
        load(weights, biases)
        psnr_at = {b: p for b, _coded, p in each_depth(session, net, snap)}
        bits = smallest_depth(session, evaluate(net, target, pixels=ecfg.eval_pixels), psnr_at.__getitem__)
        rec, sections = record(finish(session, net, snap, bits).data, name)
        rec.update(
            density=round(mask.density(), 4),
            stored_params=mask.count() + n_bias,
            bits=bits,
            sections=sections,
            code_seconds=round(time.perf_counter() - t, 2),
        )
        return rec

    if results is None:
        t0 = time.perf_counter()
        check_rewind(ecfg)
        rewind = dense_fit(net, target, ecfg)
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
        _checkpoint(out, state, results, clock)
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
        # IMP: the codec's pruning round (prune the retrained weights, rewind, retrain).
        t = time.perf_counter()
        ws, bs, keep = state["imp"]
        load(ws, bs)
        mask = prune_round(net, target, Mask(tuple(x.to(dev) for x in keep)), ecfg, fraction, r, rewind, gen)
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
        bits = rtl.choose_depth(session, net, masks, region_idx)
        coded = rtl.finish(session, net, masks, region_idx, regions, bits)
        rtl_rec, sections = record(coded.data, f"rtl_s{level}.inr")
        u = rtl.union(masks)
        rtl_rec.update(
            density=round(float(np.mean([m.density() for m in masks])), 4),
            union_density=round(u.density(), 4),
            stored_params=u.count() + n_bias,
            ticket_params=[m.count() + n_bias for m in masks],
            bits=bits,
            sections=sections,
            jaccard=rtl.mean_jaccard(masks),
            jaccard_vs_imp=round(float(np.mean([sum(m.jaccard(mask)) / len(m.keep) for m in masks])), 4),
            train_seconds=round(rtl_train, 2),
            code_seconds=round(time.perf_counter() - t, 2),
        )
        results["levels"].append({"sparsity": level, "imp": imp_rec, "rtl": rtl_rec})
        state["imp"] = (*imp_state, list(mask.keep))
        state["rtl"] = (*rtl_state, [list(m.keep) for m in masks])
        _checkpoint(out, state, results, clock)
        if say:
            say(
                f"{level}% sparse: IMP {imp_rec['psnr']:.2f} dB {imp_rec['bytes']} B | RTL {rtl_rec['psnr']:.2f} dB "
                f"{rtl_rec['bytes']} B (union {rtl_rec['union_density']:.2f}, Jaccard {rtl_rec['jaccard']['all']:.3f})"
                f"  [{imp_train + imp_rec['code_seconds']:.0f} s + {rtl_train + rtl_rec['code_seconds']:.0f} s]"
            )
    return results


def imp_curve(run: dict) -> list[tuple[int, float]]:
    """IMP's (bytes, PSNR) points, dense file included, by bytes."""
    return sorted(
        [(run["dense"]["bytes"], run["dense"]["psnr"])] + [(x["imp"]["bytes"], x["imp"]["psnr"]) for x in run["levels"]]
    )


def imp_psnr_within(run: dict, n_bytes: float) -> float | None:
    """The best PSNR IMP reaches with at most ``n_bytes`` (linear between its files); None below its smallest."""
    best = None
    pts = imp_curve(run)
    for (b0, p0), (b1, p1) in zip(pts, pts[1:] + [(math.inf, pts[-1][1])]):
        if b0 <= n_bytes:
            p = p0 if n_bytes >= b1 or b1 == math.inf else p0 + (p1 - p0) * (n_bytes - b0) / (b1 - b0)
            best = p if best is None else max(best, p, p0)
    return best


def imp_bytes_for(run: dict, psnr_db: float) -> float | None:
    """The fewest bytes at which IMP's curve reaches ``psnr_db``; None if no IMP file does."""
    pts = imp_curve(run)
    if psnr_db <= pts[0][1]:
        return float(pts[0][0])
    for (b0, p0), (b1, p1) in zip(pts, pts[1:]):
        if p0 < psnr_db <= p1:
            return b0 + (b1 - b0) * (psnr_db - p0) / (p1 - p0)
    return None


def _spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def load_runs(runs: list[Path]) -> tuple[list[dict], list[str]]:
    """The results of several run folders, and a name for each (its image's)."""
    res = [json.loads((r / "results.json").read_text()) for r in runs]
    return res, [Path(x["setup"]["source"]).stem or r.name for x, r in zip(res, runs)]


def summarize(runs: list[Path], out: Path) -> str:
    """The tables (markdown) over several runs, the figures of docs/rtl.md: written to
    ``out/summary.md`` and returned. Its plots are :func:`.plots.rtl_summary`'s."""
    res, names = load_runs(runs)
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

    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.write_text(out / "summary.md", text)
    return text


def main(argv: list[str]) -> int:
    """``python -m inrcodec.experiments.routing summarize OUT RUN...``: summary.md, then its plots
    (skipped, with one line saying so, without matplotlib)."""
    if len(argv) < 3 or argv[0] != "summarize":
        print("usage: python -m inrcodec.experiments.routing summarize OUT RUN...", file=sys.stderr)
        return 2
    from inrcodec.experiments import plots

    out, runs = Path(argv[1]), [Path(p) for p in argv[2:]]
    print(summarize(runs, out))
    if plots.available():
        plots.rtl_summary(*load_runs(runs), out)
    else:
        how = "pip install matplotlib (or the bench extra), then run this command again"
        print(f"plots skipped ({', '.join(plots.SUMMARY_FILES)}): matplotlib is not installed; {how}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
