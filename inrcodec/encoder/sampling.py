"""Which pixels a training step sees.

``uniform`` (every release up to 1.2; still ``FitConfig``'s default): each batch is drawn
uniformly, with replacement, from the seeded generator. ``error`` (issue 16): half of each
batch is drawn the same way, the other half in proportion to each pixel's squared error when a
batch last contained it, so steps go where the picture is still wrong (the idea of EVOS, CVPR
2025, and of soft mining, without their extra full-image passes: the errors come free from the
step's own forward pass). A pixel never seen keeps its starting weight of 1, far above any
colour error of a fitted network, so the first draws also cover the image. The loss is not
reweighted: the point is to spend more of the gradient on the pixels that are wrong.
``importance`` (release 2.0's presets) draws half the batch uniformly and half in proportion to
the error (by tiles of 16 pixels) and weights the loss back by the mixture's density (unbiased):
the variance-reducing version of the same idea.
"""

from __future__ import annotations

import numpy as np
import torch

SAMPLERS = ("uniform", "error", "importance")


class Uniform:
    """Uniform draws, exactly as the fit always drew them (the same numbers from the same seed)."""

    wants_errors = False

    def __init__(self, pool: int, batch: int) -> None:
        self.pool, self.batch = pool, batch

    def weights(self) -> torch.Tensor | None:
        """Per-pixel loss weights of the last draw (None: a plain mean)."""
        return None

    def draw(self, gen: torch.Generator) -> torch.Tensor:
        return torch.randint(0, self.pool, (self.batch,), generator=gen)

    def observe(self, idx: torch.Tensor, errors: torch.Tensor) -> None:
        pass


class _Errors(Uniform):
    """A sampler that keeps each pixel's squared error from the last batch that held it."""

    wants_errors = True

    def __init__(self, pool: int, batch: int) -> None:
        super().__init__(pool, batch)
        self.errors = torch.ones(pool)  # unseen pixels first: any colour error is far below 1

    def observe(self, idx: torch.Tensor, errors: torch.Tensor) -> None:
        """``errors``: the squared error of each drawn pixel (mean over channels), any device."""
        self.errors[idx.cpu()] = errors.detach().float().cpu().clamp_min(1e-8)


class ErrorDriven(_Errors):
    """Half uniform, half in proportion to each pixel's last seen squared error."""

    MAX_POOL = 1 << 24  # torch.multinomial's limit on categories: it draws over every pixel

    def __init__(self, pool: int, batch: int, share: float = 0.5) -> None:
        if pool > self.MAX_POOL:
            raise ValueError(f"the error sampler draws from at most {self.MAX_POOL} pixels, not {pool}")
        super().__init__(pool, batch)
        self.weighted = int(round(batch * share))  # draws in proportion to the error (0 for a 1-pixel batch)

    def draw(self, gen: torch.Generator) -> torch.Tensor:
        uniform = torch.randint(0, self.pool, (self.batch - self.weighted,), generator=gen)
        if self.weighted == 0:
            return uniform
        weighted = torch.multinomial(self.errors, self.weighted, replacement=True, generator=gen)
        return torch.cat([uniform, weighted])


class Importance(_Errors):
    """A share of each batch (``share``, half by default: the SIREN's) drawn in proportion to the
    error (q), the rest uniformly, and the loss weighted by 1/(N p) with p = (1 - s)/N + s q, the
    mixture's density (a deterministic mixture; s = floor(b share)/b for a batch of b):
    an unbiased estimate of the mean error over all pixels, with its variance lowered where the
    error is large.

    q is drawn in two stages, a tile of ``TILE`` consecutive pixels (of the pool's order: image
    rows) in proportion to its summed error, then a pixel of it uniformly, so q is the tile's
    share of the error spread evenly over its pixels. A draw in proportion to each pixel's own
    error (``torch.multinomial`` over all N) cost a fifth of a width-80 step here and undid the
    fused step's gain; the tiles' table is N/16 long and stays in cache. Unbiased all the same:
    the weights are those of the density actually drawn from."""

    TILE = 16  # pixels per tile of the error-proportional draw (any pool: a 24-megapixel photo too)

    def __init__(self, pool: int, batch: int, share: float = 0.5) -> None:
        if not 0.0 < share < 1.0:  # 1 would leave pixels of no error undrawable: the weights unbounded
            raise ValueError(f"the share drawn by error must be in (0, 1), not {share}")
        super().__init__(pool, batch)
        self.share = share  # of each batch drawn by error (floor(batch * share) draws)
        self.tiles = -(-pool // self.TILE)
        self.sizes = torch.full((self.tiles,), self.TILE)  # pixels per tile (the last may be short)
        self.sizes[-1] = pool - (self.tiles - 1) * self.TILE

    def draw(self, gen: torch.Generator) -> torch.Tensor:
        n, t, b, tiles, sizes = self.pool, self.TILE, self.batch, self.tiles, self.sizes
        errors = self.errors if n == tiles * t else torch.nn.functional.pad(self.errors, (0, tiles * t - n))
        sums = errors.view(tiles, t).sum(1)
        cum = np.cumsum(sums.numpy(), dtype=np.float64)
        total = float(cum[-1])
        # the share by error, the rest uniform: a deterministic mixture, still unbiased with the
        # mixture's density in the weights. numpy searches sorted keys from the last one's place.
        half = int(b * self.share)  # b // 2 at the SIREN's 1/2
        keys = np.sort(torch.rand(half, generator=gen, dtype=torch.float64).numpy()) * total
        tile = torch.from_numpy(np.searchsorted(cum, keys, side="right").clip(max=tiles - 1))
        size = sizes.index_select(0, tile)
        by_error = tile * t + (torch.rand(half, generator=gen) * size).long().minimum(size - 1)
        idx = torch.cat([by_error, torch.randint(0, n, (b - half,), generator=gen)])
        at = idx // t
        share = half / b  # of the batch drawn by error (self.share but for rounding)
        p = (1 - share) / n + share * sums.index_select(0, at) / (total * sizes.index_select(0, at))
        self._weights = 1.0 / (n * p)
        return idx

    def weights(self) -> torch.Tensor | None:
        return self._weights


def make(name: str, pool: int, batch: int, share: float = 0.5) -> Uniform:
    """The sampler ``name``; ``share``: of each importance batch drawn by error."""
    if name == "uniform":
        return Uniform(pool, batch)
    if name == "error":
        return ErrorDriven(pool, batch)
    if name == "importance":
        return Importance(pool, batch, share)
    raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
