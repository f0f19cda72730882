"""Where the context models' reading spends its time: cProfile of ``checkerboard.decode_latents``
on a synthetic Kodak-sized pyramid, once per scheme (docs/performance.md, "Format version 9").

No fit is needed: the decoder's work is set by the grids' sizes and the network's width, not by
what the latents hold, so Laplace-distributed integers and a random integer network of the
presets' width stand in for a file. Each scheme's stream is encoded, decoded back (checked to
round-trip), timed and then profiled.

    python -m benchmarks.context_profile [--height 512 --width 768 --levels 7] [--top 8]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np

from inrcodec.format import checkerboard as cb

HIDDEN = 16  # the presets' context network width


def pyramid(height: int, width: int, levels: int, seed: int = 0) -> list[np.ndarray]:
    """One-channel integer latents, finest first, each level half the last (rounded up)."""
    rng = np.random.default_rng(seed)
    sizes = [(-(-height // 2**k), -(-width // 2**k)) for k in range(levels)]
    return [np.round(rng.laplace(0, 1.5, (1, h, w))).astype(np.int64) for h, w in sizes]


def network(scheme: cb.Scheme, levels: int, seed: int = 1) -> list[np.ndarray]:
    """A random integer context network of the presets' width that reads ``scheme``'s contexts."""
    rng = np.random.default_rng(seed)
    return [rng.integers(-60, 60, shape) for shape in cb.arm_shapes(HIDDEN, levels, scheme)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--height", type=int, default=512, help="finest grid's rows (default 512)")
    p.add_argument("--width", type=int, default=768, help="finest grid's columns (default 768)")
    p.add_argument("--levels", type=int, default=7, help="levels of the pyramid (default 7)")
    p.add_argument("--top", type=int, default=8, help="profile lines to print per scheme (default 8)")
    args = p.parse_args(argv)
    if not (1 <= args.height <= 8192 and 1 <= args.width <= 8192 and 1 <= args.levels <= 12 and args.top > 0):
        p.error("--height and --width 1 to 8192, --levels 1 to 12, --top above 0")
    latents = pyramid(args.height, args.width, args.levels)
    sizes = [q.shape[1:] for q in latents]
    for name, scheme in (("checkerboard", cb.CHECKERBOARD), ("four-pass", cb.FOUR_PASS)):
        arm = network(scheme, args.levels)
        data = cb.encode_latents(latents, arm, scheme)
        t = time.perf_counter()
        back = cb.decode_latents(data, sizes, 1, arm, scheme)
        seconds = time.perf_counter() - t
        if not all(np.array_equal(a, b) for a, b in zip(latents, back, strict=True)):
            raise RuntimeError(f"{name}: the stream did not decode to its latents")
        print(f"{name}: {scheme.features} context integers, {len(data):,} bytes, read in {seconds:.3f} s", flush=True)
        profile = cProfile.Profile()
        profile.enable()
        cb.decode_latents(data, sizes, 1, arm, scheme)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
