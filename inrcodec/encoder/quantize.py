"""Stage 4: uniform scalar quantizers, their steps, and the straight-through fake quantizer."""

from __future__ import annotations

import numpy as np
import torch


def step_for(values: np.ndarray, bits: int) -> float:
    """Symmetric uniform step that spans max|v| with 2**(bits-1) - 1 levels per side.

    Returned as the float32 the bitstream will store, so both sides use the same number.
    """
    top = float(np.max(np.abs(values))) if values.size else 0.0
    levels = (1 << (bits - 1)) - 1
    return float(np.float32(max(top, 1e-8) / levels))


def quantize(values: np.ndarray, step: float, bits: int | None = None) -> np.ndarray:
    """Round to the nearest multiple of ``step`` (ties to even), as int64 symbols.

    With ``bits``, symbols are clipped to the 2**(bits-1) - 1 levels per side, so weights that
    grew during quantization-aware fine-tuning do not widen every symbol of the layer.
    """
    q = np.round(values.astype(np.float64) / np.float32(step)).astype(np.int64)
    if bits is not None:
        top = (1 << (bits - 1)) - 1
        q = np.clip(q, -top, top)
    return q


def fake_quant(w: torch.Tensor, step: float) -> torch.Tensor:
    """Quantize in the forward pass, identity in the backward pass (straight-through)."""
    return w + (torch.round(w / step) * step - w).detach()
