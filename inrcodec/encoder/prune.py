"""Stage 2: masks and iterative magnitude pruning with rewinding (Frankle & Carbin 2019).

A :class:`Mask` is a first-class value (one boolean tensor per weight matrix, biases are never
pruned), so several masks can share one weight tensor (region-adaptive tickets) and be compared
(Jaccard similarity).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

RULES = ("magnitude", "random", "largest")


@dataclass(frozen=True)
class Mask:
    """Which weights of each layer survive. Immutable: pruning returns a new mask."""

    keep: tuple[torch.Tensor, ...]  # one bool tensor per weight matrix, shaped like it

    @staticmethod
    def dense(weights: list[torch.Tensor]) -> Mask:
        return Mask(tuple(torch.ones_like(w, dtype=torch.bool) for w in weights))

    def count(self) -> int:
        return int(sum(int(k.sum()) for k in self.keep))

    def total(self) -> int:
        return sum(k.numel() for k in self.keep)

    def density(self) -> float:
        return self.count() / self.total()

    def apply(self, weights: list[torch.Tensor]) -> list[torch.Tensor]:
        """Weights with pruned entries set to exactly zero (differentiable)."""
        return [w * k.to(w.device, w.dtype) for w, k in zip(weights, self.keep)]

    def to(self, device: torch.device | str) -> Mask:
        return Mask(tuple(k.to(device) for k in self.keep))

    def jaccard(self, other: Mask) -> list[float]:
        """|A ∩ B| / |A ∪ B| per layer: 1.0 for identical masks."""
        out = []
        for a, b in zip(self.keep, other.keep):
            union = int((a | b).sum())
            out.append(int((a & b).sum()) / union if union else 1.0)
        return out

    def prune(
        self,
        weights: list[torch.Tensor],
        fraction: float,
        rule: str = "magnitude",
        generator: torch.Generator | None = None,
    ) -> Mask:
        """Remove ``fraction`` of the surviving weights, ranked globally across layers.

        The count is rounded to nearest, but a positive ``fraction`` always removes at least one
        weight: a pruning loop that stops at a target density must make progress every round.
        """
        if rule not in RULES:
            raise ValueError(f"unknown pruning rule {rule!r}; choose from {', '.join(RULES)}")
        alive = [k.reshape(-1) for k in self.keep]
        if rule == "random":
            scores = [torch.rand(a.shape, generator=generator) for a in alive]
        else:
            scores = [w.detach().abs().reshape(-1).float().cpu() for w in weights]
            if rule == "largest":
                scores = [-s for s in scores]
        flat = torch.cat(scores)
        flat_alive = torch.cat([a.cpu() for a in alive])
        n_alive = int(flat_alive.sum())
        n_remove = int(round(fraction * n_alive))
        if fraction > 0 and n_alive > 0:
            n_remove = max(1, n_remove)
        if n_remove <= 0:
            return self
        # Dead weights rank last so they are never "removed" twice; ties broken by position.
        ranked = torch.where(flat_alive, flat, torch.full_like(flat, float("inf")))
        order = torch.argsort(ranked, stable=True)
        new = flat_alive.clone()
        new[order[:n_remove]] = False
        out, start = [], 0
        for k in self.keep:
            out.append(new[start : start + k.numel()].reshape(k.shape).to(k.device))
            start += k.numel()
        return Mask(tuple(out))


def rounds_to(density: float, rate: float) -> int:
    """Pruning rounds of ``rate`` each needed to reach ``density`` (last round trimmed)."""
    if density >= 1.0:
        return 0
    n, d = 0, 1.0
    while d > density + 1e-9:
        d *= 1.0 - rate
        n += 1
    return n


def round_fraction(current: float, target: float, rate: float) -> float:
    """The fraction of survivors to remove this round: ``rate``, or less to land on ``target``."""
    if current * (1.0 - rate) >= target:
        return rate
    return 1.0 - target / current


def parse_rewind(rewind: str) -> int | None:
    """``init`` -> 0 steps, ``early:N`` -> N, ``none`` -> None (no rewinding)."""
    if rewind == "init":
        return 0
    if rewind == "none":
        return None
    if rewind.startswith("early:") and rewind[6:].isdigit():
        return int(rewind[6:])
    raise ValueError(f"bad rewind mode {rewind!r}; use init, early:N or none")
