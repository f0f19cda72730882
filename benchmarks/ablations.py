"""Ablations of the codec's design, small enough for one core (a few minutes each).

    python -m benchmarks.ablations                       # all of them on ../shared/photos (3 images)
    python -m benchmarks.ablations rewind masks --workers 2
    python -m benchmarks.ablations --quick               # 1 image, 128x128, tiny fits (a smoke test)

- ``imp-vs-dense``: a large network pruned by IMP against small dense networks, at equal bytes;
- ``sinr-vs-scalar``: SINR against scalar coding of the same surviving weights, at equal PSNR;
- ``rewind``: rewinding to the initialisation against no rewinding (fine-tuning), at equal steps
  (equal encode time: both are timed);
- ``masks``: winning (magnitude) against random masks, at equal density;
- ``schedule``: the dense fit's batch size (at an equal pixel budget) and learning rate;
- ``entropy-coding``: Brotli against the ideal code length of model-based coders, same symbols;
- ``fourier``: Fourier features of the coordinates (0, 4, 6, 8 levels) at the default preset's
  operating point, on full-size photos (the others use crops; this one decided the 1.1 presets);
- ``width-lr``: the peak learning rate of ladder widths 80 and 144 (2e-3 against 1e-3), full size;
- ``quantization``: the range coder against Brotli on the same symbols, depths by MSE + λ bpp
  against the dB budget, and the rounding pass, all on one fit of a preset at full size;
- ``prior``: the shipped prior against the random init at equal steps, and the residual's L1 weight;
- ``tickets``: issue 17's ticket finders (SNIP and SynFlow ranking IMP rounds and at the
  initialisation, RigL, N:M masks) against the dense networks and per-image IMP at equal bytes,
  with what an N:M mask code would save (a computed size: the format does not have one).

They run on the tuning photos, never on Kodak. Each writes ``<out>/<name>.json`` (rows per image,
provenance; resumable like the benchmark) and ``<out>/<name>.md`` (the table docs/benchmark.md shows).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmarks import markdown as md
from benchmarks.bd_rate import bd_psnr, bd_rate
from benchmarks.codecs import encoded_rows, ladder_rows, row
from benchmarks.runner import REPO, RESULTS, DatasetError, Experiment, Job, dataset, dataset_meta, ray_option, run
from inrcodec.config import EncodeConfig, record

DEFAULT_IMAGES = REPO.parent / "shared" / "photos"


class Recorded:
    """Reading a per-ablation config back from a results JSON."""

    # Names results made before the per-ablation configs (one catch-all ``Setup``) gave these fields.
    legacy: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_record(cls, record: dict):
        """The config a results JSON recorded (``provenance.config.setup``): its own fields (lists
        back to tuples, old names through ``legacy``), others' ignored, missing ones at their defaults."""
        names = {f.name for f in fields(cls)}
        got = {cls.legacy.get(k, k): tuple(v) if isinstance(v, list) else v for k, v in record.items()}
        return cls(**{k: v for k, v in got.items() if k in names})


@dataclass(frozen=True)
class Training(Recorded):
    """The network, training budget and pruning schedule of the ablations that fit and prune their
    own network on crops; each of those ablations' configs adds what it varies."""

    hidden: int = 64  # width of the (large) network that gets pruned
    layers: int = 3  # sine layers
    fit_steps: int = 800  # Adam steps of the dense fit
    batch: int = 4096  # random pixels per step (a 256x256 crop has 65536)
    prune_steps: int = 300  # retraining steps after each pruning round
    qat_steps: int = 50  # quantization-aware fine-tuning steps per operating point
    densities: tuple[float, ...] = (0.7, 0.5, 0.35, 0.25)  # one pruning round each
    seed: int = 0  # initialisation and pixel sampling

    def config(self, hidden: int | None = None, fit: dict | None = None, **prune):
        """The EncodeConfig of one fit: this training, with another width, FitConfig or PruneConfig fields."""
        from inrcodec.config import CoderConfig, EncodeConfig, FitConfig, PruneConfig
        from inrcodec.siren import Architecture

        return EncodeConfig(
            arch=Architecture(hidden=hidden or self.hidden, layers=self.layers),
            fit=FitConfig(**{"steps": self.fit_steps, "batch": self.batch, "seed": self.seed, **(fit or {})}),
            prune=PruneConfig(density=min(self.densities), steps=self.prune_steps, **prune),
            coder=CoderConfig(qat_steps=self.qat_steps),
        )


# --quick (1 image, 128x128): every trajectory ablation's tiny training.
QUICK_TRAINING = dict(hidden=24, fit_steps=150, batch=2048, prune_steps=60, qat_steps=10, densities=(0.6, 0.35))


@dataclass(frozen=True)
class ImpVsDenseConfig(Training):
    """imp-vs-dense: the IMP trajectory of the training's network against small dense networks."""

    dense_widths: tuple[int, ...] = (56, 48, 40, 32)  # the small dense networks' widths


@dataclass(frozen=True)
class TicketsConfig(ImpVsDenseConfig):
    """tickets: issue 17's ticket finders against imp-vs-dense's dense networks and per-image IMP
    (the training's network, the magnitude rule: the reference trajectory)."""

    finders: tuple[str, ...] = ("snip", "synflow")  # rules of the encoder's IMP rounds (PruneConfig.rule)
    at_init: tuple[str, ...] = ("snip", "synflow")  # one-shot at the initialisation, then one fit under the mask
    rigl: bool = True  # RigL (the encoder's rigl rule: sparse from the start) at each of the densities
    nm: tuple[str, ...] = ("2:4", "1:4", "4:8")  # N:M patterns (the encoder's nm:N:M rule, density N/M)


@dataclass(frozen=True)
class SinrVsScalarConfig(Training):
    """sinr-vs-scalar: both coders on one pruned snapshot, at each bit depth."""

    sinr_density: float = 0.5  # the snapshot whose weights both coders code (the rounds down to it run)
    bits: tuple[int, ...] = (5, 6, 7, 8, 9, 10)  # bit depths of each coder
    sinr_s: tuple[int, ...] = (16, 24, 32)  # SINR's nonzeros per 32-vector (16 is the codec's default)


@dataclass(frozen=True)
class RewindConfig(Training):
    """rewind: two trajectories that differ only in ``PruneConfig.rewind``."""

    variants: tuple[str, str] = ("init", "none")  # rewind to the initialisation (reference), or fine-tune on


@dataclass(frozen=True)
class MasksConfig(Training):
    """masks: two trajectories that differ only in ``PruneConfig.rule``."""

    variants: tuple[str, str] = ("magnitude", "random")  # winning-ticket mask (reference), or a random one


@dataclass(frozen=True)
class ScheduleConfig(Training):
    """schedule: the training's dense fit (no pruning) with other batch sizes and peak learning rates."""

    batch_scales: tuple[float, ...] = (0.25, 0.5, 2.0)  # batch x this, steps / this (equal pixels)
    lrs: tuple[float, ...] = (1e-3, 5e-3)  # peak learning rates tried besides the codec's 2e-3


@dataclass(frozen=True)
class EntropyCodingConfig(Training):
    """entropy-coding: the training's dense fit coded at each bit depth, Brotli against ideal coders."""

    bits: tuple[int, ...] = (5, 6, 7, 8, 9, 10)  # bit depths coded


@dataclass(frozen=True)
class FourierConfig(Recorded):
    """fourier: a preset's network, fit and coder at full size, with Fourier features of each level."""

    preset: str = "medium"  # the preset whose fit, width and coder it varies
    steps: int | None = 1500  # fit steps (None: the preset's); 1500 was `medium`'s when it ran (1.1)
    levels: tuple[int, ...] = (0, 4, 6, 8)  # Fourier levels tried (0: raw coordinates, the reference)

    legacy: ClassVar[dict[str, str]] = {"fourier_preset": "preset", "fourier_steps": "steps", "pe_levels": "levels"}


@dataclass(frozen=True)
class WidthLrConfig(Recorded):
    """width-lr: ladder points of some widths at full size, with other peak learning rates."""

    widths: tuple[int, ...] = (80, 144)  # ladder widths whose peak learning rate it varies
    peaks: tuple[float, ...] = (2e-3, 1e-3)  # peak learning rates (the first is the baseline)
    steps: int = 1500  # fit steps (release 1.1's, so only the learning rate changes)

    legacy: ClassVar[dict[str, str]] = {"lr_widths": "widths", "lr_peaks": "peaks", "lr_steps": "steps"}


def _d(density: float) -> str:
    return f"d{density:.2f}"


@dataclass(frozen=True)
class QuantizationConfig(Recorded):
    """quantization: one dense fit of a preset at full size, coded by each quantization and entropy
    coding rule (the fit is shared, so only the coding differs)."""

    preset: str = "medium"  # the preset whose network and fit it codes
    steps: int | None = None  # fit steps (None: the preset's)
    lambdas: tuple[float, ...] = (
        250.0,
        500.0,
        1000.0,
    )  # rd_lambda values (MSE + lambda bpp; ~500: the ladder's slope at h80)
    adaround_steps: int = 500  # AdaRound's steps in the rows that use it (0: no AdaRound rows)


@dataclass(frozen=True)
class PriorConfig(Recorded):
    """prior: a preset at full size from the random init and from the shipped prior of its width,
    coded absolutely or as residuals, with L1 weights on the residual."""

    preset: str = "medium"  # the preset (its width must have a shipped prior)
    prior: str = "1"  # the shipped prior's ID (named: --prior auto picks only priors marked as paying)
    steps: tuple[int, ...] = (500, 2000)  # fit steps compared (the preset's own last: equal steps)
    l1s: tuple[float, ...] = (0.0, 1e-4, 1e-3)  # residual L1 weights tried at the preset's steps
    absolute: bool = True  # also: fitted from the prior at the preset's steps, coded absolutely (no residual)


@dataclass(frozen=True)
class PriorNowConfig(PriorConfig):
    """prior-2.0: the same comparison on this release's preset, fitted as it encodes (the native
    fused step, the importance sampler) to its own step count."""

    steps: tuple[int, ...] = (500, 2800)  # fit steps compared (release 2.0's medium: 2800)
    l1s: tuple[float, ...] = (0.0, 1e-4)  # 10^-4: the L1 weight the 1.2 run chose


@dataclass(frozen=True)
class SharedMaskConfig(Recorded):
    """shared-mask: issue 17's mask the decoder already knows (a shipped prior that carries it,
    format v6) against the same release's dense ladder points and per-image IMP of the same width,
    at full size, each fitted as release 2.0's first ladder fits that width (codecs.LADDER_2_0_TORCH)."""

    hidden: int = 80  # width of the sparse priors and of the IMP trajectory (the `medium` preset's)
    priors: tuple[str, ...] = ("2", "3")  # shipped priors with a shared mask, one operating point each
    dense_prior: str = "1"  # the dense meta-learned prior they were pruned from (a reference point)
    densities: tuple[float, ...] = (0.5, 0.3)  # per-image IMP rounds of the width-``hidden`` network
    dense_widths: tuple[int, ...] = (56, 40)  # smaller dense ladder points (width ``hidden`` is IMP's start)
    steps: int | None = None  # fit steps (None: the ladder's for that width; --quick sets a few)
    paper_start: bool = True  # also fit each shared mask from the SIREN paper init (a control for the learned weights)


