"""The experiments' figures, drawn from their data files with matplotlib (the ``bench`` extra).

Nothing here computes a result: every figure is drawn from a run's ``results.json`` (and the
images the run saved), so a run made on a plain install, without matplotlib, can be drawn later
(``inrcodec lottery --plots-only DIR``, ``inrcodec rtl --plots-only DIR``). matplotlib is imported
only inside these functions.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from inrcodec import image
from inrcodec.experiments.inputs import shrink
from inrcodec.experiments.lottery import PUBLISHED, recon_file
from inrcodec.experiments.routing import PAPER, imp_curve
from inrcodec.experiments.spectra import power_spectrum

LOTTERY_FILES = ("psnr.png", "hfe.png", "rate.png", "grid.png")
RTL_FILE = "rtl.png"
SUMMARY_FILES = ("summary.png", "regions.png")


def available() -> bool:
    """Whether matplotlib can be imported (the ``bench`` extra installs it, the base install not)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def default_grid_rounds(n_rounds: int, count: int = 5) -> list[int]:
    last = n_rounds - 1
    return sorted({int(round(x)) for x in np.linspace(0, last, min(count, n_rounds))})


def lottery(outdir: str | Path, grid_rounds: list[int] | None = None) -> list[Path]:
    """The lottery run in ``outdir``, from its ``results.json``: PSNR, HFE and rate curves
    (:data:`LOTTERY_FILES`) and the grid of reconstructions at ``grid_rounds`` (when the run's
    images are there). The files written."""
    plt = _pyplot()
    out = Path(outdir)
    results = json.loads((out / "results.json").read_text())
    rounds = results["rounds"]
    names = results["config"]["tickets"]
    colours = {"winner": "tab:green", "random": "tab:blue", "loser": "tab:red"}
    others = iter(["tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray"])
    for name in names:  # finder tickets (snip, synflow, rigl, nm:N:M)
        colours.setdefault(name, next(others, "k"))
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

    if (out / "target.png").exists():  # a folder of results alone (docs/lottery/) has no images
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
            arr = image.load(out / "recon" / recon_file(r, name))
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


def rtl_run(results: dict, outdir: Path) -> list[Path]:
    """One RTL run (its results): PSNR vs sparsity, PSNR vs bytes, and the Jaccard curve, in
    ``outdir``/:data:`RTL_FILE`; nothing before a level is done. The files written."""
    plt = _pyplot()
    lv = results["levels"]
    if not lv:
        return []
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
    path = Path(outdir) / RTL_FILE
    image.atomic_write(path, lambda f: f.write(buf.getvalue()))
    return [path]


def rtl_summary(res: list[dict], names: list[str], out: Path) -> list[Path]:
    """Several RTL runs (their results): PSNR vs sparsity (mean of images, and the paper's),
    PSNR vs bytes, PSNR drop vs Jaccard (summary.png), and the regions of each image (regions.png)."""
    plt = _pyplot()
    levels = [x["sparsity"] for x in res[0]["levels"]]
    mean = {
        key: [float(np.mean([x["levels"][i][key]["psnr"] for x in res])) for i in range(len(levels))]
        for key in ("rtl", "imp")
    }
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.4))
    ax[0].plot(levels, mean["rtl"], "o-", label="RTL (mean of images)")
    ax[0].plot(levels, mean["imp"], "s--", label="IMP (mean of images)")
    ax[0].plot(list(PAPER["rtl"]), list(PAPER["rtl"].values()), "o:", color="grey", label="paper RTL")
    ax[0].plot(list(PAPER["imp"]), list(PAPER["imp"].values()), "s:", color="silver", label="paper IMP")
    ax[0].set(xlabel="sparsity (%)", ylabel="PSNR (dB)", title="PSNR vs sparsity")
    for n, x in zip(names, res):
        rtl_pts = [(lv["rtl"]["bytes"], lv["rtl"]["psnr"]) for lv in x["levels"]]
        (line,) = ax[1].plot(*zip(*rtl_pts), "o-", label=f"{n} RTL")
        ax[1].plot(*zip(*imp_curve(x)), "s--", color=line.get_color(), label=f"{n} IMP (+ dense)")
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
    _regions(res, names, out / "regions.png", plt)
    return [out / name for name in SUMMARY_FILES]


def _regions(res: list[dict], names: list[str], path: Path, plt) -> None:
    """Each source image beside its regions as the decoder sees them (the stored map, resampled)."""
    from inrcodec.encoder import regions as regionlib

    fig, ax = plt.subplots(2, len(res), figsize=(3.2 * len(res), 4.6), squeeze=False)
    for j, (x, name) in enumerate(zip(res, names)):
        if x["setup"]["regions"].startswith("labels"):
            continue  # the label image's path is not recorded
        arr = shrink(image.load(x["setup"]["source"]), max(x["setup"]["shape"][:2]))  # a run's --size
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
