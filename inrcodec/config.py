"""Encoder settings as frozen dataclasses, one comment per field, and the named presets.

The decoder reads none of this: everything it needs is in the ``.inr`` header.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace

from inrcodec.architecture import Architecture


@dataclass(frozen=True)
class FitConfig:
    """Stage 1 and every retraining: Adam on mini-batches of random pixels."""

    steps: int = 1500  # optimizer steps of the dense fit
    batch: int = 16384  # random pixels per step
    lr: float = 2e-3  # Adam learning rate at the start
    lr_final: float = 1e-4  # learning rate at the end of the cosine schedule
    seed: int = 0  # seeds initialisation and pixel sampling: same seed, same file
    l1: float = 0.0  # weight of the mean |W - W_prior| penalty (residual fitting; only with a prior)
    fused: bool = False  # the fused step (encoder/fused.py): about 1.3x faster; files differ in the last bits
    sampler: str = "uniform"  # pixels of a step: uniform | error | importance (encoder/sampling.py)
    # the fused step's elementwise passes: "torch" (its kernels), "native" (encoder/native.py,
    # compiled on first use, and for a dense network the whole step in one call, on torch's threads;
    # faster, see docs/performance.md; files differ in the last bits; refused where it cannot run)
    # or "auto" (native where it can run on a CPU, else torch's: the encode's stats say which ran)
    kernel: str = "torch"

    def __post_init__(self) -> None:
        if self.kernel not in ("torch", "native", "auto"):
            raise ValueError(f"kernel must be torch, native or auto, not {self.kernel!r}")
        if self.kernel != "torch" and not self.fused:
            raise ValueError(f"the {self.kernel} kernel is the fused step's: it needs fused=True")


@dataclass(frozen=True)
class PruneConfig:
    """Stage 2: iterative magnitude pruning (Frankle & Carbin 2019)."""

    density: float = 1.0  # fraction of weights kept at the end (1.0: no pruning)
    rate: float = 0.2  # fraction of the remaining weights removed per round
    # magnitude (winning ticket) | random | largest (losing ticket) | snip | synflow | rigl | nm:N:M (encoder/rules.py)
    rule: str = "magnitude"
    rewind: str = "early:100"  # init | early:N | none
    steps: int = 600  # retraining steps per round


@dataclass(frozen=True)
class CoderConfig:
    """Stages 3-4: how surviving weights become bytes."""

    weight_coder: str = "scalar"  # sinr | scalar | auto (per layer, by measured bytes and error)
    bits: tuple[int, ...] = (6, 7, 8, 9, 10)  # candidate bit depths for the uniform quantizer
    max_loss_db: float = 0.25  # total PSNR loss (dB) that per-layer bit allocation may spend on quantization
    rd_lambda: float = 0.0  # > 0: depths (and rounding) minimise MSE + rd_lambda * bpp instead of the dB budget
    rd_rounding: bool = False  # with rd_lambda: the greedy rounding pass (coding.rd_round); off: it did not pay
    rd_round_moves: str = "toward-zero"  # the pass's moves: toward-zero | both (each weight's better of -1, +1)
    # > 0: after fine-tuning, AdaRound (encoder/adaround.py) learns for this many steps whether each
    # scalar-coded weight rounds up or down, instead of rounding to the nearest level (0: nearest)
    adaround_steps: int = 0
    adaround_lr: float = 1e-2  # AdaRound: Adam's learning rate on its rounding variables (cosine to a tenth)
    adaround_reg: float = 1.0  # AdaRound: weight of the term that hardens each choice, relative to the MSE
    # AdaRound's start: nearest (each choice leaning to the nearest level), unrounded (the paper's:
    # the unrounded weights) or auto (nearest after fine-tuning, which trained for it; else unrounded)
    adaround_start: str = "auto"
    bias_bits: int = 12  # bit depth of biases (few, so cheap)
    sinr_k: int = 32  # SINR: length of a weight vector
    sinr_m: int = 256  # SINR: dictionary atoms
    sinr_s: int = 16  # SINR: nonzeros per vector (OMP sparsity)
    dict_seed: int = 20250325  # SINR: seed of the Gaussian dictionary
    qat_steps: int = 200  # fine-tuning steps with the quantizer in the loop (0: off)
    brotli_quality: int = 11  # Brotli quality of every section
    entropy_coder: str = "brotli"  # brotli | range (v4) | auto (per layer, the smaller section)

    def __post_init__(self) -> None:
        if self.rd_round_moves not in ("toward-zero", "both"):
            raise ValueError(f"rd_round_moves {self.rd_round_moves!r}: toward-zero or both")
        if self.adaround_steps < 0 or self.adaround_lr <= 0 or self.adaround_reg < 0:
            raise ValueError("adaround_steps and adaround_reg must be >= 0, adaround_lr > 0")
        if self.adaround_start not in ("auto", "nearest", "unrounded"):
            raise ValueError(f"adaround_start {self.adaround_start!r}: auto, nearest or unrounded")
        if self.adaround_steps and self.weight_coder != "scalar":  # auto would never pick sinr on the grid
            what = f"not with the {self.weight_coder} weight coder"
            raise ValueError(f"adaround_steps: AdaRound rounds the scalar coder's levels; {what}")


@dataclass(frozen=True)
class EncodeConfig:
    """Everything the encoder needs; a preset is one of these."""

    arch: Architecture = field(default_factory=Architecture)  # network shape
    fit: FitConfig = field(default_factory=FitConfig)  # dense fit
    prune: PruneConfig = field(default_factory=PruneConfig)  # IMP
    coder: CoderConfig = field(default_factory=CoderConfig)  # weight coding
    bpp: float | None = None  # rate cap: the file's bits per pixel stay at or under it
    eval_pixels: int = 65536  # pixels used to compare candidates (full image for the final PSNR)
    prior: str = "none"  # none | auto (the newest shipped prior for this network, if any; v4) | an ID
    # With bpp: the ladder widths rate control chooses among (RATE_LADDER, fitted as the ladder fits
    # them); () prunes this config's own network until the file fits instead.
    widths: tuple[int, ...] = ()


def _ladder_point(
    hidden: int,
    density: float,
    steps: int,
    lr: float = 2e-3,
    fused: bool = False,
    sampler: str = "uniform",
    kernel: str = "torch",
    entropy_coder: str = "brotli",
) -> EncodeConfig:
    """A preset that is exactly one operating point of the benchmark's ladder
    (benchmarks/codecs.py), so docs/benchmark.md holds its measured Kodak bpp and PSNR."""
    return EncodeConfig(
        arch=Architecture(hidden=hidden, layers=3, pe_levels=6),
        fit=FitConfig(steps=steps, batch=8192, lr=lr, fused=fused, sampler=sampler, kernel=kernel),
        prune=PruneConfig(density=density, rate=0.4, steps=500, rewind="early:100"),
        coder=CoderConfig(qat_steps=100, entropy_coder=entropy_coder),
    )


_FAST = EncodeConfig(
    arch=Architecture(hidden=32, layers=3),
    fit=FitConfig(steps=500),
    prune=PruneConfig(density=1.0),
    coder=CoderConfig(qat_steps=50),
)
# Release 1.2's ladder points by width (benchmarks/codecs.py LADDER_1_2), kept so that what was
# measured with them (the priors' probes and learning curves, benchmarks/results/archive/1.2.0)
# can be rerun.
LADDER_1_2_POINTS: dict[int, EncodeConfig] = {
    144: _ladder_point(144, 1.0, 2000, lr=1e-3),
    112: _ladder_point(112, 1.0, 2000, lr=1e-3),
    80: _ladder_point(80, 1.0, 2000),
    56: _ladder_point(56, 1.0, 1500),
    40: _ladder_point(40, 1.0, 1500),
}
# Release 1.2's presets (three of those points), kept for the same reason and the sampler's baseline.
PRESETS_1_2: dict[str, EncodeConfig] = {
    "fast": _FAST,
    "low": LADDER_1_2_POINTS[40],
    "medium": LADDER_1_2_POINTS[80],
    "high": LADDER_1_2_POINTS[144],
}
# Release 2.0's fit (issue 16, item 3): the fused step (encoder/fused.py) with the importance
# sampler (encoder/sampling.py) and the native kernels where they run (encoder/native.py) is
# 1.44-1.63x as fast a step as 1.2's on one core at widths 144-40 (``python -m benchmarks.fit_speed
# --sampler importance``, benchmarks/results/fit_speed-whole-importance.md), so each point takes
# 1.4x the steps in the same time (with torch's kernels, 1.13-1.20x as fast: 1.2's time x1.2).
FIT_2_0 = {"fused": True, "sampler": "importance", "kernel": "auto"}
STEPS_2_0 = 1.4
# Each layer's symbols range-coded under its Laplace or Brotli-packed, whichever section is smaller
# (format v4; the `quantization` ablation: -1.0 % bytes at the same weights on photo001-004).
CODER_2_0 = {"entropy_coder": "auto"}

# Release 2.0's ladder (benchmarks/codecs.py LADDER; a test pins the two equal), widest first: the
# presets are three of its points, and rate control (``bpp`` with ``widths``) chooses among all five.
RATE_LADDER: dict[int, EncodeConfig] = {
    144: _ladder_point(144, 1.0, round(2000 * STEPS_2_0), lr=1e-3, **FIT_2_0, **CODER_2_0),
    112: _ladder_point(112, 1.0, round(2000 * STEPS_2_0), lr=1e-3, **FIT_2_0, **CODER_2_0),
    80: _ladder_point(80, 1.0, round(2000 * STEPS_2_0), **FIT_2_0, **CODER_2_0),
    56: _ladder_point(56, 1.0, round(1500 * STEPS_2_0), **FIT_2_0, **CODER_2_0),
    40: _ladder_point(40, 1.0, round(1500 * STEPS_2_0), **FIT_2_0, **CODER_2_0),
}
# The fewest bytes per network parameter a ladder file took on photo001-photo008 was 0.606 (widths
# 40-144, the first 2.0 run; 0.640 with the native step's); rate control starts at the widest
# width that could fit at this rate, so it never starts below the widest ladder point under the cap.
RATE_BYTES_PER_PARAM = 0.6

PRESETS: dict[str, EncodeConfig] = {
    # Seconds on a 2-core CPU; for the demo and smoke tests, not for rate-distortion.
    "fast": _FAST,
    # Rate-distortion presets: dense networks, since pruning lost to a dense network of the same
    # bytes at every point measured (docs/benchmark.md: the imp-vs-dense ablation on the tuning
    # photos, and the pruned points of the Kodak run). Pruning stays one flag away (--density).
    "low": RATE_LADDER[40],  # ladder point h40-d1.00: the lowest rates
    "medium": RATE_LADDER[80],  # ladder point h80-d1.00: the SIREN's default (SIREN_DEFAULT_PRESET)
    "high": RATE_LADDER[144],  # ladder point h144-d1.00: the highest rate of the ladder
}
LADDER_PRESETS = ("low", "medium", "high")  # with a rate cap, these choose their width on RATE_LADDER
# The default is the latent-grid family's `grid-medium` (Kodak: 27.58 dB at 0.226 bpp in 31 s of
# one core, where `medium` gives 27.19 dB at 0.232 in 23 s, another day's run; docs/benchmark.md). An option only
# the SIREN has (a rate cap, pruning, regions, a prior, its coders, a GPU) picks `medium` instead.
DEFAULT_PRESET = "grid-medium"
SIREN_DEFAULT_PRESET = "medium"


# The L1 weight on |W - W_prior| a fit from a prior takes (issue 14 item 3), chosen on photo001-003:
# 10^-4 saved 0.7 % of the bytes for +0.01 dB at release 1.2's medium (the `prior` ablation; 10^-3
# 0.6 %) and 0.4 % for +0.05 dB at release 2.0's (`prior-2.0`), where it costs about 7 % more encode time.
PRIOR_L1 = 1e-4


def preset(name: str, **overrides) -> EncodeConfig:
    """A named preset with top-level fields replaced (``bpp=0.3``). A ladder preset given a rate
    cap chooses its width on the ladder (``widths``; low, medium and high alike), unless
    ``widths`` is given or a named prior fixes the network. With a prior (``prior`` other than
    none) and no ``fit`` given, the fit takes ``PRIOR_L1``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    if overrides.get("prior", "none") != "none" and "fit" not in overrides and PRESETS[name].fit.l1 == 0:
        overrides = {**overrides, "fit": replace(PRESETS[name].fit, l1=PRIOR_L1)}
    pinned = overrides.get("prior", "none") not in ("none", "auto")  # a named prior fixes the width
    if overrides.get("bpp") is not None and name in LADDER_PRESETS and not pinned:
        overrides = {"widths": tuple(RATE_LADDER), **overrides}
    return replace(PRESETS[name], **overrides)


