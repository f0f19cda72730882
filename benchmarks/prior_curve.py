"""Learning curve of a meta-learned initialisation against the random (SIREN paper) init.

    python -m benchmarks.prior_curve --width 80                  # the shipped prior for width 80
    python -m benchmarks.prior_curve --width 80 --run runs/prior-h80   # a run's latest checkpoint
    python -m benchmarks.prior_curve --width 80 --random-only    # the random half only (no prior yet)

On the held-out photos (photo001-photo008 of ../shared/photos; never used to train a prior), each
init is fitted with the width's preset's own fit (Adam, cosine schedule over the preset's steps,
batch 8192, the encoder's seed and pixel draws), and the PSNR of the full image (8-bit, as
decoded) is measured after N = 0, 50, 200, 500, 1000, 2000 steps along that one run (capped at the
preset's own step count: 1500 for widths 40 and 56, whose schedules end there; ``--schedule 2000``
stretches their cosine to 2000 steps, so N = 2000 is measured on a longer fit than the preset's).
At the end
it records |W - W_init| (mean absolute value per layer, weights and biases): what a coder of
residuals from the init (issue 14, item 3) would code. The random init is
``Siren(arch, torch.Generator().manual_seed(seed))``, exactly the encoder's.

Writes ``<out>/h<width>.json`` (rows per image and init, the config, provenance; rows already there
with the same config are reused, so a killed run resumes), ``<out>/h<width>.md`` (the table) and
``<out>/h<width>.png`` (the curve; needs matplotlib, the bench extra).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.runner import REPO, RESULTS, provenance, repo_path

DEFAULT_IMAGES = REPO.parent / "shared" / "photos"
DEFAULT_OUT = RESULTS / "prior"
STEPS = (0, 50, 200, 500, 1000, 2000)


def _inits(args) -> dict[str, tuple[list, list, dict]]:
    """label -> (weights, biases, description) of every init compared (the meta one lazily absent
    with --random-only)."""
    import torch

    from inrcodec import priors
    from inrcodec.encoder import meta
    from inrcodec.siren import Siren

    arch = _arch(args.width)
    net = Siren(arch, torch.Generator().manual_seed(args.seed))
    ws, bs = net.state()
    out = {"random": (ws, bs, {"kind": "random", "seed": args.seed})}
    if args.random_only:
        return out
    if args.run is not None:
        cfg, saved = meta.load_run(args.run)
        if cfg.arch() != arch:
            raise SystemExit(f"{args.run}: a run for {cfg.arch()}, not width {args.width}")
        # The SHA-256 its exported prior would have: rows made from the run count for the prior.
        blob = priors.pack([w.numpy() for w in saved["weights"]], [b.numpy() for b in saved["biases"]])
        desc = {
            "kind": "run",
            "run": repo_path(args.run),
            "outer_steps": saved["step"],
            "sha256": hashlib.sha256(blob).hexdigest(),
        }
        out["meta"] = (saved["weights"], saved["biases"], desc)
        return out
    prior = (
        priors.registry().get(args.prior)
        if args.prior
        else priors.find(arch.hidden, arch.layers, arch.pe_levels, arch.out_features, arch.omega0, arch.omega_hidden)
    )
    if prior is None:
        raise SystemExit(f"no shipped prior for width {args.width} (give --run RUN_DIR or --random-only)")
    pw, pb = priors.arrays(prior.id)
    desc = {"kind": "prior", "id": prior.id, "name": prior.name, "sha256": prior.sha256}
    out["meta"] = ([torch.from_numpy(np.array(w)) for w in pw], [torch.from_numpy(np.array(b)) for b in pb], desc)
    return out


def _arch(width: int):
    from dataclasses import replace

    return replace(_preset(width).arch, out_features=3)


def _preset(width: int):
    """Release 1.2's ladder point of this width: the fit the committed curves were measured with."""
    from inrcodec.config import LADDER_1_2_POINTS

    if width not in LADDER_1_2_POINTS:
        raise SystemExit(f"width {width} is no ladder width ({', '.join(map(str, sorted(LADDER_1_2_POINTS)))})")
    return LADDER_1_2_POINTS[width]


def _preset_name(width: int) -> str:
    """The release 1.2 preset of this width, else the ladder point's label (h56, h112)."""
    from inrcodec.config import PRESETS_1_2 as PRESETS

    return next((n for n in ("low", "medium", "high") if PRESETS[n].arch.hidden == width), f"h{width}")


def _fitted_as(name: str) -> str:
    """How the table names the fit: a release 1.2 preset, or its ladder point of that width."""
    return f"release 1.2's ladder point `{name}`" if name[1:].isdigit() else f"preset `{name}`"


