"""Shipped priors: meta-learned initialisations the decoder adds coded residuals to (format v4).

A prior is a set of float32 arrays (each layer's weights and biases) for one network shape,
shipped as package data and named by a 16-bit ID in the file's header. ``index.json`` lists every
prior this build has: its ID, name, shape, data file and the SHA-256 of that file's bytes. A
released prior never changes: a new one gets a new ID and the old stays, so every file decodes
forever. NumPy only: the decoder reads this module.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from inrcodec.format.errors import FormatError

NO_PRIOR = 0  # header value of a file without a prior (versions 1-3 read as this)


@dataclass(frozen=True)
class Prior:
    """One shipped initialisation (an entry of index.json)."""

    id: int  # 1..65535, as the header stores it
    name: str  # what it is, e.g. "meta-h80-pe6-rgb-v1"
    hidden: int  # the network shape it initialises ...
    layers: int
    pe_levels: int
    channels: int
    omega0: float
    omega_hidden: float
    file: str  # data/<file>: an .npz with w0..wN, b0..bN (float32)
    sha256: str  # of the file's bytes
    trained: str  # how it was made (command, data, steps); for people, not for the decoder
    auto: bool = False  # the encoder's ``--prior auto`` may pick it: set only once it measures better than none
    density: float = 1.0  # < 1 exactly when the data holds a shared mask (m0..mN); ``load`` checks they agree

    def shape(self) -> tuple:
        return (self.hidden, self.layers, self.pe_levels, self.channels, self.omega0, self.omega_hidden)


@lru_cache(maxsize=1)
def registry() -> dict[int, Prior]:
    """Every prior this build ships, by ID."""
    text = (resources.files("inrcodec.priors") / "index.json").read_text()
    return {p["id"]: Prior(**p) for p in json.loads(text)["priors"]}


def find(hidden: int, layers: int, pe_levels: int, channels: int, omega0: float, omega_hidden: float) -> Prior | None:
    """The newest prior for this network shape that is marked ``auto`` (measured to pay), if any:
    what ``--prior auto`` uses. Any prior can still be named by its ID."""
    shape = (hidden, layers, pe_levels, channels, omega0, omega_hidden)
    fits = [p for p in registry().values() if p.shape() == shape and p.auto]
    return max(fits, key=lambda p: p.id) if fits else None


def arrays(prior_id: int) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """(weights, biases) of prior ``prior_id``, checked against its SHA-256; FormatError if this
    build lacks it or its data is not what was released."""
    return load(prior_id)[:2]


def mask(prior_id: int) -> tuple[np.ndarray, ...] | None:
    """The shared mask of prior ``prior_id`` (bool per weight matrix, True = kept), or None for a
    dense prior (format v6: a file naming a prior with a mask codes only the weights it keeps)."""
    return load(prior_id)[2]


@lru_cache(maxsize=8)
def load(prior_id: int) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], tuple[np.ndarray, ...] | None]:
    """(weights, biases, shared mask or None) of prior ``prior_id``, read once and checked (see
    :func:`arrays`); the arrays are read-only."""
    prior = registry().get(prior_id)
    if prior is None:
        known = ", ".join(map(str, sorted(registry()))) or "none"
        raise FormatError(f"the file needs prior {prior_id}, which this build lacks (it has: {known})")
    data = (resources.files("inrcodec.priors") / "data" / prior.file).read_bytes()
    if hashlib.sha256(data).hexdigest() != prior.sha256:
        raise FormatError(f"prior {prior_id} ({prior.file}) does not match its SHA-256: the installation is damaged")
    with np.load(io.BytesIO(data)) as z:
        n = len([k for k in z.files if k.startswith("w")])
        weights = tuple(z[f"w{i}"].astype(np.float32) for i in range(n))
        biases = tuple(z[f"b{i}"].astype(np.float32) for i in range(n))
        masks = tuple(z[f"m{i}"].astype(bool) for i in range(n)) if "m0" in z.files else None
    if masks is not None:
        shapes_differ = [m.shape for m in masks] != [w.shape for w in weights]
        if shapes_differ or any((w[~m] != 0).any() for w, m in zip(weights, masks)):
            raise FormatError(f"prior {prior_id} ({prior.file}): its mask does not match its weights")
    if (masks is None) != (prior.density >= 1):
        raise FormatError(f"prior {prior_id} ({prior.file}): its index entry and its data disagree on its mask")
    for a in weights + biases + (masks or ()):
        a.setflags(write=False)
    return weights, biases, masks


def pack(weights: list[np.ndarray], biases: list[np.ndarray], masks: list[np.ndarray] | None = None) -> bytes:
    """The .npz bytes of a prior (exported once; index.json records the SHA-256 of these bytes);
    ``masks``: a shared mask, one bool array per weight matrix (m0, m1, ..., as uint8)."""
    buf = io.BytesIO()
    named = {f"w{i}": np.asarray(w, np.float32) for i, w in enumerate(weights)}
    named.update({f"b{i}": np.asarray(b, np.float32) for i, b in enumerate(biases)})
    named.update({f"m{i}": np.asarray(m, bool).astype(np.uint8) for i, m in enumerate(masks or [])})
    np.savez(buf, **named)
    return buf.getvalue()
