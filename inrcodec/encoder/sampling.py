"""Which pixels a training step sees.

``uniform`` (every release so far): each batch is drawn uniformly, with replacement, from the
seeded generator. ``error`` (issue 16): half of each batch is drawn the same way, the other half
in proportion to each pixel's squared error when a batch last contained it, so steps go where
the picture is still wrong (the idea of EVOS, CVPR 2025, and of soft mining, without their extra
full-image passes: the errors come free from the step's own forward pass). A pixel never seen
keeps its starting weight of 1, far above any colour error of a fitted network, so the first
draws also cover the image. The loss is not reweighted: the point is to spend more of the
gradient on the pixels that are wrong. ``importance`` draws the whole batch from a mixture of
uniform and error-proportional and weights the loss back (unbiased): the variance-reducing
version of the same idea.
"""

from __future__ import annotations

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


class ErrorDriven(Uniform):
    """Half uniform, half in proportion to each pixel's last seen squared error."""

    wants_errors = True

    MAX_POOL = 1 << 24  # torch.multinomial's limit on categories

    def __init__(self, pool: int, batch: int, share: float = 0.5) -> None:
        if pool > self.MAX_POOL:
            raise ValueError(f"the error sampler draws from at most {self.MAX_POOL} pixels, not {pool}")
        super().__init__(pool, batch)
        self.weighted = int(round(batch * share))  # draws in proportion to the error (0 for a 1-pixel batch)
        self.errors = torch.ones(pool)  # unseen pixels first: any colour error is far below 1

    def draw(self, gen: torch.Generator) -> torch.Tensor:
        uniform = torch.randint(0, self.pool, (self.batch - self.weighted,), generator=gen)
        if self.weighted == 0:
            return uniform
        weighted = torch.multinomial(self.errors, self.weighted, replacement=True, generator=gen)
        return torch.cat([uniform, weighted])

    def observe(self, idx: torch.Tensor, errors: torch.Tensor) -> None:
        """``errors``: the squared error of each drawn pixel (mean over channels), any device."""
        self.errors[idx.cpu()] = errors.detach().float().cpu().clamp_min(1e-8)


class Importance(ErrorDriven):
    """Every draw from p = (1/N + e/sum(e)) / 2, the loss weighted by 1/(N p): an unbiased estimate
    of the mean error over all pixels, with its variance lowered where the error is large."""

    def draw(self, gen: torch.Generator) -> torch.Tensor:
        p = self.errors / self.errors.sum() * 0.5 + 0.5 / self.pool
        idx = torch.multinomial(p, self.batch, replacement=True, generator=gen)
        self._weights = 1.0 / (self.pool * p[idx])
        return idx

    def weights(self) -> torch.Tensor | None:
        return self._weights


def make(name: str, pool: int, batch: int) -> Uniform:
    if name == "uniform":
        return Uniform(pool, batch)
    if name == "error":
        return ErrorDriven(pool, batch)
    if name == "importance":
        return Importance(pool, batch)
    raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