def at_width(cfg: EncodeConfig, hidden: int) -> EncodeConfig:
    """``cfg`` with the network width, fit steps and learning rate of ladder point ``hidden`` (the
    rest, e.g. seed and coders, kept), as one uncapped point: what rate control fits."""
    point = RATE_LADDER[hidden]
    return replace(
        cfg,
        arch=replace(cfg.arch, hidden=hidden),
        fit=replace(cfg.fit, steps=point.fit.steps, lr=point.fit.lr),
        bpp=None,
        widths=(),
    )


def parse_rewind(rewind: str) -> int | None:
    """``init`` -> 0 steps, ``early:N`` -> N, ``none`` -> None (no rewinding)."""
    if rewind == "init":
        return 0
    if rewind == "none":
        return None
    if rewind.startswith("early:") and rewind[6:].isdigit():
        return int(rewind[6:])
    raise ValueError(f"bad rewind mode {rewind!r}; use init, early:N or none")


def override(
    name: str,
    bpp: float | None = None,
    weight_coder: str | None = None,
    steps: int | None = None,
    seed: int | None = None,
    density: float | None = None,
    prior: str | None = None,
    entropy_coder: str | None = None,
    adaround: int | None = None,
) -> EncodeConfig:
    """A preset with the command line's overrides; None keeps the preset's value (``adaround``:
    AdaRound's steps, ``CoderConfig.adaround_steps``). A rate cap on a
    ladder preset chooses the width on the ladder (refusing ``steps``, which each width sets),
    unless a density below 1 or a named prior pins the preset's network: then rate control prunes
    it, as before release 2.0."""
    pins = {"widths": ()} if density is not None and density < 1 else {}  # prune this network to the cap
    cfg = preset(name, bpp=bpp, **pins, **({} if prior is None else {"prior": prior}))
    if cfg.widths and steps is not None:
        raise ValueError(
            f"--steps with --bpp: the {name} preset's rate control fits each ladder width with its own steps;"
            " drop --steps (or give --density to prune this preset's network to the cap instead)"
        )
    if entropy_coder is not None:
        cfg = replace(cfg, coder=replace(cfg.coder, entropy_coder=entropy_coder))
    coder = {"weight_coder": weight_coder, "adaround_steps": adaround}
    cfg = replace(cfg, coder=replace(cfg.coder, **{k: v for k, v in coder.items() if v is not None}))
    if steps is not None:
        cfg = replace(cfg, fit=replace(cfg.fit, steps=steps))
    if seed is not None:
        cfg = replace(cfg, fit=replace(cfg.fit, seed=seed))
    if density is not None:
        cfg = replace(cfg, prune=replace(cfg.prune, density=density))
    if cfg.prune.density < 1 and cfg.prune.rule != "rigl":  # pruning will rewind: refused before the fit
        check_rewind(cfg)
    return cfg


