"""Would a synthesis and context network shared across images pay at the latent family's lowest
points? A probe for issue 15, before any format is built for it.

    python -m benchmarks.shared_prior_probe --workers 2                  # the 1/4-resolution points
    python -m benchmarks.shared_prior_probe --workers 2 --points half    # the 1/2-resolution points

At the three 1/4-resolution points of the presets' ladder the synthesis and the context network
are a third of every file (Kodak, lambda 0.032: 699 + 394 of 3,161 bytes), whatever the image.
Issue 14 ships the SIREN's init with the decoder; the same could be done here. This probe:

1. trains one synthesis and one context network on photo009 onwards (``--train-images`` of them;
   each image its own latents, the two networks shared; each step a batch of one image, the
   images in turn) with the training step of ``encoder.latent`` at the middle point of three
   (``--points``: quarter, the 1/4-resolution points, lambda 0.032, 0.016 = ``grid-low``, 0.008;
   half, the 1/2-resolution ones, 0.004 = ``grid-medium``, 0.002, 0.001 = ``grid-high`` then; full,
   the full-resolution ones, 1.5e-3 = ``grid-xhigh``, 5e-4, 2.5e-4 = ``grid-max``), for
   ``--steps-per-image`` steps an image, the presets' cosine schedule and proxy over the whole run;
2. fits photo001-photo004 (never trained on) at the three points two ways, each as
   ``latent.fit`` with the networks replaced when the model is built: **frozen** (only the
   latents learn; the file's SYNTHESIS and CONTEXT payloads would not be sent, so the
   rate counted is the file's bytes less those payloads plus 2 bytes for a prior's ID), and
   **init** (the shared networks as the start of the ordinary fit; every byte counted);
3. compares each photo's three-point curve with the presets' (the committed first4 run's rows) as
   a BD-rate and a BD-PSNR.

``--context four-pass`` trains and fits the points with format version 9's context model instead
of the checkerboard (the inits of the four-pass presets: its network reads 20 integers, not 14).

The estimate of "frozen" is what a format that names a shipped network would give, not a file
that exists: nothing here is reachable from the codec. Rows go to ``<out>/rows.jsonl`` (a row
already there is not refitted), the shared networks to ``<out>/shared.pt`` (trained once), the
table to ``<out>/table.md``. ``--export FILE`` writes the shared networks as an init's .npz
(``encoder.latent_init.pack``; a new file only) and prints its SHA-256 for ``latent_init.INITS``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import sys
import time
from dataclasses import replace
from pathlib import Path

from benchmarks import markdown as md
from benchmarks.bd_rate import NoOverlap, bd_psnr, bd_rate
from benchmarks.runner import REPO, command_line, provenance
from inrcodec.config import LATENT_RDO_LADDER

PHOTOS = REPO.parent / "shared" / "photos"
OUT = REPO / "benchmarks" / "results" / "latent" / "shared-prior-probe"
REFERENCE = (
    REPO / "benchmarks" / "results" / "latent" / "ladder-soft-fast-x0.92-lowres-f0.1-n11520-t0.00025-first4"
) / "latent-proto.json"
# the points of the presets' ladder that share one network shape: the 1/4-resolution ones (lambda
# 0.032, 0.016 = grid-low, 0.008), the 1/2-resolution ones (0.004 = grid-medium, 0.002, 0.001 =
# grid-high then) and the full-resolution ones (1.5e-3 = grid-xhigh, 5e-4, 2.5e-4 = grid-max); the
# shared networks train at the middle one's settings, from SIREN's random init (the presets' ladder
# as it was before the inits this probe made, and before the networks' rate and the
# full-resolution points' rounding, both added after its runs)
_LADDER = tuple(replace(p, init="", network_rate=0.0, rdo_levels=0) for p in LATENT_RDO_LADDER)
GROUPS = {"quarter": _LADDER[:3], "half": _LADDER[3:6], "full": _LADDER[6:]}
HELD_OUT = ("photo001", "photo002", "photo003", "photo004")
PRIOR_ID_BYTES = 2  # what naming a shipped network would add to a file


def _shared_modules(shared: dict):
    """A LatentImage subclass whose synthesis and context network start from ``shared``'s."""
    from inrcodec.encoder import latent

    class Shared(latent.LatentImage):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)  # the same draws from the seeded generator as the codec's
            self.linears.load_state_dict(shared["linears"])
            self.arm.load_state_dict(shared["arm"])

    return Shared


