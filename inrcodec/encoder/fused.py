"""The fit's fast path: the whole SIREN forward and backward as one autograd function.

``Siren.forward`` (inrcodec/siren.py) is the reference: per sine layer it runs
``addmm`` (a copy of the bias into the output, then the product), ``ω·z``, ``sin``, and autograd's
backward adds ``cos``, ``g·cos``, ``·ω``, two products and a column sum, each into a freshly
allocated (N, width) tensor. The profile of a width-80 step (docs/performance.md) spent more time
on those elementwise passes and on first-touching fresh memory than on the products themselves.
Here each sine layer is

    forward   a = ωb + h (ωW)^T     one ``addmm``: ω folded into the (small) weights and bias
              s = sin(a)            into a buffer reused from step to step
              c = cos(a)            in place over a, kept for the backward pass
    backward  t = c · g             in place over c
              dW = ω t^T h,  db = ω Σ t,  g' = t (ωW)

so ω costs no pass over the activations, sin and cos of each argument are computed once each,
the loss (mean squared error) and its gradient are part of the function, and every (N, width)
buffer is allocated once per fit (``Workspace``) instead of a few times per layer and step. The
Fourier features and colours of every pixel are one table made once per image (``table``), so a
step gathers its batch with one ``index_select`` instead of recomputing 24 sines and cosines per
pixel.

It is the same function as ``Siren.forward``, not the same float operations: ω(W h + b) is
rounded as (ωW) h + ωb, so outputs and gradients differ from the reference
path in the last bits (tests/test_fit.py bounds the difference) and an encode writes files that
differ from release 1.2's in the last bits of the weights (``FitConfig.fused``; False is the
release 1.2 step, operation for operation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from inrcodec.siren import Siren, fourier_features

if TYPE_CHECKING:
    from inrcodec.encoder.native import Kernels

__all__ = ["Workspace", "gather", "mse", "native_step", "table"]

FEATURE_TABLE_BYTES = 256 << 20  # above this, the Fourier features are computed per batch instead


class Workspace:
    """(N, width) buffers kept from one step to the next, by name: a step writes the same memory
    as the last one instead of allocating (and first-touching) a few megabytes per layer.

    Only the fit uses one, and only between its steps: a buffer holds the last forward pass's
    activations until that pass's backward has run, so a graph must be backpropagated (or
    dropped) before the next forward pass through the same workspace."""

    def __init__(self) -> None:
        self._bufs: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        buf = self._bufs.get(name)
        if buf is None or buf.shape != shape or buf.device != like.device or buf.dtype != like.dtype:
            buf = self._bufs[name] = torch.empty(shape, device=like.device, dtype=like.dtype)
        return buf


def table(target_coords: torch.Tensor, colours: torch.Tensor, levels: int) -> torch.Tensor | None:
    """(N, F + C): every pixel's Fourier features (``fourier_features``, the same values) and its
    colour, so that one ``index_select`` gathers a batch; None when the table would pass
    FEATURE_TABLE_BYTES (a batch's features are then computed from its coordinates)."""
    n_feat = target_coords.shape[1] * (1 + 2 * levels)
    if target_coords.shape[0] * (n_feat + colours.shape[1]) * colours.element_size() > FEATURE_TABLE_BYTES:
        return None
    return torch.cat([fourier_features(target_coords, levels), colours], dim=1)


def gather(
    ws: Workspace,
    rows: torch.Tensor | None,
    coords: torch.Tensor,
    colours: torch.Tensor,
    levels: int,
    idx: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's features (N, F) and colours (N, C): rows of ``rows`` (``table``) in a workspace
    buffer, or computed from the coordinates when there is no table."""
    if rows is None:
        return fourier_features(coords[idx], levels), colours[idx]
    batch = torch.index_select(rows, 0, idx, out=ws.get("batch", (idx.numel(), rows.shape[1]), rows))
    n_feat = rows.shape[1] - colours.shape[1]
    return batch[:, :n_feat], batch[:, n_feat:]


class _SirenFunction(torch.autograd.Function):
    """The mean squared error of the network at the feature rows ``x`` (N, F) against the colours
    ``y`` (N, C), each pixel's term weighted by ``pixel_w`` (N,) unless it is None, and each
    pixel's squared error (N,), mean over channels (not differentiable); weights and biases
    passed flat."""

    @staticmethod
    def forward(ctx, x, y, ws, omegas, pixel_w, kernels, *params):  # noqa: D401 - autograd signature
        n_layers = len(params) // 2
        weights, biases = params[:n_layers], params[n_layers:]
        n = x.shape[0]
        scaled, acts, cos = [], [x], []
        h = x
        for i, (w, b) in enumerate(zip(weights, biases)):
            if i < n_layers - 1:
                w, b = w * omegas[i], b * omegas[i]  # ω folded into the (small) weights
                z = ws.get(f"z{i}", (n, w.shape[0]), x)
                s = ws.get(f"s{i}", (n, w.shape[0]), x)
                if kernels is None:
                    torch.addmm(b, h, w.t(), out=z)
                    torch.sin(z, out=s)
                    torch.cos(z, out=z)
                else:  # the bias, sin and cos in one pass (encoder/native.py)
                    torch.mm(h, w.t(), out=z)
                    kernels.bias_sincos(z, b, s)
                cos.append(z)
                acts.append(s)
                h = s
            else:
                h = torch.addmm(b, h, w.t()).sub_(y)  # the residual
            scaled.append(w)
        ctx.ws, ctx.omegas, ctx.scaled, ctx.acts, ctx.cos, ctx.residual = ws, omegas, scaled, acts, cos, h
        ctx.pixel_w, ctx.kernels = pixel_w, kernels
        squared = h * h
        per_pixel = squared.mean(1)
        loss = torch.mean(squared) if pixel_w is None else torch.mean(per_pixel * pixel_w)
        ctx.mark_non_differentiable(per_pixel)
        return loss, per_pixel

    @staticmethod
    def backward(ctx, grad, _grad_errors):
        if ctx.scaled is None:
            raise RuntimeError("the fused SIREN's backward runs once per forward (its buffers are reused)")
        scaled, acts, cos, omegas = ctx.scaled, ctx.acts, ctx.cos, ctx.omegas
        n_layers = len(scaled)
        dws, dbs = [None] * n_layers, [None] * n_layers
        t = ctx.residual.mul_(grad * (2.0 / ctx.residual.numel()))  # d mean(r^2) / d output
        if ctx.pixel_w is not None:  # d mean_i(w_i mean_c(r^2)) / d output
            t.mul_(ctx.pixel_w[:, None])
        g = t  # the gradient of the current layer's output
        for i in range(n_layers - 1, -1, -1):
            if i < n_layers - 1:
                if ctx.kernels is None:
                    t = cos[i].mul_(g)  # g cos(a): the gradient of the pre-activation a = ω(W h + b)
                    db = t.sum(0)
                else:  # the product and its column sums in one pass
                    t = cos[i]
                    db = ctx.kernels.mul_colsum(t, g)
                dws[i] = (t.t() @ acts[i]).mul_(omegas[i])
                dbs[i] = db.mul_(omegas[i])
            else:
                dws[i], dbs[i] = t.t() @ acts[i], t.sum(0)
            if i > 0:
                g = ctx.ws.get(f"g{i}", (t.shape[0], scaled[i].shape[1]), t)
                torch.mm(t, scaled[i], out=g)
        ctx.scaled = ctx.acts = ctx.cos = ctx.residual = ctx.pixel_w = ctx.kernels = None
        return (None, None, None, None, None, None, *dws, *dbs)


def mse(
    net: Siren,
    x: torch.Tensor,
    y: torch.Tensor,
    ws: Workspace,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    pixel_w: torch.Tensor | None = None,
    kernels: Kernels | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """mean((net(x) - y)^2) for the feature rows ``x`` and colours ``y`` (``gather``) with these
    weights and biases, differentiable in both: ``torch.mean((net(coords, weights, biases) -
    colours) ** 2)`` within float rounding; with ``pixel_w`` (N,) each pixel's term weighted,
    ``(per_pixel * pixel_w).mean()`` (the importance sampler's loss). Also each pixel's squared
    error, mean over channels (N,; not differentiable), which the samplers learn from. The backward
    pass must run (or the result be dropped) before the next call with the same workspace. With
    ``kernels`` (encoder/native.py) the elementwise passes of the sine layers run compiled."""
    return _SirenFunction.apply(x, y, ws, _omegas(net), pixel_w, kernels, *weights, *biases)


def _omegas(net: Siren) -> list[float]:
    """Each layer's ω: the first layer's, the hidden ones', and 1 for the linear output."""
    a = net.arch
    return [a.omega0] + [a.omega_hidden] * (len(net.weights) - 2) + [1.0]


def native_step(
    net: Siren, x: torch.Tensor, y: torch.Tensor, ws: Workspace, pixel_w: torch.Tensor | None, kernels: Kernels
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`mse` and its backward pass in one compiled call (``Kernels.siren_step``), for a
    dense network's plain step (no mask, no weight transform, no penalty): each parameter's
    ``.grad`` is written in place (kept from step to step, so the optimizer's ``zero_grad`` must
    not drop it), and the loss (a 0-dim tensor, no graph) and each pixel's squared error are
    returned. Some forty small operations and the autograd function's Python become one call:
    the step's fixed cost, which is most of a narrow network's step (docs/performance.md)."""
    n = x.shape[0]
    weights, biases = [w.detach() for w in net.weights], [b.detach() for b in net.biases]
    for p in (*net.weights, *net.biases):
        if p.grad is None or p.grad.shape != p.shape:
            p.grad = torch.empty_like(p)
    hidden = [w.shape[0] for w in weights[:-1]]
    sines = [ws.get(f"s{i}", (n, o), x) for i, o in enumerate(hidden)]
    cosines = [ws.get(f"z{i}", (n, o), x) for i, o in enumerate(hidden)]
    g = ws.get("g", (n, max(hidden, default=1)), x)
    out = ws.get("out", (n, y.shape[1]), x)
    per_pixel = ws.get("errors", (n,), x)
    grads = ([w.grad for w in net.weights], [b.grad for b in net.biases])
    buffers = (sines, cosines, g, out, per_pixel)
    loss = kernels.siren_step(x, y, pixel_w, weights, biases, _omegas(net)[:-1], grads, buffers)
    return torch.tensor(loss, dtype=torch.float32), per_pixel