def check_rewind(cfg: EncodeConfig) -> int | None:
    """The rewind step of ``cfg.prune.rewind``, refused if the dense fit never reaches it (the
    encoder checks it once pruning happens; the command line before any work when --density
    makes pruning certain)."""
    rewind_at = parse_rewind(cfg.prune.rewind)
    if rewind_at is not None and rewind_at > cfg.fit.steps:
        raise ValueError(
            f"--steps {cfg.fit.steps}: pruning rewinds the weights to step {rewind_at} of the dense fit "
            f"(rewind {cfg.prune.rewind}); give --steps {rewind_at} or more"
        )
    return rewind_at


def prior_id(cfg: EncodeConfig) -> int:
    """The prior ID a config asks for: 0 for ``none``; for ``auto`` the newest shipped prior of
    its network's shape (outputs included), or 0 if there is none; a number must name a prior of
    that shape; a prior with a shared mask (format v6) takes no pruning and no rate cap. Cheap (no
    torch): the command line checks it before any work."""
    from inrcodec import priors

    a = cfg.arch
    shape = (a.hidden, a.layers, a.pe_levels, a.out_features, a.omega0, a.omega_hidden)
    if cfg.prior == "none":
        return priors.NO_PRIOR
    if cfg.prior == "auto":
        found = priors.find(*shape)
        chosen = priors.NO_PRIOR if found is None else found.id
        _no_pruning_with_a_shared_mask(cfg, chosen)
        return chosen
    named = named_prior(cfg)  # refuses pruning and rate caps with a shared mask
    theirs = priors.registry()[named].shape()
    if theirs != shape:
        fields = ("width", "layers", "Fourier levels", "channels", "omega0", "hidden omega")
        differ = [
            f"{name} {t:g}, not {s:g}" + (" (the image's)" if name == "channels" else "")
            for name, t, s in zip(fields, theirs, shape)
            if t != s
        ]
        raise ValueError(
            f"prior {cfg.prior} is for another network than this preset's on this image: {'; '.join(differ)}"
        )
    return named


def named_prior(cfg: EncodeConfig) -> int | None:
    """The ID ``cfg.prior`` names (None for ``none`` and ``auto``); ValueError unless this build
    ships it. Checks what holds whatever the image (a batch checks it once, before any work)."""
    from inrcodec import priors

    if cfg.prior in ("none", "auto"):
        return None
    if not cfg.prior.isdigit() or int(cfg.prior) not in priors.registry():
        raise ValueError(f"unknown prior {cfg.prior!r}; use none, auto or one of {sorted(priors.registry())}")
    _no_pruning_with_a_shared_mask(cfg, int(cfg.prior))
    return int(cfg.prior)


def _no_pruning_with_a_shared_mask(cfg: EncodeConfig, prior: int) -> None:
    """ValueError when ``prior`` carries a shared mask (format v6) and ``cfg`` asks to prune or cap
    the rate: its files keep exactly the prior's mask."""
    from inrcodec import priors

    density = priors.registry()[prior].density if prior else 1.0
    if density < 1 and (cfg.prune.density < 1 or cfg.bpp is not None):
        raise ValueError(
            f"prior {prior} carries a shared mask (density {density:g}): its files are not pruned further, "
            "so it takes neither a density below 1 nor --bpp"
        )


# Fields added in 2.0, with the value that does what release 1.2 did: ``record`` leaves them out
# while they hold it, so a benchmark row made before they existed keeps its fingerprint.
ADDED_IN_2_0: dict[tuple[str, ...], object] = {
    ("prior",): "none",
    ("fit", "l1"): 0.0,
    ("fit", "fused"): False,
    ("fit", "sampler"): "uniform",
    ("fit", "kernel"): "torch",
    ("coder", "entropy_coder"): "brotli",
    ("coder", "rd_lambda"): 0.0,
    ("coder", "rd_rounding"): False,
    ("coder", "rd_round_moves"): "toward-zero",
    ("coder", "adaround_steps"): 0,
    ("coder", "adaround_lr"): 1e-2,
    ("coder", "adaround_reg"): 1.0,
    ("coder", "adaround_start"): "auto",
    ("widths",): (),
}


def record(cfg: EncodeConfig) -> dict:
    """The config as a plain dict for results files and their fingerprints (``asdict``, less the
    2.0 fields at their 1.2 behaviour)."""
    doc = asdict(cfg)
    for path, default in ADDED_IN_2_0.items():
        *parents, name = path
        node = doc
        for key in parents:
            node = node[key]
        if node.get(name) == default:
            del node[name]
    return doc


# --- the latent-grid family (issue 15; format version 5) --------------------------------------------


