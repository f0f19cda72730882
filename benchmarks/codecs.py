"""The codecs of the benchmark, one class each (CompressAI's benchmark layout, in memory).

Every codec runs at fixed settings on every image: a Pillow codec has one job per setting, inrcodec
one job per pruning trajectory (each round of a trajectory is an operating point). Rates are the
length of the bytes each encoder produced (``metrics.bpp``: 8 bits a byte over the pixels), and PSNR is the RGB
PSNR (:func:`inrcodec.image.psnr`) of what each decoder makes of those bytes.
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
from PIL import Image

from benchmarks.runner import Experiment, Job
from inrcodec.config import CODER_2_0, FIT_2_0, STEPS_2_0, record
from inrcodec.image import psnr
from inrcodec.metrics import bpp


class Codec(Experiment):
    """A codec of the rate-distortion benchmark: fixed settings, one RD curve."""

    kind = "rd"


def row(setting: str, arr: np.ndarray, data: bytes, decoded: np.ndarray, encode_s: float, decode_s: float) -> dict:
    """One measured operating point: rate from the bytes, PSNR from the decoded pixels."""
    h, w = arr.shape[:2]
    return {
        "setting": setting,
        "bytes": len(data),
        "bpp": bpp(len(data), w, h),
        "psnr": psnr(decoded, arr),
        "encode_s": round(encode_s, 4),
        "decode_s": round(decode_s, 4),
    }


class PillowCodec(Codec):
    """Encode and decode through Pillow, in a BytesIO; one job per setting (``values``)."""

    format = ""  # Pillow format name
    values: tuple = ()  # the ladder: one operating point each
    cost = 0.5  # rough seconds per job on one core (first ETA)

    def options(self, value) -> dict:
        """Pillow save() keyword arguments for one setting."""
        raise NotImplementedError

    def setting(self, value) -> str:
        return f"q={value}"

    def config(self) -> dict:
        return {"format": self.format, "settings": {self.setting(v): self.options(v) for v in self.values}}

    def jobs(self) -> list[Job]:
        return [Job(self.setting(v), (self.setting(v),), v, self.cost) for v in self.values]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        img = Image.fromarray(arr)
        buf = io.BytesIO()
        t = time.perf_counter()
        img.save(buf, self.format, **self.options(job.params))
        encode_s = time.perf_counter() - t
        data = buf.getvalue()
        t = time.perf_counter()
        with Image.open(io.BytesIO(data)) as dec:
            decoded = np.asarray(dec.convert("RGB"))
        decode_s = time.perf_counter() - t
        return [row(job.key, arr, data, decoded, encode_s, decode_s)]


class Jpeg420(PillowCodec):
    name, label, format = "jpeg420", "JPEG 4:2:0", "JPEG"
    values = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)  # libjpeg quality
    cost = 0.05

    def options(self, value) -> dict:
        return {"quality": value, "subsampling": 2, "optimize": True}  # subsampling 2 = 4:2:0


class Jpeg444(Jpeg420):
    name, label = "jpeg444", "JPEG 4:4:4"

    def options(self, value) -> dict:
        return {"quality": value, "subsampling": 0, "optimize": True}  # subsampling 0 = 4:4:4


class WebP(PillowCodec):
    name, label, format = "webp", "WebP", "WEBP"
    values = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)  # libwebp quality (lossy)
    cost = 0.4

    def options(self, value) -> dict:
        return {"quality": value, "method": 6, "lossless": False}  # method 6: slowest, best


class Jpeg2000(PillowCodec):
    """OpenJPEG through Pillow: 9/7 irreversible wavelet with the colour transform, one quality
    layer at a fixed compression ratio per setting (``ratio = 24 / bpp`` for 8-bit RGB)."""

    name, label, format = "jpeg2000", "JPEG 2000", "JPEG2000"
    values = (480, 240, 160, 120, 80, 60, 48, 32, 24, 16, 12)  # compression ratios: 0.05 ... 2 bpp
    cost = 0.4

    def setting(self, value) -> str:
        return f"ratio={value}"

    def options(self, value) -> dict:
        # no_jp2: the bare codestream (.j2k), without the JP2 box wrapper
        return {"irreversible": True, "mct": 1, "quality_mode": "rates", "quality_layers": [value], "no_jp2": True}


class Avif(PillowCodec):
    """libavif (libaom) through Pillow, 4:2:0 (libavif's default), speed 6, one thread."""

    name, label, format = "avif", "AVIF", "AVIF"
    values = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90)  # libavif quality
    cost = 2.0

    def options(self, value) -> dict:
        return {"quality": value, "subsampling": "4:2:0", "speed": 6, "max_threads": 1}


# --- inrcodec -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trajectory:
    """One fit and its pruning rounds: operating points at density 1 and after every round."""

    hidden: int  # width of every hidden layer: sets the rate of the dense operating point
    densities: tuple[float, ...]  # one pruning round per entry, descending; each round is an operating point
    fit_steps: int | None = None  # Adam steps of the dense fit; None: the ladder's fit_steps
    lr: float | None = None  # Adam's peak learning rate; None: the ladder's lr