def train_shared(cfg, images: list[Path], steps_per_image: int, log) -> dict:
    """One synthesis and context network trained on ``images``, each with latents of its own."""
    import torch

    from inrcodec import coords, image
    from inrcodec.encoder import latent
    from inrcodec.pixels import to_unit

    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    arrs = [image.load(p) for p in images]
    models = [latent.LatentImage(a.shape[0], a.shape[1], cfg, a.shape[2]) for a in arrs]
    for m in models[1:]:  # one synthesis and one context network for all
        m.linears, m.arm = models[0].linears, models[0].arm
    gen = torch.Generator().manual_seed(cfg.seed)
    steppers = [latent.Step(m, gen) for m in models]
    grids = [coords.grid(a.shape[0], a.shape[1]) for a in arrs]
    colours = [torch.from_numpy(to_unit(a).reshape(-1, a.shape[2])) for a in arrs]
    groups = [
        {"params": [m.flat for m in models], "lr": cfg.lr_latent},
        {"params": list(models[0].linears.parameters()), "lr": cfg.lr_synthesis},
        {"params": list(models[0].arm.parameters()), "lr": cfg.lr_context},
    ]
    opt = torch.optim.Adam(groups)  # a latent vector without a gradient this step is left as it is
    base = [g["lr"] for g in groups]
    total = steps_per_image * len(models)
    t0 = time.process_time()
    for step in range(total):
        k = step % len(models)
        done = step / total
        scale = 0.5 * (1 + math.cos(math.pi * done))
        for g, lr in zip(opt.param_groups, base):
            g["lr"] = lr * (0.01 + 0.99 * scale)
        idx = torch.randint(grids[k].shape[0], (cfg.batch,), generator=gen)
        loss, mse = steppers[k].loss(grids[k], colours[k], idx, done)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        latent.adam_step(opt, models[k].flat.detach()[: models[k].pyramid.sizes[0]], cfg.lr_finest)
        if (step + 1) % 2000 == 0 or step + 1 == total:
            log(
                f"shared networks: step {step + 1}/{total}, batch PSNR {-10 * math.log10(float(mse.detach())):.2f} dB, "
                f"{time.process_time() - t0:.0f} s"
            )
    return {
        "linears": {k: v.clone() for k, v in models[0].linears.state_dict().items()},
        "arm": {k: v.clone() for k, v in models[0].arm.state_dict().items()},
        "train_images": [p.name for p in images],
        "steps_per_image": steps_per_image,
        "cpu_s": time.process_time() - t0,
    }


def _fit(job: tuple) -> dict:
    return fit_one(*job)


def fit_one(
    way: str, photo: str, lam: float, shared_path: str, group: str = "quarter", context: str = "checkerboard"
) -> dict:
    """One held-out fit (in a process of its own: the patched model class stays there)."""
    import torch

    from inrcodec import image
    from inrcodec.encoder import latent

    torch.set_num_threads(1)
    cfg = replace(GROUPS[group][1], lam=lam, context=context)
    shared = torch.load(shared_path, weights_only=True)
    cls = _shared_modules(shared)
    if way == "frozen":
        base = cls

        class Frozen(base):  # noqa: D101 - the networks take no gradient: Adam leaves them
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                for p in [*self.linears.parameters(), *self.arm.parameters()]:
                    p.requires_grad_(False)

        cls = Frozen
    arr = image.load(PHOTOS / f"{photo}.png")
    original, latent.LatentImage = latent.LatentImage, cls
    try:
        fitted = latent.fit(arr, cfg)
    finally:
        latent.LatentImage = original
    sent = len(fitted.data)
    if way == "frozen":
        sent = sent - fitted.synthesis_bytes - fitted.context_bytes + PRIOR_ID_BYTES
    return {
        "way": way,
        "image": photo,
        "lam": lam,
        "file_bytes": len(fitted.data),
        "synthesis_bytes": fitted.synthesis_bytes,
        "context_bytes": fitted.context_bytes,
        "latent_bytes": fitted.latent_bytes,
        "bytes": sent,
        "bpp": sent * 8 / (arr.shape[0] * arr.shape[1]),
        "psnr": fitted.psnr,
        "cpu_s": round(fitted.seconds, 1),
    }


def compare(anchor: list[dict], test: list[dict]) -> tuple[str, str]:
    """(BD-rate, BD-PSNR) cells of ``test``'s curve against ``anchor``'s, each where the curves
    overlap (a curve entirely below the other in PSNR has no BD-rate but may have a BD-PSNR)."""
    curves = (
        [r["bpp"] for r in anchor],
        [r["psnr"] for r in anchor],
        [r["bpp"] for r in test],
        [r["psnr"] for r in test],
    )
    cells = []
    for measure, unit in ((bd_rate, "%"), (bd_psnr, "dB")):
        try:
            cells.append(f"{measure(*curves):+.{1 if unit == '%' else 2}f} {unit}")
        except NoOverlap:
            cells.append("no overlap")
    return cells[0], cells[1]