@dataclass(frozen=True)
class LatentConfig:
    """One operating point of the latent-grid family (format version 5; encoder/latent.py)."""

    lam: float = 1e-3  # lambda of D + lambda * R: D the MSE of [0,1] colours, R in bits per pixel
    levels: int = 7  # latent grids, each half the side of the one before
    finest: int = 0  # the first grid is 1/2^finest of the image side (1: no full-resolution grid)
    channels: int = 1  # latent channels per level
    pe_levels: int = 4  # Fourier-feature octaves of the coordinates fed beside the latents (0: none)
    hidden: int = 24  # width of the synthesis network
    layers: int = 2  # hidden sine layers of the synthesis
    omega: float = 1.0  # frequency factor of the synthesis' sine layers
    activation: str = "sine"  # "sine" (SIREN synthesis) or "relu" (Cool-chic's), for the ablation
    interpolation: str = "bilinear"  # of the latents at a pixel: "bilinear" or "bicubic"
    # latents' entropy model: "none" (one Laplace per level), "checkerboard" (two passes a level,
    # format v5-v8) or "four-pass" (four passes a level, 3x3 windows, format v9)
    context: str = "none"
    context_hidden: int = 16  # width of the context model's two hidden layers
    rate_sample: int = 2048  # latents whose rate under the context model a step estimates from (0: all)
    batch: int = 16384  # pixels per training step
    steps: int = 3000  # training steps (the last one may come earlier: see ``seconds``)
    # stop training after this much process CPU time (equal-time runs; with the steps on a GPU the
    # host's CPU time, which is not the GPU's)
    seconds: float | None = None
    lr_latent: float = 1e-2  # Adam learning rate of the latents (cosine to 1 % of it)
    lr_synthesis: float = 2e-3  # Adam learning rate of the synthesis
    lr_context: float = 1e-2  # Adam learning rate of the context model (when there is one)
    noise_fraction: float = 0.75  # share of the steps with noise (see quantizer); rounding after
    # how training simulates the rounding: "uniform" (uniform noise, then rounding straight through)
    # or "soft" (C3's: soft-rounding around Kumaraswamy noise, temperature 0.3 -> 0.1 and a 2 -> 1
    # over the noisy steps, then rounding with the gradient of a soft-round at temperature 1e-4),
    # or "soft-fast" (the same with a constant over 16 stages and each phase one fused pass); on the
    # ladder's six lower points "soft" gave -8.2 % BD-rate at equal steps for 1.5x the step,
    # "soft-fast" -8.7 % for 1.06-1.21x (docs/benchmark.md, "A cheaper proxy")
    quantizer: str = "uniform"
    # level 0's (the finest grid present) learning rate as a multiple of lr_latent (Adam's update
    # of that level scaled after each step). A full-resolution latent is read in about 4 % of the
    # steps, and Adam's momentum carries each rare gradient on for some ten steps at full size: at
    # 0.1, grid-xhigh's point on photo002 came out 0.56 dB above the full rate's curve at its rate
    # (docs/benchmark.md, "The finest grid's learning rate")
    lr_finest: float = 1.0
    # level 1's (the next grid's) learning rate as a multiple of lr_latent, scaled the same way
    lr_second: float = 1.0
    # the shipped start of the synthesis and context networks (a name of encoder.latent_init.INITS,
    # trained across photo009 onwards; "" : SIREN's random init; RGB images only); the file codes
    # both networks as residuals from it where that is smaller (format version 7): quarter-v1 and
    # half-v1 gave -7.2 % and -11.0 % BD-rate at their points on photo001-photo004, -15.1 % each
    # on Kodak (docs/benchmark.md, "Shared networks")
    init: str = ""
    # weight of the two networks' estimated bits in the loss, beside the latents' (lambda R):
    # each coded tensor's integers (residuals from the init, or the values) under a Laplace of
    # their mean size in steps; 0: not counted (the fit as before); docs/benchmark.md, "The
    # networks' rate"
    network_rate: float = 0.0
    # after packing, the latents of this many finest levels moved by +-1 wherever the file's own
    # D + lambda R (its rendered pixels, its range coder's bits) goes down (encoder.latent_rdo;
    # needs the checkerboard context model; 0: the latents as training rounded them)
    rdo_levels: int = 0
    # after packing (and the rounding above), Adam steps of the synthesis and context networks
    # on the file's own integer latents under the fit's loss, the file packed again and kept only
    # if its D + lambda R went down, then rounded again (encoder.latent_tune; 0: none). The presets'
    # six full-resolution points take 500 (LATENT_FULL_TUNE_STEPS)
    tune_steps: int = 0
    # which pixels a training step reads: "uniform" (a fresh random permutation of the image,
    # batch by batch) or "importance" (encoder.sampling.Importance, the SIREN's: half the batch in
    # proportion to each pixel's last seen error, half uniform, the loss weighted back to an
    # unbiased mean)
    sampler: str = "uniform"
    sampler_share: float = 0.5  # of each "importance" batch drawn by error (the SIREN's: 1/2)
    weight_bits: int = 8  # unused: pack() picks the synthesis' bit depth (6..10) by D + lambda R
    seed: int = 0  # torch seed of the synthesis init and the batch order

    def __post_init__(self) -> None:
        if self.levels < 1 or self.channels < 1 or self.hidden < 1 or self.layers < 1:
            raise ValueError("levels, channels, hidden and layers must be at least 1")
        if self.activation not in ("sine", "relu"):
            raise ValueError(f"activation must be sine or relu, not {self.activation!r}")
        if self.interpolation not in ("bilinear", "bicubic"):
            raise ValueError(f"interpolation must be bilinear or bicubic, not {self.interpolation!r}")
        if self.context not in ("none", "checkerboard", "four-pass"):
            raise ValueError(f"context must be none, checkerboard or four-pass, not {self.context!r}")
        if not 1 <= self.context_hidden < 256:
            raise ValueError("context_hidden must be in 1..255")
        if not (0 <= self.finest < 16 and self.levels < 16 and self.channels <= 16):
            raise ValueError("format v5 holds finest and levels below 16, at most 16 channels")
        if not (self.pe_levels <= 12 and self.hidden <= 1024 and self.layers <= 16):
            raise ValueError("format v5 holds at most 12 Fourier levels, width 1024 and 16 layers")
        if not 0.0 <= self.noise_fraction <= 1.0:
            raise ValueError("noise_fraction must be in [0, 1]")
        if self.quantizer not in ("uniform", "soft", "soft-fast"):
            raise ValueError(f"quantizer must be uniform, soft or soft-fast, not {self.quantizer!r}")
        if not 0.0 < self.lr_finest <= 10.0:
            raise ValueError("lr_finest must be in (0, 10]")
        if not 0.0 < self.lr_second <= 10.0:
            raise ValueError("lr_second must be in (0, 10]")
        if not 0.0 <= self.network_rate <= 10.0:
            raise ValueError("network_rate must be in [0, 10]")
        if not 0 <= self.rdo_levels <= self.levels:
            raise ValueError("rdo_levels must be in 0..levels")
        if not 0 <= self.tune_steps <= 100_000:
            raise ValueError("tune_steps must be in 0..100000")
        if self.sampler not in ("uniform", "importance"):
            raise ValueError(f"sampler must be uniform or importance, not {self.sampler!r}")
        if not 0.0 < self.sampler_share < 1.0:
            raise ValueError("sampler_share must be in (0, 1)")
        if self.rdo_levels and self.context == "none":
            raise ValueError("rdo_levels needs a context model (the rates it weighs are that model's)")

    def synthesis_dims(self, out_channels: int = 3) -> list[int]:
        """Widths of the synthesis from its input (the latents and the Fourier features) to its
        ``out_channels`` colours: one place for the encoder's network, the inits' shape check and
        the benchmark's multiply-add count."""
        return [self.levels * self.channels + 4 * self.pe_levels] + [self.hidden] * self.layers + [out_channels]


# LatentConfig fields added after results were committed, with the value that gives the behaviour
# before them: latent_record leaves them out at that value, so the committed rows keep their
# fingerprints (as ADDED_IN_2_0 does for EncodeConfig).
LATENT_ADDED = {
    "quantizer": "uniform",
    "lr_finest": 1.0,
    "lr_second": 1.0,
    "init": "",
    "network_rate": 0.0,
    "rdo_levels": 0,
    "tune_steps": 0,
    "sampler": "uniform",
    "sampler_share": 0.5,
}