@dataclass(frozen=True)
class RateControlConfig(Recorded):
    """rate-control: ``--bpp`` on a ladder preset, choosing the ladder width (release 2.0) against
    pruning the preset's network (before), and against the best ladder point under each cap."""

    preset: str = "medium"  # the preset a user gives the cap with (the default)
    caps: tuple[float, ...] = (0.1, 0.2, 0.4)  # rate caps in bpp
    prune_caps: tuple[float, ...] = (0.1, 0.2)  # caps also run the old way: the preset's network pruned to fit
    ladder: str = "photos-first8"  # committed ladder results the choices are compared with (benchmarks/results/)


@dataclass(frozen=True)
class StepsConfig(Recorded):
    """steps: release 2.0's dense ladder points (by default its first ladder, torch's kernels,
    codecs.LADDER_2_0_TORCH; ``ladder`` picks another) at full size with more fit steps (the cosine
    schedule stretched): how far the SIREN is from what its network can reach at these widths,
    i.e. what more encode time (or a GPU) would buy."""

    widths: tuple[int, ...] = (40, 80, 144)  # ladder widths (the low, medium and high presets' networks)
    factors: tuple[int, ...] = (1, 2, 4)  # multiples of each width's ladder fit steps (1: the ladder's own)
    anchor: str = "photos-first8"  # committed results whose JPEG 4:2:0 rows the curves are compared with
    steps: int | None = None  # the x1 fit steps of every width (None: the ladder's for that width; --quick sets a few)
    ladder: str = "2.0-torch"  # the ladder whose points are refitted: 2.0-torch (LADDER_2_0_TORCH) | 2.0 (LADDER)


@dataclass(frozen=True)
class TopConfig(StepsConfig):
    """top: SIREN points above the `high` preset (issue 14, item 6: the curve should reach 32 dB at
    no more than 1 bpp, with a point above `high` if that is what it needs): the presets' ladder
    (native kernels, range coding) at `high`'s width and wider, widths beyond the ladder fitted with
    its widest point's steps and peak learning rate, at the ladder's steps and twice them."""

    widths: tuple[int, ...] = (144, 176, 208)  # `high`'s width (144) and two wider networks
    factors: tuple[int, ...] = (1, 2)  # multiples of the widest ladder point's fit steps
    ladder: str = "2.0"  # release 2.0's ladder as the presets run it


class Ablation(Experiment):
    """One ablation: its config class (``Config``), the tiny one of ``--quick`` (``quick``), its jobs."""

    kind = "ablation"
    question = ""  # one line for the docs
    Config: ClassVar[type] = Training  # its own frozen dataclass; ``config()`` records it as "setup"
    quick: ClassVar[Recorded | None] = None  # --quick's config; None: Config with QUICK_TRAINING

    @classmethod
    def quick_setup(cls) -> Recorded:
        """The tiny config of ``--quick``."""
        return cls.Config(**QUICK_TRAINING) if cls.quick is None else cls.quick

    def __init__(self, setup: Recorded | None = None, device: str = "cpu"):
        self.setup = self.Config() if setup is None else setup
        self.device = device

    def config(self) -> dict:
        return {"setup": asdict(self.setup), "device": self.device}

    def _trajectory(self, prefix: str, cost: float = 1.0, **prune) -> Job:
        settings = tuple(f"{prefix}-{_d(d)}" for d in (1.0, *self.setup.densities))
        return Job(prefix, settings, prune, cost)

    def _run_trajectory(self, arr: np.ndarray, job: Job) -> list[dict]:
        cfg = self.setup.config(**job.params)
        return ladder_rows(arr, cfg, self.setup.densities, job.settings, self.device)

    def _snapshot(self, arr: np.ndarray, densities: list[float]):
        """(config, the last snapshot of a fit with one pruning round per density, header)."""
        from inrcodec.encoder.prune import prune_rounds
        from inrcodec.encoder.session import Session

        session = Session.create(arr, self.setup.config(), self.device)
        *_, snap = prune_rounds(session.network(), session.target, session.cfg, densities=densities)
        return session.cfg, snap, session.header

    def summary(self, doc: dict) -> str:
        raise NotImplementedError

    def crop(self, crop: int | None) -> int | None:
        """The crop this ablation runs at (the command line's, unless it needs full-size images)."""
        return crop

    def scope(self, prov: dict) -> str:
        """Where it ran, for the docs' heading."""
        s = self.setup
        return f"crop {prov['crop']}, width {s.hidden}, {s.fit_steps} fit steps"


def _curve(doc: dict, prefix: str) -> list[dict]:
    return sorted((c for c in doc["curve"] if c["setting"].startswith(prefix + "-")), key=lambda c: c["bpp"])


def _at_rate(bpp: float, curve: list[dict]) -> float | None:
    """PSNR of ``curve`` at ``bpp``, linear in log-rate between its points (None outside them)."""
    if not curve:
        return None
    rates = np.log([c["bpp"] for c in curve])
    if not rates[0] <= np.log(bpp) <= rates[-1]:
        return None
    return float(np.interp(np.log(bpp), rates, [c["psnr"] for c in curve]))


def _rate_at(psnr: float, curve: list[dict]) -> float | None:
    """The bpp ``curve`` needs for ``psnr``, linear in log-rate between its points (None outside them)."""
    pts = sorted(curve, key=lambda c: c["psnr"])
    if not pts or not pts[0]["psnr"] <= psnr <= pts[-1]["psnr"]:
        return None
    return float(np.exp(np.interp(psnr, [c["psnr"] for c in pts], np.log([c["bpp"] for c in pts]))))


def _bd(anchor: list[dict], test: list[dict]) -> str:
    """'BD-rate x%, BD-PSNR y dB' of test against anchor, each or why it cannot be had."""
    ra, pa = [c["bpp"] for c in anchor], [c["psnr"] for c in anchor]
    rt, pt = [c["bpp"] for c in test], [c["psnr"] for c in test]
    out = []
    for label, fn, unit in (("BD-rate", bd_rate, "%"), ("BD-PSNR", bd_psnr, " dB")):
        try:
            out.append(f"{label} {fn(ra, pa, rt, pt):+.2f}{unit}")
        except ValueError as e:  # NoOverlap, or too few points
            out.append(f"no {label} ({e})")
    return ", ".join(out)


def _rates_psnrs(curve: list[dict]) -> tuple[list[float], list[float]]:
    return [c["bpp"] for c in curve], [c["psnr"] for c in curve]


def _encode_s(doc: dict) -> dict[str, float]:
    """setting -> mean encode seconds over the images."""
    times: dict[str, list[float]] = {}
    for r in doc["rows"]:
        times.setdefault(r["setting"], []).append(r["encode_s"])
    return {k: float(np.mean(v)) for k, v in times.items()}


def _versus(c: dict, base: dict | None) -> tuple[str, str]:
    """Cells 'Δ PSNR (dB)' and 'Δ bpp (%)' of curve point ``c`` against ``base`` (– without one)."""
    dp = None if base is None else c["psnr"] - base["psnr"]
    dr = None if base is None else 100 * (c["bpp"] / base["bpp"] - 1)
    return md.fmt(dp, "+.2f"), md.fmt(dr, "+.1f") + "%"


# Columns of the tables that put pruned (or otherwise masked) points beside dense and IMP curves.
POINT_COLUMNS = (
    "point",
    "density",
    "bytes",
    "bpp",
    "PSNR (dB)",
    "− dense at equal bpp (dB)",
    "− IMP at equal bpp (dB)",
    "mask bytes (share)",
    "layer bytes",
    "encode s",
)


