"""The survey's other ticket finders, beside the magnitude rules of ``mask.py``: N:M structured
masks, SNIP and SynFlow (RigL, a training procedure, is ``rigl.py``).

- ``nm:N:M`` (N:M structured sparsity, as in NVIDIA's 2:4 sparse tensor cores; Zhou et al.,
  "Learning N:M Fine-grained Structured Sparse Neural Networks from Scratch", ICLR 2021): in each
  group of M consecutive weights along the input dimension of a weight matrix (a row, row-major),
  keep the N largest magnitudes. A row whose length L is not a multiple of M ends in a partial
  group of L mod M weights, which keeps ceil(N (L mod M) / M) of them (a row shorter than M is one
  partial group). The density is N/M (a little more with partial groups): a rule of **fixed
  density**, so :func:`prune` ignores its ``fraction``, and :func:`check_density` refuses an
  encoder density other than N/M (or 1, no pruning).
- ``snip`` (Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity",
  ICLR 2019): the score |w · dL/dw|, L the MSE on one or a few batches of the target at the given
  weights, ranked globally across layers as the magnitude rule is (:meth:`Mask.prune_by`).
- ``synflow`` (Tanaka et al., "Pruning neural networks without any data by iteratively conserving
  synaptic flow", NeurIPS 2020): data-free. R = 1ᵀ (Π_l |W_l|) 1, the output of the network with
  every weight replaced by its absolute value, the biases left out and every sine replaced by the
  identity (SynFlow linearises the nonlinearities; ω0 scales every path alike and drops out), fed
  an all-ones input; the score is |w · dR/dw|. Pruning is iterative: ``iterations`` (100) rounds
  on an exponential schedule to the target, rescoring under the mask each time, which is what
  keeps a layer from being cut off (layer collapse). Scores are computed in the log domain
  (float64), so no depth or width overflows.

All rules remove (or keep) weights that survive ``mask`` only; biases are never pruned.
"""

from __future__ import annotations

import math

import torch

from inrcodec.encoder.mask import RULES as MAGNITUDE_RULES
from inrcodec.encoder.mask import Mask

FINDERS = ("snip", "synflow", "rigl")  # besides nm:N:M
SYNFLOW_ITERATIONS = 100


def parse_nm(rule: str) -> tuple[int, int] | None:
    """``nm:N:M`` -> (N, M); None for any other rule; ValueError for a malformed one."""
    if not rule.startswith("nm:"):
        return None
    parts = rule.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts[1:]):
        raise ValueError(f"bad N:M rule {rule!r}; use nm:N:M with integers 1 <= N < M, e.g. nm:2:4")
    n, m = int(parts[1]), int(parts[2])
    if not 1 <= n < m:
        raise ValueError(f"bad N:M rule {rule!r}: need 1 <= N < M (N of every M weights kept), e.g. nm:2:4")
    return n, m


def check(rule: str) -> str:
    """``rule`` if it is one (magnitude, random, largest, snip, synflow, rigl, nm:N:M), else ValueError."""
    if rule in MAGNITUDE_RULES or rule in FINDERS or parse_nm(rule) is not None:
        return rule
    known = ", ".join([*MAGNITUDE_RULES, *FINDERS, "nm:N:M"])
    raise ValueError(f"unknown pruning rule {rule!r}; choose from {known}")


def fixed_density(rule: str) -> float | None:
    """N/M for an N:M rule (the density it always prunes to), None for the others."""
    nm = parse_nm(rule)
    return None if nm is None else nm[0] / nm[1]


def check_density(rule: str, density: float) -> None:
    """ValueError when a fixed-density rule is asked for another density (1.0, no pruning, is fine)."""
    fixed = fixed_density(rule)
    if fixed is not None and density < 1.0 and abs(density - fixed) > 1e-9:
        raise ValueError(f"rule {rule} prunes to density {fixed:g} (N/M); asked for {density:g}")


# -- N:M ----------------------------------------------------------------------------------------


def _top_in_groups(scores: torch.Tensor, n: int) -> torch.Tensor:
    """(..., G) scores -> bool, True at the ``n`` largest of each last-axis group (ties: earlier)."""
    order = torch.argsort(-scores, dim=-1, stable=True)[..., :n]
    keep = torch.zeros_like(scores, dtype=torch.bool)
    return keep.scatter_(-1, order, True)


