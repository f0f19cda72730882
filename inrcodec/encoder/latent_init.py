"""Shipped starting points for the latent family's synthesis and context networks (encoder only).

At the lowest points a third of every file is the two small networks, fitted from SIREN's random
init in each encode. Started instead from networks trained across photographs (photo009 onwards,
each with latents of its own: ``benchmarks/shared_prior_probe.py``), the same fit lands 7-11 %
lower in BD-rate on the held-out photos (docs/benchmark.md, "Shared networks"). The file still
carries both networks, so the decoder needs nothing of this. An init is named, and its bytes
pinned by SHA-256: a released one never changes (a new one gets a new name), so an encode stays
reproducible. The inits were trained and measured on RGB photographs: a grey or RGBA image (one or
four outputs) keeps SIREN's random init (``LatentImage``).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import torch

from inrcodec.format.checkerboard import FEATURES


@dataclass(frozen=True)
class Init:
    """One shipped init: its arrays' file under inits/, and how it was made."""

    file: str  # inits/<file>: an .npz of float32 arrays named linears.<key> and arm.<key>
    sha256: str  # of the file's bytes
    trained: str  # the command and data (for people)


INITS = {
    "quarter-v1": Init(
        "latent-quarter-v1.npz",
        "064ee87b87f3d5fe29607952f114c59d46f99b609574cb3a6a1177803b0b92ef",
        "python -m benchmarks.shared_prior_probe --workers 2 (the probe of commit b086b01, run from the "
        "working tree just before it): grid-low's point (5 levels from 1/4, synthesis 21-16-16-3, context "
        "width 16), photo009-photo024, 2500 steps an image in turn, seed 0",
    ),
    "half-v1": Init(
        "latent-half-v1.npz",
        "9f5c813d8fb949b981f741cd370032ddb90e63a656a62508af905f15a8aa70c5",
        "python -m benchmarks.shared_prior_probe --workers 1 --points half (the probe of commit afec7cd, run "
        "from the working tree just before it): the lambda 2e-3 point (6 levels from 1/2, synthesis "
        "22-24-24-3, context width 16), photo009-photo024, 2500 steps an image in turn, seed 0",
    ),
    "quarter-v2": Init(
        "latent-quarter-v2.npz",
        "f26ba0841f83b37804e7c7b6029fe696fa5abb295549f16e89d6c0a13b026d2c",
        "python -m benchmarks.shared_prior_probe --workers 2 --ways init --train-images 41 --out "
        "benchmarks/results/latent/shared-prior-probe-41 (commit 2d212db's working tree), then --export: "
        "quarter-v1's point and settings, photo009-photo049, 2500 steps an image in turn, seed 0",
    ),
    "full-v1": Init(
        "latent-full-v1.npz",
        "0587f96487a2e8d7a44aadac8b5306a2f8ee725b9f2098125cfe8682e0fee159",
        "python -m benchmarks.shared_prior_probe --workers 2 --points full --ways init (commit ca90275's "
        "working tree), then --export: the lambda 5e-4 point (7 levels from 1/1, synthesis 23-24-24-3, "
        "context width 16, the finest grid's learning rate at 0.1), photo009-photo024, 2500 steps an image "
        "in turn, seed 0",
    ),
}


@cache
def _checked_bytes(file: str, sha256: str) -> bytes:
    """An init file's bytes, read and checked once per process (a sweep asks for every point)."""
    data = (resources.files("inrcodec.encoder") / "inits" / file).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{file} does not match its SHA-256")
    return data


def arrays(name: str) -> dict[str, np.ndarray]:
    """The init's arrays (fresh ones each call), after checking its bytes against the pinned SHA-256."""
    if name not in INITS:
        raise ValueError(f"unknown latent init {name!r} (this build has: {', '.join(INITS)})")
    init = INITS[name]
    try:
        data = _checked_bytes(init.file, init.sha256)
    except ValueError as e:
        raise ValueError(f"latent init {name!r}: {e}") from None
    with np.load(io.BytesIO(data)) as npz:
        return {key: npz[key] for key in npz.files}


def pack(linears: dict, arm: dict) -> bytes:
    """The .npz bytes of an init from two state dicts (a zip with fixed timestamps: the same
    networks give the same bytes, so an exported init's SHA-256 can be checked by rerunning)."""
    named = {f"linears.{k}": v.detach().numpy().astype(np.float32) for k, v in linears.items()}
    named |= {f"arm.{k}": v.detach().numpy().astype(np.float32) for k, v in arm.items()}
    buf = io.BytesIO()
    np.savez(buf, **named)
    return buf.getvalue()


def fits(cfg, name: str, out_channels: int = 3) -> bool:
    """Whether the init has the shapes of ``cfg``'s synthesis (with ``out_channels`` outputs) and
    context network (``cfg`` a LatentConfig)."""
    values = arrays(name)
    dims = cfg.synthesis_dims(out_channels)
    want = {f"linears.{i}.weight": (b, a) for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))}
    want |= {f"linears.{i}.bias": (b,) for i, b in enumerate(dims[1:])}
    if cfg.context == "checkerboard":
        h = cfg.context_hidden
        want |= {"arm.offsets": (cfg.levels,), "arm.l1.bias": (h,), "arm.l2.weight": (h, h), "arm.l2.bias": (h,)}
        want |= {"arm.l3.weight": (2, h), "arm.l3.bias": (2,), "arm.l1.weight": (h, FEATURES)}
    return {k: v.shape for k, v in values.items()} == want


def apply(model: torch.nn.Module, name: str) -> None:
    """Overwrite ``model``'s synthesis (``linears``) and context network (``arm``) with the init's
    values; a network of another shape is refused, naming the init."""
    values = arrays(name)
    for part in ("linears", "arm"):
        module = getattr(model, part)
        if module is None:
            raise ValueError(f"latent init {name!r} has a context network; the config has none")
        state = module.state_dict()
        mine = {key.removeprefix(part + "."): v for key, v in values.items() if key.startswith(part + ".")}
        if set(mine) != set(state) or any(tuple(state[k].shape) != mine[k].shape for k in mine):
            raise ValueError(f"latent init {name!r} is for another network shape than the config's {part}")
        module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in mine.items()})
