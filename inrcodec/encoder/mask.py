"""A pruning mask as a first-class value: one boolean tensor per weight matrix (biases are never
pruned), so several masks can share one weight tensor (region tickets) and be compared (Jaccard)."""

from __future__ import annotations

from collections.abc import Sequence
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
        return [_jaccard([a], [b]) for a, b in zip(self.keep, other.keep)]

    def jaccard_all(self, other: Mask) -> float:
        """|A ∩ B| / |A ∪ B| over all weights of all layers."""
        return _jaccard(self.keep, other.keep)

    def union(self, *others: Mask) -> Mask:
        """The weights at least one of the masks keeps."""
        keep = list(self.keep)
        for m in others:
            keep = [a | b for a, b in zip(keep, m.keep)]
        return Mask(tuple(keep))

    def flat(self) -> torch.Tensor:
        """All layers' keep flags, concatenated row-major (the file's mask order)."""
        return torch.cat([k.cpu().reshape(-1) for k in self.keep])

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
        if rule == "random":
            scores = [torch.rand(k.reshape(-1).shape, generator=generator) for k in self.keep]
        else:
            scores = [w.detach().abs().reshape(-1).float().cpu() for w in weights]
            if rule == "largest":
                scores = [-s for s in scores]
        return self.prune_by(scores, fraction)

    def prune_by(self, scores: Sequence[torch.Tensor], fraction: float) -> Mask:
        """Remove ``fraction`` of the surviving weights with the smallest ``scores`` (one tensor
        per layer, any shape with its layer's number of entries), ranked globally across layers;
        rounded as :meth:`prune`, which is this with the magnitudes (or random numbers)."""
        flat_alive = torch.cat([k.reshape(-1).cpu() for k in self.keep])
        n_alive = int(flat_alive.sum())
        n_remove = int(round(fraction * n_alive))
        if fraction > 0 and n_alive > 0:
            n_remove = max(1, n_remove)
        return self._remove(scores, flat_alive, n_remove)

    def keep_best(self, scores: Sequence[torch.Tensor], count: int) -> Mask:
        """Keep exactly ``count`` of the surviving weights (all of them if fewer survive): those
        with the largest ``scores``, ranked globally across layers, ties to the later position
        (the order :meth:`prune_by` removes in)."""
        flat_alive = torch.cat([k.reshape(-1).cpu() for k in self.keep])
        return self._remove(scores, flat_alive, int(flat_alive.sum()) - max(0, int(count)))

    def _remove(self, scores: Sequence[torch.Tensor], flat_alive: torch.Tensor, n_remove: int) -> Mask:
        if n_remove <= 0:
            return self
        flat = torch.cat([s.detach().reshape(-1).cpu() for s in scores])
        # Dead weights rank last so they are never "removed" twice; ties broken by position.
        ranked = torch.where(flat_alive, flat, torch.full_like(flat, float("inf")))
        order = torch.argsort(ranked, stable=True)
        if not bool(torch.isfinite(flat[flat_alive]).all()):  # an infinite score (log-scores): alive first
            order = order[torch.argsort((~flat_alive[order]).to(torch.uint8), stable=True)]
        new = flat_alive.clone()
        new[order[:n_remove]] = False
        out, start = [], 0
        for k in self.keep:
            out.append(new[start : start + k.numel()].reshape(k.shape).to(k.device))
            start += k.numel()
        return Mask(tuple(out))


def _jaccard(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    inter = sum(int((x & y).sum()) for x, y in zip(a, b))
    union = sum(int((x | y).sum()) for x, y in zip(a, b))
    return inter / union if union else 1.0