def nm_keep(weight: torch.Tensor, n: int, m: int, alive: torch.Tensor | None = None) -> torch.Tensor:
    """The N:M keep flags of one (out, in) weight matrix. With ``alive``, dead weights are never
    kept (a group with fewer than N survivors keeps just those)."""
    w = weight.detach().abs().double().cpu()
    if alive is not None:
        w = torch.where(alive.cpu(), w, torch.full_like(w, -math.inf))
    rows, length = w.shape
    full = length - length % m
    keep = torch.zeros(rows, length, dtype=torch.bool)
    if full:
        keep[:, :full] = _top_in_groups(w[:, :full].reshape(rows, full // m, m), n).reshape(rows, full)
    if full < length:
        keep[:, full:] = _top_in_groups(w[:, full:], math.ceil(n * (length - full) / m))
    if alive is not None:
        keep &= alive.cpu()
    return keep.to(weight.device)


def nm_mask(weights: list[torch.Tensor], n: int, m: int, mask: Mask | None = None) -> Mask:
    """The N:M mask of ``weights`` (within the survivors of ``mask``)."""
    alive = [None] * len(weights) if mask is None else list(mask.keep)
    out = tuple(nm_keep(w, n, m, a).to(w.device if a is None else a.device) for w, a in zip(weights, alive))
    return Mask(out)


# -- SNIP ---------------------------------------------------------------------------------------


def snip_scores(
    net,
    target,
    weights: list[torch.Tensor] | None = None,
    mask: Mask | None = None,
    batch: int | None = None,
    batches: int = 1,
    seed: int = 0,
    biases: list[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """|w · dL/dw| per weight (float64), L the MSE of ``net`` with ``weights`` and ``biases``
    (default: its own; under ``mask``) against ``target``, averaged over ``batches`` batches of ``batch`` random
    pixels (seeded), or once over every pixel when ``batch`` is None."""
    dev = target.coords.device
    ws = [(w if weights is None else weights[i]).detach().to(dev).clone() for i, w in enumerate(net.weights)]
    ws = [w.requires_grad_(True) for w in ws]
    bs = [b.detach().to(dev) for b in (net.biases if biases is None else biases)]
    used = ws if mask is None else mask.to(dev).apply(ws)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    runs = 1 if batch is None or batch >= target.n else batches
    for _ in range(runs):
        if batch is None or batch >= target.n:
            x, y = target.coords, target.colours
        else:
            idx = torch.randint(0, target.n, (batch,), generator=gen).to(dev)
            x, y = target.coords[idx], target.colours[idx]
        loss = torch.mean((net(x, used, bs) - y) ** 2) / runs
        loss.backward(retain_graph=True)
    return [(w.detach().double() * w.grad.double()).abs().cpu() for w in ws]


# -- SynFlow ------------------------------------------------------------------------------------


def synflow_log_scores(weights: list[torch.Tensor], mask: Mask | None = None) -> list[torch.Tensor]:
    """log |w · dR/dw| per weight (float64; -inf for pruned weights and dead paths), R the
    synaptic flow of the linearised absolute-valued network on an all-ones input.

    With x_0 = 1, x_{l+1} = |W_l| x_l (forward) and a_L = 1, a_l = |W_l|ᵀ a_{l+1} (backward),
    dR/dW_l[i, j] = a_{l+1}[i] x_l[j]; so the score is |W_l[i, j]| a_{l+1}[i] x_l[j], summed
    here as logarithms (logsumexp for the products)."""
    logs = []
    for i, w in enumerate(weights):
        a = w.detach().double().cpu().abs()
        if mask is not None:
            a = a * mask.keep[i].cpu()
        logs.append(torch.log(a))  # log 0 = -inf
    fwd = [torch.zeros(logs[0].shape[1], dtype=torch.float64)]
    for lw in logs:
        fwd.append(torch.logsumexp(lw + fwd[-1][None, :], dim=1))
    bwd = [torch.zeros(logs[-1].shape[0], dtype=torch.float64)]
    for lw in reversed(logs):
        bwd.insert(0, torch.logsumexp(lw + bwd[0][:, None], dim=0))
    # bwd[l] is log a_l (dR/dx_l); the score of layer l takes a_{l+1} and x_l.
    return [lw + bwd[i + 1][:, None] + fwd[i][None, :] for i, lw in enumerate(logs)]


def synflow_mask(
    weights: list[torch.Tensor],
    count: int,
    mask: Mask | None = None,
    iterations: int = SYNFLOW_ITERATIONS,
) -> Mask:
    """SynFlow from ``mask`` (default dense) down to exactly ``count`` weights: ``iterations``
    rescorings, keeping round(n0 (count/n0)^(k/iterations)) after the k-th (n0 the survivors at
    the start), the last keeping ``count``."""
    mask = Mask.dense(weights) if mask is None else mask
    n0 = mask.count()
    count = max(0, min(int(count), n0))
    if count == n0:
        return mask
    for k in range(1, iterations + 1):
        goal = count if k == iterations else int(round(n0 * (count / n0) ** (k / iterations)))
        if goal >= mask.count():
            continue
        mask = mask.keep_best(synflow_log_scores(weights, mask), goal)
    return mask


# -- one entry point ----------------------------------------------------------------------------


def prune(
    mask: Mask,
    net,
    target,
    fraction: float,
    rule: str,
    generator: torch.Generator | None = None,
    weights: list[torch.Tensor] | None = None,
    batch: int | None = None,
    seed: int = 0,
) -> Mask:
    """``mask`` pruned by ``rule`` on ``weights`` (default: ``net``'s current weights).

    magnitude, random, largest: :meth:`Mask.prune` exactly (the codec's rules, unchanged). snip:
    ``fraction`` of the survivors with the smallest SNIP scores on one batch of ``batch`` pixels
    of ``target`` (every pixel when None). synflow: SynFlow from ``mask`` down to the survivors
    less ``fraction`` of them (the count the magnitude rule would keep). nm:N:M: the N:M mask of
    the survivors; ``fraction`` is ignored (the rule's density is N/M). rigl is a training
    procedure, not a one-shot rule: :func:`inrcodec.encoder.rigl.train_rigl`.
    """
    check(rule)
    ws = list(net.weights) if weights is None else list(weights)
    if rule in MAGNITUDE_RULES:
        return mask.prune(ws, fraction, rule, generator)
    nm = parse_nm(rule)
    if nm is not None:
        return nm_mask(ws, *nm, mask)
    if rule == "snip":
        return mask.prune_by(snip_scores(net, target, ws, mask, batch=batch, seed=seed), fraction)
    if rule == "synflow":
        return synflow_mask(ws, count_after(mask, fraction), mask)
    raise ValueError("rigl trains its own mask (inrcodec.encoder.rigl.train_rigl); it does not prune one")


def count_after(mask: Mask, fraction: float) -> int:
    """The survivors :meth:`Mask.prune` leaves after removing ``fraction`` of them."""
    n = mask.count()
    n_remove = int(round(fraction * n))
    if fraction > 0 and n > 0:
        n_remove = max(1, n_remove)
    return n - max(0, n_remove)