def measure(
    arr,
    weights,
    biases,
    width: int,
    steps: tuple[int, ...],
    device: str = "cpu",
    lr: float | None = None,
    warmup: int = 0,
    schedule: int | None = None,
) -> dict:
    """One image, one init: the curve and |W - W_init| at the last step (``lr``: another peak
    learning rate than the preset's, same schedule; ``warmup``: a linear warm-up of that many
    steps on top of it; ``schedule``: the cosine's length, None the preset's steps)."""
    from dataclasses import replace

    from inrcodec.encoder.fit import Target
    from inrcodec.encoder.meta import fit_curve

    preset = _preset(width)
    arch = _arch(width)
    target = Target.of(arr, device)
    t0 = time.perf_counter()
    fit = preset.fit if lr is None else replace(preset.fit, lr=lr)
    curve, net = fit_curve(arch, weights, biases, target, fit, schedule or preset.fit.steps, list(steps), warmup=warmup)
    seconds = time.perf_counter() - t0
    ws, bs = net.state()
    return {
        "psnr": {str(n): round(curve[n], 4) for n in steps},
        "w_dist": [round(float((w.cpu() - w0).abs().mean()), 6) for w, w0 in zip(ws, weights)],
        "b_dist": [round(float((b.cpu() - b0).abs().mean()), 6) for b, b0 in zip(bs, biases)],
        "w_init_abs": [round(float(w0.abs().mean()), 6) for w0 in weights],
        "seconds": round(seconds, 1),
    }


def table(doc: dict) -> str:
    """The markdown table: mean PSNR over the images per step count, both inits, and the gain."""
    rows = doc["rows"]
    steps = [str(n) for n in doc["config"]["steps"]]
    inits = list(dict.fromkeys(["random", *(r["init"] for r in rows)]))
    inits = [k for k in inits if any(r["init"] == k for r in rows)]
    images = sorted({r["image"] for r in rows})

    lines = [
        f"Width {doc['config']['width']} ({_fitted_as(doc['config']['preset'])}, {doc['config']['schedule']}-step "
        f"cosine schedule), {len(images)} held-out photos ({images[0]}-{images[-1]}); mean PSNR (dB) of the "
        "full image after N fit steps.",
        "",
        "| init | " + " | ".join(f"N={n}" for n in steps) + " |",
        "|---|" + "---:|" * len(steps),
    ]
    means = {}
    for init in inits:
        curves = [r["psnr"] for r in rows if r["init"] == init]
        means[init] = [float(np.mean([c[n] for c in curves])) for n in steps]
        lines.append(f"| {init} | " + " | ".join(f"{v:.2f}" for v in means[init]) + " |")
    by = {(r["init"], r["image"]): r["psnr"] for r in rows}
    others = [k for k in inits if k != "random"] if "random" in inits else []
    for init in others:
        both = [im for im in images if (init, im) in by and ("random", im) in by]
        diffs = []
        for n in steps:
            d = [by[init, im][n] - by["random", im][n] for im in both]
            diffs.append((float(np.mean(d)), sum(x > 0 for x in d), len(d)))
        lines.append(f"| {init} − random | " + " | ".join(f"{m:+.2f} ({k}/{t})" for m, k, t in diffs) + " |")
    if others:
        lines += ["", "(k/t): images where that init is ahead of the random one."]
    lines += ["", "|W − W_init| after the last step, mean absolute value per layer (weights; biases):", ""]
    n_layers = len(rows[0]["w_dist"])
    lines.append("| init | " + " | ".join(f"layer {i}" for i in range(n_layers)) + " | all weights |")
    lines.append("|---|" + "---:|" * (n_layers + 1))
    for init in inits:
        rs = [r for r in rows if r["init"] == init]
        w = np.mean([r["w_dist"] for r in rs], axis=0)
        b = np.mean([r["b_dist"] for r in rs], axis=0)
        size = np.array(doc["config"]["layer_sizes"], dtype=float)
        overall = float((w * size).sum() / size.sum())
        cells = [f"{wi:.4f}; {bi:.4f}" for wi, bi in zip(w, b)]
        lines.append(f"| {init} | " + " | ".join(cells) + f" | {overall:.4f} |")
    lines += ["", f"Command: `{' '.join(doc['provenance']['command'])}`"]
    return "\n".join(lines) + "\n"