def latent_record(cfg: LatentConfig) -> dict:
    """``cfg`` as a plain dict for results files and their fingerprints."""
    doc = asdict(cfg)
    for name, default in LATENT_ADDED.items():
        if doc[name] == default:
            del doc[name]
    return doc


# The stage-1 sweep (benchmarks/latent_grid.py; docs/benchmark.md): lambda is the knob, with the
# grid sizes chosen for it on photo001 (the finest grid is dropped where training left it empty)
# and a smaller synthesis at the lowest rates; steps: about 60 s of one core at 768x512 (the
# default SIREN preset's time). LATENT_TUNING_BASE is where the tuning table starts; its
# lr_latent = 0.01 row is why the sweep has it.
LATENT_TUNING_BASE = LatentConfig(steps=4800, batch=4096, lr_latent=0.1, lr_synthesis=2e-3, finest=1, levels=6)
_BASE = replace(LATENT_TUNING_BASE, lr_latent=0.01)
_LOW = {"finest": 2, "levels": 5, "hidden": 16}  # lambda >= 8e-3
LATENT_POINTS = (
    replace(_BASE, lam=3.2e-2, **_LOW),
    replace(_BASE, lam=1.6e-2, **_LOW),
    replace(_BASE, lam=8e-3, **_LOW),
    replace(_BASE, lam=4e-3),
    replace(_BASE, lam=2e-3),
    replace(_BASE, lam=1e-3),
    # Issue 15 item 6: a full-resolution grid is short of steps (each of its latents sees a pixel
    # in about 4 % of the 4,096-pixel batches), so this point spends the 5 minutes an encode may
    # take: 6x the steps of the next, about 4 min of one core. Chosen on photo002
    # (``benchmarks.latent_grid --full-res``; docs/benchmark.md).
    replace(_BASE, lam=1.5e-3, finest=0, levels=7, steps=14400, lr_latent=0.1),
    # A full-resolution grid: twice the step cost; lr_latent 0.1 (its latents move furthest).
    replace(_BASE, lam=5e-4, finest=0, levels=7, steps=2400, lr_latent=0.1),
)

# The checkerboard context model: its width (16) and the latents a step rates (2048) chosen on
# photo001 at lambda 4e-3; its steps cost more (1,500-step encodes of photo002, interleaved: 22.8 s
# of CPU against 17.9 s, its pack trying five precisions of the model), so 0.8 of the steps keeps
# the encode time equal.
LATENT_CONTEXT = {"context": "checkerboard", "context_hidden": 16, "rate_sample": 2048}
LATENT_CONTEXT_STEPS = 0.8


def with_context(point: LatentConfig) -> LatentConfig:
    """``point`` with the checkerboard context model, at equal encode time."""
    return replace(point, steps=round(point.steps * LATENT_CONTEXT_STEPS), **LATENT_CONTEXT)


# The sweep's points with the context model: the ladder of the first full Kodak run and of the
# ablations (docs/benchmark.md), kept so that their results stay reproducible.
LATENT_STAGE2 = tuple(with_context(p) for p in LATENT_POINTS)
# The training step that gathers only what it reads (encoder/latent.Step) is faster than the one
# these points were timed with: in one process 1.35x with grids from 1/4, 1.5x from 1/2, 2.0x with
# a full-resolution grid (`python -m benchmarks.encode_speed`); 1.5-2.0x a step on Kodak's two
# workers. So the ladder takes more steps in about the same encode time:
# 1.5x from 1/2 or 1/4 down (the ablations: twice the steps saved 3.3 %), 2x at the full-resolution
# point that had the fewest (item 6: twice its steps saved 28 %). Not grid-xhigh's point: it
# already had 6x, and twice that gave higher rates on the first six Kodak images (lower PSNR on three)
# (docs/benchmark.md), so it kept its steps then (with noise to the end twice pay: LATENT_MID_NOISE_STEPS).
# Per point of the ladder:
LATENT_STEP_FACTOR = (1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.0, 2.0)
# The ladder with uniform noise: the presets' until the proxy below (kodak-gather, ladder-first4).
LATENT_LADDER = tuple(
    replace(p, steps=round(p.steps * f)) for p, f in zip(LATENT_STAGE2, LATENT_STEP_FACTOR, strict=True)
)
# C3's quantization proxy, computed cheaply ("soft-fast"), at the points with grids from 1/2 or 1/4
# down, with 0.92 of their steps (its step costs 1.06-1.21x uniform noise's, side by side): -7.3 %
# BD-rate on those six points on photo001-004, -8.5 % on Kodak (docs/benchmark.md, "A cheaper
# proxy"). The full-resolution points keep uniform noise: the proxy's rates there came out 40-75 %
# higher.
LATENT_PROXY_STEPS = 0.92


def with_proxy(
    point: LatentConfig, quantizer: str = "soft-fast", steps: float = LATENT_PROXY_STEPS, full_res: bool = False
) -> LatentConfig:
    """``point`` trained with ``quantizer`` at ``steps`` times its steps; a full-resolution point
    unchanged unless ``full_res`` (the presets' defaults; ``benchmarks.latent_grid``'s options
    choose others), and any point unchanged with the uniform quantizer."""
    if quantizer == "uniform" or (point.finest == 0 and not full_res):
        return point
    return replace(point, quantizer=quantizer, steps=round(point.steps * steps))


LATENT_PROXY_LADDER = tuple(with_proxy(p) for p in LATENT_LADDER)


def with_full_res(
    ladder: tuple[LatentConfig, ...], lr_finest: tuple[float, ...] = (1.0,), steps: int | None = None
) -> tuple[LatentConfig, ...]:
    """``ladder`` with its full-resolution points' ``lr_finest`` set, in order, to ``lr_finest``
    (one factor: every such point), and their steps to ``steps`` when given."""
    full = [i for i, p in enumerate(ladder) if p.finest == 0]
    if len(lr_finest) == 1:
        lr_finest = lr_finest * len(full)
    if len(lr_finest) != len(full):
        raise ValueError(f"{len(lr_finest)} factors for {len(full)} full-resolution points")
    out = list(ladder)
    for i, f in zip(full, lr_finest):
        out[i] = replace(out[i], lr_finest=f, steps=out[i].steps if steps is None else steps)
    return tuple(out)


# The finest grid's learning rate at the two full-resolution points (LatentConfig.lr_finest),
# 0.1 of lr_latent at both, and the lambda 5e-4 point (grid-max's then) given grid-xhigh's 11,520 steps (3,840 were too
# few for the slower grid: at 0.3 and 0.1 it lost 0.8 and 2.1 dB). On photo001-004 the ladder
# with both: -6.0 % BD-rate against it before; on Kodak -7.9 %, -17.1 % against JPEG 4:2:0
# (docs/benchmark.md, "The finest grid's learning rate").
LATENT_FINEST_LR = (0.1, 0.1)
LATENT_FULL_RES_STEPS = 11520
# The full-resolution points' latent training (lr_latent 0.1, their finest grid at 0.1 of it,
# 11,520 steps), given to points with grids from 1/2 (benchmarks.latent_grid --long-fit): at 0.01
# for 5,299 steps those points' rates hardly follow lambda (photo002: 0.32 -> 0.41 bpp from lambda
# 4e-3 to 1e-3), their latents short of movement as the full-resolution grid was of reads.
LATENT_LONG_FIT = {"lr_latent": 0.1, "lr_finest": 0.1, "steps": LATENT_FULL_RES_STEPS}