def table(rows: list[dict], reference: dict, points: tuple = GROUPS["quarter"]) -> str:
    """Per photo and way: the three points, the BD-rate and BD-PSNR against the presets' points."""
    ref = {(r["image"], r["setting"]): r for r in reference["rows"]}
    head = ["photo", "way", *[f"λ {p.lam:g}: bpp / dB" for p in points], "BD-rate", "BD-PSNR"]
    out, means = [], {}
    for photo in HELD_OUT:
        anchor = [ref[(photo, f"lam={p.lam:g}")] for p in points]
        shown = lambda rs: [f"{r['bpp']:.3f} / {r['psnr']:.2f}" for r in rs]  # noqa: E731
        out.append([photo, "presets (per-image networks)", *shown(anchor), "", ""])
        for way in ("frozen", "init"):
            got = {r["lam"]: r for r in rows if r["image"] == photo and r["way"] == way}
            if len(got) < len(points):
                continue
            test = [got[p.lam] for p in points]
            cells = compare(anchor, test)
            means.setdefault(way, []).append(cells)
            out.append([photo, way, *shown(test), *cells])
    lines = md.table(head, out)
    for way, cells in means.items():
        rates = [float(c[0].split()[0]) for c in cells if c[0].endswith("%")]
        mean = f"mean {sum(rates) / len(rates):+.1f} %; " if len(rates) == len(cells) else ""
        photo_by_photo = f"{', '.join(c[0] for c in cells)}; BD-PSNR {', '.join(c[1] for c in cells)}"
        lines += ["", f"{way}: BD-rate {mean}photo by photo {photo_by_photo}."]
    return "\n".join(lines) + "\n"


def export(shared_path: Path, dest: Path) -> int:
    """Write ``shared_path``'s networks to ``dest`` as an init (never over an existing file)."""
    import torch

    from inrcodec import image
    from inrcodec.encoder import latent_init

    if not shared_path.is_file():
        print(f"error: {shared_path}: no shared networks (run the probe first)", file=sys.stderr)
        return 2
    shared = torch.load(shared_path, weights_only=True)
    data = latent_init.pack(shared["linears"], shared["arm"])
    try:
        image.atomic_write(dest, lambda f: f.write(data), overwrite=False)
    except OSError as e:  # FileExistsError included: an init's file never changes (a new name instead)
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{dest}: sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-images", type=int, default=16, help="photo009 onwards (default 16: photo009-photo024)")
    p.add_argument("--steps-per-image", type=int, default=2500, help="shared training steps per image (default 2500)")
    p.add_argument("--workers", type=int, default=1, help="held-out fits at once, one torch thread each (default 1)")
    p.add_argument("--points", choices=list(GROUPS), default="quarter", help="which three points (default quarter)")
    p.add_argument("--ways", default="frozen,init", help="comma-separated, of frozen and init (default both)")
    p.add_argument(
        "--context",
        choices=("checkerboard", "four-pass"),
        default="checkerboard",
        help="the context model trained and fitted (four-pass: format v9's; the folder's name gets -fourpass)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help=f"results folder (default {OUT.relative_to(REPO)}, with --points half {OUT.name}-half)",
    )
    p.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="write <out>/shared.pt's networks as an init .npz to FILE (a new file) and print its SHA-256",
    )
    args = p.parse_args(argv)
    points = GROUPS[args.points]
    ways = args.ways.split(",")
    if not ways or any(w not in ("frozen", "init") for w in ways):
        p.error(f"--ways: frozen, init or both, not {args.ways!r}")
    if args.out is None:
        name = OUT.name + ("" if args.points == "quarter" else f"-{args.points}")
        args.out = OUT.with_name(name + ("-fourpass" if args.context == "four-pass" else ""))
    if not 1 <= args.train_images <= 41:
        p.error("--train-images: 1..41 (photo009-photo049)")
    if args.steps_per_image < 1:
        p.error("--steps-per-image: a positive step count")
    train = [PHOTOS / f"photo{i:03d}.png" for i in range(9, 9 + args.train_images)]
    if args.export is not None:  # needs only the trained networks, not the photos
        return export(args.out / "shared.pt", args.export)
    if missing := [str(f) for f in [*train, *(PHOTOS / f"{h}.png" for h in HELD_OUT)] if not f.is_file()]:
        p.error(f"missing: {', '.join(missing)}")
    args.out.mkdir(parents=True, exist_ok=True)
    log_file = args.out / "log.txt"

    def log(msg: str) -> None:
        print(msg, flush=True)
        with log_file.open("a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")

    import torch

    shared_path = args.out / "shared.pt"
    if not shared_path.exists():
        shared = train_shared(replace(points[1], context=args.context), train, args.steps_per_image, log)
        tmp = shared_path.with_suffix(".tmp")
        torch.save(shared, tmp)
        tmp.replace(shared_path)
    rows_path = args.out / "rows.jsonl"
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()] if rows_path.exists() else []
    done = {(r["way"], r["image"], r["lam"]) for r in rows}
    jobs = [
        (way, photo, pt.lam, str(shared_path), args.points, args.context)
        for photo in HELD_OUT
        for way in ways
        for pt in points
        if (way, photo, pt.lam) not in done
    ]
    with multiprocessing.get_context("spawn").Pool(max(1, args.workers), maxtasksperchild=1) as pool:
        for row in pool.imap_unordered(_fit, jobs):
            row |= {"command": command_line(), "provenance": provenance()}
            with rows_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            rows.append(row)
            log(json.dumps({k: v for k, v in row.items() if k not in ("command", "provenance")}))
    (args.out / "table.md").write_text(table(rows, json.loads(REFERENCE.read_text()), points))
    print((args.out / "table.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
