"""Shared helpers of the test suite: tiny configs, synthetic .inr files, byte surgery, golden files."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from inrcodec import config
from inrcodec.format import container

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
GOLDEN = TESTS / "golden"
SAMPLE = REPO / "inrcodec" / "data" / "sample.png"
REGEN = os.environ.get("INRCODEC_REGEN_GOLDEN") == "1"

# Byte offsets of the version a file without a prior or a range coded layer is written at, which
# is every file these tests make unless they ask for those (docs/format.md, version_for).
PLAIN_VERSION = 3
HEADER_AT = len(container.MAGIC) + 1
HEADER = container.header_struct(PLAIN_VERSION)
BODY_AT = HEADER_AT + HEADER.size

# What encode_array's stats (and so `inrcodec encode --json`) always hold.
STATS_KEYS = {
    "bytes", "bpp", "psnr", "width", "height", "channels", "params", "density", "rounds", "bits", "coders",
    "sections", "seconds", "device", "kernel",
}  # fmt: skip


def tiny_config(
    steps: int = 300, density: float = 0.6, hidden: int = 16, layers: int = 2, **coder
) -> config.EncodeConfig:
    """The "fast" preset shrunk to a few hundred steps of a tiny net (seconds on a busy CPU)."""
    base = config.preset("fast")
    return replace(
        base,
        arch=replace(base.arch, hidden=hidden, layers=layers),
        fit=replace(base.fit, steps=steps, batch=1024),
        prune=replace(
            base.prune, density=density, rate=0.3, steps=max(1, steps // 3), rewind=f"early:{min(20, steps)}"
        ),
        coder=replace(base.coder, **{"bits": (8,), "qat_steps": 20, "sinr_k": 16, "sinr_m": 64, "sinr_s": 8, **coder}),
        eval_pixels=4096,
    )


def latent_as(data: bytes, version: int) -> bytes:
    """A latent-grid file (the encoder writes version 8) rewritten as version 5 (no init) or 7 (its
    init kept): the same integers, so the same pixels; what the golden files of those versions
    are regenerated from."""
    from inrcodec.format import latent

    f = latent.read(data)
    init = {5: 0, 7: f.header.init, 8: f.header.init}[version]
    return latent.write(replace(f, header=replace(f.header, init=init, compact=version == 8)))


def fix_crc(data: bytes) -> bytes:
    """``data`` with its trailing CRC32 recomputed (for crafted files that must pass the CRC)."""
    body = bytes(data[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


def with_header(data: bytes, **fields) -> bytes:
    """A copy of ``data`` with header fields replaced and a correct CRC."""
    names = container.header_fields(PLAIN_VERSION)
    values = dict(zip(names, HEADER.unpack_from(data, HEADER_AT)))
    values.update(fields)
    head = HEADER.pack(*(values[n] for n in names))
    return fix_crc(data[:HEADER_AT] + head + data[BODY_AT:])


def naming_prior(data: bytes, prior_id: int) -> bytes:
    """A copy of version 4 file ``data`` whose header names ``prior_id`` (a correct CRC): a file a
    writer would refuse to make when this build lacks that prior."""
    assert data[4] == 4, "a version 4 file has the prior field"
    return fix_crc(data[:22] + struct.pack("<H", prior_id) + data[24:])


def synthetic_stream(
    seed: int = 0,
    width: int = 12,
    height: int = 8,
    channels: int = 3,
    hidden: int = 8,
    layers: int = 2,
    density: float = 0.5,
    sinr_layers: tuple[int, ...] = (1,),
    sinr: tuple[int, int, int] = (8, 16, 3),
) -> tuple[container.Header, np.ndarray | None, list[container.LayerCode]]:
    """A random but valid bitstream (no training): masks, scalar layers and SINR layers."""
    rng = np.random.default_rng(seed)
    header = container.Header(width, height, channels, hidden, layers, 30.0, 30.0)
    sizes = container.n_weights(header)
    masks = None if density >= 1 else rng.random(sum(sizes)) < density
    codes, start = [], 0
    for i, ((n_out, n_in), n) in enumerate(zip(header.shapes(), sizes)):
        keep = n if masks is None else int(masks[start : start + n].sum())
        start += n
        bias_q = rng.integers(-2000, 2000, n_out)
        if i in sinr_layers:
            k, m, s = sinr
            n_vec = -(-keep // k)
            idx = np.sort(np.stack([rng.choice(m, s, replace=False) for _ in range(n_vec)]), axis=1)
            coef = rng.integers(-100, 100, (n_vec, s))
            codes.append(
                container.LayerCode(
                    i,
                    container.CODER_SINR,
                    1e-3,
                    bias_q,
                    0.004,
                    coef.reshape(n_vec, s),
                    sinr=(k, m, s, 1234 + i),
                    indices=idx.reshape(n_vec, s),
                )
            )
        else:
            values = rng.integers(-60, 60, keep)
            codes.append(container.LayerCode(i, container.CODER_SCALAR, 1e-3, bias_q, 0.02 / n_in, values))
    return header, masks, codes


def synthetic_file(**kw) -> bytes:
    return container.write(*synthetic_stream(**kw))


def sha256(a) -> str:
    return hashlib.sha256(a.tobytes() if isinstance(a, np.ndarray) else bytes(a)).hexdigest()


class Golden:
    """Pinned values in a JSON file under tests/golden/; INRCODEC_REGEN_GOLDEN=1 rewrites them."""

    def __init__(self, name: str):
        self.path = GOLDEN / name
        self.values = json.loads(self.path.read_text()) if self.path.exists() else {}

    def check(self, key: str, value) -> None:
        if REGEN:
            self.values[key] = value
            GOLDEN.mkdir(exist_ok=True)
            self.path.write_text(json.dumps(self.values, indent=2, sort_keys=True) + "\n")
            return
        assert key in self.values, f"{key!r} not pinned in {self.path}; run with INRCODEC_REGEN_GOLDEN=1"
        assert value == self.values[key], f"{key!r} differs from {self.path}"


def check_latent_golden(golden: Golden, data: bytes) -> None:
    """A latent-grid file's pinned hashes: its integers (latents, synthesis, context network) as
    the reader gives them, and its pixels at the native size and at 40 x 30 (the NumPy decoder)."""
    from inrcodec import decode
    from inrcodec.format import latent as fmt

    f = fmt.read(data)
    golden.check("latents", sha256(np.concatenate([q.reshape(-1) for q in f.latents])))
    golden.check("synthesis", sha256(np.concatenate([t.reshape(-1) for t in f.synthesis()])))
    golden.check("context", sha256(np.concatenate([a.reshape(-1) for a in f.context])))
    golden.check("pixels", sha256(decode(data, device="cpu")))
    golden.check("pixels_40x30", sha256(decode(data, width=40, height=30, device="cpu")))


def install_prior(
    monkeypatch, prior_id: int, weights: list, biases: list, header: container.Header, masks: list | None = None
) -> None:
    """Make ``prior_id`` a shipped prior of ``header``'s network for one test (the real registry
    is package data that tests must not change); ``masks``: its shared mask (format v6)."""
    import hashlib

    from inrcodec import priors

    ws = tuple(np.asarray(w, np.float32) for w in weights)
    bs = tuple(np.asarray(b, np.float32) for b in biases)
    ms = None if masks is None else tuple(np.asarray(m, bool) for m in masks)
    if ms is not None:
        ws = tuple(w * m for w, m in zip(ws, ms))  # a shared mask's pruned weights are zero in the prior
    blob = priors.pack(list(ws), list(bs), None if ms is None else list(ms))
    entry = priors.Prior(
        prior_id, f"test-{prior_id}", header.hidden, header.layers, header.pe_levels, header.channels,
        header.omega0, header.omega_hidden, f"test-{prior_id}.npz", hashlib.sha256(blob).hexdigest(), "a test",
        auto=True, density=1.0 if ms is None else sum(int(m.sum()) for m in ms) / sum(m.size for m in ms),
    )  # fmt: skip
    table = {**priors.registry(), prior_id: entry}
    real_arrays, real_mask = priors.arrays, priors.mask
    monkeypatch.setattr(priors, "registry", lambda: table)
    monkeypatch.setattr(priors, "arrays", lambda i: (ws, bs) if i == prior_id else real_arrays(i))
    monkeypatch.setattr(priors, "mask", lambda i: ms if i == prior_id else real_mask(i))


# --- the latent-grid family's context model (tests/test_latent_context.py, test_checkerboard.py) ---


def context_model(levels: int = 3, hidden: int = 8, seed: int = 0):
    """A ContextModel that predicts something: a larger last layer than its init gives."""
    import torch

    from inrcodec.encoder import latent_context

    torch.manual_seed(seed)
    model = latent_context.ContextModel(levels, hidden)
    with torch.no_grad():
        model.l3.weight.mul_(20)
        model.l3.bias.copy_(torch.tensor([0.3, -0.5]))
    return model


def latent_pyramid(sizes: list[tuple[int, int]], channels: int = 1, seed: int = 0) -> list[np.ndarray]:
    """Integer latents drawn from a Laplace of scale 1.5, one (channels, h, w) array per size."""
    rng = np.random.default_rng(seed)
    return [np.round(rng.laplace(0, 1.5, (channels, h, w))).astype(np.int64) for h, w in sizes]


def laplace_mass(k: np.ndarray, mu: float, b: float) -> np.ndarray:
    """The probability of integer k under a Laplace(mu, b) integrated over [k - 1/2, k + 1/2]."""

    def cdf(x):
        return np.where(x < 0, 0.5 * np.exp(x / b), 1 - 0.5 * np.exp(-x / b))

    return cdf(k + 0.5 - mu) - cdf(k - 0.5 - mu)


# A small latent-grid point with the context model, and a noisy ramp to fit it to: the rounding's
# and the tuning's tests (test_latent_rdo.py, test_latent_tune.py) fit it in a second or two.
ROUNDING_CFG = config.LatentConfig(
    lam=2e-3, levels=3, hidden=8, steps=80, batch=256, lr_latent=0.1, context="checkerboard", rate_sample=200
)


def noisy_ramp(h: int = 24, w: int = 32) -> np.ndarray:
    """(h, w, 3) uint8: colour ramps plus seeded noise, so a fit has detail to code."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 4], axis=-1)
    return np.clip(smooth + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