def with_long_fit(
    ladder: tuple[LatentConfig, ...], lams: tuple[float, ...], steps: int | None = None
) -> tuple[LatentConfig, ...]:
    """``ladder`` with its points at the lambdas ``lams`` trained as LATENT_LONG_FIT says (for
    ``steps`` steps when given)."""
    if missing := set(lams) - {p.lam for p in ladder if p.finest > 0}:
        raise ValueError(
            f"no point with grids from 1/2 or coarser at lambda {', '.join(f'{m:g}' for m in sorted(missing))}"
        )
    long = LATENT_LONG_FIT | ({} if steps is None else {"steps": steps})
    return tuple(replace(p, **long) if p.lam in lams else p for p in ladder)


# The ladder the presets are points of: the proxy's at the six lower points, lr_finest and the
# steps above at the full-resolution ones (and, below, the shipped inits at the six lower points).
_PRESET_POINTS = with_full_res(LATENT_PROXY_LADDER, LATENT_FINEST_LR, LATENT_FULL_RES_STEPS)
# ... and one point above them, the top's settings at half its lambda (benchmarks.latent_grid
# --top-lam): the slower finest grid had moved the top 0.4 dB down on Kodak; this carries the curve
# above where it was (docs/benchmark.md, "A point above grid-max's old one").
LATENT_TOP_LAM = 2.5e-4
# The 1/4- and 1/2-resolution points' synthesis and context network start from networks trained
# across photographs (LatentConfig.init; encoder.latent_init): at the 1/4-resolution points
# quarter-v2 (photo009-photo049: -9.2 % BD-rate on photo001-004, quarter-v1 from photo009-photo024
# -7.2 %), at the 1/2-resolution ones half-v1 (-11.0 %); the files code both networks as residuals
# from them (format version 7; docs/benchmark.md, "Shared networks", "Format version 7").
LATENT_QUARTER_INIT = "quarter-v2"
LATENT_HALF_INIT = "half-v1"
# ... and the full-resolution points' from full-v1 (photo009-photo024 at lambda 5e-4's settings:
# -4.2 % on photo001-004; docs/benchmark.md, "The full-resolution points' init on Kodak")
LATENT_FULL_INIT = "full-v1"


def with_init(ladder: tuple[LatentConfig, ...], name: str, finest: int = 2) -> tuple[LatentConfig, ...]:
    """``ladder`` with the points whose finest grid is 1/2^``finest`` starting from the init ``name``."""
    return tuple(replace(p, init=name) if p.finest == finest else p for p in ladder)


# The 1/4-resolution points count their two networks' estimated bits in the loss beside the
# latents' (LatentConfig.network_rate, weight 1): on Kodak -2.9 % BD-rate at those points (22 of 24
# images below zero; the networks 36 % smaller), -0.3 % over the ladder; level at the
# 1/2-resolution points on photo001-004, so not there (docs/benchmark.md, "The networks' rate").
LATENT_QUARTER_NETWORK_RATE = 1.0
# The full-resolution points (trained on uniform noise, then rounded) move their latents of the
# four finest levels by +-1 after packing where the file's D + lambda R goes down
# (LatentConfig.rdo_levels): on photo001-004 -5.6 % BD-rate over the ladder, +0.34 to +0.92 dB at
# those points for fewer bytes, about 10 s of an 80 s encode. At the six lower points (C3's proxy
# already trains them for the rounding) it only moves them along the curve (-0.3 %), so not there
# (docs/benchmark.md, "Rate–distortion rounding of the latents").
LATENT_FULL_RDO_LEVELS = 4
# The presets' ladder from the rounding until the points below (kodak-rdo): three points whose
# finest grid is 1/4 of the image side, three at 1/2, two at full resolution and the top (nine).
LATENT_RDO_LADDER = tuple(
    replace(p, network_rate=LATENT_QUARTER_NETWORK_RATE)
    if p.init == LATENT_QUARTER_INIT
    else replace(p, rdo_levels=LATENT_FULL_RDO_LEVELS)
    if p.init == LATENT_FULL_INIT
    else p
    for p in with_init(
        with_init(
            with_init((*_PRESET_POINTS, replace(_PRESET_POINTS[-1], lam=LATENT_TOP_LAM)), LATENT_QUARTER_INIT),
            LATENT_HALF_INIT,
            finest=1,
        ),
        LATENT_FULL_INIT,
        finest=0,
    )
)
# With the rounding, a full-resolution grid pays below grid-xhigh's lambda too, where before it
# lay level with the 1/2-resolution points: grid-xhigh's settings at lambda 7e-3, 5e-3 and 3e-3 take
# the place of the 1/2-resolution points at 2e-3 and 1e-3 (on photo001-004 the ladder's mean curve
# -3.2 % BD-rate, every photo below zero; on Kodak -5.2 %, every image, -33.1 % against JPEG
# 4:2:0; docs/benchmark.md, "Full-resolution points in the middle of the curve"). The
# 1/2-resolution point at 4e-3 (grid-medium) stays: there the full-resolution grid is level with
# it (lambda 1.1e-2) at three times the encode time.
LATENT_MID_FULL_LAMS = (7e-3, 5e-3, 3e-3)
LATENT_DROPPED_LAMS = (2e-3, 1e-3)
# in benchmarks.latent_grid's order (--full-res-lams, --drop-lams): the kept points, then the new
_XHIGH_POINT = next(p for p in LATENT_RDO_LADDER if p.finest == 0)  # grid-xhigh's: the first full-resolution
# The six full-resolution points then tune their synthesis and context networks for 500 Adam steps
# on the file's own integer latents, kept only where the file's D + lambda R goes down, and round
# again (LatentConfig.tune_steps; encoder/latent_tune.py): -2.6 % BD-rate over the ladder on
# photo001-004, on Kodak -2.8 % (every image below zero; -34.9 % against JPEG 4:2:0, was -33.1 %;
# kodak-tune, docs/benchmark.md, "The networks tuned on the file's integer latents"), for 40-60 s
# more a file.
LATENT_FULL_TUNE_STEPS = 500
LATENT_TUNE_LADDER = tuple(
    replace(p, tune_steps=LATENT_FULL_TUNE_STEPS) if p.finest == 0 else p
    for p in (
        *(p for p in LATENT_RDO_LADDER if p.lam not in LATENT_DROPPED_LAMS),
        *(replace(_XHIGH_POINT, lam=lam) for lam in LATENT_MID_FULL_LAMS),
    )
)


# The four full-resolution points below the top two train on uniform noise to the end
# (noise_fraction 1: no rounded straight-through phase; the rounding and the tuning after packing
# do that phase's work better): on photo001-004 -1.2 % BD-rate over the ladder, every photo below
# zero, each point 3-5 % smaller for 0.05-0.09 dB; at the top two the same is level or worse. On
# Kodak -1.0 % (23 of 24 images), -35.5 % against JPEG 4:2:0 (kodak-noise; docs/benchmark.md,
# "Noise to the end of training").
LATENT_MID_NOISE_FRACTION = 1.0
LATENT_MID_NOISE_LAMS = (7e-3, 5e-3, 3e-3, 1.5e-3)


