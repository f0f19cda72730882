"""Shipped starting points for the latent family's synthesis and context networks (encoder only).

At the lowest points a third of every file is the two small networks, fitted from SIREN's random
init in each encode. Started instead from networks trained across photographs (photo009 onwards,
each with latents of its own: ``benchmarks/shared_prior_probe.py``), the same fit lands 7-11 %
lower in BD-rate on the held-out photos (docs/benchmark.md, "Shared networks"). An init is
named, and its bytes pinned by SHA-256: a released one never changes (a new one gets a new name),
so an encode stays reproducible. The registry is ``inrcodec/priors/latent.py``, which the decoder
reads too: format version 7 names the init by ID and codes both networks as residuals from it.
The inits were trained and measured on RGB photographs: a grey or RGBA image (one or four
outputs) keeps SIREN's random init (``LatentImage``).
"""

from __future__ import annotations

import io

import numpy as np
import torch

from inrcodec.format.checkerboard import ARM_NAMES, FEATURES, FOUR_PASS, arm_shapes, widen_first_layer
from inrcodec.format.errors import FormatError
from inrcodec.priors import latent as registry

INITS = {init.name: init for init in registry.INITS}  # by LatentConfig.init's name


def arrays(name: str) -> dict[str, np.ndarray]:
    """The init's arrays (fresh ones each call), after checking its bytes against the pinned SHA-256."""
    if name not in INITS:
        raise ValueError(f"unknown latent init {name!r} (this build has: {', '.join(INITS)})")
    try:
        return registry.arrays(INITS[name])
    except FormatError as e:
        raise ValueError(f"latent init {name!r}: {e}") from None


def used(cfg, channels: int) -> str:
    """The init a fit of ``cfg`` (a LatentConfig) on an image of ``channels`` colours starts from,
    or "": the inits have three outputs and were measured on RGB, so grey and RGBA keep SIREN's
    random init (the model, the file's header and the rate estimate all ask here)."""
    return cfg.init if channels == 3 else ""


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
    if cfg.context != "none":  # a checkerboard init fits a four-pass network too (widened)
        want |= {f"arm.{k}": s for k, s in zip(ARM_NAMES, arm_shapes(cfg.context_hidden, cfg.levels))}
    have = {k: v.shape for k, v in values.items()}
    w1 = have.get("arm.l1.weight")
    if cfg.context == "four-pass" and w1 is not None and w1[1:] == (FOUR_PASS.features,):
        have["arm.l1.weight"] = (w1[0], FEATURES)  # an init trained with four passes fits as it is
    return have == want


def apply(model: torch.nn.Module, name: str) -> None:
    """Overwrite ``model``'s synthesis (``linears``) and context network (``arm``) with the init's
    values (a four-pass network: its first layer widened, as format version 9 reads it); a network
    of another shape is refused, naming the init."""
    values = arrays(name)
    if "arm.l1.weight" in values and getattr(model, "scheme", None) is not None:
        try:
            values["arm.l1.weight"] = widen_first_layer(values["arm.l1.weight"], model.scheme)
        except ValueError as e:  # e.g. a four-pass init under the checkerboard
            raise ValueError(f"latent init {name!r} is for another context network than the config's: {e}") from None
    for part in ("linears", "arm"):
        module = getattr(model, part)
        if module is None:
            raise ValueError(f"latent init {name!r} has a context network; the config has none")
        state = module.state_dict()
        mine = {key.removeprefix(part + "."): v for key, v in values.items() if key.startswith(part + ".")}
        if set(mine) != set(state) or any(tuple(state[k].shape) != mine[k].shape for k in mine):
            raise ValueError(f"latent init {name!r} is for another network shape than the config's {part}")
        module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in mine.items()})
