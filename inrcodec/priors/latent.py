"""Shipped starts of the latent family's synthesis and context networks, by name and by ID.

The encoder starts a fit from one (``LatentConfig.init``); format version 7 names it by ID in the
header and codes the networks as residuals from it, so the decoder needs it too: NumPy only,
like the SIREN priors beside it. An init is an .npz of float32 arrays named ``linears.<i>.weight``,
``linears.<i>.bias`` (the synthesis' maps) and ``arm.<key>`` (the context network), pinned by the
SHA-256 of its bytes. Append only: a released init never changes and its ID is never reused (a
retrained one gets a new name and ID), so every file decodes forever.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from inrcodec.format.errors import FormatError


@dataclass(frozen=True)
class LatentInit:
    """One shipped init: what names it, its data file and how it was made."""

    id: int  # 1..65535: the version 7 header's ``init``
    name: str  # LatentConfig.init
    file: str  # priors/data/<file>
    sha256: str  # of the file's bytes
    trained: str  # the command and data (for people, not for the decoder)


INITS: tuple[LatentInit, ...] = (
    LatentInit(
        1,
        "quarter-v1",
        "latent-quarter-v1.npz",
        "064ee87b87f3d5fe29607952f114c59d46f99b609574cb3a6a1177803b0b92ef",
        "python -m benchmarks.shared_prior_probe --workers 2 (the probe of commit b086b01, run from the "
        "working tree just before it): grid-low's point (5 levels from 1/4, synthesis 21-16-16-3, context "
        "width 16), photo009-photo024, 2500 steps an image in turn, seed 0",
    ),
    LatentInit(
        2,
        "half-v1",
        "latent-half-v1.npz",
        "9f5c813d8fb949b981f741cd370032ddb90e63a656a62508af905f15a8aa70c5",
        "python -m benchmarks.shared_prior_probe --workers 1 --points half (the probe of commit afec7cd, run "
        "from the working tree just before it): the lambda 2e-3 point (6 levels from 1/2, synthesis "
        "22-24-24-3, context width 16), photo009-photo024, 2500 steps an image in turn, seed 0",
    ),
    LatentInit(
        3,
        "quarter-v2",
        "latent-quarter-v2.npz",
        "f26ba0841f83b37804e7c7b6029fe696fa5abb295549f16e89d6c0a13b026d2c",
        "python -m benchmarks.shared_prior_probe --workers 2 --ways init --train-images 41 --out "
        "benchmarks/results/latent/shared-prior-probe-41 (commit 2d212db's working tree), then --export: "
        "quarter-v1's point and settings, photo009-photo049, 2500 steps an image in turn, seed 0",
    ),
    LatentInit(
        4,
        "full-v1",
        "latent-full-v1.npz",
        "0587f96487a2e8d7a44aadac8b5306a2f8ee725b9f2098125cfe8682e0fee159",
        "python -m benchmarks.shared_prior_probe --workers 2 --points full --ways init (commit ca90275's "
        "working tree), then --export: the lambda 5e-4 point (7 levels from 1/1, synthesis 23-24-24-3, "
        "context width 16, the finest grid's learning rate at 0.1), photo009-photo024, 2500 steps an image "
        "in turn, seed 0",
    ),
    LatentInit(
        5,
        "quarter-4p-v1",
        "latent-quarter-4p-v1.npz",
        "61241ee3238cd25b1d1aac49ba58a4e32c84e024d1f7b6c3dbd9cf87db646ae7",
        "python -m benchmarks.shared_prior_probe --workers 1 --ways init --train-images 41 --context four-pass "
        "--out benchmarks/results/latent/shared-prior-probe-41-fourpass (commit b2c4df2), then --export: "
        "quarter-v2's point and settings with the four-pass context model (format v9; its network reads 20 "
        "integers), photo009-photo049, 2500 steps an image in turn, seed 0",
    ),
    LatentInit(
        6,
        "full-4p-v1",
        "latent-full-4p-v1.npz",
        "2ccbc71e07e7d204df979820a25b85ff9527bfbed36b1a7b413a1a1603f4fa6e",
        "python -m benchmarks.shared_prior_probe --workers 1 --points full --ways init --context four-pass "
        "(commit b2c4df2), then --export: full-v1's point and settings with the four-pass context model "
        "(format v9), photo009-photo024, 2500 steps an image in turn, seed 0",
    ),
)


def by_id(init_id: int) -> LatentInit:
    """The init a version 7 file names; FormatError, naming it, if this build lacks it."""
    for init in INITS:
        if init.id == init_id:
            return init
    have = ", ".join(f"{i.id} ({i.name})" for i in INITS)
    raise FormatError(f"the file needs latent init {init_id}, which this build lacks (it has: {have})")


@cache
def _checked_bytes(file: str, sha256: str) -> bytes:
    """An init file's bytes, read and checked once per process (a sweep asks for every point)."""
    data = (resources.files("inrcodec.priors") / "data" / file).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise FormatError(f"latent init {file} does not match its SHA-256: the installation is damaged")
    return data


def arrays(init: LatentInit) -> dict[str, np.ndarray]:
    """The init's float32 arrays (fresh ones each call), after checking its bytes' SHA-256."""
    with np.load(io.BytesIO(_checked_bytes(init.file, init.sha256))) as npz:
        return {key: npz[key].astype(np.float32) for key in npz.files}