def _mid_full(p: LatentConfig) -> bool:
    """Whether ``p`` is one of the four middle full-resolution points (LATENT_MID_NOISE_LAMS)."""
    return p.finest == 0 and p.lam in LATENT_MID_NOISE_LAMS


LATENT_NOISE_LADDER = tuple(
    replace(p, noise_fraction=LATENT_MID_NOISE_FRACTION) if _mid_full(p) else p for p in LATENT_TUNE_LADDER
)
# With noise to the end a longer fit is no longer a longer rounded phase, and those four points pay
# for twice their steps (23,040): on photo001-004 D + lambda R -2.0 to -2.7 % at each, every photo,
# -2.3 % BD-rate over the ladder; the top two gain little (-0.4 %) and keep 11,520. On Kodak
# -3.4 % (every image, -0.9 to -5.8 %; each of the 96 files' D + lambda R lower), -37.7 % against
# JPEG 4:2:0 (kodak-steps; docs/benchmark.md, "Twice the steps at the four middle full-resolution
# points"), for about twice those points' encode time (grid-high, grid-xhigh: 220 s of one core).
LATENT_MID_NOISE_STEPS = 23040
LATENT_STEPS_LADDER = tuple(
    replace(p, steps=LATENT_MID_NOISE_STEPS) if _mid_full(p) else p for p in LATENT_NOISE_LADDER
)
# With those steps the full-resolution points draw a curve that the 1/2-resolution point at 4e-3
# (grid-medium) lies under: on Kodak 0.226 bpp at 27.58 dB, where grid-high takes 0.242 bpp for
# 28.53 dB (-28 % against JPEG 4:2:0 at its PSNR, its neighbours -38 and -53 %). The ladder drops
# it and takes grid-high's settings at lambda 1.5e-2 in the gap below grid-high instead: on
# photo001-004 -1.16 % BD-rate over the ladder (dropping grid-medium alone -1.07 %; points at 1.1e-2
# or 2.2e-2 beside it add nothing more; benchmarks/results/latent/ladder-points/photos), on Kodak
# -1.37 %, -38.6 % against JPEG 4:2:0 (kodak-low-full; docs/benchmark.md, "The ladder without
# grid-medium"). grid-medium stays a preset, the fast default (about 30 s of one core at 768x512,
# against about 200 s for a full-resolution point), off the ladder.
LATENT_LOW_FULL_LAMS = (1.5e-2,)
_HIGH_POINT = next(p for p in LATENT_STEPS_LADDER if p.finest == 0 and p.lam == 7e-3)  # grid-high's
LATENT_LOW_FULL_LADDER = tuple(p for p in LATENT_STEPS_LADDER if p.finest != 1) + tuple(
    replace(_HIGH_POINT, lam=lam) for lam in LATENT_LOW_FULL_LAMS
)
# The three 1/4-resolution points and the top take format version 9's four-pass context model, each
# from its init's four-pass twin (trained by the same command: docs/format.md's init table). On
# photo001-004 those points' files are 2-4 % smaller at equal PSNR, -0.6 % BD-rate over the ladder,
# every photo; on Kodak -0.7 %, every image, -38.9 % against JPEG 4:2:0 (kodak-four-pass-at). At
# the five middle full-resolution points (noise to the end, 23,040 steps, rounding, tuning) the
# model lost (+0.8 % over the ladder with it everywhere), so they keep the checkerboard, and so does
# lambda 5e-4 (-0.6 % bytes for -0.02 dB there: level, not tried alone)
# (docs/benchmark.md, "Format version 9").
LATENT_FOUR_PASS_LAMS = (3.2e-2, 1.6e-2, 8e-3, LATENT_TOP_LAM)
LATENT_FOUR_PASS_TWINS = {LATENT_QUARTER_INIT: "quarter-4p-v1", LATENT_FULL_INIT: "full-4p-v1"}
LATENT_FOUR_PASS_LADDER = tuple(
    replace(p, context="four-pass", init=LATENT_FOUR_PASS_TWINS[p.init]) if p.lam in LATENT_FOUR_PASS_LAMS else p
    for p in LATENT_LOW_FULL_LADDER
)
# The four middle full-resolution points (LATENT_MID_NOISE_LAMS) train 1.5x their steps again
# (34,560): on Kodak -1.8 % BD-rate over the ladder (every image, -0.2 to -2.9 %; 95 of the 96
# files' D + lambda R lower), -40.0 % against JPEG 4:2:0 (-40.04 %; kodak-steps-x1.5;
# docs/benchmark.md, "Three times the original steps at the middle points"); on photo001-004
# -1.0 %, -41.5 % against JPEG 4:2:0 (steps-x1.5-at/photos). Those points' encode takes about 1.3x
# as long (grid-high, grid-xhigh: about 290 s of one core at 768x512). Twice the steps at the top
# two points paid -0.3 % on the photos (steps-top-x2) and was left.
LATENT_MID_LONG_STEPS = 34560
LATENT_PRESET_LADDER = tuple(
    replace(p, steps=LATENT_MID_LONG_STEPS) if _mid_full(p) else p for p in LATENT_FOUR_PASS_LADDER
)


def _point(lam: float) -> LatentConfig:
    """The point at ``lam`` of the presets' ladder (or, grid-medium's, of the ladder it was on)."""
    return next(p for p in (*LATENT_PRESET_LADDER, *LATENT_STEPS_LADDER) if p.lam == lam)


# The presets: points of the presets' ladder (grid-medium: of the ladder before it, the fast default
# off today's ladder), each measured on Kodak. grid-low and grid-medium take
# the proxy and their shipped inits (quarter-4p-v1, half-v1). grid-high was a 1/2-resolution point
# (lambda 1e-3, half-v1) until the full-resolution points above replaced it: now grid-xhigh's
# settings at lambda 7e-3, about its old rate for more PSNR, in about three times its encode time.
# grid-xhigh and grid-max: their finest grid at 0.1 of lr_latent (LATENT_FINEST_LR), from full-v1
# (grid-max from its four-pass twin) and rounded by D + lambda R after packing, 34,560 steps on
# noise to the end (grid-high, grid-xhigh)
# or 11,520 (grid-max, the ladder's top: LATENT_TOP_LAM). grid-low and grid-max code their latents
# with the four-pass model (format version 9, from quarter-4p-v1 and full-4p-v1), the others with
# the checkerboard (version 8). The points at lambda 3.2e-2, 8e-3, 1.5e-2, 5e-3, 3e-3 and 5e-4 have
# no name.
LATENT_PRESETS: dict[str, LatentConfig] = {
    "grid-low": _point(1.6e-2),  # 1/4 resolution: about 0.09 bpp on the tuning photos
    "grid-medium": _point(4e-3),  # 1/2 resolution: about 0.28 bpp, off the ladder
    "grid-high": _point(7e-3),  # a full-resolution grid, 34,560 steps: about 0.29 bpp
    "grid-xhigh": _point(1.5e-3),  # a full-resolution grid, 34,560 steps: about 0.78 bpp
    "grid-max": _point(LATENT_TOP_LAM),  # a full-resolution grid, 11,520 steps: about 1.8 bpp
}