@dataclass(frozen=True)
class Ladder:
    """inrcodec's fixed settings in the benchmark: the same ladder for every image."""

    trajectories: tuple[Trajectory, ...]  # separate fits; their operating points together make the curve
    layers: int = 3  # sine layers of every network (the presets' depth)
    pe_levels: int = 0  # Fourier levels of the coordinates (0: raw (x, y)); docs/benchmark.md, "Fourier features"
    fit_steps: int = 1500  # Adam steps of the dense fit (a trajectory may set its own)
    batch: int = 16384  # random pixels per step (768x512 = 393216 pixels)
    lr: float = 2e-3  # Adam's peak learning rate, cosine to 1e-4 (a trajectory may set its own)
    prune_steps: int = 600  # retraining steps after each pruning round
    rewind: str = "early:100"  # after each round: rewind to step 100 of the dense fit, then retrain
    qat_steps: int = 200  # quantization-aware fine-tuning steps before coding each operating point
    weight_coder: str = "scalar"  # scalar | sinr | auto: how surviving weights become bytes
    seed: int = 0  # seeds initialisation and pixel sampling: the same file every run on one device
    fused: bool = False  # the fused fit step (encoder/fused.py; release 2.0's ladder)
    sampler: str = "uniform"  # pixels of a fit step: uniform | importance (release 2.0's ladder) | error
    kernel: str = "torch"  # the fused step's kernels: torch | native | auto (release 2.0's ladder)
    entropy_coder: str = "brotli"  # brotli | range | auto: each layer's section (release 2.0's ladder: auto)

    def steps_of(self, traj: Trajectory) -> int:
        return self.fit_steps if traj.fit_steps is None else traj.fit_steps

    def lr_of(self, traj: Trajectory) -> float:
        return self.lr if traj.lr is None else traj.lr

    def encode_config(self, traj: Trajectory):
        """The EncodeConfig of one trajectory (everything else at the codec's defaults)."""
        from inrcodec.config import CoderConfig, EncodeConfig, FitConfig, PruneConfig
        from inrcodec.siren import Architecture

        return EncodeConfig(
            arch=Architecture(hidden=traj.hidden, layers=self.layers, pe_levels=self.pe_levels),
            fit=FitConfig(
                steps=self.steps_of(traj),
                batch=self.batch,
                lr=self.lr_of(traj),
                seed=self.seed,
                fused=self.fused,
                sampler=self.sampler,
                kernel=self.kernel,
            ),
            prune=PruneConfig(density=min(traj.densities, default=1.0), steps=self.prune_steps, rewind=self.rewind),
            coder=CoderConfig(
                weight_coder=self.weight_coder, qat_steps=self.qat_steps, entropy_coder=self.entropy_coder
            ),
        )


# The benchmark's ladder, chosen on ../shared/photos (never on Kodak); docs/benchmark.md times it.
# Dense fits of five widths span about 0.07-0.8 bpp (the presets are three of them), all with
# Fourier features of the coordinates. Widths 112 and 144 learn at 1e-3: at 2e-3 (release 1.1)
# they sat on a plateau until the schedule had decayed the rate (fit-only checks: +1.47 dB at
# width 144 on photo002, +0.26 and +0.03 dB at 112 on photo002 and photo003; 2e-3 stays best at
# 80 and 40; the width-lr ablation). Widths 80 and up get 2000 steps. Width 176 left the ladder:
# in 1.1 it matched width 144's PSNR for 53 % more bytes. Pruning lost to a dense network of the
# same bytes wherever it was measured (on Kodak in the 1.0 run, +70.9 % BD-rate; the imp-vs-dense
# ablation on the photos), so the ladder has no pruned points; a Trajectory with densities adds
# them back.
LADDER_1_2 = Ladder(
    trajectories=(
        Trajectory(hidden=144, densities=(), fit_steps=2000, lr=1e-3),
        Trajectory(hidden=112, densities=(), fit_steps=2000, lr=1e-3),
        Trajectory(hidden=80, densities=(), fit_steps=2000),
        Trajectory(hidden=56, densities=()),
        Trajectory(hidden=40, densities=()),  # the lowest rate
    ),
    pe_levels=6,
    fit_steps=1500,
    batch=8192,
    lr=2e-3,
    prune_steps=500,
    qat_steps=100,
)