def _setting_means(doc: dict) -> Callable[[str, str], float | None]:
    """mean(setting, key): the mean of ``key`` over the images' rows of ``setting`` (None: no values)."""
    by_setting: dict[str, list[dict]] = {}
    for r in doc["rows"]:
        by_setting.setdefault(r["setting"], []).append(r)

    def mean(setting: str, key: str) -> float | None:
        vals = [r[key] for r in by_setting.get(setting, []) if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    return mean


def _point_cells(key: str, c: dict, mean, ref: float | None, ref_imp: float | None, bpp_spec: str) -> tuple:
    """One row of :data:`POINT_COLUMNS`: curve point ``c``, its PSNR against the dense curve's
    (``ref``) and IMP's (``ref_imp``) at its bpp (None: –), its file's mask and layer bytes."""
    mask, nbytes = mean(key, "mask_bytes"), mean(key, "bytes")
    share = f"{mask:.0f} ({100 * mask / nbytes:.1f}%)" if mask is not None and nbytes else md.MISSING
    return (
        key,
        md.fmt(mean(key, "density"), ".3f"),
        md.fmt(nbytes, ".0f"),
        format(c["bpp"], bpp_spec),
        f"{c['psnr']:.2f}",
        md.fmt(None if ref is None else c["psnr"] - ref, "+.2f"),
        md.fmt(None if ref_imp is None else c["psnr"] - ref_imp, "+.2f"),
        share,
        md.fmt(mean(key, "layer_bytes"), ".0f"),
        md.fmt(mean(key, "encode_s"), ".1f"),
    )


def _with_note(lines: list[str], note: str) -> str:
    """A summary: its table lines, a blank line, then one note under the table."""
    return "\n".join([*lines, "", note])


class ImpVsDense(Ablation):
    name, label = "imp-vs-dense", "IMP-pruned large network vs small dense networks"
    question = "Is pruning a large network better than training a small dense one of the same size in bytes?"
    Config = ImpVsDenseConfig
    quick = ImpVsDenseConfig(**QUICK_TRAINING, dense_widths=(18, 14))

    def jobs(self) -> list[Job]:
        s = self.setup
        dense = [Job(f"dense-h{w}", (f"dense-h{w}",), {"hidden": w}, 10.0) for w in s.dense_widths]
        return [self._trajectory("imp", 40.0), *dense]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        if job.key == "imp":
            return self._run_trajectory(arr, job)
        cfg = self.setup.config(hidden=job.params["hidden"])
        return ladder_rows(arr, cfg, (), job.settings, self.device)

    def summary(self, doc: dict) -> str:
        imp, dense = _curve(doc, "imp"), _curve(doc, "dense")
        dense = sorted(dense + [c for c in imp if c["setting"] == "imp-d1.00"], key=lambda c: c["bpp"])
        lines = md.table(("IMP point", "bpp", "PSNR (dB)", "dense at equal bpp (dB)", "IMP − dense (dB)"))
        for c in sorted(imp, key=lambda c: -c["bpp"]):
            if c["setting"] == "imp-d1.00":
                continue  # the same network as the largest dense one
            ref = _at_rate(c["bpp"], dense)
            delta = None if ref is None else c["psnr"] - ref
            lines.append(
                md.row((c["setting"], f"{c['bpp']:.3f}", f"{c['psnr']:.2f}", md.fmt(ref), md.fmt(delta, "+.2f")))
            )
        widths = ", ".join(f"{c['setting']} {c['bpp']:.3f} bpp {c['psnr']:.2f} dB" for c in dense)
        return _with_note(lines, f"Dense networks: {widths}. IMP against dense: {_bd(dense, imp)}.")


class SinrVsScalar(Ablation):
    name, label = "sinr-vs-scalar", "SINR vs scalar coding of the same surviving weights"
    question = "On the same pruned weights, does SINR need fewer bytes than scalar coding for the same PSNR?"
    Config = SinrVsScalarConfig
    quick = SinrVsScalarConfig(**QUICK_TRAINING, bits=(6, 8, 10), sinr_s=(16, 32))

    def jobs(self) -> list[Job]:
        s = self.setup
        settings = [f"scalar-b{b}" for b in s.bits] + [f"sinr{k}-b{b}" for k in s.sinr_s for b in s.bits]
        return [Job("code", tuple(settings), None, 25.0)]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:

        import inrcodec
        from inrcodec.encoder import coding

        s = self.setup
        cfg, snap, header = self._snapshot(arr, [d for d in s.densities if d >= s.sinr_density])
        rows = []
        for setting in job.settings:
            coder, bits = setting.split("-b")
            if coder == "scalar":
                coder_cfg = replace(cfg.coder, weight_coder="scalar")
            else:
                coder_cfg = replace(cfg.coder, weight_coder="sinr", sinr_s=int(coder[4:]))
            t = time.perf_counter()
            coded = coding.code(snap.weights, snap.biases, snap.mask, header, coder_cfg, int(bits))
            encode_s = time.perf_counter() - t
            t = time.perf_counter()
            decoded = inrcodec.decode(coded.data, device=self.device)
            r = row(setting, arr, coded.data, decoded, encode_s, time.perf_counter() - t)
            r.update(density=snap.mask.density(), coders=coded.coders)
            rows.append(r)
        return rows

    def summary(self, doc: dict) -> str:
        s = self.setup
        by = {c["setting"]: c for c in doc["curve"]}
        coders = ["scalar"] + [f"sinr{k}" for k in s.sinr_s]
        names = ["scalar"] + [f"SINR s={k}" for k in s.sinr_s]
        lines = md.table(("bits", *names))
        for b in s.bits:
            cells = [by.get(f"{c}-b{b}") for c in coders]
            lines.append(
                md.row((b, *(md.MISSING if c is None else f"{c['bpp']:.3f} bpp {c['psnr']:.2f} dB" for c in cells)))
            )
        scalar = _curve(doc, "scalar")
        bds = "; ".join(f"s={k}: {_bd(scalar, _curve(doc, f'sinr{k}'))}" for k in s.sinr_s)
        coder = s.config().coder
        return _with_note(
            lines,
            f"Both coders code the same snapshot (density {s.sinr_density}, no QAT); SINR vectors of"
            f" {coder.sinr_k} weights over {coder.sinr_m} atoms. SINR against scalar at equal PSNR: {bds}.",
        )


class Paired(Ablation):
    """Two pruning trajectories that differ in one PruneConfig field (``option``): the config's
    ``variants``, the first the reference."""

    option = ""  # the PruneConfig field the two trajectories set

    def jobs(self) -> list[Job]:
        return [self._trajectory(v, 40.0, **{self.option: v}) for v in self.setup.variants]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        return self._run_trajectory(arr, job)

    def summary(self, doc: dict) -> str:
        return _paired(doc, self.setup.variants, self.setup.densities)


class Rewind(Paired):
    name, label = "rewind", "rewind to initialisation vs no rewinding (fine-tuning)"
    question = "After each pruning round, is rewinding to the initialisation better than fine-tuning, at equal steps?"
    option = "rewind"
    Config = RewindConfig


class Masks(Paired):
    name, label = "masks", "winning (magnitude) vs random masks"
    question = "At equal density, does the magnitude (winning-ticket) mask beat a random mask?"
    option = "rule"
    Config = MasksConfig


class Schedule(Ablation):
    name, label = "schedule", "training schedules at an equal pixel budget"
    question = (
        "For the dense fit, do smaller batches with more steps (the same pixels seen, about the same time)"
        " or another learning rate give more PSNR per byte?"
    )
    Config = ScheduleConfig
    quick = ScheduleConfig(**QUICK_TRAINING, batch_scales=(0.5,), lrs=(5e-3,))

    def variants(self) -> dict[str, dict]:
        """setting -> FitConfig overrides; ``base`` is the setup's own schedule."""
        s = self.setup
        out: dict[str, dict] = {"base": {}}
        for k in s.batch_scales:
            batch = round(s.batch * k)
            out[f"batch{batch}"] = {"batch": batch, "steps": round(s.fit_steps / k)}
        for lr in s.lrs:
            out[f"lr{lr:g}"] = {"lr": lr}
        return out

    def jobs(self) -> list[Job]:
        return [Job(k, (k,), v, 10.0) for k, v in self.variants().items()]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        cfg = self.setup.config(fit=job.params)
        return ladder_rows(arr, replace(cfg, prune=replace(cfg.prune, density=1.0)), (), job.settings, self.device)

    def summary(self, doc: dict) -> str:
        by, enc = {c["setting"]: c for c in doc["curve"]}, _encode_s(doc)
        base = by.get("base")
        lines = md.table(
            (
                "schedule",
                "batch x steps, peak lr",
                "bpp",
                "PSNR (dB)",
                "Δ PSNR vs base (dB)",
                "Δ bpp vs base",
                "encode s",
            )
        )
        for key, over in self.variants().items():
            c = by.get(key)
            if c is None:
                continue
            fit = self.setup.config(fit=over).fit
            cells = (f"{c['bpp']:.3f}", f"{c['psnr']:.2f}", *_versus(c, base), f"{enc[key]:.1f}")
            lines.append(md.row((key, f"{fit.batch} x {fit.steps}, {fit.lr:g}", *cells)))
        return _with_note(
            lines,
            "Dense network of the setup's width, no pruning, coded as the codec codes it (QAT, per-layer bits);"
            " means over the images.",
        )


class Fourier(Ablation):
    name, label = "fourier", "Fourier features of the coordinates"
    question = (
        "Does a SIREN that sees sin/cos(pi 2^k x, y), k < L, before its first sine layer give more PSNR per"
        " byte than one that sees (x, y), at the default preset's operating point?"
    )
    Config = FourierConfig
    quick = FourierConfig(preset="fast", steps=None, levels=(0, 6))

    def crop(self, crop: int | None) -> int | None:
        # On 256-pixel crops the schedule ablation pointed the wrong way for full images; the
        # frequencies an encoding should add depend on the image size, so this one runs at full size.
        return None

    def scope(self, prov: dict) -> str:
        cfg = self._config(0)
        return (
            f"full size, preset `{self.setup.preset}`: width {cfg.arch.hidden}, {cfg.fit.steps} x {cfg.fit.batch} fit"
        )

    def _config(self, levels: int):
        from inrcodec.config import PRESETS_1_2

        cfg = PRESETS_1_2[self.setup.preset]  # the committed tables were measured on release 1.2's presets
        if self.setup.steps is not None:
            cfg = replace(cfg, fit=replace(cfg.fit, steps=self.setup.steps))
        return replace(cfg, arch=replace(cfg.arch, pe_levels=levels))

    def job_config(self, job: Job) -> dict:
        return {"encode_config": record(self._config(job.params)), "device": self.device}

    def jobs(self) -> list[Job]:
        return [Job(f"L{n}", (f"L{n}",), n, 10.0 + n) for n in self.setup.levels]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        return ladder_rows(arr, self._config(job.params), (), job.settings, self.device)

    def summary(self, doc: dict) -> str:
        by, enc = {c["setting"]: c for c in doc["curve"]}, _encode_s(doc)
        base = by.get("L0")
        lines = md.table(
            ("levels L", "first-layer inputs", "bpp", "PSNR (dB)", "Δ PSNR vs L0 (dB)", "Δ bpp vs L0", "encode s")
        )
        for n in self.setup.levels:
            c = by.get(f"L{n}")
            if c is None:
                continue
            cells = (f"{c['bpp']:.3f}", f"{c['psnr']:.2f}", *_versus(c, base), f"{enc[c['setting']]:.1f}")
            lines.append(md.row((n, 2 * (1 + 2 * n), *cells)))
        per_image = {}
        for r in doc["rows"]:
            per_image.setdefault(r["image"], {})[r["setting"]] = r
        lines += ["", "Per image (bpp / PSNR):", ""]
        keys = [f"L{n}" for n in self.setup.levels]
        lines += md.table(
            ("image", *keys),
            (
                (img, *(f"{rs[k]['bpp']:.3f} / {rs[k]['psnr']:.2f}" if k in rs else md.MISSING for k in keys))
                for img, rs in sorted(per_image.items())
            ),
        )
        return _with_note(
            lines,
            "The preset's dense network and coder (QAT, per-layer bits), only the levels changed;"
            " means over the images.",
        )


class LadderPoints(Ablation):
    """Ablations of ladder points at full size: one job per (width, variant), each a dense fit of
    that width coded as the ladder codes it. A subclass says what a variant is (``_variants``,
    ``_config``, ``_setting``) and what a job costs."""

    def _variants(self) -> tuple:
        raise NotImplementedError

    def _config(self, hidden: int, variant: Any) -> EncodeConfig:
        raise NotImplementedError

    @staticmethod
    def _setting(hidden: int, variant: Any) -> str:
        raise NotImplementedError

    def _cost(self, hidden: int, variant: Any) -> float:
        return 3.0 + (hidden / 40) ** 2

    def crop(self, crop: int | None) -> int | None:
        return None  # a crop changes how hard the fit is; the ladder's questions are about full images

    def job_config(self, job: Job) -> dict:
        return {"encode_config": record(self._config(*job.params)), "device": self.device}

    def jobs(self) -> list[Job]:
        return [
            Job(self._setting(h, v), (self._setting(h, v),), (h, v), self._cost(h, v))
            for h in self.setup.widths
            for v in self._variants()
        ]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        return ladder_rows(arr, self._config(*job.params), (), job.settings, self.device)

    def _against(self, doc: dict, base) -> Callable[[int, Any], tuple[dict, str, str] | None]:
        """point(hidden, variant): its mean curve point, 'Δ PSNR mean (per image)' and 'Δ bpp' cells
        against the same width's ``base`` variant; None where it did not run."""
        by = {c["setting"]: c for c in doc["curve"]}
        psnr = {(r["image"], r["setting"]): r["psnr"] for r in doc["rows"]}
        images = sorted({r["image"] for r in doc["rows"]})

        def point(hidden: int, variant) -> tuple[dict, str, str] | None:
            key, ref = self._setting(hidden, variant), self._setting(hidden, base)
            c = by.get(key)
            if c is None:
                return None
            dp, dr = _versus(c, by.get(ref))
            per = [psnr[i, key] - psnr[i, ref] for i in images if (i, key) in psnr and (i, ref) in psnr]
            return c, f"{dp} ({', '.join(f'{d:+.2f}' for d in per)})", dr

        return point


class WidthLr(LadderPoints):
    name, label = "width-lr", "peak learning rate by network width"
    question = (
        "Does a wide ladder network fit better at a lower peak learning rate than the 2e-3 every width"
        " used in release 1.1, at the same steps?"
    )
    Config = WidthLrConfig
    quick = WidthLrConfig(widths=(16,), steps=100)

    def scope(self, prov: dict) -> str:
        fit = self._config(self.setup.widths[0], self.setup.peaks[0]).fit
        return f"full size, ladder points at {fit.steps} x {fit.batch} fit steps"

    def _config(self, hidden: int, lr: float) -> EncodeConfig:
        from inrcodec.config import _ladder_point

        return _ladder_point(hidden, 1.0, self.setup.steps, lr)

    def _variants(self) -> tuple:
        return self.setup.peaks

    @staticmethod
    def _setting(hidden: int, lr: float) -> str:
        return f"h{hidden}-lr{lr:g}"

    def summary(self, doc: dict) -> str:
        s = self.setup
        ref = f"{s.peaks[0]:g}"
        lines = md.table(
            ("width", "peak lr", "bpp", "PSNR (dB)", f"Δ PSNR vs {ref} (dB), mean (per image)", f"Δ bpp vs {ref}")
        )
        point = self._against(doc, s.peaks[0])
        for h in s.widths:
            for lr in s.peaks:
                got = point(h, lr)
                if got is not None:
                    c, dp, dr = got
                    lines.append(md.row((h, f"{lr:g}", f"{c['bpp']:.3f}", f"{c['psnr']:.2f}", dp, dr)))
        return _with_note(
            lines, "Each width's ladder point (its coder, QAT, per-layer bits); only the peak learning rate moved."
        )


def ideal_bytes(q: np.ndarray) -> dict[str, float]:
    """Ideal code lengths (bytes) of integer symbols under two probability models a range/ANS coder
    could use, against Brotli on the same symbols packed as the format packs them.

    ``static``: the symbols' own histogram (zeroth-order entropy) plus its table at 2 bytes per
    distinct symbol; ``laplace``: a discretized zero-mean Laplace with the maximum-likelihood scale,
    plus 4 bytes for it. Real arithmetic coders come within a few bytes of these bounds.
    """
    from inrcodec.format import entropy

    q = np.asarray(q, dtype=np.int64).reshape(-1)
    u = entropy.zigzag(q)
    brotli_bytes = len(entropy.compress(entropy.pack(u, entropy.symbol_width(u))))
    _, counts = np.unique(q, return_counts=True)
    static = float(-(counts * np.log2(counts / q.size)).sum() / 8 + 2 * len(counts))
    b = max(float(np.mean(np.abs(q))), 1e-3)  # MLE scale of a Laplace on the integers (approx.)

    def cdf(x: np.ndarray) -> np.ndarray:
        return np.where(x < 0, 0.5 * np.exp(np.minimum(x, 0) / b), 1 - 0.5 * np.exp(-np.maximum(x, 0) / b))

    p = np.maximum(cdf(q + 0.5) - cdf(q - 0.5), 1e-12)
    laplace = float(-np.log2(p).sum() / 8 + 4)
    return {"brotli": float(brotli_bytes), "static": static, "laplace": laplace}


class EntropyCoding(Ablation):
    name, label = "entropy-coding", "Brotli vs model-based entropy coding of the same weight symbols"
    question = "Would a range coder with a probability model spend fewer bytes than Brotli on the quantized weights?"
    Config = EntropyCodingConfig
    quick = EntropyCodingConfig(**QUICK_TRAINING, bits=(6, 8, 10))

    def jobs(self) -> list[Job]:
        return [Job("code", tuple(f"b{b}" for b in self.setup.bits), None, 15.0)]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:

        import inrcodec
        from inrcodec.encoder import coding
        from inrcodec.format import container

        cfg, snap, header = self._snapshot(arr, [])  # the dense fit
        rows = []
        for setting in job.settings:
            t = time.perf_counter()
            coded = coding.code(snap.weights, snap.biases, snap.mask, header, cfg.coder, int(setting[1:]))
            encode_s = time.perf_counter() - t
            t = time.perf_counter()
            decoded = inrcodec.decode(coded.data, device=self.device)
            r = row(setting, arr, coded.data, decoded, encode_s, time.perf_counter() - t)
            sizes = [ideal_bytes(layer.values_q) for layer in container.read(coded.data).layers]
            r.update({f"weights_{k}_bytes": sum(s[k] for s in sizes) for k in ("brotli", "static", "laplace")})
            rows.append(r)
        return rows

    def summary(self, doc: dict) -> str:
        lines = md.table(
            (
                "bits",
                "file bytes",
                "weights: Brotli",
                "ideal, own histogram + table",
                "ideal, Laplace",
                "best model vs Brotli",
                "share of the file",
            )
        )
        for b in self.setup.bits:
            rs = [r for r in doc["rows"] if r["setting"] == f"b{b}"]
            if not rs:
                continue
            m = {
                k: float(np.mean([r[k] for r in rs]))
                for k in ("bytes", "weights_brotli_bytes", "weights_static_bytes", "weights_laplace_bytes")
            }
            best = min(m["weights_static_bytes"], m["weights_laplace_bytes"])
            gain = best - m["weights_brotli_bytes"]
            sizes = [f"{m[k]:.0f}" for k in ("bytes", "weights_brotli_bytes", "weights_static_bytes")]
            sizes.append(f"{m['weights_laplace_bytes']:.0f}")
            shares = (f"{100 * gain / m['weights_brotli_bytes']:+.1f}%", f"{100 * gain / m['bytes']:+.1f}%")
            lines.append(md.row((b, *sizes, *shares)))
        return _with_note(
            lines,
            "The dense fit of the setup's width, coded at each bit depth (no QAT); the models' figures are"
            " ideal code lengths (`ideal_bytes`), a lower bound for a real range coder. Means over the images.",
        )


def _fitted(arr: np.ndarray, cfg, device: str):
    """(session, network, dense snapshot, fit seconds) of one full fit of ``cfg``."""
    from inrcodec.encoder.prune import prune_rounds
    from inrcodec.encoder.session import Session

    t = time.perf_counter()
    session = Session.create(arr, cfg, device)
    net = session.network()
    *_, snap = prune_rounds(net, session.target, session.cfg, anchor=session.anchor)
    return session, net, snap, time.perf_counter() - t


def _coded_row(
    setting: str, arr: np.ndarray, session, net, snap, seconds: float, device: str, bits: list[int] | None = None
) -> dict:
    """Code ``snap`` as ``session``'s config says (depths unless ``bits`` fixes them, fine-tuning,
    coders) and measure the file."""
    import inrcodec
    from inrcodec.encoder.allocate import allocate_bits
    from inrcodec.encoder.coding import finish
    from inrcodec.format import container, entropy

    t = time.perf_counter()
    net.load(snap.weights, snap.biases)
    bits = allocate_bits(session, net, snap) if bits is None else bits
    coded = finish(session, net, snap, bits)
    encode_s = seconds + time.perf_counter() - t
    t = time.perf_counter()
    decoded = inrcodec.decode(coded.data, device=device)
    r = row(setting, arr, coded.data, decoded, encode_s, time.perf_counter() - t)
    stream = container.read(coded.data)
    coders = [entropy.CODERS[lc.entropy_coder] for lc in stream.layers]
    r.update(bits=bits, entropy_coders=coders, prior=stream.header.prior)  # prior: the ID the file names
    return r


class Quantization(Ablation):
    name, label = "quantization", "Quantization and entropy coding rules on the same fit"
    question = (
        "Given one fitted network, what do the range coder (against Brotli, on the same symbols), depths chosen by"
        " MSE + lambda bpp (against the dB budget), the greedy rounding pass and AdaRound buy?"
    )
    Config = QuantizationConfig
    quick = QuantizationConfig(preset="fast", steps=200, lambdas=(500.0,), adaround_steps=20)

    def crop(self, crop: int | None) -> int | None:
        return None  # the presets' own operating points: full-size images

    def scope(self, prov: dict) -> str:
        cfg = self._config()
        return (
            f"full size, preset `{self.setup.preset}`: width {cfg.arch.hidden}, {cfg.fit.steps} x {cfg.fit.batch} fit"
        )

    def _config(self):
        from inrcodec.config import PRESETS_1_2

        cfg = PRESETS_1_2[self.setup.preset]  # the committed tables were measured on release 1.2's presets
        return cfg if self.setup.steps is None else replace(cfg, fit=replace(cfg.fit, steps=self.setup.steps))

    def _settings(self) -> dict[str, dict]:
        """setting -> the CoderConfig fields it changes."""
        out = {"brotli": {}, "range": {"entropy_coder": "range"}, "auto": {"entropy_coder": "auto"}}
        ada = {"adaround_steps": self.setup.adaround_steps}
        if ada["adaround_steps"]:  # at auto's depths: after fine-tuning, and in its place
            out["adaround"] = {"entropy_coder": "auto", **ada}
            out["adaround-unrounded"] = {**out["adaround"], "adaround_start": "unrounded"}
            out["no-qat"] = {"entropy_coder": "auto", "qat_steps": 0}
            out["no-qat+adaround"] = {**out["no-qat"], **ada}
        for lam in self.setup.lambdas:
            out[f"rd{lam:g}"] = {"entropy_coder": "auto", "rd_lambda": lam, "rd_rounding": False}
            out[f"rd{lam:g}+round"] = {"entropy_coder": "auto", "rd_lambda": lam, "rd_rounding": True}
            out[f"rd{lam:g}+round-both"] = {**out[f"rd{lam:g}+round"], "rd_round_moves": "both"}
            if ada["adaround_steps"]:
                out[f"rd{lam:g}+adaround"] = {**out[f"rd{lam:g}"], **ada}
        return out

    def jobs(self) -> list[Job]:
        return [Job("code", tuple(self._settings()), None, 60.0)]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        session, net, snap, fit_s = _fitted(arr, self._config(), self.device)
        rows: list[dict] = []
        for setting in job.settings:
            coder = replace(session.cfg.coder, **self._settings()[setting])
            variant = replace(session, cfg=replace(session.cfg, coder=coder))
            # every rule but the rdλ ones codes at brotli's depths: the same symbols (range, auto), or
            # the same grid rounded another way
            brotli = next((r for r in rows if r["setting"] == "brotli"), None)
            same = brotli["bits"] if brotli and not setting.startswith("rd") else None
            rows.append(_coded_row(setting, arr, variant, net, snap, fit_s, self.device, same))
        return rows

    def summary(self, doc: dict) -> str:
        by, enc = {c["setting"]: c for c in doc["curve"]}, _encode_s(doc)
        base = by.get("brotli")
        lines = md.table(("rule", "bpp", "PSNR (dB)", "Δ PSNR vs brotli (dB)", "Δ bpp vs brotli", "encode s"))
        for key in self._settings():
            c = by.get(key)
            if c is not None:
                cells = (key, f"{c['bpp']:.4f}", f"{c['psnr']:.2f}", *_versus(c, base), md.fmt(enc.get(key), ".1f"))
                lines.append(md.row(cells))
        rd = [by[k] for k in self._settings() if k.startswith("rd") and "round" not in k and k in by]
        rounded = [by[k] for k in self._settings() if k.endswith("+round") and k in by]
        both = [by[k] for k in self._settings() if k.endswith("+round-both") and k in by]
        ada = [by[k] for k in self._settings() if k.startswith("rd") and k.endswith("+adaround") and k in by]
        few = "too few points"
        note = (
            "One dense fit per image, coded by each rule: `brotli` is release 1.2's (per-layer depths within a"
            " 0.25 dB budget, Brotli), `range`/`auto` brotli's depths, so the same symbols, range coded (every"
            " layer) or whichever section is smaller per layer, `rdλ` depths by MSE + λ bpp with `auto` coding,"
            " `+round` with the rounding pass (moves towards zero), `+round-both` with the pass moving each"
            " weight by whichever of -1 and +1 is predicted better."
            f" Rounding against none over the λ points: {_bd(rd, rounded) if len(rd) > 1 else few}."
            + (f" Rounding both ways against none: {_bd(rd, both) if len(rd) > 1 else few}." if both else "")
            + (
                f" AdaRound ({self.setup.adaround_steps} steps after fine-tuning, from the nearest levels) against"
                f" none: {_bd(rd, ada) if len(rd) > 1 else few}; against rounding both ways:"
                f" {_bd(both, ada) if len(both) > 1 else few}. `adaround`, `no-qat`, `no-qat+adaround`: auto's"
                " depths with AdaRound after fine-tuning, without fine-tuning (nearest rounding), and AdaRound in"
                " its place (from the unrounded weights, the paper's start); `adaround-unrounded`: after"
                " fine-tuning, from the unrounded weights. Encode seconds: the shared fit's"
                " plus the rule's coding, on one core; the rows at brotli's depths skip the depth search"
                " (brotli against auto: its cost)."
                if ada
                else ""
            )
            + " Means over the images."
        )
        return _with_note(lines, note)


class Prior(Ablation):
    name, label = "prior", "The shipped prior: meta-learned init and residual coding"
    question = (
        "At the preset's own steps (and fewer), does starting from the shipped prior and coding residuals from it"
        " beat the random init, and what does an L1 weight on the residual buy?"
    )
    Config = PriorConfig
    quick = PriorConfig(preset="medium", steps=(30,), l1s=(0.0,))

    def crop(self, crop: int | None) -> int | None:
        return None

    def scope(self, prov: dict) -> str:
        cfg = self._config(self.setup.steps[-1])
        return f"full size, preset `{self.setup.preset}`: width {cfg.arch.hidden}, batch {cfg.fit.batch}"

    def _config(self, steps: int, prior: str = "none", l1: float = 0.0):
        from inrcodec.config import PRESETS_1_2

        cfg = PRESETS_1_2[self.setup.preset]  # the committed tables were measured on release 1.2's presets
        return replace(cfg, prior=prior, fit=replace(cfg.fit, steps=steps, l1=l1))

    def _variants(self) -> dict[str, tuple[int, str, float, bool]]:
        """setting -> (steps, prior, l1, absolute: fitted from the prior, its weights coded as they are)."""
        out = {}
        for n in self.setup.steps:
            out[f"random-{n}"] = (n, "none", 0.0, False)
            out[f"prior-{n}"] = (n, self.setup.prior, 0.0, False)
        last = self.setup.steps[-1]
        if self.setup.absolute:
            out[f"prior-{last}-absolute"] = (last, self.setup.prior, 0.0, True)
        for l1 in self.setup.l1s:
            if l1 > 0:
                out[f"prior-{last}-l1={l1:g}"] = (last, self.setup.prior, l1, False)
        return out

    def job_config(self, job: Job) -> dict:
        absolute = {"absolute": True} if job.params[3] else {}  # the other jobs keep their fingerprints
        return {"encode_config": record(self._config(*job.params[:3])), "device": self.device, **absolute}

    def jobs(self) -> list[Job]:
        return [Job(k, (k,), v, v[0] / 25) for k, v in self._variants().items()]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        from inrcodec.encoder.fit import evaluate
        from inrcodec.encoder.session import Session

        cfg = self._config(*job.params[:3])
        session, net, snap, fit_s = _fitted(arr, cfg, self.device)
        if (session.anchor is None) != (job.params[1] == "none"):
            raise RuntimeError(f"{job.settings[0]}: the prior was not used as asked")  # never a silent random init
        coding = Session.create(arr, replace(cfg, prior="none"), self.device) if job.params[3] else session
        r = _coded_row(job.settings[0], arr, coding, net, snap, fit_s, self.device)
        net.load(snap.weights, snap.biases)
        r["fit_psnr"] = evaluate(net, session.target)  # before quantization
        if session.anchor is not None:
            r["residual_mean_abs"] = float(
                np.mean([(w - a).abs().mean().item() for w, a in zip(snap.weights, session.anchor[0])])
            )
        return [r]

    def summary(self, doc: dict) -> str:
        by = {c["setting"]: c for c in doc["curve"]}
        rows_by = {}
        for r in doc["rows"]:
            rows_by.setdefault(r["setting"], []).append(r)
        head = ("setting", "fit PSNR (dB)", "bpp", "PSNR (dB)", "Δ PSNR vs random (dB)", "Δ bpp vs random", "encode s")
        lines = md.table(head)
        for key, (steps, *_rest) in self._variants().items():
            c = by.get(key)
            if c is None:
                continue
            fit = float(np.mean([r["fit_psnr"] for r in rows_by[key]]))
            secs = float(np.mean([r["encode_s"] for r in rows_by[key]]))
            cells = (f"{fit:.2f}", f"{c['bpp']:.4f}", f"{c['psnr']:.2f}", *_versus(c, by.get(f"random-{steps}")))
            lines.append(md.row((key, *cells, f"{secs:.1f}")))
        return _with_note(
            lines,
            "The preset's dense network, fit and coder; only the init, steps and L1 weight change (`-absolute`:"
            " fitted from the prior like `prior-N`, its weights coded as they are, in a file that names no"
            " prior, so the init and the residual coding are separated). Encode s: the fit and the coding, one"
            " thread (the prior itself costs nothing at encode time, so equal steps are equal time; an L1 weight can"
            " cost a little: it takes the fit off the native kernels' whole step). Means over the images.",
        )


class PriorNow(Prior):
    name, label = "prior-2.0", "The shipped prior on release 2.0's preset"
    question = (
        "Fitted as release 2.0's preset fits (native fused step, importance sampler) to its own step count,"
        " does the shipped prior beat the random init, and what do residual coding and the L1 weight buy?"
    )
    Config = PriorNowConfig
    quick = PriorNowConfig(preset="medium", steps=(30,), l1s=(0.0,))

    def _config(self, steps: int, prior: str = "none", l1: float = 0.0):
        from inrcodec.config import PRESETS

        cfg = PRESETS[self.setup.preset]
        return replace(cfg, prior=prior, fit=replace(cfg.fit, steps=steps, l1=l1))


# --- tickets (issue 17) -------------------------------------------------------------------------


def nm_code_bytes(shapes: list[tuple[int, int]], n: int, m: int) -> int:
    """Bytes of an N:M-aware mask code for weight matrices of ``shapes`` ((out, in) each): the
    mask's index among all N:M masks of those shapes, one integer in mixed radix (each full group
    of M weights along a row one of C(M, N) choices, a row's partial group of r = in mod M weights
    one of C(r, ceil(N r / M))), so ceil(log2(count)) bits, rounded up to whole bytes. A computed
    size only: the format codes every mask as one Brotli'd bit per weight."""
    count = 1
    for out, inp in shapes:
        full, r = divmod(inp, m)
        per_row = math.comb(m, n) ** full * (math.comb(r, -(-n * r // m)) if r else 1)
        count *= per_row**out
    return ((count - 1).bit_length() + 7) // 8


def is_nm(keeps: list[np.ndarray], n: int, m: int) -> bool:
    """Whether every (out, in) mask keeps exactly N of each full group of M weights along a row and
    ceil(N r / M) of a row's partial group of r: the masks :func:`nm_code_bytes` counts."""
    for k in keeps:
        out, inp = k.shape
        full = inp - inp % m
        if full and not np.all(k[:, :full].reshape(out, full // m, m).sum(axis=2) == n):
            return False
        if full < inp and not np.all(k[:, full:].sum(axis=1) == -(-n * (inp - full) // m)):
            return False
    return True


def _file_fields(data: bytes, r: dict, nm: tuple[int, int] | None) -> dict:
    """What a file spends on its mask and on its layers (section bytes, 5-byte frames included); for
    an N:M point also the size its mask would take coded as N:M, and the file's size with it (the
    MASKS section's frame kept, its Brotli payload replaced by that code)."""
    from inrcodec.format import container

    stream = container.read(data)
    sections = stream.section_bytes
    out = {
        "mask_bytes": sections.get("masks", 0),
        "layer_bytes": sum(v for k, v in sections.items() if k.startswith("layer")),
    }
    if nm is not None:
        keeps = container.split_masks(stream.masks, stream.header)
        code = nm_code_bytes([k.shape for k in keeps], *nm) if stream.masks is not None else 0
        frame = container.SECTION_FRAME.size if stream.masks is not None else 0
        substituted = len(data) - out["mask_bytes"] + frame + code
        out.update(
            nm_valid=is_nm(keeps, *nm),
            nm_code_bytes=code,
            nm_mask_bytes=frame + code,
            bytes_if_nm=substituted,
            bpp_if_nm=r["bpp"] * substituted / len(data),
        )
    return out


def _encoded_rows(arr: np.ndarray, encoded: list, settings, device: str, nm: tuple[int, int] | None = None):
    """:func:`benchmarks.codecs.encoded_rows`, plus the files' mask and layer bytes."""
    rows = encoded_rows(arr, encoded, settings, device)
    for r, enc in zip(rows, encoded):
        r.update(_file_fields(enc.data, r, nm))
    return rows


def _encode_at_init(arr: np.ndarray, cfg, finder: str, density: float, device: str):
    """A lone encode whose mask is found at the initialisation θ0 (SNIP on every pixel, or SynFlow
    data-free, to the count the magnitude rule keeps at ``density``), then one fit of ``fit.steps``
    from θ0 under it, coded as the encoder codes a snapshot. Pruning at initialisation as the papers
    do it; not an encoder rule (the encoder's snip and synflow rank the trained weights of IMP rounds)."""
    from inrcodec.encoder import rules
    from inrcodec.encoder.allocate import allocate_bits
    from inrcodec.encoder.coding import finish
    from inrcodec.encoder.fit import train
    from inrcodec.encoder.mask import Mask
    from inrcodec.encoder.pipeline import measured
    from inrcodec.encoder.prune import Snapshot
    from inrcodec.encoder.session import Session

    t0 = time.perf_counter()
    session = Session.create(arr, cfg, device)
    net = session.network()
    dense = Mask.dense(list(net.weights))
    if finder == "snip":
        mask = dense.prune_by(rules.snip_scores(net, session.target), 1 - density)
    elif finder == "synflow":
        mask = rules.synflow_mask(list(net.weights), rules.count_after(dense, 1 - density))
    else:
        raise ValueError(f"no pruning at initialisation for {finder!r}; use snip or synflow")
    mask = mask.to(session.device)
    train(net, session.target, session.cfg.fit, session.cfg.fit.steps, mask=mask, anchor=session.anchor)
    snap = Snapshot(0, mask, *net.state(), time.perf_counter() - t0)
    tc = time.perf_counter()
    bits = allocate_bits(session, net, snap)
    coded = finish(session, net, snap, bits)
    return measured(session, coded, snap, bits, snap.seconds, time.perf_counter() - tc)


class Tickets(Ablation):
    """Issue 17: each ticket finder a trajectory of the training's network (imp-vs-dense's protocol),
    against the small dense networks and against per-image IMP (the magnitude rule), at equal bytes."""

    name, label = "tickets", "ticket finders vs small dense networks and per-image IMP"
    question = (
        "At equal bytes, does a ticket finder (SNIP, SynFlow, RigL, N:M masks) make pruning the training's"
        " network pay against small dense networks, or beat per-image IMP; and would an N:M mask code?"
    )
    Config = TicketsConfig
    quick = TicketsConfig(**QUICK_TRAINING, dense_widths=(18, 14))

    def finders(self) -> dict[str, str]:
        """Curve prefix -> what it is, the reference IMP first."""
        s = self.setup
        out = {"imp": "IMP, magnitude (reference)"}
        out.update({f: f"{f}-ranked IMP rounds (encoder rule)" for f in s.finders})
        out.update({f"{f}@init": f"{f} at θ0, one fit (not an encoder rule)" for f in s.at_init})
        if s.rigl:
            out["rigl"] = "RigL (encoder rule)"
        if s.nm:
            out["nm"] = f"N:M {', '.join(s.nm)} (encoder rule)"
        return out

    def jobs(self) -> list[Job]:
        s = self.setup

        def lone(setting: str, params: dict, cost: float) -> Job:
            return Job(setting, (setting,), params, cost)

        out = [self._trajectory("imp", 40.0)]
        out += [lone(f"dense-h{w}", {"hidden": w}, 10.0) for w in s.dense_widths]
        out += [self._trajectory(f, 45.0, rule=f) for f in s.finders]
        out += [lone(f"{f}@init-{_d(d)}", {"at_init": f, "density": d}, 12.0) for f in s.at_init for d in s.densities]
        if s.rigl:
            out += [lone(f"rigl-{_d(d)}", {"rule": "rigl", "density": d}, 15.0) for d in s.densities]
        out += [lone(f"nm-{p}", {"rule": f"nm:{p}"}, 15.0) for p in s.nm]
        return out

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        from inrcodec.encoder import rules
        from inrcodec.encoder.pipeline import encode_array, encode_ladder

        s, p = self.setup, job.params
        if "hidden" in p:  # a small dense network: its dense fit only, as imp-vs-dense's
            encoded = encode_ladder(arr, s.config(hidden=p["hidden"]), [], device=self.device)
            return _encoded_rows(arr, encoded, job.settings, self.device)
        if "at_init" in p:
            enc = _encode_at_init(arr, s.config(), p["at_init"], p["density"], self.device)
            return _encoded_rows(arr, [enc], job.settings, self.device)
        rule = p.get("rule", "magnitude")
        if rule in ("magnitude", *s.finders):  # a trajectory: dense fit, one IMP round per density
            encoded = encode_ladder(arr, s.config(**p), list(s.densities), device=self.device)
            return _encoded_rows(arr, encoded, job.settings, self.device)
        cfg = s.config()  # rigl at its density, nm:N:M at N/M: one encode each
        density = p.get("density", rules.fixed_density(rule))
        cfg = replace(cfg, prune=replace(cfg.prune, rule=rule, density=density))
        enc = encode_array(arr, cfg, device=self.device)
        return _encoded_rows(arr, [enc], job.settings, self.device, rules.parse_nm(rule))

    def summary(self, doc: dict) -> str:
        mean = _setting_means(doc)

        start = [c for c in doc["curve"] if c["setting"] == "imp-d1.00"]  # every finder's dense start
        dense = sorted(_curve(doc, "dense") + start, key=lambda c: c["bpp"])
        imp = _curve(doc, "imp")
        curves = {}
        for prefix in self.finders():
            own = _curve(doc, prefix)
            curves[prefix] = (
                own
                if any(c["setting"].endswith("-d1.00") for c in own)
                else sorted(own + start, key=lambda c: c["bpp"])
            )
        start_layer = mean("imp-d1.00", "layer_bytes")

        lines = md.table(POINT_COLUMNS)
        for prefix in self.finders():
            for c in sorted(_curve(doc, prefix), key=lambda c: -c["bpp"]):
                key = c["setting"]
                if key.endswith("-d1.00") and prefix != "imp":
                    continue  # the same fit and file as imp-d1.00
                ref = _at_rate(c["bpp"], dense)
                ref_imp = None if key.startswith("imp-") else _at_rate(c["bpp"], imp)
                lines.append(md.row(_point_cells(key, c, mean, ref, ref_imp, ".3f")))

        verdicts = md.table(("finder", "against dense", "against IMP", "verdict"))
        for prefix, what in self.finders().items():
            curve = curves[prefix]
            vs_imp = md.MISSING if prefix == "imp" else _bd(imp, curve)
            verdict = self._verdict(curve, doc, dense, mean, start_layer)
            verdicts.append(md.row((f"{prefix}: {what}", _bd(dense, curve), vs_imp, verdict)))
        if self.setup.nm:
            coded = self._nm_coded(doc, start)
            label = "nm, its mask coded as N:M (a computed size: the format has no such code)"
            verdict = self._verdict(coded, doc, dense, mean, start_layer, coded_as_nm=True)
            verdicts.append(md.row((label, _bd(dense, coded), _bd(imp, coded), verdict)))

        parts = [
            *lines,
            "",
            "Means over the images. Every curve starts at the same dense fit (imp-d1.00, the training's network"
            " unpruned; the snip/synflow trajectories' own d1.00 files are that file) and is compared at equal"
            " bytes with the dense curve (the small dense networks and imp-d1.00) and with IMP's; the BD figures"
            " below include that shared start. Mask bytes: the MASKS section (frame included) as the format"
            " codes it (Brotli'd bit per weight); layer bytes: the LAYER sections. Encode s: a lone encode to"
            " the point (fit, rounds up to it, its coding).",
            "",
            *verdicts,
        ]
        if self.setup.nm:
            parts += ["", self._nm_table(doc, mean, dense, imp, start)]
        return "\n".join(parts)

    @staticmethod
    def _verdict(curve, doc, dense, mean, start_layer, coded_as_nm: bool = False) -> str:
        """Pays (negative BD-rate against dense) or not, and why: the mask's bytes, the layer bytes
        the pruned points save against the dense start, their PSNR against it and at equal bytes.
        ``coded_as_nm``: the N:M points with their mask's computed N:M code size in place of the MASKS section."""
        try:
            gain = bd_rate([c["bpp"] for c in dense], [c["psnr"] for c in dense], *_rates_psnrs(curve))
        except ValueError:
            gain = None
        pruned = [c for c in curve if not c["setting"].endswith("-d1.00")]
        if not pruned:
            return "no pruned points yet"
        mask_key, bytes_key = ("nm_mask_bytes", "bytes_if_nm") if coded_as_nm else ("mask_bytes", "bytes")
        start = next((c for c in doc["curve"] if c["setting"] == "imp-d1.00"), None)
        mask = np.mean([mean(c["setting"], mask_key) or 0 for c in pruned])
        share = 100 * np.mean([(mean(c["setting"], mask_key) or 0) / mean(c["setting"], bytes_key) for c in pruned])
        layer = np.mean([mean(c["setting"], "layer_bytes") or 0 for c in pruned])
        deltas = [c["psnr"] - ref for c in pruned if (ref := _at_rate(c["bpp"], dense)) is not None]
        why = f"its pruned points spend {mask:.0f} B ({share:.1f}% of the file) on the mask"
        if start is not None and start_layer is not None:
            why += (
                f" and save {start_layer - layer:.0f} B of layer bytes against the dense start,"
                f" at {np.mean([c['psnr'] for c in pruned]) - start['psnr']:+.2f} dB against it"
            )
        if deltas:
            why += f"; at equal bytes {np.mean(deltas):+.2f} dB against dense"
        if gain is None:
            head = "undetermined (no BD-rate against dense)"
        else:
            head = (
                ("would pay" if coded_as_nm else "pays")
                if gain < 0
                else ("would not pay" if coded_as_nm else "does not pay")
            )
            head += f" (BD-rate {gain:+.1f}% against dense)"
        return f"{head}: {why}"

    def _nm_coded(self, doc: dict, start: list[dict]) -> list[dict]:
        """The N:M curve with each point's rate as if its mask were coded as N:M (computed sizes), the
        shared dense start (no mask) unchanged."""
        out = []
        for p in self.setup.nm:
            rs = [r for r in doc["rows"] if r["setting"] == f"nm-{p}"]
            if rs:
                bpp = float(np.mean([r["bpp_if_nm"] for r in rs]))
                out.append({"setting": f"nm-{p}", "bpp": bpp, "psnr": float(np.mean([r["psnr"] for r in rs]))})
        return sorted(out + start, key=lambda c: c["bpp"])

    def _nm_table(self, doc, mean, dense, imp, start) -> str:
        """The N:M points as coded, and with their mask coded as N:M (a computed size)."""
        from inrcodec.format import container

        lines = md.table(
            (
                "pattern",
                "density",
                "file bytes",
                "MASKS section bytes, frame included (share)",
                "mask bytes if coded as N:M (computed, not in the format): code + frame",
                "file bytes with it",
                "PSNR (dB)",
                "− dense at equal bpp (dB), as coded",
                "− dense at equal bpp (dB), with the N:M code",
                "exact N:M masks",
            )
        )
        for p in self.setup.nm:
            key = f"nm-{p}"
            rs = [r for r in doc["rows"] if r["setting"] == key]
            if not rs:
                continue
            psnr = float(np.mean([r["psnr"] for r in rs]))
            bpp, bpp_nm = float(np.mean([r["bpp"] for r in rs])), float(np.mean([r["bpp_if_nm"] for r in rs]))
            ref, ref_nm = _at_rate(bpp, dense), _at_rate(bpp_nm, dense)
            mask, nbytes = mean(key, "mask_bytes"), mean(key, "bytes")
            cells = (
                p,
                md.fmt(mean(key, "density"), ".3f"),
                f"{nbytes:.0f}",
                f"{mask:.0f} ({100 * mask / nbytes:.1f}%)",
                f"{mean(key, 'nm_code_bytes'):.0f} + {container.SECTION_FRAME.size}",
                f"{mean(key, 'bytes_if_nm'):.0f}",
                f"{psnr:.2f}",
                md.fmt(None if ref is None else psnr - ref, "+.2f"),
                md.fmt(None if ref_nm is None else psnr - ref_nm, "+.2f"),
                f"{sum(bool(r['nm_valid']) for r in rs)}/{len(rs)}",
            )
            lines.append(md.row(cells))
        curve = self._nm_coded(doc, start)
        note = (
            "N:M masks. The mask bytes if coded as N:M are a computed size, of a code the format does not"
            " implement: ceil(log2 of the number of N:M masks of the network's shapes) bits (every full group"
            " of M weights along a row one of C(M, N), a partial group of r one of C(r, ceil(N r / M))), in"
            " whole bytes, plus the section's 5-byte frame, in place of the MASKS section's bytes; nothing"
            " else of the files changes. With that substitution (computed, not implemented): N:M against"
            f" dense {_bd(dense, curve)}; against IMP {_bd(imp, curve)}."
        )
        return _with_note(lines, note)


def _paired(doc: dict, variants: tuple[str, str], densities: tuple[float, ...]) -> str:
    """A table of two trajectories side by side, per density."""
    a, b = variants
    by, enc = {c["setting"]: c for c in doc["curve"]}, _encode_s(doc)
    lines = md.table(
        (
            "density",
            f"{a} bpp",
            f"{a} PSNR (dB)",
            f"{b} bpp",
            f"{b} PSNR (dB)",
            f"{b} − {a} (dB)",
            f"encode s ({a} / {b})",
        )
    )
    for d in densities:
        ca, cb = by.get(f"{a}-{_d(d)}"), by.get(f"{b}-{_d(d)}")
        if ca and cb:
            cells = [x for c in (ca, cb) for x in (f"{c['bpp']:.3f}", f"{c['psnr']:.2f}")]
            times = f"{enc[ca['setting']]:.1f} / {enc[cb['setting']]:.1f}"
            lines.append(md.row((f"{d:.2f}", *cells, f"{cb['psnr'] - ca['psnr']:+.2f}", times)))
    return _with_note(lines, f"{b} against {a} over all points: {_bd(_curve(doc, a), _curve(doc, b))}.")


def _shared_mask_from_paper_init(arr: np.ndarray, cfg, device: str):
    """An encode with a shared-mask prior (a version 6 file, residuals from that prior) whose fit
    starts from the SIREN paper init at the mask's kept positions instead of the prior's weights:
    the same mask and file layout, without the meta-learned values. Not an encoder option."""
    import torch

    from inrcodec.encoder.allocate import allocate_bits
    from inrcodec.encoder.coding import finish
    from inrcodec.encoder.pipeline import measured
    from inrcodec.encoder.prune import prune_rounds
    from inrcodec.encoder.session import Session
    from inrcodec.siren import Siren

    session = Session.create(arr, cfg, device)
    if session.shared is None:
        raise RuntimeError(f"prior {cfg.prior} carries no mask")
    net = Siren(session.cfg.arch, torch.Generator().manual_seed(session.cfg.fit.seed)).to(session.device)
    ws, bs = net.state()
    net.load(session.shared.apply(ws), bs)
    (snap,) = prune_rounds(net, session.target, session.cfg, anchor=session.anchor, shared=session.shared)
    tc = time.perf_counter()
    bits = allocate_bits(session, net, snap)
    coded = finish(session, net, snap, bits)
    return measured(session, coded, snap, bits, snap.seconds, time.perf_counter() - tc)


class SharedMask(Ablation):
    """Issue 17: a shared mask costs a file nothing (format v6); does the sparse network it leaves
    beat a dense network of the same bytes, or per-image IMP, when both fit as the ladder fits?"""

    name, label = "shared-mask", "a mask the decoder already knows (sparse meta-learned priors)"
    question = (
        "At equal bytes, does fitting the sparse network a shipped prior's shared mask leaves (no mask in the"
        " file) beat the ladder's dense networks and per-image IMP of the same width?"
    )
    Config = SharedMaskConfig
    quick = SharedMaskConfig(priors=("2",), densities=(0.5,), dense_widths=(40,), steps=110)

    def crop(self, crop: int | None) -> int | None:
        return None

    def scope(self, prov: dict) -> str:
        cfg = self._config(self.setup.hidden)
        fit = cfg.fit
        hidden = self.setup.hidden
        return f"full size, release 2.0's first ladder fit: width {hidden}, {fit.steps} steps, batch {fit.batch}"

    def _config(self, hidden: int, prior: str = "none", density: float = 1.0):
        from benchmarks.codecs import LADDER_2_0_TORCH as LADDER
        from benchmarks.codecs import Trajectory

        traj = next((t for t in LADDER.trajectories if t.hidden == hidden), Trajectory(hidden=hidden, densities=()))
        cfg = LADDER.encode_config(replace(traj, densities=(density,) if density < 1 else ()))
        if self.setup.steps is not None:
            cfg = replace(cfg, fit=replace(cfg.fit, steps=self.setup.steps))
        return replace(cfg, prior=prior)

    def _jobs(self) -> dict[str, tuple[tuple[str, ...], dict, float]]:
        """job key -> (settings, params, cost)."""
        s = self.setup
        imp = tuple(f"imp-{_d(d)}" for d in (1.0, *s.densities))
        out = {"imp": (imp, {"hidden": s.hidden, "density": min(s.densities)}, 70.0)}
        out[f"prior{s.dense_prior}"] = (
            (f"prior{s.dense_prior}-d1.00",),
            {"hidden": s.hidden, "prior": s.dense_prior},
            50.0,
        )
        for pid in s.priors:
            out[f"shared{pid}"] = ((f"shared{pid}",), {"hidden": s.hidden, "prior": pid}, 50.0)
            if s.paper_start:
                params = {"hidden": s.hidden, "prior": pid, "start": "paper"}
                out[f"shared{pid}-paper"] = ((f"shared{pid}-paper",), params, 50.0)
        for w in s.dense_widths:
            out[f"dense-h{w}"] = ((f"dense-h{w}",), {"hidden": w}, 50.0 * (w / s.hidden) ** 2)
        return out

    def job_config(self, job: Job) -> dict:
        p = job.params
        cfg = self._config(p["hidden"], p.get("prior", "none"), p.get("density", 1.0))
        out = {"encode_config": record(cfg), "densities": list(self.setup.densities), "device": self.device}
        return out | ({"start": p["start"]} if "start" in p else {})

    def jobs(self) -> list[Job]:
        return [Job(k, settings, params, cost) for k, (settings, params, cost) in self._jobs().items()]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        from inrcodec import priors
        from inrcodec.encoder.pipeline import encode_ladder

        p = job.params
        cfg = self._config(p["hidden"], p.get("prior", "none"), p.get("density", 1.0))
        densities = list(self.setup.densities) if job.key == "imp" else []
        if p.get("start") == "paper":
            encoded = [_shared_mask_from_paper_init(arr, cfg, self.device)]
        else:
            encoded = encode_ladder(arr, cfg, densities, device=self.device)
        rows = _encoded_rows(arr, encoded, job.settings, self.device)
        for r, enc in zip(rows, encoded):
            if enc.data[4] != (6 if job.key.startswith("shared") else 4 if "prior" in p else 3):
                raise RuntimeError(f"{r['setting']}: written as version {enc.data[4]}, not as asked")
            if job.key.startswith("shared") and priors.mask(int(p["prior"])) is None:
                raise RuntimeError(f"prior {p['prior']} carries no mask")
        return rows

    def summary(self, doc: dict) -> str:
        s = self.setup
        mean = _setting_means(doc)

        by = {c["setting"]: c for c in doc["curve"]}
        start = [by[k] for k in ("imp-d1.00",) if k in by]
        dense = sorted(_curve(doc, "dense") + start, key=lambda c: c["bpp"])
        imp = _curve(doc, "imp")
        shared = sorted([by[f"shared{p}"] for p in s.priors if f"shared{p}" in by], key=lambda c: c["bpp"])
        lines = md.table(POINT_COLUMNS)
        order = [*(c["setting"] for c in reversed(dense)), *(c["setting"] for c in reversed(imp))]
        order += [f"prior{s.dense_prior}-d1.00", *(c["setting"] for c in reversed(shared))]
        order += [f"shared{p}-paper" for p in s.priors]
        seen = set()
        for key in order:
            c = by.get(key)
            if c is None or key in seen:
                continue
            seen.add(key)
            ref = None if key.startswith("dense") or key == "imp-d1.00" else _at_rate(c["bpp"], dense)
            ref_imp = None if key.startswith("imp") else _at_rate(c["bpp"], imp)
            lines.append(md.row(_point_cells(key, c, mean, ref, ref_imp, ".4f")))
        with_start = sorted(shared + start, key=lambda c: c["bpp"])
        paper = sorted([by[f"shared{p}-paper"] for p in s.priors if f"shared{p}-paper" in by], key=lambda c: c["bpp"])
        paper = sorted(paper + start, key=lambda c: c["bpp"]) if paper else []
        note = (
            "Means over the images. Dense: the ladder's widths "
            f"{', '.join(str(w) for w in (s.hidden, *s.dense_widths))}"
            f" (imp-d1.00 is width {s.hidden}'s); IMP: width {s.hidden} pruned per image to"
            f" {', '.join(f'{d:g}' for d in s.densities)} (its mask in the file); shared: the priors"
            f" {', '.join(s.priors)} (their mask in the decoder, none in the file); prior{s.dense_prior}: the dense"
            f" meta-learned prior they were pruned from; -paper: the same mask and file, the fit started from the"
            " SIREN paper init's kept weights instead of the prior's (a control, not an encoder option)."
            " − dense / − IMP: PSNR minus that curve's at the same bpp,"
            " linear in log-rate between its points (– outside them). BD against dense (each curve from"
            f" imp-d1.00): IMP {_bd(dense, imp)}; shared {_bd(dense, with_start)}."
            f" Shared against IMP: {_bd(imp, with_start)}."
            + (f" Shared from the paper init against dense: {_bd(dense, paper)}." if paper else "")
        )
        return _with_note(lines, note)


class RateControlAblation(Ablation):
    """Issue 14, item 6: ``--bpp 0.1`` must give at least the PSNR of the best ladder point under
    0.1 bpp. Each cap runs the encoder's rate control as a user gets it (``config.preset(name,
    bpp=cap)``: the ladder search) and, for ``prune_caps``, the same cap with ``widths=()`` (the
    preset's network pruned until it fits: the rate control before); the summary reads the
    committed ladder rows of the same images for the best point under each cap."""

    name, label = "rate-control", "rate control: choosing the ladder width against pruning the preset"
    question = (
        "Under a rate cap, does choosing the width on the ladder beat pruning the preset, and match the best"
        " ladder point under the cap?"
    )
    Config = RateControlConfig
    quick = RateControlConfig(caps=(0.1,), prune_caps=())

    def crop(self, crop: int | None) -> int | None:
        return None

    def scope(self, prov: dict) -> str:
        return f"full size, preset `{self.setup.preset}` with --bpp"

    def _config(self, cap: float, search: bool):
        from inrcodec.config import preset

        cfg = preset(self.setup.preset, bpp=cap)
        return cfg if search else replace(cfg, widths=())

    def jobs(self) -> list[Job]:
        s = self.setup
        out = [Job(f"ladder-{c:g}", (f"ladder-{c:g}",), (c, True), 40.0 / c**0.3) for c in s.caps]
        out += [Job(f"prune-{c:g}", (f"prune-{c:g}",), (c, False), 30.0 / c**0.3) for c in s.prune_caps]
        return out

    def job_config(self, job: Job) -> dict:
        out = {"encode_config": record(self._config(*job.params)), "device": self.device}
        return out | ({"encode_s": "every fit of the search"} if job.params[1] else {})

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        from inrcodec.encoder.pipeline import encode_array
        from inrcodec.format import container

        cfg = self._config(*job.params)
        enc = encode_array(arr, cfg, device=self.device)
        (r,) = encoded_rows(arr, [enc], job.settings, self.device)
        if "rate_control_total" in enc.stats["seconds"]:  # the search's every fit, not the chosen one's alone
            r["encode_s"] = enc.stats["seconds"]["rate_control_total"]
        if r["bpp"] > cfg.bpp:
            raise RuntimeError(f"{r['setting']}: {r['bpp']:.4f} bpp is over the cap {cfg.bpp}")
        r.update(hidden=container.read(enc.data).header.hidden, tried=enc.stats.get("rate_control", {}).get("tried"))
        return [r]

    def _ladder_rows(self) -> dict[str, list[dict]]:
        path = RESULTS / self.setup.ladder / "inrcodec.json"
        rows: dict[str, list[dict]] = {}
        for r in json.loads(path.read_text())["rows"] if path.is_file() else []:
            rows.setdefault(r["image"], []).append(r)
        return rows

    def summary(self, doc: dict) -> str:
        s = self.setup
        ladder = self._ladder_rows()
        by: dict[str, dict[str, dict]] = {}
        for r in doc["rows"]:
            by.setdefault(r["setting"], {})[r["image"]] = r
        lines = md.table(
            (
                "cap (bpp)",
                "way",
                "bpp",
                "PSNR (dB)",
                "best ladder point under the cap (dB)",
                "− that (dB)",
                "images ≥ it",
                "widths chosen",
                "encode s",
            )
        )
        for cap in s.caps:
            for way in ("ladder", "prune"):
                rows = by.get(f"{way}-{cap:g}", {})
                if not rows:
                    continue
                under = {}
                for img in rows:
                    fits = [r for r in ladder.get(img, []) if r["bpp"] <= cap]
                    if fits:
                        under[img] = max(r["psnr"] for r in fits)
                common = [img for img in rows if img in under]
                ref = float(np.mean([under[i] for i in common])) if common else None
                got = float(np.mean([rows[i]["psnr"] for i in common])) if common else None
                widths: dict[int, int] = {}
                for r in rows.values():
                    widths[r["hidden"]] = widths.get(r["hidden"], 0) + 1
                cells = (
                    f"{cap:g}",
                    "choose the width (2.0)" if way == "ladder" else "prune the preset (before)",
                    f"{np.mean([r['bpp'] for r in rows.values()]):.4f}",
                    f"{np.mean([r['psnr'] for r in rows.values()]):.2f}",
                    md.fmt(ref),
                    md.fmt(None if ref is None else got - ref, "+.2f"),
                    f"{sum(rows[i]['psnr'] >= under[i] - 1e-9 for i in common)}/{len(common)}"
                    if common
                    else md.MISSING,
                    ", ".join(f"h{w} ×{n}" for w, n in sorted(widths.items(), reverse=True)),
                    f"{np.mean([r['encode_s'] for r in rows.values()]):.1f}",
                )
                lines.append(md.row(cells))
        return _with_note(
            lines,
            "Means over the images; every file is at or under its cap (checked per file). The best ladder point"
            f" under a cap: per image, the highest PSNR among the dense ladder files of `{s.ladder}` (the ladder"
            " of the presets these rows were made with, the widths rate control chose among) whose bpp is at or"
            " under the cap; – where an image has"
            " none. Widths chosen: the width of each file (h80 under `prune` is the preset pruned). Encode s: the"
            " whole encode (for the width search, every width it fitted and coded).",
        )


class Steps(LadderPoints):
    """How much of the SIREN ladder's distance to the published codecs is fit steps: the same
    widths, coder and schedule, with 2x and 4x the steps (each a fresh fit, not a continuation)."""

    name, label = "steps", "more fit steps for the SIREN ladder"
    question = (
        "What do two and four times the fit steps buy release 2.0's dense ladder points, and how far does"
        " that move the curve against JPEG?"
    )
    Config = StepsConfig
    quick = StepsConfig(widths=(16,), factors=(1, 2), steps=60)

    def scope(self, prov: dict) -> str:
        fit = self._config(self.setup.widths[0], 1).fit
        if self.setup.ladder == "2.0-torch":
            return (
                f"full size, release 2.0's first ladder fit (batch {fit.batch}, {fit.sampler} sampler, torch's kernels)"
            )
        return f"full size, release 2.0's ladder fit (batch {fit.batch}, {fit.sampler} sampler, kernel {fit.kernel})"

    def _config(self, hidden: int, factor: int) -> EncodeConfig:
        from benchmarks.codecs import LADDER as LADDER_2_0
        from benchmarks.codecs import LADDER_2_0_TORCH, Trajectory

        LADDER = {"2.0-torch": LADDER_2_0_TORCH, "2.0": LADDER_2_0}[self.setup.ladder]
        widest = max(LADDER.trajectories, key=lambda t: t.hidden)
        beyond = Trajectory(hidden=hidden, densities=(), fit_steps=LADDER.steps_of(widest), lr=LADDER.lr_of(widest))
        traj = next((t for t in LADDER.trajectories if t.hidden == hidden), beyond)
        if self.setup.steps is not None:
            traj = replace(traj, fit_steps=self.setup.steps)
        cfg = LADDER.encode_config(replace(traj, densities=()))
        return replace(cfg, fit=replace(cfg.fit, steps=cfg.fit.steps * factor))

    def _variants(self) -> tuple:
        return self.setup.factors

    @staticmethod
    def _setting(hidden: int, factor: int) -> str:
        return f"h{hidden}-x{factor}"

    def _cost(self, hidden: int, factor: int) -> float:
        return factor * super()._cost(hidden, factor)

    def _jpeg(self, images: list[str]) -> list[dict] | None:
        """JPEG 4:2:0's mean curve over ``images`` from the committed anchor (None: not there)."""
        from benchmarks.runner import curve

        path = RESULTS / self.setup.anchor / "jpeg420.json"
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        rows = [r for r in doc["rows"] if r["image"] in images]
        if {r["image"] for r in rows} != set(images):
            return None
        return sorted(curve(rows, doc["settings"]), key=lambda c: c["bpp"])

    def summary(self, doc: dict) -> str:
        s = self.setup
        by = {c["setting"]: c for c in doc["curve"]}
        times = _encode_s(doc)
        images = sorted({r["image"] for r in doc["rows"]})
        jpeg = self._jpeg(images)
        base_k = s.factors[0]
        lines = md.table(
            (
                "steps",
                "width",
                "fit steps",
                "bpp",
                "PSNR (dB)",
                f"Δ PSNR vs ×{base_k} (dB), mean (per image)",
                f"Δ bpp vs ×{base_k}",
                "encode s",
            )
        )
        point = self._against(doc, base_k)
        for k in s.factors:
            for h in s.widths:
                got = point(h, k)
                if got is None:
                    continue
                c, dp, dr = got
                steps = self._config(h, k).fit.steps
                cells = (f"×{k}", h, steps, f"{c['bpp']:.3f}", f"{c['psnr']:.2f}", dp, dr)
                lines.append(md.row((*cells, md.fmt(times.get(self._setting(h, k)), ".0f"))))
        lines += ["", *md.table(("ladder", f"against ×{base_k}", "against JPEG 4:2:0"))]
        ref = [by[self._setting(h, base_k)] for h in s.widths if self._setting(h, base_k) in by]
        for k in s.factors:
            pts = [by[self._setting(h, k)] for h in s.widths if self._setting(h, k) in by]
            pts.sort(key=lambda c: c["bpp"])
            if len(pts) < 2:
                continue
            versus_base = md.MISSING if k == base_k else _bd(sorted(ref, key=lambda c: c["bpp"]), pts)
            versus_jpeg = md.MISSING if jpeg is None else _bd(jpeg, pts)
            lines.append(md.row((f"×{k}", versus_base, versus_jpeg)))
        return _with_note(
            lines,
            "Means over the images. Each point is a fresh dense fit of that width with the ladder's schedule"
            " stretched to k times its steps, then the ladder's QAT, bit allocation and coder; encode s: the whole"
            f" encode on one core. JPEG 4:2:0: the rows of `{s.anchor}` for the same images (measured there).",
        )


class Top(Steps):
    """What a SIREN point above `high` reaches: wider networks and more steps at the top of the
    presets' ladder, against JPEG's 32 dB (issue 14, item 6)."""

    name, label = "top", "SIREN points above the high preset"
    question = (
        "Can a SIREN point above `high` (a wider network, more steps) reach 32 dB at no more than 1 bpp,"
        " and at what encode time?"
    )
    Config = TopConfig
    quick = TopConfig(widths=(16, 20), factors=(1, 2), steps=60)

    def summary(self, doc: dict) -> str:
        """Each point against JPEG 4:2:0 on the same images: its PSNR at the point's rate and the
        rate it needs for the point's PSNR (the issue's bar is a point at 32 dB under 1 bpp)."""
        s = self.setup
        by = {c["setting"]: c for c in doc["curve"]}
        times = _encode_s(doc)
        jpeg = self._jpeg(sorted({r["image"] for r in doc["rows"]})) or []
        lines = md.table(
            (
                "width",
                "steps",
                "fit steps",
                "bpp",
                "PSNR (dB)",
                "JPEG 4:2:0 at that bpp (dB)",
                "rate against JPEG at that PSNR",
                "encode s",
            )
        )
        for h in s.widths:
            for k in s.factors:
                c = by.get(self._setting(h, k))
                if c is None:
                    continue
                at = _at_rate(c["bpp"], jpeg)
                need = _rate_at(c["psnr"], jpeg)
                cells = (h, f"×{k}", self._config(h, k).fit.steps, f"{c['bpp']:.3f}", f"{c['psnr']:.2f}")
                cells += (md.fmt(at, ".2f"), md.MISSING if need is None else f"{(c['bpp'] / need - 1) * 100:+.1f}%")
                lines.append(md.row((*cells, md.fmt(times.get(self._setting(h, k)), ".0f"))))
        return _with_note(
            lines,
            "Means over the images. Widths beyond the ladder's widest take its steps and peak learning rate; ×2"
            " doubles the steps (the cosine schedule stretched); each is the ladder's QAT, bit allocation and coder;"
            " encode s: the whole encode on one core. JPEG 4:2:0: the mean curve of"
            f" `{s.anchor}`'s rows for the same images, read linearly in log-rate.",
        )


ABLATIONS: dict[str, type[Ablation]] = {
    a.name: a
    for a in (
        ImpVsDense,
        SinrVsScalar,
        Rewind,
        Masks,
        Schedule,
        EntropyCoding,
        Fourier,
        WidthLr,
        Quantization,
        Prior,
        PriorNow,
        Tickets,
        SharedMask,
        RateControlAblation,
        Steps,
        Top,
    )
}


def markdown(doc: dict) -> str:
    """The section docs/benchmark.md shows for one ablation results JSON."""
    cls = ABLATIONS[doc["name"]]
    prov = doc["provenance"]
    setup = cls.Config.from_record(prov["config"]["setup"])
    head = (
        f"**{cls.label}.** {cls.question} ({len(doc['images'])} images of `{prov['dataset']}`, "
        f"{cls(setup).scope(prov)}; commit {(prov.get('git_commit') or 'unknown')[:8]}"
        + ("" if doc["complete"] else "; INCOMPLETE")
        + ")"
    )
    return head + "\n\n" + cls(setup).summary(doc) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"which ablations, from {', '.join(ABLATIONS)} (default: all)")
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help=f"folder with SHA256SUMS ({DEFAULT_IMAGES})")
    p.add_argument("--n-images", type=int, default=3, help="the first N images of the folder (default 3)")
    p.add_argument("--crop", type=int, default=256, help="central crop size in pixels (default 256)")
    p.add_argument("--workers", type=int, default=1, help="processes, one torch thread each (default 1)")
    ray_option(p)
    p.add_argument("--quick", action="store_true", help="1 image, 128x128, tiny fits: a smoke test")
    p.add_argument("--out", type=Path, help="results folder (default benchmarks/results/ablations)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in ABLATIONS]
    if unknown:
        p.error(f"unknown ablation(s) {', '.join(unknown)}; choose from {', '.join(ABLATIONS)}")
    try:
        refs = dataset(args.images)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n, crop = (1, 128) if args.quick else (args.n_images, args.crop)
    refs = refs[:n]
    name = args.images.resolve().name
    out = args.out or RESULTS / ("ablations-quick" if args.quick else "ablations")
    meta = dataset_meta(args.images, name, args.quick)
    ok = True
    for key in args.names or list(ABLATIONS):
        cls = ABLATIONS[key]
        exp = cls(cls.quick_setup() if args.quick else None, args.device)
        runs = {"workers": args.workers, "ray": args.ray, "device": args.device}
        ok &= run([exp], refs, out, crop=exp.crop(crop), meta=meta, **runs)
        doc = json.loads((out / f"{exp.name}.json").read_text())
        text = markdown(doc)
        (out / f"{exp.name}.md").write_text(text)
        print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