# Rate control of the latent-grid family (--bpp without a SIREN preset; encoder/latent_rate.py).
# Each point of the presets' ladder with its mean bpp on photo001-photo004: the run of exactly its
# points there (benchmarks/results/latent/steps-x1.5-at/photos, its rows but the four middle
# points' those of the ladder before them, four-pass-at/photos; a test pins these figures to it). The
# search orders the points by it and takes it as its first guess of a point's rate, before it has
# measured what this image's files take: one point's file on those photos takes 0.5x to 1.8x its mean.
LATENT_RATE_BPP = {
    3.2e-2: 0.0667,
    1.6e-2: 0.0829,
    8e-3: 0.0996,
    1.5e-2: 0.182,
    7e-3: 0.2902,
    5e-3: 0.3673,
    3e-3: 0.5111,
    1.5e-3: 0.7827,
    5e-4: 1.4102,
    2.5e-4: 1.7323,
}


@dataclass(frozen=True)
class LatentCap:
    """Rate control over the latent-grid ladder: the best of its points whose file fits ``bpp``."""

    bpp: float  # the cap: a file of at most floor(bpp * width * height / 8) bytes
    # the points to choose from, in ascending order of their typical rate, each a full LatentConfig
    # (so --seed reaches every point and a batch's manifest records what its files depend on)
    points: tuple[LatentConfig, ...] = ()
    typical_bpp: tuple[float, ...] = ()  # each point's mean bpp on the tuning photos (LATENT_RATE_BPP)
    # a point is fitted while its expected rate is within slack x the cap: above 1, the search also
    # tries points its estimate puts a little over (an image's rates do not scale alike at every point)
    slack: float = 1.0
    # the first guess of how this image's files compare with the typical ones, before any is fitted:
    # (a, b) for exp(a) * detail ** b, detail the image's mean luma step between neighbouring pixels
    # (encoder.latent_rate.detail); (0, 0): every image typical
    guess: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if not 0 < self.bpp < float("inf"):  # nan fails both
            raise ValueError("the rate cap must be a finite number above 0 bpp")
        if not self.points or len(self.points) != len(self.typical_bpp):
            raise ValueError("rate control needs points, each with its typical bpp")
        if list(self.typical_bpp) != sorted(self.typical_bpp):
            raise ValueError("the points must come in ascending order of their typical bpp")
        if not 1.0 <= self.slack <= 4.0:
            raise ValueError("slack must be in [1, 4]")
        try:
            guess = tuple(float(g) for g in self.guess)
        except (TypeError, ValueError):
            guess = ()
        if len(guess) != 2 or not all(math.isfinite(g) for g in guess):
            raise ValueError("the first guess must be two finite numbers (a, b)")
        object.__setattr__(self, "guess", guess)  # a list or numpy pair, as a tuple of floats


# The search's slack (LatentCap.slack): the points expected at up to 1.3x the cap are fitted too.
# Chosen on photo001-photo004 by replaying the search on the ladder's committed files there
# (benchmarks.grid_rate_control): over eleven caps from 0.05 to 2 bpp, 1.0 kept the best file
# under the cap in 37 of 40 cases (up to 2.25 dB short of it) in 1.73 fits on the mean; 1.3 in
# all 40, in 1.88 fits; 1.5 and 2.0 in all 40 too, in 2.10 and 2.50 fits.
LATENT_RATE_SLACK = 1.3

# The search's first guess (LatentCap.guess): an image's files against the typical ones,
# log(bpp / LATENT_RATE_BPP) = a + b log(detail), fitted by least squares on photo009-photo020
# (never on the tuning photos or Kodak) at grid-medium and grid-high, where a fit costs most
# (benchmarks/results/latent/rate-guess/, python -m benchmarks.rate_guess; a test pins these
# figures to it). Refitted with grid-high trained on noise to the end (LATENT_MID_NOISE_LAMS):
# -1.8509 + 0.636 log(detail) before it, the spread left 0.18 either way. Not refitted since
# grid-high took twice its steps (LATENT_MID_NOISE_STEPS): the guess reads an image's file against
# the point's mean, and both went down alike (the mean 3.1 %, each of the four tuning photos' files
# 2.3-4.4 %), well inside that spread; nor since it took 1.5x those (LATENT_MID_LONG_STEPS; the
# mean -2.5 %, the files -4.2 to +1.7 %).
LATENT_RATE_GUESS = (-1.8206, 0.6249)


def device_problem(device: str | None, decode: bool = False) -> str | None:
    """Why torch cannot run on ``device`` on this machine, as one line that starts with the name
    ("cuda: no CUDA device here ..."), or None if it can (None and "cpu" always can). ``decode``:
    the decoder's own "torch-cpu" (its torch path on the CPU) and "" (the default choice) are
    names too. The command line and the API refuse with it before any work: torch's own errors
    come as tracebacks (an AssertionError for a missing CUDA) after the image was read."""
    what = "cpu, cuda, cuda:N, mps" + (", torch-cpu" if decode else "")
    if device is None or device == "cpu" or (decode and device in ("", "torch-cpu")):
        return None
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        return f"{device}: not a device ({what})"
    if dev.type == "cuda" and not torch.cuda.is_available():
        return f"{device}: no CUDA device here (this torch {torch.__version__}); use cpu"
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        return f"{device}: this machine has {torch.cuda.device_count()} CUDA device(s)"
    if dev.type == "mps" and not torch.backends.mps.is_available():
        return f"{device}: no MPS device here; use cpu"
    if dev.type not in ("cpu", "cuda", "mps"):
        return f"{device}: not supported ({what})"
    return None


def grid_trains_on(device) -> bool:
    """Whether the latent-grid encoder can train on ``device`` (:func:`latent_device` without the error)."""
    try:
        latent_device(device)
    except ValueError:
        return False
    return True


def latent_device(device) -> str | None:
    """``device`` (a name or a torch.device) as a name, if the latent-grid encoder can train on it
    (the CPU, the default, or a CUDA GPU: "cuda" or "cuda:N"; its steps are plain torch, MPS lacks
    ops it uses), else ValueError with the reason. Whether this machine has it is the caller's check."""
    if device is None:
        return None
    name = str(device)
    if re.fullmatch(r"cpu|cuda(:\d+)?", name):
        return name
    raise ValueError(f"device {name!r}: the latent-grid encoder trains on cpu or cuda")


def latent_cap(
    bpp: float,
    seed: int | None = None,
    slack: float = LATENT_RATE_SLACK,
    guess: tuple[float, float] = LATENT_RATE_GUESS,
) -> LatentCap:
    """The presets' ladder as a rate-control search for a cap of ``bpp`` (``seed``: every point's)."""
    order = sorted(LATENT_PRESET_LADDER, key=lambda p: LATENT_RATE_BPP[p.lam])
    if seed is not None:
        order = [replace(p, seed=seed) for p in order]
    return LatentCap(bpp, tuple(order), tuple(LATENT_RATE_BPP[p.lam] for p in order), slack, guess)


def latent_preset_name(cfg: LatentConfig) -> str | None:
    """The grid-* preset that ``cfg`` is (seed aside), or None for an unnamed point of the ladder."""
    return next((name for name, p in LATENT_PRESETS.items() if p == replace(cfg, seed=p.seed)), None)
