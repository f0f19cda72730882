"""Which bytes this machine's encoder makes, and what sets them.

The decoder's pixels are the same on every machine; the encoder's bytes are not: the same code
made other grid files on an AMD EPYC (Zen 4) than on the earlier sessions' machines and a lent GPU
machine's CPUs (docs/performance.md, "The encoder's bytes by machine"). This fits the tiny grid
that tests/test_latent.py pins, one torch thread, in a fresh process for each setting of the
libraries' kernel choice (MKL reads ``MKL_CBWR`` when it starts, ATen ``ATEN_CPU_CAPABILITY``), and
prints each file's SHA-256 beside the CPU's name, so that two machines' lines say whether their
bytes agree and which setting makes them agree. A few seconds a setting.

    python -m benchmarks.machine_bytes [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.runner import REPO, cpu_name, provenance
from inrcodec.image import atomic_write

# The settings tried, each in its own process: the default, MKL's conditional numerical
# reproducibility at two instruction sets (Intel CPUs only: elsewhere MKL takes its AUTO branch for
# them) and its COMPATIBLE branch (SSE2, meant to agree across vendors), ATen's kernels at AVX2, and
# NumPy without its AVX-512 paths.
_NO_AVX512 = "AVX512F,AVX512CD,AVX512_SKX,AVX512_CLX,AVX512_CNL,AVX512_ICL,AVX512_SPR"
SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "MKL_CBWR=AVX2": {"MKL_CBWR": "AVX2"},
    "MKL_CBWR=AVX512": {"MKL_CBWR": "AVX512"},
    "MKL_CBWR=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE"},
    "ATEN_CPU_CAPABILITY=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "NPY_DISABLE_CPU_FEATURES=AVX512*": {"NPY_DISABLE_CPU_FEATURES": _NO_AVX512},
}
_KNOBS = {name for setting in SETTINGS.values() for name in setting}  # none inherited from the caller


def tiny_image() -> np.ndarray:
    """A 48x64 image with edges and noise, the same on every machine (NumPy's PCG64 is specified)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    arr = np.stack([(x * 4) % 256, (y * 5) % 256, ((x + y) * 3) % 256], -1)
    return np.clip(arr + rng.integers(-20, 20, arr.shape), 0, 255).astype(np.uint8)


def tiny_fit() -> bytes:
    """The file of a 150-step grid fit of :func:`tiny_image` on one torch thread."""
    import torch

    from inrcodec.encoder import latent
    from inrcodec.encoder.latent import LatentConfig

    cfg = LatentConfig(lam=1e-3, levels=3, hidden=8, steps=150, batch=500, lr_latent=0.1, context="checkerboard")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return latent.fit(tiny_image(), cfg).data
    finally:
        torch.set_num_threads(threads)


def measure(setting: dict[str, str], timeout: float = 300.0) -> dict:
    """The tiny fit's SHA-256 and ATen's kernel level, in a fresh process with ``setting`` in its
    environment (and none of the other settings' variables); ``{"error": why}`` where it fails."""
    env = {**{k: v for k, v in os.environ.items() if k not in _KNOBS}, **setting}
    code = (
        "import hashlib, json, torch; from benchmarks.machine_bytes import tiny_fit; "
        "print(json.dumps({'sha256': hashlib.sha256(tiny_fit()).hexdigest(), "
        "'aten': torch.backends.cpu.get_cpu_capability()}))"
    )
    try:
        res = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no answer in {timeout:g} s"}
    except OSError as e:
        return {"error": f"cannot start {sys.executable}: {e.strerror or e}"}
    if res.returncode:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    try:
        return json.loads((res.stdout.strip().splitlines() or [""])[-1])
    except json.JSONDecodeError:
        return {"error": "no hash in its output"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="also write the lines as JSON here")
    args = p.parse_args(argv)
    if args.out is not None and args.out.is_dir():
        p.error(f"--out {args.out}: a directory, not a file")
    if args.out is not None and not args.out.parent.is_dir():
        p.error(f"--out {args.out}: no folder {args.out.parent}")
    print(f"CPU: {cpu_name()}", flush=True)
    found = {}
    for name, setting in SETTINGS.items():
        found[name] = measure(setting)
        r = found[name]
        print(f"  {name:34} {r.get('sha256') or r['error']}  (ATen {r.get('aten', '?')})", flush=True)
    if args.out is not None:
        doc = {"cpu": cpu_name(), "settings": found, "provenance": provenance()}
        text = json.dumps(doc, indent=1) + "\n"
        atomic_write(args.out, lambda f: f.write(text.encode()))
        print(f"wrote {args.out}")
    return 0 if all("sha256" in r for r in found.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
