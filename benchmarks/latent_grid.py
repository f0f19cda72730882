"""Issue 15, stage 1: the latent-grid prototype against release 1.2's SIREN, at equal encode time.

    python -m benchmarks.latent_grid --workers 2       # the lambda sweep on photo001-photo008
    python -m benchmarks.latent_grid --tuning          # the variants tried on photo001 at one lambda
    python -m benchmarks.latent_grid --report          # tables from the results already there
    python -m benchmarks.latent_grid --workers 2 --context checkerboard   # with the context model
    python -m benchmarks.latent_grid --workers 2 --context checkerboard --quantizer soft-fast \
        --proxy-steps 0.92 --full-res-uniform --lr-finest 0.1 --full-res-steps 11520 \
        --top-lam 2.5e-4   # an early ladder with the proxy (the presets' full command: docs/benchmark.md)
    python -m benchmarks.latent_grid --workers 2 --context checkerboard --quantizer soft-fast \
        --proxy-steps 0.92 --full-res-uniform --lr-finest 0.1 --full-res-steps 11520 --long-fit 0.002,0.001 \
        --reuse <an earlier run>/latent-proto.json   # two points with the long fit, the rest reused
    python -m benchmarks.latent_grid --workers 2 --ablations   # one change each, photo001-photo004
    python -m benchmarks.latent_grid --workers 2 --full-res    # the full-resolution grid's steps, photo002

The prototype (:mod:`inrcodec.encoder.latent`) trains for a fixed number of steps, chosen so that
an encode takes about the CPU time of the default preset's (h80: about 60 s on one core here);
every row records its own CPU time beside it. The anchor is release 1.2's ladder on the same
photos (``benchmarks/results/photos-first8``, made by ``python -m benchmarks.kodak_rd --images
../shared/photos --n-images 8 --codecs inrcodec,jpeg420``). Rates are ``len()`` of the packed
stream, PSNR that of the stream decoded back.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks import markdown as md
from benchmarks.bd_rate import NoOverlap, bd_psnr, bd_rate, overlap
from benchmarks.codecs import Codec, row
from benchmarks.runner import (
    REPO,
    RESULTS,
    Job,
    curve,
    dataset,
    dataset_meta,
    ray_option,
    read_committed,
    repo_path,
    reuse_rows,
    run,
)
from inrcodec.config import (
    LATENT_FOUR_PASS_TWINS,
    LATENT_LADDER,
    LATENT_POINTS,
    LATENT_STAGE2,
    LATENT_TUNING_BASE,
    LatentConfig,
    latent_record,
    with_context,
    with_full_res,
    with_long_fit,
    with_proxy,
)
from inrcodec.encoder import latent_init
from inrcodec.format.latent import COMPACT_VERSION, FOUR_PASS_VERSION

PHOTOS = REPO.parent / "shared" / "photos"
OUT = RESULTS / "latent"
ANCHOR = RESULTS / "photos-first8"  # JPEG (and the others) on the same photos
RELEASE_1_2 = RESULTS / "archive" / "1.2.0"  # release 1.2's SIREN ladder, per anchor folder name


def _siren(anchor: Path) -> Path:
    """Release 1.2's SIREN rows on the anchor's images: the family's comparisons have always been
    against that release's ladder, archived by release since 2.0 changed the ladder's fit."""
    archived = RELEASE_1_2 / anchor.resolve().name / "inrcodec.json"
    if archived.exists():
        return archived
    path = anchor / "inrcodec.json"
    if path.exists():  # a folder with no archive: its rows must be 1.2's fit, not a later ladder's
        configs = _load(path)["provenance"].get("config", {}).get("encode_configs", {})
        if any(c["fit"].get("fused") or c["fit"].get("sampler") for c in configs.values()):
            raise SystemExit(f"{path}: not release 1.2's SIREN ladder (its archive would be {RELEASE_1_2})")
    return path


# The sweep's points (the plain ones and the context model's) live in inrcodec/config.py, beside
# the presets that pick from them.
TUNING_BASE = LATENT_TUNING_BASE
BASE = replace(TUNING_BASE, lr_latent=0.01)
POINTS = LATENT_POINTS


# Tried on photo001 at lambda 4e-3 (``--tuning --context checkerboard``): one change each from the
# sweep's context point; the first row is the sweep's point without the context model.
CONTEXT_TUNING = {
    "no context model (4800 steps)": None,
    "context model: width 16, rate from 2048 latents a step (3840 steps)": {},
    "width 8": {"context_hidden": 8},
    "width 24": {"context_hidden": 24},
    "width 32": {"context_hidden": 32},
    "rate from 4096 latents a step": {"rate_sample": 4096},
    "rate from 8192 latents a step": {"rate_sample": 8192},
    "context lr 3e-3 (instead of 1e-2)": {"lr_context": 3e-3},
    "context lr 3e-2": {"lr_context": 3e-2},
}


# Tried on photo001 at lambda 4e-3 (the table in docs/benchmark.md): one change each from TUNING_BASE.
TUNING = {
    "base (finest grid 1/2, 6 levels)": {},
    "3x the steps (14400: about h144's encode time)": {"steps": 14400},
    "lr_latent=0.01": {"lr_latent": 0.01},
    "lr_latent=0.03": {"lr_latent": 0.03},
    "batch=16384, 1600 steps": {"batch": 16384, "steps": 1600},
    "omega=30 (SIREN's)": {"omega": 30.0},
    "hidden=48": {"hidden": 48},
    "no Fourier features": {"pe_levels": 0},
    "8 Fourier octaves": {"pe_levels": 8},
    "bicubic": {"interpolation": "bicubic"},
    "relu synthesis": {"activation": "relu"},
    "full-resolution grid (7 levels, 2400 steps)": {"finest": 0, "levels": 7, "steps": 2400},
    "SIREN-sized synthesis (h64, 3 layers, omega 30, 6 octaves; 2400 steps)": {
        "hidden": 64,
        "layers": 3,
        "omega": 30.0,
        "pe_levels": 6,
        "steps": 2400,
    },
}


# Ablations (issue 15): one change each to three grid presets' points (lambda 1.6e-2, 4e-3 and
# 1e-3 of the ladder, with the context model) on photo001-photo004, as a BD-rate against the same
# points of the checkerboard sweep (the run of ``--context checkerboard``, not rerun here).
# (grid-high was the 1/2-resolution point at 1e-3 then: the ablations keep the points they ran)
ABLATION_PRESETS = ("grid-low", "grid-medium", "grid-high")
ABLATION_LAMS = (1.6e-2, 4e-3, 1e-3)
ABLATION_IMAGES = 4
ABLATIONS: dict[str, Callable[[LatentConfig], LatentConfig]] = {
    "one level fewer (the coarsest dropped)": lambda p: replace(p, levels=p.levels - 1),
    "one level more (a coarser grid)": lambda p: replace(p, levels=p.levels + 1),
    "a grid twice as fine in front (finest 1/2^(f-1))": lambda p: replace(p, finest=p.finest - 1, levels=p.levels + 1),
    "2 latent channels per level": lambda p: replace(p, channels=2),
    "synthesis twice as wide": lambda p: replace(p, hidden=2 * p.hidden),
    "synthesis half as wide": lambda p: replace(p, hidden=p.hidden // 2),
    "no Fourier features": lambda p: replace(p, pe_levels=0),
    "half the steps": lambda p: replace(p, steps=p.steps // 2),
    "twice the steps": lambda p: replace(p, steps=2 * p.steps),
    "C3's soft-rounding and Kumaraswamy noise": lambda p: replace(p, quantizer="soft"),
    # its step costs more than the gather step's (the proxy's elementwise work on every value a step
    # reads): 1.4-1.6x side by side on the ladder, 2x against the times gather-first4 recorded; half
    # the steps matches those recorded times, so it brackets the equal-time comparison from below
    "C3's proxy, half the steps (the reference's encode time)": lambda p: replace(
        p, quantizer="soft", steps=p.steps // 2
    ),
}


def _with_proxy(point: LatentConfig, args: argparse.Namespace) -> LatentConfig:
    """A ladder point with the options' quantizer and steps factor (config.with_proxy; a
    full-resolution point unchanged with --full-res-uniform)."""
    return with_proxy(point, args.quantizer, args.proxy_steps, full_res=not args.full_res_uniform)


def _scaled(hidden: int, args: argparse.Namespace) -> int:
    """A synthesis width times --synthesis-scale, rounded, at least 1."""
    return max(1, round(hidden * args.synthesis_scale))


def setting(lam: float) -> str:
    """A ladder point's name in rows, tables and the results' settings: its lambda, %g."""
    return f"lam={lam:g}"


def sweep_folder(args: argparse.Namespace) -> str:
    """The context model's sweep's folder name under OUT: the ladder, then a suffix per option
    away from its default (so that each variant's results keep a folder of their own)."""
    name = "checkerboard" if args.stage2 else "ladder"
    name += "-bicubic" if args.interpolation == "bicubic" else ""
    name += f"-{args.quantizer}" if args.quantizer != "uniform" else ""
    name += f"-x{args.proxy_steps:g}" if args.proxy_steps != 1.0 else ""
    name += "-lowres" if args.full_res_uniform else ""
    name += f"-s{args.synthesis_scale:g}" if args.synthesis_scale != 1.0 else ""
    name += "-f" + "-".join(f"{f:g}" for f in args.lr_finest) if any(f != 1.0 for f in args.lr_finest) else ""
    name += f"-n{args.full_res_steps}" if args.full_res_steps is not None else ""
    name += "-L" + "-".join(f"{lam:g}" for lam in args.long_fit) if args.long_fit else ""
    name += f"-m{args.long_fit_steps}" if args.long_fit_steps is not None else ""
    name += f"-t{args.top_lam:g}" if args.top_lam is not None else ""
    name += "-F" + "-".join(f"{lam:g}" for lam in args.full_res_lams) if args.full_res_lams else ""
    name += "-D" + "-".join(f"{lam:g}" for lam in args.drop_lams) if args.drop_lams else ""
    name += "-c" + "-".join(str(w) for w in args.context_hidden) if args.context_hidden else ""
    name += "-i" + "-".join(args.init) if args.init else ""
    name += f"-r{args.network_rate:g}" if args.network_rate else ""
    name += "-at-" + "-".join(args.network_rate_at) if args.network_rate_at else ""
    name += f"-rdo{args.rdo_levels}" if args.rdo_levels else ""
    name += "-at-" + "-".join(args.rdo_at) if args.rdo_at else ""
    name += f"-tune{args.tune_steps}" if args.tune_steps else ""
    name += f"-{args.sampler}" if args.sampler != "uniform" else ""
    name += "-at-" + "-".join(args.sampler_at) if args.sampler_at else ""
    name += f"-share{args.sampler_share:g}" if args.sampler_share != 0.5 else ""
    name += f"-second{args.lr_second:g}" if args.lr_second != 1.0 else ""
    name += f"-noise{args.noise_fraction:g}" if args.noise_fraction is not None else ""
    name += "-at-" + "-".join(f"{lam:g}" for lam in args.noise_lams) if args.noise_lams else ""
    name += f"-steps{args.noise_steps}" if args.noise_steps is not None else ""
    name += "-s-" + "-".join(f"{lam:g}x{n}" for lam, n in args.steps_at.items()) if args.steps_at else ""
    name += "-fourpass" if args.context == "four-pass" else ""
    name += "-4p-at-" + "-".join(f"{lam:g}" for lam in args.four_pass_at) if args.four_pass_at else ""
    return f"{name}-first{args.n_images}"


def ladder_points(args: argparse.Namespace) -> tuple[LatentConfig, ...]:
    """The context model's ladder as the options shape it: uniform noise as is, or as the first
    Kodak run had it (--stage2); then the sampling, the synthesis width, the proxy, the
    full-resolution points' learning rate and steps, the long fit of the points --long-fit names
    and the point --top-lam adds, the full-resolution points --full-res-lams adds, without those
    --drop-lams names; --network-rate at the points an init starts; --rdo-levels at every point or
    at those --rdo-at's inits start, --tune-steps where the rounding runs, and --noise-fraction at
    the full-resolution points (those --noise-lams names, with --noise-steps' steps), and last the
    steps --steps-at gives the points it names. The presets'
    options (docs/benchmark.md, kodak-low-full's command, "The ladder without grid-medium") give
    config.LATENT_LOW_FULL_LADDER, with --four-pass-at (kodak-four-pass-at's command, "Format
    version 9") config.LATENT_FOUR_PASS_LADDER, and with --steps-at at the four middle points
    (kodak-steps-x1.5's command) config.LATENT_PRESET_LADDER."""
    ladder = LATENT_STAGE2 if args.stage2 else LATENT_LADDER
    points = tuple(
        _with_proxy(replace(pt, interpolation=args.interpolation, hidden=_scaled(pt.hidden, args)), args)
        for pt in ladder
    )
    if args.context == "four-pass":  # format v9's context model at every point (before the inits: theirs fit it)
        points = tuple(replace(pt, context="four-pass") for pt in points)
    if args.lr_finest != (1.0,) or args.full_res_steps is not None:
        points = with_full_res(points, args.lr_finest, args.full_res_steps)
    points = with_long_fit(points, args.long_fit, args.long_fit_steps) if args.long_fit else points
    if args.context_hidden:
        widths = args.context_hidden * (len(points) if len(args.context_hidden) == 1 else 1)
        points = tuple(replace(pt, context_hidden=w) for pt, w in zip(points, widths, strict=True))
    for name in args.init:
        points = tuple(replace(pt, init=name) if latent_init.fits(pt, name) else pt for pt in points)
    if args.network_rate:
        rated = args.network_rate_at or args.init
        points = tuple(replace(pt, network_rate=args.network_rate) if pt.init in rated else pt for pt in points)
    if args.rdo_levels:
        points = tuple(
            replace(pt, rdo_levels=min(args.rdo_levels, pt.levels)) if not args.rdo_at or pt.init in args.rdo_at else pt
            for pt in points
        )
    if args.tune_steps:  # where the rounding runs
        points = tuple(replace(pt, tune_steps=args.tune_steps) if pt.rdo_levels else pt for pt in points)
    if args.sampler != "uniform":
        at, share = args.sampler_at, args.sampler_share
        points = tuple(
            replace(pt, sampler=args.sampler, sampler_share=share) if not at or pt.init in at else pt for pt in points
        )
    if args.lr_second != 1.0:
        points = tuple(replace(pt, lr_second=args.lr_second) if pt.finest == 0 else pt for pt in points)
    points += (replace(points[-1], lam=args.top_lam),) if args.top_lam is not None else ()
    first_full = next(pt for pt in points if pt.finest == 0)  # grid-xhigh's point, as the options make it
    points = tuple(pt for pt in points if pt.lam not in args.drop_lams)
    points += tuple(replace(first_full, lam=lam) for lam in args.full_res_lams)
    if args.noise_fraction is not None:  # the full-resolution points (those of --noise-lams only, if given)
        noisy, more = args.noise_lams, {} if args.noise_steps is None else {"steps": args.noise_steps}
        points = tuple(
            replace(pt, noise_fraction=args.noise_fraction, **more)
            if pt.finest == 0 and (not noisy or pt.lam in noisy)
            else pt
            for pt in points
        )
    if args.steps_at:  # their schedules stretch with them
        points = tuple(replace(pt, steps=args.steps_at[pt.lam]) if pt.lam in args.steps_at else pt for pt in points)
    if args.four_pass_at:  # the same points with format v9's model, from their inits' four-pass twins
        points = tuple(_four_pass(pt, args.init) if pt.lam in args.four_pass_at else pt for pt in points)
    return points


def _steps_at(p: argparse.ArgumentParser, args: argparse.Namespace, ladder: set[float]) -> dict[float, int]:
    """--steps-at as {lambda: steps}, each lambda one of ``ladder``'s (the other options' points)."""
    if not args.steps_at:
        return {}
    if args.context == "none" or args.tuning:
        p.error("--steps-at is for the context model's ladder: give --context checkerboard (not --tuning)")
    try:
        pairs = [item.split(":") for item in args.steps_at.split(",")]
        steps = {float(lam): int(n) for lam, n in pairs}
    except ValueError:
        p.error(f"--steps-at: LAMBDA:STEPS pairs separated by commas, not {args.steps_at!r}")
    if len(steps) < len(pairs) or not all(0 < n <= 10**6 for n in steps.values()):
        p.error("--steps-at: each lambda once, each with 1 to 10^6 steps")
    if stray := [lam for lam in steps if lam not in ladder]:
        p.error(f"--steps-at: no point of this ladder at lambda {', '.join(f'{x:g}' for x in stray)}")
    return dict(sorted(steps.items(), reverse=True))


def _four_pass(pt: LatentConfig, inits: tuple[str, ...]) -> LatentConfig:
    """``pt`` with the four-pass context model, from its init's four-pass twin
    (config.LATENT_FOUR_PASS_TWINS) where ``inits`` lists it, else from its own init widened;
    everything the options set by its init (network rate, rounding, tuning) stays."""
    twin = LATENT_FOUR_PASS_TWINS.get(pt.init)
    return replace(pt, context="four-pass", init=twin if twin in inits else pt.init)


def ablation_points() -> tuple[LatentConfig, ...]:
    """The presets' points as the ablations ran them (LATENT_STAGE2: before the ladder took more
    steps, config.LATENT_STEP_FACTOR), so that the committed table reruns from its cached rows."""
    return tuple(p for p in LATENT_STAGE2 if p.lam in ABLATION_LAMS)


def ablation_codecs() -> list[LatentProto]:
    return [
        LatentProto(tuple(change(p) for p in ablation_points()), f"ablation-{i:02d}", name)
        for i, (name, change) in enumerate(ABLATIONS.items())
    ]


def macs_per_pixel(cfg: LatentConfig) -> int:
    """The decoder's multiply-adds per output pixel: the synthesis' layers and the interpolation's
    taps (4 bilinear, 16 bicubic, per latent), not the context model's (paid once per latent)."""
    dims = cfg.synthesis_dims()
    taps = 4 if cfg.interpolation == "bilinear" else 16
    return sum(a * b for a, b in zip(dims[:-1], dims[1:])) + taps * cfg.levels * cfg.channels


FILE_FORMAT = COMPACT_VERSION  # the format version the encoder writes (version 8; four passes: 9)
NOT_CONFIG = ("init_residuals", "format")  # what point_record adds to a point's config


def point_record(p: LatentConfig) -> dict:
    """A point as results record it and fingerprint its rows: its config and the format its files
    are written in (version 8, or 9 with the four-pass model; with an init, the networks as
    residuals from it where that is smaller). Rows of the same fit in an older format (more
    bytes: version 5, or version 7 with ``init_residuals``, and no ``format``) are then never
    reused."""
    return latent_record(p) | ({"init_residuals": True} if p.init else {}) | {"format": _file_format(p)}


def _file_format(p: LatentConfig) -> int:
    """The format version the point's files are written in."""
    return FOUR_PASS_VERSION if p.context == "four-pass" else FILE_FORMAT


def point_config(record: dict) -> LatentConfig:
    """The config of a point as :func:`point_record` recorded it (any format's)."""
    return LatentConfig(**{k: v for k, v in record.items() if k not in NOT_CONFIG})


class LatentProto(Codec):
    """The prototype at a list of operating points (one job and one row each, named by lambda)."""

    def __init__(self, points: tuple[LatentConfig, ...], name: str, label: str):
        self.points, self.name, self.label = points, name, label

    def config(self) -> dict:
        return {"points": [point_record(p) for p in self.points]}

    def job_config(self, job: Job) -> dict:
        return {"config": point_record(job.params)}

    def recorded_job_configs(self, config: dict) -> dict[str, dict]:
        return {setting(p["lam"]): {"config": p} for p in config["points"]}

    def jobs(self) -> list[Job]:
        # cost: about 12 ms of one core a step, twice that with a full-resolution grid
        cost = [0.0125 * p.steps * (2 - min(p.finest, 1)) for p in self.points]
        return [Job(setting(p.lam), (setting(p.lam),), p, c) for p, c in zip(self.points, cost)]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        from inrcodec.decoder.latent import render
        from inrcodec.encoder import latent
        from inrcodec.format.latent import read, write

        fitted = latent.fit(arr, job.params)
        t = time.perf_counter()
        f = read(fitted.data)
        decoded = render(f, arr.shape[1], arr.shape[0])
        decode_s = time.perf_counter() - t
        r = row(job.key, arr, fitted.data, decoded, fitted.seconds, decode_s)
        r.update(
            steps=fitted.steps,
            latent_bytes=fitted.latent_bytes,
            synthesis_bytes=fitted.synthesis_bytes,
            context_bytes=fitted.context_bytes,
        )
        if f.header.context != 2:  # (version 9's four passes have no older version)
            # the same integers as the writer before version 8 wrote them: version 7 where smaller, else 5
            before = [write(replace(f, header=replace(f.header, compact=False, init=i))) for i in {0, f.header.init}]
            r.update(bytes_v5_or_v7=min(len(b) for b in before))
        return [r]


# Issue 15 item 6, on photo002 (the second tuning photo; photo001 chose the other points): the
# full-resolution grid's latents each see a pixel in about 4 % of the 4,096-pixel batches, so its
# points are short of steps. One change each from the ladder's full-resolution point, and the
# steps that item 6's 5 minutes allow.
_FULL = LATENT_STAGE2[7]  # the ladder's full-resolution point as this study ran (1920 steps)
FULL_RES_TUNING = {
    "λ 3e-3, the ladder's full-resolution point (1920 steps)": replace(_FULL, lam=3e-3),
    "λ 3e-3, lr_latent 0.03 (instead of 0.1)": replace(_FULL, lam=3e-3, lr_latent=0.03),
    "λ 3e-3, batches of 16384 pixels": replace(_FULL, lam=3e-3, batch=16384),
    "λ 3e-3, twice the steps (3840)": replace(_FULL, lam=3e-3, steps=3840),
    "λ 2e-3 (1920 steps)": replace(_FULL, lam=2e-3),
    "λ 4e-3, 6x the steps (11520)": replace(_FULL, lam=4e-3, steps=11520),
    "λ 2e-3, 6x the steps (11520)": replace(_FULL, lam=2e-3, steps=11520),
    "λ 1.5e-3, 6x the steps (11520): the ladder's new point": LATENT_STAGE2[6],
}


def full_res_codecs() -> list[LatentProto]:
    return [LatentProto((p,), f"full-res-{i:02d}", name) for i, (name, p) in enumerate(FULL_RES_TUNING.items())]


def tuning_codecs(context: bool = False) -> list[LatentProto]:
    if context:
        point = replace(BASE, lam=4e-3)
        return [
            LatentProto((point if change is None else replace(with_context(point), **change),), f"ctx-{i:02d}", name)
            for i, (name, change) in enumerate(CONTEXT_TUNING.items())
        ]
    return [
        LatentProto((replace(TUNING_BASE, lam=4e-3, **change),), f"tuning-{i:02d}", name)
        for i, (name, change) in enumerate(TUNING.items())
    ]


# --- the report -------------------------------------------------------------------------------------


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _points(doc: dict, image: str | None = None) -> tuple[list[float], list[float]]:
    if image is None:
        pts = [(c["bpp"], c["psnr"]) for c in doc["curve"]]
    else:
        pts = [(r["bpp"], r["psnr"]) for r in doc["rows"] if r["image"] == image]
    pts.sort()
    return [p[0] for p in pts], [p[1] for p in pts]


def _same_images(doc: dict, images: list[str]) -> dict:
    """``doc`` with only the rows of ``images`` and its mean curve over them."""
    rows = [r for r in doc["rows"] if r["image"] in images]
    return {**doc, "images": images, "rows": rows, "curve": curve(rows, doc["settings"])}


def _whole_images(doc: dict) -> dict:
    """``doc`` itself when complete; else (a run stopped part way) only its images with every point,
    so that no mean mixes a point over some images with another over more."""
    if doc.get("complete", True):
        return doc
    have = {(r["image"], r["setting"]) for r in doc["rows"]}
    return _same_images(doc, [i for i in doc["images"] if all((i, s) in have for s in doc["settings"])])


def _same_settings(doc: dict, settings: list[str]) -> dict:
    """``doc`` with only the rows of ``settings`` and its mean curve over them."""
    rows = [r for r in doc["rows"] if r["setting"] in settings]
    return {**doc, "settings": settings, "rows": rows, "curve": curve(rows, settings)}


def _bd(anchor: dict, test: dict, image: str | None = None) -> tuple[float | None, float | None]:
    ra, qa = _points(anchor, image)
    rt, qt = _points(test, image)
    try:
        return bd_rate(ra, qa, rt, qt), bd_psnr(ra, qa, rt, qt)
    except NoOverlap:
        return None, None


def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def _mean_s(doc: dict, setting: str) -> float:
    return float(np.mean([r["encode_s"] for r in doc["rows"] if r["setting"] == setting]))


def report(out: Path = OUT, anchor: Path = ANCHOR, baseline: Path | None = None) -> str:
    """The sweep's table (mean curve and per image, BD-rate against the SIREN and JPEG, against
    WebP and AVIF where ``anchor`` has them, and against the ``baseline`` sweep when given) as
    markdown."""
    run = _load(out / "latent-proto.json")
    proto = _whole_images(run)
    if not proto["images"]:
        return f"An incomplete run: no image has every point yet ({repo_path(out)}).\n"
    partial = (
        ""
        if proto is run
        else f"**An incomplete run**: the {len(proto['images'])} of its {len(run['images'])} images with every "
        f"point ({', '.join(proto['images'])}); the same command finishes it.\n\n"
    )
    siren, jpeg = (_same_images(_load(path), proto["images"]) for path in (_siren(anchor), anchor / "jpeg420.json"))
    others = {
        label: _same_images(_load(anchor / f"{name}.json"), proto["images"])
        for name, label in (("webp", "WebP"), ("avif", "AVIF"))
        if (anchor / f"{name}.json").exists()
    }
    lines = [partial + f"Mean curve ({proto['images'][0]}–{proto['images'][-1]}):", ""]
    sir_s = {
        c["setting"]: np.mean([r["encode_s"] for r in siren["rows"] if r["setting"] == c["setting"]])
        for c in siren["curve"]
    }
    rows = [
        [
            c["setting"],
            f"{c['bpp']:.3f}",
            f"{c['psnr']:.2f}",
            f"{_mean_s(proto, c['setting']):.0f}",
        ]
        for c in proto["curve"]
    ]
    lines += md.table(["prototype λ", "bpp", "PSNR dB", "encode s (CPU)"], rows)
    lines += [""]
    if baseline is not None and set(proto["images"]) <= set(_load(baseline)["images"]):
        base = _same_images(_load(baseline), proto["images"])
        before = {c["setting"]: c for c in base["curve"]}
        rows = []
        for c in proto["curve"]:
            b = before.get(c["setting"])
            if b is not None:
                rows.append([c["setting"], f"{b['bpp']:.3f}", f"{b['psnr']:.2f}", f"{_mean_s(base, c['setting']):.0f}"])
                rows[-1] += [f"{c['bpp']:.3f}", f"{c['psnr']:.2f}", f"{_mean_s(proto, c['setting']):.0f}"]
        head = ["λ", "bpp (baseline)", "PSNR (baseline)", "encode s (baseline)", "bpp", "PSNR dB", "encode s (CPU)"]
        lines += [f"Point by point against {repo_path(baseline)} (same images):", ""]
        lines += md.table(head, rows) + [""]
    rows = [[c["setting"], f"{c['bpp']:.3f}", f"{c['psnr']:.2f}", f"{sir_s[c['setting']]:.0f}"] for c in siren["curve"]]
    lines += md.table(["release 1.2 SIREN", "bpp", "PSNR dB", "encode s (wall)"], rows)
    lines += ["", "BD-rate (negative: fewer bytes at equal PSNR) and BD-PSNR:", ""]
    table = []
    for image in [None, *proto["images"]]:
        vs_siren = _bd(siren, proto, image)
        vs_jpeg = _bd(jpeg, proto, image)
        siren_jpeg = _bd(jpeg, siren, image)
        table.append(
            [
                image or "**mean curve**",
                _fmt(vs_siren[0], "+.1f") + " %",
                _fmt(vs_siren[1], "+.2f") + " dB",
                _fmt(vs_jpeg[0], "+.1f") + " %",
                _fmt(siren_jpeg[0], "+.1f") + " %",
            ]
        )
    per_image = [float(t[1].rstrip(" %")) for t in table[1:] if not t[1].startswith("—")]
    per_image_jpeg = [float(t[3].rstrip(" %")) for t in table[1:] if not t[3].startswith("—")]
    head = ["image", "prototype vs SIREN 1.2", "BD-PSNR", "prototype vs JPEG 4:2:0", "SIREN 1.2 vs JPEG 4:2:0"]
    for label, doc in others.items():
        head.append(f"prototype vs {label}")
        for t, image in zip(table, [None, *proto["images"]]):
            t.append(_fmt(_bd(doc, proto, image)[0], "+.1f") + " %")
    if baseline is not None and set(proto["images"]) <= set(_load(baseline)["images"]):
        # on the points both have: a point one of them lacks would move the BD-rate by itself
        base = _same_images(_load(baseline), proto["images"])
        shared = [c["setting"] for c in proto["curve"] if c["setting"] in {b["setting"] for b in base["curve"]}]
        base, mine = _same_settings(base, shared), _same_settings(proto, shared)
        head.append(f"vs {baseline.parent.name}/{baseline.name} ({len(shared)} shared points)")
        for t, image in zip(table, [None, *proto["images"]]):
            t.append(_fmt(_bd(base, mine, image)[0], "+.1f") + " %")
        whole = _same_images(_load(baseline), proto["images"])
        if len(shared) < max(len(proto["curve"]), len(whole["curve"])):  # ladders of other points: whole curves too
            head.append("vs its whole ladder")
            for t, image in zip(table, [None, *proto["images"]]):
                t.append(_fmt(_bd(whole, proto, image)[0], "+.1f") + " %")
    lines += md.table(head, table)
    if per_image:
        lines += ["", f"Per-image median BD-rate against the SIREN: {np.median(per_image):+.1f} %."]
    if per_image_jpeg:
        lines += ["", f"Per-image median BD-rate against JPEG 4:2:0: {np.median(per_image_jpeg):+.1f} %."]
    if _full_kodak(proto):
        lines += ["", *_published_table(proto)]
    return "\n".join(lines) + "\n"


def _full_kodak(doc: dict) -> bool:
    return doc["provenance"].get("dataset", "").startswith("kodak") and len(doc["images"]) == 24


def _published_table(proto: dict) -> list[str]:
    """The mean curve against the published INR codecs' Kodak curves (../shared/published), each
    over the PSNR range the two share."""
    from benchmarks.plot import PUBLISHED_INR, load_published

    published = load_published() or {}
    mine = _points(proto)
    rows = []
    for name in (n for n in PUBLISHED_INR if n in published):
        theirs = (published[name]["bpp"], published[name]["psnr_rgb"])
        span = overlap(theirs[1], mine[1])
        try:
            cells = [f"{bd_rate(*theirs, *mine):+.1f} %", f"{bd_psnr(*theirs, *mine):+.2f} dB"]
        except NoOverlap:
            cells = ["—", "—"]
        rows.append([name, *cells, "—" if span is None else f"{span[0]:.2f}–{span[1]:.2f}"])
    if not rows:
        return []
    head = ["published curve (Kodak)", "BD-rate of the mean curve", "BD-PSNR", "shared PSNR dB"]
    intro = "Against the published INR codecs (their sources: ../shared/published/kodak.json):"
    return [intro, "", *md.table(head, rows)]


def rd_plot(out: Path, anchor: Path) -> Path | None:
    """The sweep's mean curve beside release 1.2's SIREN and the classical codecs of ``anchor`` on
    the same images (and the published curves when those are the 24 Kodak images): out/rd.png
    (None: an incomplete run with no image at every point yet)."""
    from benchmarks.plot import load_published, plot

    proto = _whole_images(_load(out / "latent-proto.json"))
    if not proto["images"]:
        return None
    paths = [_siren(anchor), *(anchor / f"{name}.json" for name in ("jpeg420", "webp", "avif"))]
    docs = [_same_images(_load(path), proto["images"]) for path in paths if path.exists()]
    docs = [{**d, "label": "inrcodec 1.2 (SIREN)"} if d["name"] == "inrcodec" else d for d in docs]
    context = "context model" if proto["rows"][0].get("context_bytes") else "one Laplace per level"
    proto = {**proto, "label": f"latent grids + sine synthesis ({context})"}
    kodak = _full_kodak(proto)
    title = f"{out.name}: the latent-grid family against release 1.2 ({len(proto['images'])} images)"
    return plot([*docs, proto], load_published() if kodak else None, out / "rd.png", title)


def siren_at(anchor: dict, image: str, bpp: float) -> float | None:
    """The anchor's (release 1.2's SIREN, or JPEG's) PSNR on ``image`` at ``bpp``, linear in
    log-rate between its points (None outside their span)."""
    rates, psnrs = _points(anchor, image)
    if not rates or not rates[0] <= bpp <= rates[-1]:
        return None
    return float(np.interp(np.log(bpp), np.log(rates), psnrs))


def tuning_report(out: Path = OUT, anchor: Path = ANCHOR, context: bool = False) -> str:
    siren = _load(_siren(anchor))
    rows = []
    for codec in tuning_codecs(context):
        path = out / f"{codec.name}.json"
        if not path.exists() or not _load(path)["rows"]:
            continue
        r = _load(path)["rows"][0]
        ref = siren_at(siren, r["image"], r["bpp"])
        cells = [
            codec.label,
            f"{r['bpp']:.3f}",
            f"{r['psnr']:.2f}",
            _fmt(ref, ".2f"),
            _fmt(ref and r["psnr"] - ref, "+.2f"),
        ]
        rows.append([*cells, str(r["steps"]), f"{r['encode_s']:.0f}"])
    head = ["photo001, λ = 4·10⁻³", "bpp", "PSNR dB", "SIREN 1.2 at that bpp", "Δ dB", "steps", "encode s (CPU)"]
    return "\n".join(md.table(head, rows)) + "\n"


def full_res_report(out: Path, anchor: Path = ANCHOR) -> str:
    """The full-resolution variants beside release 1.2's SIREN and JPEG 4:2:0 at the same bpp."""
    siren, jpeg = _load(_siren(anchor)), _load(anchor / "jpeg420.json")
    rows = []
    for codec in full_res_codecs():
        path = out / f"{codec.name}.json"
        if not path.exists() or not _load(path)["rows"]:
            continue
        r = _load(path)["rows"][0]
        at = [siren_at(doc, r["image"], r["bpp"]) for doc in (siren, jpeg)]
        cells = [codec.label, f"{r['bpp']:.3f}", f"{r['psnr']:.2f}", *(_fmt(x, ".2f") for x in at)]
        rows.append([*cells, str(r["steps"]), f"{r['encode_s']:.0f}"])
    image = _load(out / f"{full_res_codecs()[0].name}.json")["images"][0] if rows else "photo002"
    head = [f"{image}, full-resolution grid", "bpp", "PSNR dB", "SIREN 1.2 at that bpp", "JPEG 4:2:0 at that bpp"]
    return "\n".join(md.table([*head, "steps", "encode s (CPU)"], rows)) + "\n"


def ablation_report(out: Path, reference: Path = OUT / "checkerboard-first8", plain: Path = OUT) -> str:
    """The ablations' table: each variant's mean curve over the photos it ran on against the
    reference sweep's same points on the same photos (and the plain sweep's, the parametric model)."""
    points = [latent_record(p) for p in ablation_points()]
    settings = [setting(p["lam"]) for p in points]

    def cut(doc: dict, images: list[str]) -> dict:
        rows = [r for r in doc["rows"] if r["image"] in images and r["setting"] in settings]
        return {**doc, "images": images, "rows": rows, "curve": curve(rows, settings)}

    def cells(label: str, doc: dict, cfgs: list[dict]) -> list[str]:
        rate, dpsnr = _bd(ref, doc)
        secs = np.mean([r["encode_s"] for r in doc["rows"]])
        macs = sorted({macs_per_pixel(point_config(c)) for c in cfgs})
        bpps = " / ".join(f"{c['bpp']:.3f}" for c in sorted(doc["curve"], key=lambda c: c["bpp"]))
        bd = [_fmt(rate, "+.1f") + " %", _fmt(dpsnr, "+.2f") + " dB"]
        return [label, *bd, bpps, f"{secs:.0f}", "–".join(map(str, macs))]

    codecs = [c for c in ablation_codecs() if (out / f"{c.name}.json").exists()]
    if not codecs:
        return "No ablation results yet.\n"
    images = _load(out / f"{codecs[0].name}.json")["images"]
    reference_doc = _load(reference / "latent-proto.json")
    ref = cut(reference_doc, images)
    ref_cfgs = [p for p in reference_doc["provenance"]["config"]["points"] if p in points]
    if ref_cfgs != points:
        raise ValueError(f"{reference}: it lacks the presets' points; rerun it")
    head = ["variant (each of the three points)", "BD-rate", "BD-PSNR", "bpp (3 points)", "encode s (CPU)"]
    head.append("MACs/pixel")
    rows = [cells("**the ladder's points (reference)**", ref, ref_cfgs)]
    plain_doc = _load(plain / "latent-proto.json")
    plain_cfgs = [p for p in plain_doc["provenance"]["config"]["points"] if setting(p["lam"]) in settings]
    label = "one Laplace per level, no context model (1.25x the steps: equal time)"
    rows.append(cells(label, cut(plain_doc, images), plain_cfgs))
    for codec in codecs:
        doc = _load(out / f"{codec.name}.json")
        if doc["images"] != images or not doc.get("complete"):
            continue
        rows.append(cells(codec.label, cut(doc, images), [latent_record(p) for p in codec.points]))
    lines = [
        f"Ablations on {images[0]}–{images[-1]}: BD-rate and BD-PSNR of each variant's mean curve against the",
        f"points of the presets {', '.join(ABLATION_PRESETS)} (λ {', '.join(s[4:] for s in settings)}, context model)",
        "on the same photos; MACs/pixel: the decoder's synthesis and interpolation.",
        "",
        *md.table(head, rows),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, default=PHOTOS, help=f"folder with SHA256SUMS ({PHOTOS})")
    p.add_argument("--n-images", type=int, default=8, help="the first N images (default 8: photo001-photo008)")
    p.add_argument("--workers", type=int, default=1, help="processes, one torch thread each (default 1)")
    p.add_argument("--tuning", action="store_true", help="the variants on the first image at lambda 4e-3")
    p.add_argument(
        "--ablations",
        action="store_true",
        help=f"one change each to the grid presets' points, on the first {ABLATION_IMAGES} images",
    )
    p.add_argument(
        "--full-res",
        action="store_true",
        help="the full-resolution grid's variants (steps, lambda) on the second image (issue 15 item 6)",
    )
    p.add_argument("--report", action="store_true", help="only write the tables from the results already there")
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {OUT.relative_to(REPO)})")
    p.add_argument(
        "--anchor",
        type=Path,
        default=ANCHOR,
        help=f"the classical codecs' results on the same images (default {ANCHOR.relative_to(REPO)}; Kodak: "
        "results/kodak); release 1.2's SIREN from results/archive/1.2.0/<that folder's name> where it exists",
    )
    p.add_argument(
        "--interpolation",
        choices=("bilinear", "bicubic"),
        default="bilinear",
        help="of the sweep's latents (bicubic: results in <out>/bicubic-first<N>)",
    )
    p.add_argument(
        "--context",
        choices=("none", "checkerboard", "four-pass"),
        default="none",
        help="entropy model of the sweep's latents (checkerboard: results in <out>/checkerboard-first<N>; "
        "four-pass: the ladder's points with format v9's model, the folder's name gets -fourpass)",
    )
    p.add_argument(
        "--four-pass-at",
        default="",
        help="with --context checkerboard: only the points at these lambdas (comma-separated) with format "
        "v9's four-pass model, from their inits' four-pass twins where --init lists them (folder -4p-at-<lambdas>)",
    )
    p.add_argument(
        "--quantizer",
        choices=("uniform", "soft", "soft-fast"),
        default="uniform",
        help="with --context: how the ladder's training simulates rounding (soft: C3's soft-rounding and "
        "Kumaraswamy noise; soft-fast: the same, cheaper; results in <out>/ladder-<quantizer>-first<N>, "
        "with --stage2 checkerboard-<quantizer>-first<N>)",
    )
    p.add_argument(
        "--proxy-steps",
        type=float,
        default=1.0,
        help="with --quantizer soft or soft-fast: the proxy's points take their steps times this (below 1: "
        "the uniform ladder's encode time; the folder's name gets -x<factor>)",
    )
    p.add_argument(
        "--full-res-uniform",
        action="store_true",
        help="with --quantizer: the full-resolution points (finest grid 1/1) keep uniform noise and their steps "
        "(the proxy fails there: docs/benchmark.md; the folder's name gets -lowres)",
    )
    p.add_argument(
        "--synthesis-scale",
        type=float,
        default=1.0,
        help="with --context: every point's synthesis width times this, rounded (the ablations' 'half as "
        "wide', across the ladder; the folder's name gets -s<factor>)",
    )
    p.add_argument(
        "--lr-finest",
        default="1",
        help="with --context: the full-resolution points' finest grid learns at this times lr_latent, "
        "one factor for all or one per point, comma-separated (LatentConfig.lr_finest; the presets': "
        "0.1; the folder's name gets -f<factors>)",
    )
    p.add_argument(
        "--lr-second",
        type=float,
        default=1.0,
        help="with --context: the full-resolution points' second grid (1/2 of the side) learns at this "
        "times lr_latent (LatentConfig.lr_second; the presets': 1; the folder's name gets -second<factor>)",
    )
    p.add_argument(
        "--noise-fraction",
        type=float,
        help="with --context: the full-resolution points' share of steps on uniform noise, the rest rounded "
        "straight through (LatentConfig.noise_fraction; the presets': 1 at the four --noise-lams "
        "7e-3,5e-3,3e-3,1.5e-3, 0.75 at the top two; the folder's name gets -noise<share>)",
    )
    p.add_argument(
        "--noise-lams",
        help="with --noise-fraction: only the full-resolution points at these lambdas, comma-separated "
        "(the folder's name gets -at-<lambdas>)",
    )
    p.add_argument(
        "--noise-steps",
        type=int,
        help="with --noise-fraction: those points' training steps (their schedules stretched with them; "
        "the presets' at 1.5e-2: 23040, config.LATENT_MID_NOISE_STEPS; the folder's name gets -steps<steps>)",
    )
    p.add_argument(
        "--steps-at",
        help="with --context: training steps point by point, LAMBDA:STEPS comma-separated (the presets': "
        "34560 at the four middle full-resolution points, config.LATENT_MID_LONG_STEPS), "
        "after every other option's (their schedules stretched with them; the folder's name gets "
        "-s-<lambda>x<steps>...)",
    )
    p.add_argument(
        "--full-res-steps",
        type=int,
        help="with --context: the full-resolution points' training steps (the presets': 11520, which the four "
        "middle ones double with --noise-steps; the folder's name gets -n<steps>)",
    )
    p.add_argument(
        "--long-fit",
        default="",
        help="with --context: the points at these lambdas (comma-separated) train their latents as the "
        "full-resolution points do (config.LATENT_LONG_FIT: lr_latent 0.1, the finest grid at 0.1 of it, "
        "11,520 steps; the folder's name gets -L<lambdas>)",
    )
    p.add_argument(
        "--long-fit-steps",
        type=int,
        help="with --long-fit: those points' training steps (default LATENT_LONG_FIT's 11,520; the folder's "
        "name gets -m<steps>)",
    )
    p.add_argument(
        "--full-res-lams",
        default="",
        help="with --context: more full-resolution points, the first one's settings (grid-xhigh's) at these "
        "lambdas, comma-separated, named apart from the ladder's (the folder's name gets -F<lambdas>)",
    )
    p.add_argument(
        "--drop-lams",
        default="",
        help="with --context: leave out the ladder's points with grids from 1/2 or coarser at these lambdas, "
        "comma-separated (the folder's name gets -D<lambdas>)",
    )
    p.add_argument(
        "--top-lam",
        type=float,
        help="with --context: one more point above the ladder's top, its settings (grid-max's) at this lambda "
        "(below the top's; the folder's name gets -t<lambda>)",
    )
    p.add_argument(
        "--context-hidden",
        default="",
        help="with --context: the context model's hidden width (LatentConfig.context_hidden, default 16), one "
        "for all points or one per ladder point, comma-separated (the folder's name gets -c<widths>)",
    )
    p.add_argument(
        "--init",
        default="",
        help="with --context: shipped inits, comma-separated; the points whose synthesis and context network have "
        f"one's shape start from it (LatentConfig.init; of {', '.join(latent_init.INITS)}; the presets': "
        "quarter-v1,half-v1; the folder's name gets -i<names>)",
    )
    p.add_argument(
        "--network-rate",
        type=float,
        default=0.0,
        metavar="R",
        help="with --init: the networks' estimated bits in the loss at the points an init starts, weighted R "
        "(LatentConfig.network_rate; folder -r<R>)",
    )
    p.add_argument(
        "--network-rate-at",
        metavar="NAMES",
        help="with --network-rate: only at the points these inits of --init start, comma-separated "
        "(folder -at-<names>)",
    )
    p.add_argument(
        "--rdo-levels",
        type=int,
        default=0,
        metavar="N",
        help="with --context: after packing, the latents of the N finest levels moved by +-1 where the file's "
        "D + lambda R goes down (LatentConfig.rdo_levels; folder -rdo<N>)",
    )
    p.add_argument(
        "--rdo-at",
        metavar="NAMES",
        help="with --rdo-levels: only at the points these inits of --init start, comma-separated (folder -at-<names>)",
    )
    p.add_argument(
        "--tune-steps",
        type=int,
        default=0,
        metavar="N",
        help="with --rdo-levels: at the points it rounds, N steps of the two networks on the file's integer "
        "latents, then the rounding again (LatentConfig.tune_steps; folder -tune<N>)",
    )
    p.add_argument(
        "--sampler",
        choices=("uniform", "importance"),
        default="uniform",
        help="the pixels a training step reads (LatentConfig.sampler; folder -<sampler>; default uniform)",
    )
    p.add_argument(
        "--sampler-share",
        type=float,
        default=0.5,
        metavar="S",
        help="with --sampler importance: the share of each batch drawn by error, in (0, 1) (folder -share<S>; "
        "default 0.5, the SIREN's)",
    )
    p.add_argument(
        "--sampler-at",
        metavar="NAMES",
        help="with --sampler: only at the points these inits of --init start, comma-separated (folder -at-<names>)",
    )
    p.add_argument(
        "--reuse",
        type=Path,
        action="append",
        default=[],
        help="a committed run's latent-proto.json (repeatable): its rows of the points this sweep runs with "
        "the same config, on the same images, are taken instead of refitted",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        help="an earlier sweep's latent-proto.json to compare with, point by point and as a BD-rate "
        "(default: the plain sweep's, for a sweep in a folder of its own)",
    )
    p.add_argument(
        "--stage2",
        action="store_true",
        help="with --context: the ladder as the first Kodak run and the ablations had it (before "
        "config.LATENT_STEP_FACTOR; results in <out>/checkerboard-first<N>)",
    )
    ray_option(p)
    args = p.parse_args(argv)
    if args.stage2 and args.context == "none":
        p.error("--stage2 is a ladder of the context model: give --context checkerboard")
    if args.quantizer != "uniform" and (args.context == "none" or args.tuning):
        p.error("--quantizer is for the context model's ladder: give --context checkerboard (not --tuning)")
    if args.quantizer == "uniform" and (args.proxy_steps != 1.0 or args.full_res_uniform):
        p.error("--proxy-steps and --full-res-uniform go with --quantizer soft or soft-fast")
    if not 0 < args.proxy_steps <= 16:
        p.error("--proxy-steps: a factor in (0, 16]")
    if args.synthesis_scale != 1.0 and (args.context == "none" or args.tuning):
        p.error("--synthesis-scale is for the context model's ladder: give --context checkerboard (not --tuning)")
    if not 0 < args.synthesis_scale <= 4:
        p.error("--synthesis-scale: a factor in (0, 4]")
    try:
        args.lr_finest = tuple(float(f) for f in args.lr_finest.split(","))
    except ValueError:
        p.error(f"--lr-finest: factors separated by commas, not {args.lr_finest!r}")
    finest_lr = any(f != 1.0 for f in args.lr_finest)
    try:
        # sorted as the ladder runs (largest lambda first), once each: one folder name per ladder
        lams = {float(lam) for lam in args.long_fit.split(",")} if args.long_fit else set()
        args.long_fit = tuple(sorted(lams, reverse=True))
    except ValueError:
        p.error(f"--long-fit: lambdas separated by commas, not {args.long_fit!r}")
    if args.long_fit and (args.context == "none" or args.tuning):
        p.error("--long-fit is for the context model's ladder: give --context checkerboard (not --tuning)")
    try:
        args.full_res_lams = tuple(float(lam) for lam in args.full_res_lams.split(",")) if args.full_res_lams else ()
    except ValueError:
        p.error(f"--full-res-lams: lambdas separated by commas, not {args.full_res_lams!r}")
    if args.full_res_lams and (args.context == "none" or args.tuning):
        p.error("--full-res-lams is for the context model's ladder: give --context checkerboard (not --tuning)")
    try:
        lams = {float(lam) for lam in args.drop_lams.split(",")} if args.drop_lams else set()
        args.drop_lams = tuple(sorted(lams, reverse=True))  # one folder name for one ladder
    except ValueError:
        p.error(f"--drop-lams: lambdas separated by commas, not {args.drop_lams!r}")
    if args.drop_lams and (args.context == "none" or args.tuning):
        p.error("--drop-lams is for the context model's ladder: give --context checkerboard (not --tuning)")
    coarse = {pt.lam for pt in LATENT_LADDER if pt.finest > 0}
    if missing := [lam for lam in args.drop_lams if lam not in coarse]:
        listed = ", ".join(f"{m:g}" for m in missing)
        p.error(f"--drop-lams: no point with grids from 1/2 or coarser at lambda {listed}")
    try:
        lams = {float(lam) for lam in args.four_pass_at.split(",")} if args.four_pass_at else set()
        args.four_pass_at = tuple(sorted(lams, reverse=True))
    except ValueError:
        p.error(f"--four-pass-at: lambdas separated by commas, not {args.four_pass_at!r}")
    if args.four_pass_at and (args.context != "checkerboard" or args.tuning):
        p.error("--four-pass-at is for the checkerboard ladder: give --context checkerboard (not --tuning)")
    if args.top_lam is not None and (args.context == "none" or args.tuning):
        p.error("--top-lam is for the context model's ladder: give --context checkerboard (not --tuning)")
    try:
        args.context_hidden = tuple(int(w) for w in args.context_hidden.split(",")) if args.context_hidden else ()
    except ValueError:
        p.error(f"--context-hidden: widths separated by commas, not {args.context_hidden!r}")
    if args.context_hidden and (args.context == "none" or args.tuning):
        p.error("--context-hidden is for the context model's ladder: give --context checkerboard (not --tuning)")
    if len(args.context_hidden) not in (0, 1, len(LATENT_LADDER)) or not all(0 < w < 256 for w in args.context_hidden):
        p.error(f"--context-hidden: one width in 1..255, or one per ladder point ({len(LATENT_LADDER)})")
    if args.init and (args.context == "none" or args.tuning):
        p.error("--init is for the context model's ladder: give --context checkerboard (not --tuning)")
    args.init = tuple(args.init.split(",")) if args.init else ()
    if unknown := [name for name in args.init if name not in latent_init.INITS]:
        p.error(f"--init: {', '.join(map(repr, unknown))} not a shipped init ({', '.join(latent_init.INITS)})")
    named = {setting(pt.lam) for pt in LATENT_LADDER}  # rows and folders name a point by its lambda, %g
    if args.top_lam is not None and (not 0 < args.top_lam < LATENT_LADDER[-1].lam or setting(args.top_lam) in named):
        p.error(f"--top-lam: a lambda in (0, {LATENT_LADDER[-1].lam:g}), named apart from the ladder's")
    extra = [setting(lam) for lam in args.full_res_lams]
    taken = named | ({setting(args.top_lam)} if args.top_lam is not None else set())
    if not all(0 < lam <= 1 for lam in args.full_res_lams) or len(set(extra)) < len(extra) or set(extra) & taken:
        p.error("--full-res-lams: lambdas in (0, 1], each named apart from the ladder's and the others")
    if args.long_fit_steps is not None and (not args.long_fit or not 0 < args.long_fit_steps <= 10**6):
        p.error("--long-fit-steps: a step count for the points --long-fit names")
    steps = args.full_res_steps
    if steps is not None and (args.context == "none" or args.tuning or not 0 < steps <= 10**6):
        p.error("--full-res-steps: a step count for the context model's ladder (--context checkerboard, not --tuning)")
    if finest_lr and (args.context == "none" or args.tuning):
        p.error("--lr-finest is for the context model's ladder: give --context checkerboard (not --tuning)")
    try:  # the ladder's own checks: factors in range, as many as its full-resolution points
        with_full_res(LATENT_LADDER, args.lr_finest)
    except ValueError as e:
        p.error(f"--lr-finest: {e}")
    try:  # lambdas the ladder has
        with_long_fit(LATENT_LADDER, args.long_fit)
    except ValueError as e:
        p.error(f"--long-fit: {e}")
    if args.network_rate and (not args.init or not 0 < args.network_rate <= 10):
        p.error("--network-rate: a weight in (0, 10] for the points --init starts")
    args.network_rate_at = tuple(args.network_rate_at.split(",")) if args.network_rate_at else ()
    if args.network_rate_at and (not args.network_rate or not set(args.network_rate_at) <= set(args.init)):
        p.error("--network-rate-at: inits of --init, with --network-rate")
    args.rdo_at = tuple(args.rdo_at.split(",")) if args.rdo_at else ()
    if args.rdo_levels and (args.context == "none" or not 0 < args.rdo_levels < 16):
        p.error("--rdo-levels: 1..15, with --context checkerboard or four-pass")
    if args.rdo_at and (not args.rdo_levels or not set(args.rdo_at) <= set(args.init)):
        p.error("--rdo-at: inits of --init, with --rdo-levels")
    if args.tune_steps and (not args.rdo_levels or not 0 < args.tune_steps <= 100_000):
        p.error("--tune-steps: 1..100000, with --rdo-levels")
    if args.noise_fraction is not None and not 0.0 <= args.noise_fraction <= 1.0:
        p.error(f"--noise-fraction: a share in [0, 1], not {args.noise_fraction:g}")
    try:
        lams = {float(lam) for lam in args.noise_lams.split(",")} if args.noise_lams else set()
        args.noise_lams = tuple(sorted(lams, reverse=True))
    except ValueError:
        p.error(f"--noise-lams: lambdas separated by commas, not {args.noise_lams!r}")
    if args.noise_lams and args.noise_fraction is None:
        p.error("--noise-lams: with --noise-fraction")
    if args.noise_steps is not None and (args.noise_fraction is None or not 0 < args.noise_steps <= 10**6):
        p.error("--noise-steps: a step count (1 to 10^6), with --noise-fraction")
    full = {pt.lam for pt in LATENT_LADDER if pt.finest == 0} | set(args.full_res_lams)
    full |= {args.top_lam} if args.top_lam is not None else set()
    if stray := [lam for lam in args.noise_lams if lam not in full]:
        p.error(f"--noise-lams: no full-resolution point at lambda {', '.join(f'{x:g}' for x in stray)}")
    if not 0.0 < args.lr_second <= 10.0:
        p.error(f"--lr-second: a factor in (0, 10], not {args.lr_second:g}")
    args.sampler_at = tuple(args.sampler_at.split(",")) if args.sampler_at else ()
    if args.sampler_at and (args.sampler == "uniform" or not set(args.sampler_at) <= set(args.init)):
        p.error("--sampler-at: inits of --init, with --sampler")
    if args.sampler_share != 0.5 and (args.sampler == "uniform" or not 0 < args.sampler_share < 1):
        p.error("--sampler-share: a share in (0, 1), with --sampler importance")
    before = ladder_points(argparse.Namespace(**{**vars(args), "four_pass_at": (), "steps_at": {}}))
    args.steps_at = _steps_at(p, args, {pt.lam for pt in before})
    if stray := [lam for lam in args.four_pass_at if lam not in {pt.lam for pt in before}]:
        p.error(f"--four-pass-at: no point of this ladder at lambda {', '.join(f'{x:g}' for x in stray)}")
    if args.init:  # an init that fits no point of this ladder would only rename the folder
        started = {pt.init for pt in (*before, *ladder_points(args))}  # with --four-pass-at: before the switch too
        if unused := [name for name in args.init if name not in started]:
            p.error(f"--init: {', '.join(map(repr, unused))} has the shape of no point of this ladder")
    modes = [name for name in ("tuning", "ablations", "full_res") if getattr(args, name)]
    if missing := [str(f) for f in args.reuse if not f.is_file()]:
        p.error(f"--reuse: {', '.join(missing)}: no such file")
    for committed in args.reuse:
        try:
            read_committed(committed, "latent-proto")
        except ValueError as e:
            p.error(f"--reuse: {committed}: {e}")
    if args.reuse and (modes or args.report):
        p.error("--reuse is for a sweep that runs (not --tuning, --ablations, --full-res or --report)")
    if len(modes) > 1 or (
        set(modes) & {"ablations", "full_res"} and (args.context, args.interpolation) != ("none", "bilinear")
    ):
        # their points are fixed (the presets', the full-resolution variants'): the sweep's options
        # would only send their results into the sweep's own folders
        p.error("--tuning, --ablations and --full-res go alone (only --tuning takes --context)")
    points = POINTS
    if args.interpolation != "bilinear" and not args.tuning:
        points = tuple(replace(pt, interpolation=args.interpolation) for pt in POINTS)
        if args.out == OUT:
            args.out = OUT / f"{args.interpolation}-first{args.n_images}"
    context = args.context != "none"
    if context and not args.tuning:
        points = ladder_points(args)
        if args.out in (OUT, OUT / f"{args.interpolation}-first{args.n_images}"):
            # checkerboard-first8 is the stage-2 ladder's, the ablations' reference: never rewritten
            # with other points
            args.out = OUT / sweep_folder(args)
            if len(args.out.name) > 255:  # the file system's limit on one name
                p.error(f"the sweep's folder name takes {len(args.out.name)} characters (over 255): give --out")
    if args.ablations:
        out = args.out / "ablations" if args.out == OUT else args.out
        if not args.report:
            refs = dataset(args.images)[:ABLATION_IMAGES]
            meta = dataset_meta(args.images, f"{args.images.resolve().name}-first{len(refs)}", False)
            if not run(ablation_codecs(), refs, out, workers=args.workers, meta=meta, ray=args.ray):
                return 1
        text = ablation_report(out)
        (out.parent / f"{out.name}.md").write_text(text)
        print(text)
        return 0
    if args.full_res:
        out = args.out / "full-res" if args.out == OUT else args.out
        if not args.report:
            refs = dataset(args.images)[1:2]
            meta = dataset_meta(args.images, f"{args.images.resolve().name}-second", False)
            if not run(full_res_codecs(), refs, out, workers=args.workers, meta=meta, ray=args.ray):
                return 1
        text = full_res_report(out, args.anchor)
        (out.parent / f"{out.name}.md").write_text(text)
        print(text)
        return 0
    if args.tuning:
        args.out = args.out / ("context-tuning" if context else "tuning")
    if not args.report:
        refs = dataset(args.images)[: 1 if args.tuning else args.n_images]
        codecs = (
            tuning_codecs(context)
            if args.tuning
            else [LatentProto(points, "latent-proto", "latent grid + SIREN (prototype)")]
        )
        meta = dataset_meta(args.images, f"{args.images.resolve().name}-first{len(refs)}", False)
        for committed in args.reuse:  # each checked above, before any work
            n = reuse_rows(codecs[0], committed, refs, args.out)
            print(f"reused {n} rows of {repo_path(committed)} (their points unchanged)")
        if not run(codecs, refs, args.out, workers=args.workers, meta=meta, ray=args.ray):
            return 1
    # A sweep in a folder of its own (a variant) is also compared with the plain sweep.
    plain = OUT / "latent-proto.json"
    baseline = args.baseline or (plain if args.out != OUT and plain.exists() else None)
    if args.report and not args.tuning and not (args.out / "latent-proto.json").is_file():
        p.error(f"--report: no results in {repo_path(args.out)} (latent-proto.json): run the sweep first")
    if args.tuning:
        text = tuning_report(args.out, args.anchor, context=context)
    else:
        text = report(args.out, args.anchor, baseline=baseline)
        if (plotted := rd_plot(args.out, args.anchor)) is not None:
            print(plotted)
    # The tuning tables sit beside their folders: latent/tuning.md, latent/context-tuning.md.
    (args.out.parent / f"{args.out.name}.md" if args.tuning else args.out / "latent-proto.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