def plot(doc: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
        return False
    steps = doc["config"]["steps"]
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = list(dict.fromkeys(["random", *(r["init"] for r in doc["rows"])]))
    for init, style in zip(labels, ("o--", "s-", "^-", "v-", "d-")):
        curves = [r["psnr"] for r in doc["rows"] if r["init"] == init]
        if curves:
            ys = [np.mean([c[str(n)] for c in curves]) for n in steps]
            xs = [max(n, 10) for n in steps]
            ax.plot(xs, ys, style, label=f"{init} init")
    ax.set_xscale("log")
    ax.set_xticks([max(n, 10) for n in steps])
    ax.set_xticklabels([str(n) for n in steps])
    ax.set_xlabel("fit steps (0 plotted at 10)")
    ax.set_ylabel("mean PSNR, held-out photos (dB)")
    ax.set_title(f"width {doc['config']['width']}: meta-learned vs random init")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _same(a: dict | None, b: dict) -> bool:
    """Whether two inits are the same arrays fitted the same way (a run and the prior exported
    from it are: same SHA-256)."""
    if a is None:
        return False
    if "sha256" in a or "sha256" in b:
        return (a.get("sha256"), a.get("fit_lr"), a.get("fit_warmup")) == (
            b.get("sha256"),
            b.get("fit_lr"),
            b.get("fit_warmup"),
        )
    return a == b


def _write(path: Path, text: str) -> None:
    from inrcodec import image

    image.atomic_write(path, lambda f: f.write(text.encode()))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=80, help="ladder width: 40, 56, 80, 112 or 144")
    ap.add_argument("--prior", type=int, help="shipped prior ID (default: the newest for the width)")
    ap.add_argument("--run", type=Path, help="use this training run's latest checkpoint instead of a shipped prior")
    ap.add_argument("--random-only", action="store_true", help="measure the random init only")
    ap.add_argument(
        "--meta-lrs", default="", help="also fit the meta init at these peak learning rates (comma-separated)"
    )
    ap.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="also fit both inits with a linear learning-rate warm-up of this many steps (Adam's first steps"
        " move every weight by about the learning rate: a warm-up may let the meta init survive them)",
    )
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder of photoNNN.png")
    ap.add_argument("--photos", default="1-8", help="held-out photo numbers, first-last (default 1-8)")
    ap.add_argument(
        "--steps",
        help="step counts N, comma-separated (default 0,50,200,500,1000,2000, capped at the preset's own steps)",
    )
    ap.add_argument(
        "--schedule",
        type=int,
        help="the fit's cosine over this many steps instead of the preset's (e.g. 2000 for widths 40 and 56,"
        " whose presets stop at 1500); the default N are capped at it",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the random init and of the fit (the encoder's 0)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import torch

    from inrcodec import image

    torch.set_num_threads(args.threads)
    first, last = (int(x) for x in args.photos.split("-"))
    preset = _preset(args.width)
    schedule = preset.fit.steps if args.schedule is None else args.schedule
    if schedule < 1:
        raise SystemExit(f"--schedule {schedule}: the fit needs at least one step")
    if args.steps:
        steps = tuple(sorted({int(s) for s in args.steps.split(",")}))
        if steps[-1] > schedule:  # past its schedule the cosine would climb again
            raise SystemExit(f"--steps {steps[-1]}: past the fit's {schedule}-step schedule (--schedule)")
    else:  # past its schedule the cosine would climb again: stop at the preset's own step count
        steps = tuple(sorted({min(n, schedule) for n in STEPS}))
    inits = _inits(args)
    config = {
        "width": args.width,
        "preset": _preset_name(args.width),
        "fit": {"lr": preset.fit.lr, "lr_final": preset.fit.lr_final, "batch": preset.fit.batch, "seed": args.seed},
        "schedule": schedule,
        "steps": list(steps),
        "images": repo_path(args.images),
        "photos": [first, last],
        "layer_sizes": [o * i for o, i in _arch(args.width).shapes()],
        "device": args.device,
    }
    config_key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"h{args.width}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    keep = [r for r in old.get("rows", []) if r.get("config_key") == config_key]
    if "meta" in inits:
        for lr in (float(x) for x in args.meta_lrs.split(",") if x.strip()):
            ws, bs, desc = inits["meta"]
            inits[f"meta, lr {lr:g}"] = (ws, bs, {**desc, "fit_lr": lr})
    if args.warmup:
        for base in [k for k in ("random", "meta") if k in inits]:
            ws, bs, desc = inits[base]
            inits[f"{base}, warmup {args.warmup}"] = (ws, bs, {**desc, "fit_warmup": args.warmup})
    inits_doc = {k: v[2] for k, v in inits.items()}
    # Rows of an init measured now are kept only if made from this very init (another run or
    # prior replaces them); rows of inits not measured now (e.g. with --random-only) stay.
    keep = [r for r in keep if r["init"] not in inits_doc or _same(r.get("init_desc"), inits_doc[r["init"]])]
    for r in keep:
        inits_doc.setdefault(r["init"], r.get("init_desc"))
    rows = keep
    doc = {"config": config, "inits": inits_doc, "provenance": provenance(), "rows": rows}
    for i in range(first, last + 1):
        name = f"photo{i:03d}"
        arr = image.load(args.images / f"{name}.png")
        for label, (ws, bs, desc) in inits.items():
            if any(r["image"] == name and r["init"] == label for r in rows):
                continue
            lr, warmup = desc.get("fit_lr"), desc.get("fit_warmup", 0)
            r = measure(arr, ws, bs, args.width, steps, args.device, lr, warmup, args.schedule)
            rows.append({"image": name, "init": label, "init_desc": desc, "config_key": config_key, **r})
            print(f"{name} {label}: " + " ".join(f"{n}:{v:.2f}" for n, v in r["psnr"].items()), flush=True)
            _write(path, json.dumps(doc, indent=1) + "\n")
    rows.sort(key=lambda r: (r["image"], r["init"]))
    _write(path, json.dumps(doc, indent=1) + "\n")
    _write(args.out / f"h{args.width}.md", table(doc))
    plot(doc, args.out / f"h{args.width}.png")
    print((args.out / f"h{args.width}.md").read_text())


if __name__ == "__main__":
    main()