# Release 2.0's first ladder: the fused step and the importance sampler with torch's kernels,
# 1.15x release 1.2's steps (its results: benchmarks/results/archive/2.0.0-torch-kernels/). The
# ablations measured on it (`steps`, `shared-mask`) keep it, so their committed rows still match.
LADDER_2_0_TORCH = replace(
    LADDER_1_2,
    trajectories=tuple(replace(t, fit_steps=round(LADDER_1_2.steps_of(t) * 1.15)) for t in LADDER_1_2.trajectories),
    fused=True,
    sampler="importance",
)
# Release 2.0's ladder (issue 16, item 3): the same widths and schedules, fitted with the fused
# step, the importance sampler and the native kernels, which together are 1.44-1.63x as fast a
# step as 1.2's, so each trajectory takes 1.4x the steps in the same encode time
# (inrcodec/config.py, STEPS_2_0; benchmarks/results/fit_speed-whole-importance.md). Its dense
# points are the presets. Each layer's section is range-coded or Brotli-packed, whichever is
# smaller (entropy_coder "auto", format v4).
LADDER = replace(
    LADDER_1_2,
    trajectories=tuple(
        replace(t, fit_steps=round(LADDER_1_2.steps_of(t) * STEPS_2_0)) for t in LADDER_1_2.trajectories
    ),
    fused=FIT_2_0["fused"],
    sampler=FIT_2_0["sampler"],
    kernel=FIT_2_0["kernel"],
    entropy_coder=CODER_2_0["entropy_coder"],
)

# --quick: 256x256 crops, two operating points from one short trajectory (a smoke test).
QUICK_LADDER = Ladder(
    trajectories=(Trajectory(hidden=32, densities=(0.6,)),),
    pe_levels=6,
    fit_steps=300,
    batch=4096,
    prune_steps=150,
    qat_steps=30,
)


def point_name(hidden: int, density: float) -> str:
    return f"h{hidden}-d{density:.2f}"


class InrCodec(Codec):
    """inrcodec through :func:`encode_ladder`: each trajectory gives an ``.inr`` file per round.

    The rate is ``len(bytes)`` of each file; the PSNR comes from :func:`inrcodec.decode` of those
    bytes (see :func:`ladder_rows`).
    """

    name, label = "inrcodec", "inrcodec"

    def __init__(self, ladder: Ladder = LADDER, device: str = "cpu"):
        self.ladder = ladder
        self.device = device

    def config(self) -> dict:
        return {
            "ladder": asdict(self.ladder),
            "device": self.device,
            "encode_configs": {f"h{t.hidden}": record(self.ladder.encode_config(t)) for t in self.ladder.trajectories},
        }

    def job_config(self, job: Job) -> dict:
        """One trajectory's rows depend on its own encoder config and densities, not on the others'."""
        t: Trajectory = job.params
        return {"trajectory": asdict(t), "encode_config": record(self.ladder.encode_config(t)), "device": self.device}

    def jobs(self) -> list[Job]:
        out = []
        for t in self.ladder.trajectories:
            settings = tuple(point_name(t.hidden, d) for d in (1.0, *t.densities))
            steps = self.ladder.steps_of(t) + len(t.densities) * self.ladder.prune_steps
            steps += len(settings) * self.ladder.qat_steps
            cost = steps * self.ladder.batch * (1.6e-6 + 3.6e-10 * t.hidden**2)  # seconds on one core, measured
            out.append(Job(f"h{t.hidden}", settings, t, cost))
        return out

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        traj: Trajectory = job.params
        return ladder_rows(arr, self.ladder.encode_config(traj), traj.densities, job.settings, self.device)


def ladder_rows(arr: np.ndarray, cfg, densities, settings, device: str = "cpu") -> list[dict]:
    """One :func:`encode_ladder` trajectory, a row per operating point (``settings``: dense first)."""
    from inrcodec.encoder.pipeline import encode_ladder

    return encoded_rows(arr, encode_ladder(arr, cfg, list(densities), device=device), settings, device)


def encoded_rows(arr: np.ndarray, encoded: list, settings, device: str = "cpu") -> list[dict]:
    """Rows of ``encoded`` (one trajectory's files in order, or one lone encode), each decoded.

    ``encode_s`` of a point is what a lone encode to it costs: fit and pruning up to it plus its
    own coding (the coding of earlier points on the trajectory is not counted).
    """
    import inrcodec

    rows, coding_before = [], 0.0
    for setting, enc in zip(settings, encoded, strict=True):
        sec = enc.stats["seconds"]
        encode_s = sec["fit_and_prune"] - coding_before + sec["code"]
        coding_before += sec["code"]
        t = time.perf_counter()
        decoded = inrcodec.decode(enc.data, device=device)
        decode_s = time.perf_counter() - t
        r = row(setting, arr, enc.data, decoded, encode_s, decode_s)
        r.update(density=enc.stats["density"], bits=enc.stats["bits"], coders=enc.stats["coders"])
        r.update(kernel=enc.stats["kernel"])  # which ran ("auto" takes torch's where the native cannot)
        rows.append(r)
    return rows


CODECS: dict[str, type[Codec]] = {c.name: c for c in (Jpeg420, Jpeg444, WebP, Jpeg2000, Avif, InrCodec)}


def make(names: list[str], quick: bool = False, device: str = "cpu") -> list[Codec]:
    """Codec instances by name; ``quick`` gives inrcodec its smoke-test ladder."""
    unknown = [n for n in names if n not in CODECS]
    if unknown:
        raise ValueError(f"unknown codec(s) {', '.join(unknown)}; choose from {', '.join(CODECS)}")
    out = []
    for n in names:
        if n == InrCodec.name:
            out.append(InrCodec(QUICK_LADDER if quick else LADDER, device))
        else:
            out.append(CODECS[n]())
    return out
